"""Prometheus metrics, in a registry per app so several apps (tests) never collide.

Counted as things happen: requests, decisions, policy reloads, mail deliveries, decision-log
drops. Read at scrape time: the outbox backlog (from the database, which every process and
replica shares), the build, and each live worker process's CPU, memory and file descriptors
(from /proc, labelled with its pid, since prometheus_client's multiprocess mode has none).
Every label value comes from a closed set, so no request can add a series.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from importlib import metadata

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

from rolebook.api import metric_values
from rolebook.api.request_context import RouteNames, method_label

log = logging.getLogger("rolebook.metrics")
# No `*_created` series: they double the count of series, and with several workers (the
# default) the multiprocess collector has none, so one worker and many look the same.
disable_created_metrics()
# Requests take about a millisecond; the slow ones (storage, big checks) up to seconds.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
RESOURCE_BUCKETS = (1, 2, 5, 10, 20, 50, 100)  # openapi.yaml allows 100 resources a check
EVALUATION_BUCKETS = (1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2)


def shared() -> bool:
    """Worker processes share a metrics folder (api/server.py sets it before they fork)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


if shared():
    # Decided at import, as prometheus_client decides its own (api/server.py sets the folder
    # first): its files, written in batches rather than at every increment.
    prometheus_values.ValueClass = metric_values.BatchedValue


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code <= 599 else "other"


class Metrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("rolebook_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram(
            "rolebook_http_request_duration_seconds", "Time from a request's arrival to its "
            "response, by method, OpenAPI route and status class",
            ["method", "route", "status_class"], buckets=REQUEST_BUCKETS, registry=r)
        self.decisions = Counter("rolebook_decisions", "Decisions by effect", ["effect"],
                                 registry=r)
        self.check_resources = Histogram("rolebook_check_resources", "Resources asked about "
                                         "in one /v1/check request", buckets=RESOURCE_BUCKETS,
                                         registry=r)
        self.evaluation_seconds = Histogram(
            "rolebook_policy_evaluation_seconds", "Time the policy engine takes to answer one "
            "/v1/check request (every resource and action in it), without parsing, storage "
            "lookups or logging", buckets=EVALUATION_BUCKETS, registry=r)
        self.reloads = Counter("rolebook_policy_reloads", "Policy reloads by outcome",
                               ["outcome"], registry=r)
        # Per process ("liveall" adds the worker's pid), so a worker that lags shows.
        self.last_reload = Gauge("rolebook_policy_last_reload_timestamp_seconds", "When this "
                                 "process last loaded or tried to reload its policies",
                                 registry=r, multiprocess_mode="liveall")
        self.last_reload_success = Gauge("rolebook_policy_last_reload_success", "1 if this "
                                         "process's last policy load succeeded, 0 if it failed "
                                         "(the previous set still serves)", registry=r,
                                         multiprocess_mode="liveall")
        self.dropped_logs = Counter("rolebook_decision_log_dropped",
                                    "Decision log lines dropped because a sink's buffer was "
                                    "full (or the receiver refused them for good)", ["sink"],
                                    registry=r)
        self.shipped_logs = Counter("rolebook_decision_log_shipped", "Decision log lines the "
                                    "HTTP sink delivered", registry=r)
        self.ship_failures = Counter("rolebook_decision_log_ship_failures", "HTTP sink posts "
                                     "that failed (each is retried with backoff)", registry=r)
        self.mail = Counter("rolebook_outbox_deliveries", "Outbox delivery attempts by this "
                            "replica's senders: sent, retried later, or failed for good",
                            ["outcome"], registry=r)
        self.policy_info = Gauge("rolebook_policy_info", "1 for each policy version this "
                                 "process serves now, labelled with its digest and whether it "
                                 "is active", ["name", "version", "digest", "active"],
                                 registry=r, multiprocess_mode="liveall")
        # Each known label value at 0 from the start, so rate() and alerts see the first one.
        for counter, values in ((self.decisions, ("allow", "deny")),
                                (self.reloads, ("success", "failure")),
                                (self.mail, ("sent", "retried", "failed"))):
            for value in values:
                counter.labels(value)
        # Bound once: labels() costs more than the increment itself, on every request.
        self.allowed, self.denied = self.decisions.labels("allow"), self.decisions.labels("deny")
        self._shown: set[tuple[str, ...]] = set()
        self.scraped: list = [BuildInfo()]  # collectors read at each scrape, never summed

    def show_policies(self, snapshot) -> None:
        """Called at start and on every snapshot swap."""
        now = {(p.name, str(p.version), p.digest, str(snapshot.is_active(p)).lower())
               for p in snapshot.all()}
        for labels in self._shown - now:
            # With several workers the value lives in a shared file that remove() cannot
            # reach: there it stays, at 0.
            if shared():
                self.policy_info.labels(*labels).set(0)
            else:
                self.policy_info.remove(*labels)
        for labels in now:
            self.policy_info.labels(*labels).set(1)
        self._shown = now

    def policies_loaded(self, ok: bool) -> None:
        """After the first load and after every reload attempt (SIGHUP, HTTP, database feed)."""
        self.last_reload.set(time.time())
        self.last_reload_success.set(1 if ok else 0)

    def policies_reloaded(self, ok: bool) -> None:
        self.reloads.labels("success" if ok else "failure").inc()
        self.policies_loaded(ok)

    def render(self, *also) -> bytes:
        """This process's metrics, or every worker's when they share a metrics folder, then
        what is read at scrape time (`also`: collectors of this scrape)."""
        registry = CollectorRegistry(auto_describe=False)
        if shared():
            metric_values.flush()  # this worker's counts now; the others' FLUSH_SECONDS old at most
            MultiProcessCollector(registry)
        else:
            registry.register(_Of(self.registry))
        for collector in (*self.scraped, *also):
            registry.register(collector)
        return generate_latest(registry)


