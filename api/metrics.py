"""Prometheus metrics, in a registry per app so several apps (tests) never collide."""

from __future__ import annotations

import os

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from rolebook.api.request_context import RouteNames, method_label


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("rolebook_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.decisions = Counter("rolebook_decisions", "Decisions by effect", ["effect"],
                                 registry=self.registry)
        self.decision_seconds = Histogram(
            "rolebook_decision_seconds", "Time to evaluate one check request",
            buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5),
            registry=self.registry)
        self.reloads = Counter("rolebook_policy_reloads", "Policy reloads by outcome",
                               ["outcome"], registry=self.registry)
        self.dropped_logs = Counter("rolebook_decision_log_dropped",
                                    "Decision log entries dropped because the queue was full",
                                    registry=self.registry)
        # Per process ("liveall" adds the worker's pid), so a worker that lags shows.
        self.policy_info = Gauge("rolebook_policy_info", "1 for each policy version this "
                                 "process serves now, labelled with its digest and whether it "
                                 "is active", ["name", "version", "digest", "active"],
                                 registry=self.registry, multiprocess_mode="liveall")
        self._shown: set[tuple[str, ...]] = set()

    def show_policies(self, snapshot) -> None:
        """Called at start and on every snapshot swap."""
        now = {(p.name, str(p.version), p.digest, str(snapshot.is_active(p)).lower())
               for p in snapshot.all()}
        shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        for labels in self._shown - now:
            # With several workers the value lives in a shared file that remove() cannot
            # reach: there it stays, at 0.
            if shared:
                self.policy_info.labels(*labels).set(0)
            else:
                self.policy_info.remove(*labels)
        for labels in now:
            self.policy_info.labels(*labels).set(1)
        self._shown = now

    def render(self) -> bytes:
        """This process's metrics, or every worker's when they share a metrics folder."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every response by its route template, so paths with ids share one series."""

    def __init__(self, metrics: Metrics, routes: RouteNames):
        self.metrics, self.routes = metrics, routes

    def process_response(self, req, resp, resource, req_succeeded):
        # Method and route from closed sets, so no request can add a series.
        self.metrics.requests.labels(method_label(req.method), self.routes.of(req),
                                     str(resp.status_code)).inc()


class MetricsResource:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def on_get(self, req, resp):
        resp.data = self.metrics.render()
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200
