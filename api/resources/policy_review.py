"""What a policy change does, over HTTP, for the console and for scripts: the exhaustive diff
between two loaded versions, and the impact of a candidate on this replica's decision log."""

from __future__ import annotations

from datetime import UTC, datetime

from rolebook.api import contract
from rolebook.api.auth import ADMIN_SCOPE
from rolebook.api.problems import Problem, forbidden, not_found
from rolebook.api.services import Services
from rolebook.engine import diff, impact

IMPACT_TAIL_BYTES = 64 * 1024 * 1024  # the newest 64 MB of the log: about 300,000 decisions


def _loaded(services: Services, name: str, version: int):
    try:
        return services.policies.snapshot.get(name, version)
    except KeyError:
        raise not_found(f"no policy {name}@{version} is loaded") from None


class PolicyDiff:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, name: str):
        a = _loaded(self.services, name, req.get_param_as_int("from", required=True))
        b = _loaded(self.services, name, req.get_param_as_int("to", required=True))
        result = diff.diff(a, b)
        resp.media = {
            "from": a.ref, "to": b.ref, "cases": result.cases, "settings": result.settings,
            "changes": [{"kind": c.kind, "action": c.action, "role": c.role,
                         "facts": {k: v for k, v in c.facts if v is not diff.ABSENT},
                         "before": {"effect": c.before.effect, "rule": c.before.rule},
                         "after": {"effect": c.after.effect, "rule": c.after.rule}}
                        for c in result.changes]}


class PolicyImpact:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req, resp):
        if not req.context.caller.has(ADMIN_SCOPE):
            raise forbidden(None, "impact analysis reads the decision log: it needs the "
                            "'admin' scope")
        body = contract.body(req, "ImpactRequest")
        candidate = _loaded(self.services, body["policy"], body["version"])
        log = self.services.decisions.path
        if log is None or not log.exists():
            raise Problem(409, "no-decision-log", "No decision log on this replica",
                          "impact replays the decision log file in the data dir; this replica "
                          "writes none (--decision-log file)")
        since = body.get("since")
        if since is not None:
            # the contract checked the RFC 3339 form; the log's own form compares as text
            since = datetime.fromisoformat(since).astimezone(UTC).isoformat(
                timespec="microseconds").replace("+00:00", "Z")
        self.services.decisions.flush()
        with open(log, "rb") as lines:
            size = lines.seek(0, 2)
            start = max(0, size - IMPACT_TAIL_BYTES)
            lines.seek(start)
            if start:
                lines.readline()  # the first line in the tail is cut; the next is whole
            report = impact.replay(lines, candidate, since)
        resp.media = {**report.as_dict(), "log": {"bytes": size, "from_byte": start}}
