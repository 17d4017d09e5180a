"""Published policy versions across real replicas: three `rolebook serve --policy-source
database` processes (two workers each, separate data folders and ports) on one throw-away
PostgreSQL database.

Protects: a version published through the CLI is served by every worker of every replica
within 2 s (LISTEN/NOTIFY), and activating the older version rolls all of them back; no
replica goes back to the old digest once it serves the new one; the start-up line names
the source; `/v1/policies` and `rolebook_policy_info` show what each replica serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from rolebook.api.auth import mint
from rolebook.api.config import Config
from tests.support import live, postgres
from tests.support.client import over_http
from tests.support.live import REPO

pytestmark = pytest.mark.postgres
SECRET = "fleet-secret-" + "f" * 32
REPLICAS = 3
DEADLINE_SECONDS = 2.0
# Fresh connections per replica that must all carry the new digest: with two workers behind
# SO_REUSEPORT, 12 connections all landing on one worker happens once in 2,000 runs.
CONSECUTIVE = 12
CHECK = {"principal": {"id": "bob", "role": "edit"},
         "resources": [{"kind": "billing", "id": "acc_1", "actions": ["view"]}]}


def rolebook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolebook", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def write_v2(folder) -> None:
    """convert@2: like v1, but editors may view and change billing (one rule changed)."""
    v1 = (folder / "convert/v1.yaml").read_text()
    rule = "      - name: owners-manage-billing\n        actions: [view, update]\n" \
           "        effect: allow\n        min_role: owner\n"
    assert rule in v1
    (folder / "convert/v2.yaml").write_text(
        v1.replace("version: 1", "version: 2", 1).replace(rule, rule.replace("owner\n", "edit\n")))


@pytest.fixture
def fleet(tmp_path):
    with postgres.throwaway_database("rolebook_fleet") as name:
        url = postgres.url(name)
        folder = tmp_path / "policies"
        shutil.copytree(REPO / "policies", folder)
        first = rolebook("policy", "publish", str(folder), "--database-url", url,
                         "--data-dir", str(tmp_path / "publisher"), "--by", "ops")
        assert first.returncode == 0, first.stderr
        servers = []
        try:
            for i in range(REPLICAS):
                servers.append(live.start(
                    tmp_path / f"replica{i}", "--database-url", url, "--policy-source",
                    "database", "--workers", "2", env={"ROLEBOOK_JWT_SECRET": SECRET}))
            yield url, folder, servers
        finally:
            for server in servers:
                server.stop()


def answer(server, token) -> tuple[str, str]:
    """One /v1/check through a fresh connection: (digest, effect)."""
    got = over_http(server.url)("POST", "/v1/check", CHECK, {"Authorization": f"Bearer {token}"})
    assert got.status == 200, got.json
    return got.json["digest"], got.json["results"][0]["actions"]["view"]["effect"]


def until_all_serve(servers, token, digest, effect, seconds=DEADLINE_SECONDS) -> float:
    """Seconds until every replica answered CONSECUTIVE times in a row with `digest`; a
    replica that already did must never answer with another one afterwards."""
    started, streak = time.monotonic(), dict.fromkeys(range(len(servers)), 0)
    while min(streak.values()) < CONSECUTIVE:
        assert time.monotonic() - started < seconds + 1, streak
        for i, server in enumerate(servers):
            got = answer(server, token)
            if got == (digest, effect):
                streak[i] += 1
            else:
                assert streak[i] < CONSECUTIVE, f"replica {i} went back to {got}"
                streak[i] = 0
    return time.monotonic() - started


def test_publish_and_rollback_reach_every_replica(fleet):
    url, folder, servers = fleet
    token = mint(Config(jwt_secret=SECRET), "svc", "svc@example.com", "check")
    v1 = rolebook("policy", "validate", str(folder)).stdout
    v1_digest = next(line.split()[1] for line in v1.splitlines() if line.startswith("convert@1"))
    for server in servers:
        assert "policies published in the database: " in server.output()
    # Also warms every worker up: a worker's first request loads the API contract (~0.5 s),
    # which the time measured below is not about.
    until_all_serve(servers, token, v1_digest, "deny", seconds=30)

    write_v2(folder)
    before = time.monotonic()
    published = rolebook("policy", "publish", str(folder), "--database-url", url,
                         "--data-dir", str(folder.parent / "publisher"), "--by", "ops")
    committed = time.monotonic()
    assert published.returncode == 0, published.stderr
    line = next(x for x in published.stdout.splitlines() if "convert@2" in x)
    assert line.startswith("published convert@2 ") and line.endswith("(now active)")
    v2_digest = line.split()[2]
    until_all_serve(servers, token, v2_digest, "allow")
    took = time.monotonic() - committed
    print(f"\npublish: CLI {committed - before:.3f} s, then every replica served v2 "
          f"{took * 1000:.0f} ms after it returned")
    assert took < DEADLINE_SECONDS

    rolled = rolebook("policy", "activate", "convert@1", "--database-url", url,
                      "--data-dir", str(folder.parent / "publisher"), "--by", "ops")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.startswith(f"activated convert@1 {v1_digest} (was convert@2)")
    took = until_all_serve(servers, token, v1_digest, "deny")
    print(f"activate: every replica served v1 again {took * 1000:.0f} ms after the CLI returned")
    assert took < DEADLINE_SECONDS

    for server in servers:
        listed = over_http(server.url)("GET", "/v1/policies", None,
                                       {"Authorization": f"Bearer {token}"}).json
        assert listed["source"] == "database" and listed["load_errors"] == []
        assert {(p["version"], p["digest"], p["active"]) for p in listed["policies"]
                if p["name"] == "convert"} == {(1, v1_digest, True), (2, v2_digest, False)}
        metrics = over_http(server.url)("GET", "/metrics", None, {}).json
        for version, digest, active in ((1, v1_digest, "true"), (2, v2_digest, "false")):
            series = (f'rolebook_policy_info{{active="{active}",digest="{digest}",'
                      f'name="convert",pid=')  # one series per worker process
            lines = [x for x in metrics.splitlines() if x.startswith(series)]
            assert len(lines) == 2, metrics
            assert all(x.endswith(f'version="{version}"}} 1.0') for x in lines), metrics
