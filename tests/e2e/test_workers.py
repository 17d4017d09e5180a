"""The worker processes of one `rolebook serve`: each socket its own, the dead replaced,
a reload reaching all.

Protects: every listening socket on the port is held by exactly one worker, and
the supervisor holds none; a worker killed with SIGKILL under load is replaced
(logged) and the replica answers at full worker count again, with no request on
a fresh connection left hanging; a worker that keeps dying waits longer each
time; `POST /v1/policies/reload` reaches every worker and says what each now
serves, and fresh connections afterwards never meet the old version (nor a
broken one). Client timeouts and deadlines throughout, no sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import threading
import time

import pytest

from rolebook.api.config import Config
from tests.support import live
from tests.support.client import User, over_http
from tests.support.live import REPO
from tests.support.processes import (
    alive,
    children,
    fresh_get,
    listeners_by_process,
    port_of,
    wait_for,
)

SECRET = "e2e-workers-" + "w" * 32
CLIENT_TIMEOUT = 5.0


def at_full_strength(server, workers: int):
    """The workers once each holds exactly one listening socket and none holds another's."""
    held = listeners_by_process(server.process.pid, port_of(server.url))
    if held.pop(server.process.pid):
        return None  # the supervisor never listens
    if len(held) != workers or any(len(sockets) != 1 for sockets in held.values()):
        return None
    return set(held)


def admin(server) -> User:
    return User(over_http(server.url), Config(jwt_secret=SECRET), "root", scope="admin")


class Load:
    """Threads calling /healthz, each call on a fresh connection with a client timeout, until
    stopped (bounded by a count); every outcome with its start time."""

    def __init__(self, url: str, threads: int = 4, limit: int = 20_000):
        self.url, self.limit = url, limit
        self.outcomes: list[tuple[float, str]] = []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        while not self.done.is_set() and len(self.outcomes) < self.limit:
            started = time.monotonic()
            try:
                status, _ = fresh_get(self.url, "/healthz", CLIENT_TIMEOUT)
                outcome = "ok" if status == 200 else f"status {status}"
            except TimeoutError:
                outcome = "timeout"
            except (OSError, http.client.HTTPException) as exc:  # e.g. a body cut by the kill
                outcome = type(exc).__name__
            self.outcomes.append((started, outcome))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        for t in self.threads:
            t.join(timeout=CLIENT_TIMEOUT * 2)
            assert not t.is_alive(), "a load thread hung"


@pytest.fixture
def policies(tmp_path):
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


def start(tmp_path, workers: int, http_server: str, policies=None):
    flags = ["--workers", str(workers), "--jwt-secret", SECRET, "--decision-log", "off",
             "--server", http_server]
    if policies:
        flags += ["--policy-dir", str(policies)]
    server = live.start(tmp_path / "var", *flags)
    if workers > 1:
        wait_for(lambda: at_full_strength(server, workers), 30,
                 f"{workers} workers listening")
    return server


def stopped_cleanly(server) -> None:
    code = server.stop()
    assert code == 0 and "Traceback" not in server.output(), server.output()[-4000:]


def test_a_killed_worker_is_replaced_under_load(tmp_path, http_server):
    server = start(tmp_path, 3, http_server)
    try:
        victim = sorted(at_full_strength(server, 3))[0]
        with Load(server.url) as load:
            wait_for(lambda: len(load.outcomes) >= 50, 30, "load running")
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: not alive(victim), 10, "the killed worker gone")
            gone = time.monotonic()
            workers = wait_for(lambda: at_full_strength(server, 3), 30, "a replacement listening")
            recovered = time.monotonic()
            assert victim not in workers
            # The replica answers with every worker: each confirms a reload, the new one too.
            reloaded = admin(server).post("/v1/policies/reload")
            assert reloaded.status == 200, reloaded.json
            assert {w["pid"] for w in reloaded.json["workers"]} == workers
            wait_for(lambda: sum(1 for t, _ in load.outcomes if t > recovered) >= 100, 60,
                     "load after the recovery")
        answers = [fresh_get(server.url, "/healthz", CLIENT_TIMEOUT)[0] for _ in range(40)]
        assert answers == [200] * 40
    finally:
        stopped_cleanly(server)
    assert [o for _, o in load.outcomes if o == "timeout"] == []
    # Requests in flight on the killed worker may fail (reset, never hang); once the
    # replacement listens, every request succeeds. (On this busy 2-core machine a reset was
    # seen, rarely, for a connection started just after the victim was reaped: the kernel's
    # handover of a dying listener is not ours to time.)
    after = [o for t, o in load.outcomes if t > recovered]
    assert after and set(after) == {"ok"}, sorted(set(after))
    assert set(o for t, o in load.outcomes if t > gone) <= {"ok", "ConnectionResetError",
                                                            "IncompleteRead"}
    log = server.output()
    assert re.search(rf"worker \d \(pid {victim}\) was killed by SIGKILL after [\d.]+ s; "
                     "replacing it now", log), log[-3000:]
    print(f"\nkill -9 of a worker: its socket gone in {1000 * (gone - killed):.0f} ms, "
          f"a replacement listening after {1000 * (recovered - killed):.0f} ms; "
          f"{len(load.outcomes)} requests, "
          f"{sum(1 for _, o in load.outcomes if o != 'ok')} failed (all in flight at the kill)")


