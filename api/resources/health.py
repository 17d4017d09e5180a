"""Liveness and readiness: /healthz says the process answers, /readyz that it can serve."""

from __future__ import annotations

import falcon

from rolebook.api.problems import Problem
from rolebook.api.services import Services


class Health:
    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class Ready:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp):
        policies = self.services.policies
        problems = []
        timeout = self.services.config.ready_timeout
        if not self.services.store.ping(timeout):
            problems.append(f"the database is not reachable (no answer within {timeout:g} s)")
        if policies.last_error is not None:
            problems.append(f"the last policy reload failed ({policies.last_error}); "
                            "the previous policies still serve")
        verifier = self.services.verifier
        if verifier is not None and verifier.outage:
            problems.append(verifier.outage)
        snapshot = policies.snapshot
        if problems and "database" in problems[0]:
            raise Problem(503, "not-ready", "Not ready", "; ".join(problems))
        resp.media = {
            "status": "ready",
            "policies": [{"name": p.name, "version": p.version, "digest": p.digest}
                         for p in snapshot.all() if snapshot.is_active(p)],
            "snapshot_digest": snapshot.digest,
            "warnings": problems,
        }
        resp.status = falcon.HTTP_200
