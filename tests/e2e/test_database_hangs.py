"""A database that hangs costs each request at most the database timeouts, never a hung thread.

Every process of a PostgreSQL server the test runs itself is stopped (SIGSTOP: its kernel still
accepts and acknowledges, nothing answers, as with a hung server or, seen from the client, a
network partition). Protects: each of REQUESTS concurrent requests that need the database (as
many as the worker has request threads, so all are blocked at once) gets 503 problem+json saying
why within the statement timeout plus the client's grace and a margin, and within the connect
timeout once it needs a new connection; /readyz answers 503 within
its own timeout while /healthz keeps answering 200 (their own threads), and so does a check that
names no account (answered on the loop thread, api/request_lanes.py, which no request waiting on
the database may hold); once the database runs again, /readyz and requests succeed within
seconds. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from rolebook.api.auth import mint
from rolebook.api.config import Config
from rolebook.storage.postgres import ANSWER_GRACE_SECONDS
from tests.support import live
from tests.support.private_postgres import private_postgres
from tests.support.processes import wait_for

SECRET = "e2e-hang-" + "h" * 32
THREADS = REQUESTS = 20
STATEMENT_SECONDS = Config().db_statement_timeout  # the defaults, as deployed
CONNECT_SECONDS = Config().db_connect_timeout
READY_SECONDS = Config().ready_timeout
MARGIN_SECONDS = 1.5  # a busy 2-core machine: scheduling, the error's own round trip
REQUEST_BOUND = STATEMENT_SECONDS + ANSWER_GRACE_SECONDS + MARGIN_SECONDS
READY_BOUND = READY_SECONDS + MARGIN_SECONDS
HEALTH_BOUND = 1.0
# Needs no storage: the role is the caller's to state, with the check scope.
CHECK = {"principal": {"id": "ed", "role": "edit"}, "policy": "convert",
         "resources": [{"kind": "object", "id": "42", "actions": ["delete"]}]}
RECOVERY_BOUND = 10.0


def call(url: str, method: str, path: str, token: str | None = None, body=None,
         timeout: float = 30.0) -> tuple[int, str, object, float]:
    """(status, content type, JSON body, seconds) on a fresh connection; a hang fails here."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Connection": "close", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        elapsed = time.monotonic() - started
        return resp.status, resp.getheader("Content-Type", ""), json.loads(raw or b"null"), \
            elapsed
    finally:
        conn.close()


