"""Prometheus metrics, in a registry per app so several apps (tests) never collide."""

from __future__ import annotations

import os

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
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