class _Of:
    """Another registry's metrics, as one collector."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()


class BuildInfo:
    def __init__(self):
        try:
            version = metadata.version("rolebook")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.labels = {"version": version, "python": platform.python_version()}

    def collect(self):
        info = GaugeMetricFamily("rolebook_build_info", "Always 1: the rolebook version and "
                                 "the Python running it", labels=list(self.labels))
        info.add_metric(list(self.labels.values()), 1)
        yield info


class WorkerProcesses:
    """process_* metrics of each live worker of this replica, read from /proc, with a `pid`
    label: prometheus_client's multiprocess mode exports none, and each worker is its own
    process with its own memory and CPU time."""

    def __init__(self, pids):
        self.pids = pids  # () -> the live workers' pids
        self._by_pid: dict[int, ProcessCollector] = {}

    def collect(self):
        pids = sorted(set(self.pids()))
        self._by_pid = {p: self._by_pid.get(p) or ProcessCollector(pid=lambda p=p: p,
                                                                    registry=None)
                        for p in pids}
        merged: dict[str, Metric] = {}
        for pid, collector in self._by_pid.items():
            for family in collector.collect():  # nothing for a process gone meanwhile
                into = merged.setdefault(family.name, Metric(family.name, family.documentation,
                                                             family.type, family.unit))
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)},
                                    sample.value)
        yield from merged.values()


class OutboxBacklog:
    """Mail waiting in the outbox, read from the database at scrape time: the database is the
    one place that knows what every process and replica queued and has not sent, and a count
    there survives restarts that a per-process gauge would not. Two indexed reads of pending
    rows; an unreachable database leaves these two out rather than fail the scrape."""

    def __init__(self, outbox):
        self.outbox = outbox

    def collect(self):
        try:
            queued, age = self.outbox.backlog()
        except Exception:
            log.warning("metrics: could not read the outbox backlog", exc_info=True)
            return
        yield GaugeMetricFamily("rolebook_outbox_queued", "Emails waiting in the outbox "
                                "(pending, sent by no process yet)", value=queued)
        yield GaugeMetricFamily("rolebook_outbox_oldest_pending_age_seconds", "Age of the "
                                "oldest email waiting in the outbox; 0 when none waits",
                                value=age)


class MetricsMiddleware:
    """Counts and times every response by its route template, so paths with ids share one
    series; refused ones (401, 413) count under their route too."""

    def __init__(self, metrics: Metrics, routes: RouteNames):
        self.metrics, self.routes = metrics, routes
        # (method, route, status) -> its two series, bound once: labels() costs more than the
        # increment. The keys come from closed sets, so this stays small.
        self._series: dict[tuple[str, str, int], tuple] = {}

    def process_response(self, req, resp, resource, req_succeeded):
        # Method and route from closed sets, so no request can add a series.
        key = (method_label(req.method), self.routes.of(req), resp.status_code)
        series = self._series.get(key)
        if series is None:
            method, route, status = key
            series = self._series[key] = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.request_seconds.labels(method, route, status_class(status)))
        series[0].inc()
        started = getattr(req.context, "started", None)  # set by RequestContextMiddleware
        if started is not None:
            series[1].observe(time.perf_counter() - started)


class MetricsResource:
    def __init__(self, services):
        self.metrics = services.metrics
        self.workers = WorkerProcesses(lambda: _worker_pids(services))

    def on_get(self, req, resp):
        resp.data = self.metrics.render(self.workers)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200


def _worker_pids(services) -> set[int]:
    """This process and, with several workers, every live one the worker board lists."""
    board = services.board
    return {os.getpid(), *(e["pid"] for e in board.entries())} if board else {os.getpid()}