def test_a_worker_that_keeps_dying_waits_longer_each_time(tmp_path, http_server):
    server = start(tmp_path, 2, http_server)
    try:
        workers = at_full_strength(server, 2)
        victim, gaps = sorted(workers)[0], []
        for _ in range(3):
            before = children(server.process.pid)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            new = wait_for(lambda b=before: children(server.process.pid) - b, 30,
                           "a replacement")
            gaps.append(time.monotonic() - killed)
            (victim,) = new
        wait_for(lambda: at_full_strength(server, 2), 30, "both workers listening again")
    finally:
        stopped_cleanly(server)
    log = server.output()
    assert "replacing it now" in log
    assert "replacing it in 0.5 s (2 deaths in a row" in log
    assert "replacing it in 1 s (3 deaths in a row" in log
    assert gaps[1] >= 0.5 and gaps[2] >= 1.0, gaps


def active_versions(listing: dict) -> set[str]:
    return {f"{p['name']}@{p['version']}" for p in listing["policies"] if p["active"]}


def ask_fresh(server, n: int) -> list[set[str]]:
    """What /v1/policies says is active, asked n times, each on a new connection."""
    token = admin(server).token
    found = []
    for _ in range(n):
        status, body = fresh_get(server.url, "/v1/policies", CLIENT_TIMEOUT,
                                 {"Authorization": f"Bearer {token}"})
        assert status == 200
        found.append(active_versions(json.loads(body)))
    return found


@pytest.mark.parametrize("workers", [3, 1])
def test_http_reload_reaches_every_worker(tmp_path, policies, workers, http_server):
    server = start(tmp_path, workers, http_server, policies)
    try:
        pids = at_full_strength(server, workers) if workers > 1 else {server.process.pid}
        assert all("convert@1" in seen for seen in ask_fresh(server, 10))
        v1 = (policies / "convert/v1.yaml").read_text()
        (policies / "convert/v2.yaml").write_text(v1.replace("version: 1", "version: 2"))
        reloaded = admin(server).post("/v1/policies/reload")
        assert reloaded.status == 200, reloaded.json
        assert "convert@2" in active_versions(reloaded.json)
        each = reloaded.json["workers"]
        assert {w["pid"] for w in each} == pids
        assert all("convert@2" in w["active"] and "convert@1" not in w["active"] for w in each)
        assert {w["snapshot_digest"] for w in each} == {reloaded.json["snapshot_digest"]}
        assert all(seen == {"convert@2", "anytrack@1"} for seen in ask_fresh(server, 40))

        broken = v1.replace("version: 1", "version: 3").replace("min_role: owner\n",
                                                                "min_role: sovereign\n", 1)
        (policies / "convert/v3.yaml").write_text(broken)
        failed = admin(server).post("/v1/policies/reload")
        assert failed.status == 422, failed.json
        assert "sovereign" in failed.json["errors"][0]["message"]
        assert {w["pid"] for w in failed.json["workers"]} == pids
        assert all(w["error"] and "convert@2" in w["active"] for w in failed.json["workers"])
        assert all(seen == {"convert@2", "anytrack@1"} for seen in ask_fresh(server, 40))
    finally:
        stopped_cleanly(server)