def test_a_frozen_database_gets_503s_within_the_bound_and_probes_keep_answering(tmp_path):
    with private_postgres() as pg:
        server = live.start(tmp_path / "srv", "--workers", "1", "--threads", str(THREADS),
                            "--database-url", pg.url, "--jwt-secret", SECRET,
                            "--decision-log", "off")
        try:
            token = mint(Config(jwt_secret=SECRET), "alice", "alice@example.com", "")
            created = call(server.url, "POST", "/v1/accounts", token, {"name": "Acme"})
            assert created[0] == 201, created
            assert call(server.url, "GET", "/readyz")[0] == 200
            with ThreadPoolExecutor(REQUESTS) as pool:  # as in service: threads hold connections
                warm = list(pool.map(lambda _: call(server.url, "GET", "/v1/accounts", token),
                                     range(REQUESTS)))
            assert all(answer[0] == 200 for answer in warm)

            checker = mint(Config(jwt_secret=SECRET), "svc", "svc@example.com", "check")
            status, _, before, _ = call(server.url, "POST", "/v1/check", checker, CHECK)
            assert status == 200, before
            pg.freeze()
            probes = Probes(server.url, checker)
            probes.start()
            # First on the connections the threads hold (the answer's bound), then on fresh
            # ones, since a connection whose wait ran out is closed (the connection's bound).
            answers = concurrent_requests(server.url, token)
            reconnecting = concurrent_requests(server.url, token)
            probes.stop()

            for status, content_type, body, elapsed in answers + reconnecting:
                assert status == 503, body
                assert content_type == "application/problem+json"
                assert body["type"].endswith("/storage-unavailable")
                assert "PostgreSQL within" in body["detail"], body
                assert elapsed <= REQUEST_BOUND, f"{elapsed:.2f} s"
            for *_, body, elapsed in reconnecting:
                assert body["detail"].startswith("could not connect to PostgreSQL within"), body
                assert elapsed <= CONNECT_SECONDS + MARGIN_SECONDS, f"{elapsed:.2f} s"
            assert len(probes.ready) >= 3 and len(probes.health) >= 3  # while threads were busy
            for status, content_type, body, elapsed in probes.ready:
                assert status == 503 and content_type == "application/problem+json", body
                assert "database is not reachable" in body["detail"]
                assert elapsed <= READY_BOUND, f"/readyz took {elapsed:.2f} s"
            for status, _, body, elapsed in probes.health:
                assert status == 200 and body == {"status": "ok"}
                assert elapsed <= HEALTH_BOUND, f"/healthz took {elapsed:.2f} s"
            assert len(probes.checks) >= 3
            for status, _, body, elapsed in probes.checks:
                assert status == 200, body
                assert body["results"] == before["results"]  # the same answer, database or not
                assert elapsed <= HEALTH_BOUND, f"a check took {elapsed:.2f} s"

            pg.thaw()
            thawed = time.monotonic()
            wait_for(lambda: call(server.url, "GET", "/readyz", timeout=5)[0] == 200,
                     RECOVERY_BOUND, "/readyz 200 after the database returned", every=0.05)
            ready_after = time.monotonic() - thawed
            wait_for(lambda: call(server.url, "GET", "/v1/accounts", token, timeout=10)[0] == 200,
                     RECOVERY_BOUND, "a request served after the database returned", every=0.05)
            served_after = time.monotonic() - thawed
            listed = call(server.url, "GET", "/v1/accounts", token)
            assert [a["name"] for a in listed[2]["items"]] == ["Acme"]  # no write got through

            print(f"\nfrozen database, {REQUESTS} concurrent requests on {THREADS} threads: "
                  f"503 after {spread(answers)} on held connections, {spread(reconnecting)} "
                  f"on fresh ones (bound {REQUEST_BOUND:.1f} s); /readyz 503 in "
                  f"max {max(p[3] for p in probes.ready):.2f} s ({len(probes.ready)} probes); "
                  f"/healthz 200 in max {max(p[3] for p in probes.health) * 1000:.0f} ms "
                  f"({len(probes.health)} probes); a check 200 in max "
                  f"{max(p[3] for p in probes.checks) * 1000:.0f} ms; after the thaw /readyz "
                  f"200 in {ready_after:.2f} s, a request 200 in {served_after:.2f} s")
        finally:
            code = server.stop()
        output = server.output()
        assert "Traceback" not in output, output[-4000:]
        assert code == 0, output[-4000:]


def concurrent_requests(url: str, token: str) -> list:
    """REQUESTS reads and writes at once; a client timeout well past the bound fails a hang."""
    def one(i: int):
        if i % 2:
            return call(url, "GET", "/v1/accounts", token, timeout=REQUEST_BOUND + 10)
        return call(url, "POST", "/v1/accounts", token, {"name": f"B{i}"},
                    timeout=REQUEST_BOUND + 10)
    with ThreadPoolExecutor(REQUESTS) as pool:
        return list(pool.map(one, range(REQUESTS)))


def spread(answers: list) -> str:
    times = sorted(a[3] for a in answers)
    return f"{times[0]:.2f}-{times[-1]:.2f} s (median {statistics.median(times):.2f})"


class Probes:
    """/healthz, /readyz and a check naming no account, one after the other, until stopped:
    what a kubelet and a service asking about a role would see."""

    def __init__(self, url: str, checker: str) -> None:
        self.url, self.checker = url, checker
        self.checks: list = []
        self.health: list = []
        self.ready: list = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=READY_BOUND + 10)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.health.append(call(self.url, "GET", "/healthz", timeout=HEALTH_BOUND + 5))
            self.ready.append(call(self.url, "GET", "/readyz", timeout=READY_BOUND + 5))
            self.checks.append(call(self.url, "POST", "/v1/check", self.checker, CHECK,
                                    timeout=HEALTH_BOUND + 5))
            self.stopped.wait(0.2)
