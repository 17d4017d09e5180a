"""`rolebook serve` as a newcomer and an operator meet it: a real waitress server on a socket.

Protects: the start-up line (address, database, every policy with digest);
tokens minted by `rolebook token` work against the server; it refuses to
start without a valid policy set, naming file and line; SIGHUP reloads every
worker; SIGTERM stops it cleanly; and schemathesis's CLI, stateful phase
included, finds nothing against the live server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.support import live
from tests.support.client import over_http
from tests.support.live import REPO
from tests.support.processes import wait_for

SECRET = "e2e-secret-" + "e" * 32


def rolebook(*args: str, data_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolebook", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


class Caller:
    """A User-like wrapper over real HTTP with a token from the `rolebook token` command."""

    def __init__(self, server, sub, scope=""):
        minted = rolebook("token", "--sub", sub, "--email", f"{sub}@example.com",
                          "--scope", scope, data_dir=server.data_dir)
        assert minted.returncode == 0, minted.stderr
        self.token = minted.stdout.strip()
        self.transport = over_http(server.url)

    def call(self, method, path, body=None):
        return self.transport(method, path, body, {"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def server(tmp_path, http_server):
    srv = live.start(tmp_path / "var", "--workers", "2", "--server", http_server)
    yield srv
    srv.stop()


def test_newcomer_flow(server):
    log = server.output()
    assert f"rolebook serving on {server.url}" in log
    assert "sqlite:///" in log and "convert@1 sha256:" in log and "anytrack@1 sha256:" in log
    alice = Caller(server, "alice")
    account = alice.call("POST", "/v1/accounts", {"name": "Acme"})
    assert account.status == 201
    svc = Caller(server, "svc", "check")
    answer = svc.call("POST", "/v1/check", {
        "principal": {"id": "alice"}, "account_id": account.json["id"],
        "resources": [{"kind": "object", "id": "42", "actions": ["update", "delete"]}]})
    assert answer.status == 200
    assert answer.json["principal"]["role"] == "owner"
    assert {a: d["effect"] for a, d in answer.json["results"][0]["actions"].items()} == \
        {"update": "allow", "delete": "allow"}
    for _ in range(9):  # spread over both workers: 10 calls, 20 allowed decisions in all
        svc.call("POST", "/v1/check", {
            "principal": {"id": "alice"}, "account_id": account.json["id"],
            "resources": [{"kind": "object", "id": "42", "actions": ["update", "delete"]}]})
    # Each /metrics answer comes from one worker, yet adds up every worker's counts (the other
    # worker's within metric_values.FLUSH_SECONDS); from then on every answer has them all.
    allowed = 'rolebook_decisions_total{effect="allow"} 20.0'
    wait_for(lambda: allowed in over_http(server.url)("GET", "/metrics", None, {}).json,
             timeout=10, what="20 allowed decisions counted")
    for _ in range(6):
        assert allowed in over_http(server.url)("GET", "/metrics", None, {}).json
    ready = over_http(server.url)("GET", "/readyz", None, {})
    assert ready.status == 200 and ready.json["status"] == "ready"
    assert (server.data_dir / "jwt-secret").stat().st_mode & 0o777 == 0o600


def test_refuses_to_start_without_valid_policies(tmp_path, http_server):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    text = (policies / "anytrack/v1.yaml").read_text()
    (policies / "anytrack/v1.yaml").write_text(
        text.replace("min_role: manager\n", "min_role: overlord\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "rolebook", "serve", "--port", str(live.free_port()),
         "--data-dir", str(tmp_path / "var"), "--policy-dir", str(policies),
         "--server", http_server],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert "anytrack/v1.yaml:" in result.stderr and "overlord" in result.stderr
    line = text[: text.index("min_role: manager")].count("\n") + 1
    assert f"v1.yaml:{line}:" in result.stderr
    assert "refusing to start" in result.stderr


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--mail-url", "carrier-pigeon:loft", "unsupported mail URL"),
    ("--database-url", "oracle://db/x", "unsupported database URL"),
    ("--database-url", "postgresql://u:hunter2@127.0.0.1:1/x", "Connection refused"),
])
def test_refuses_to_start_with_an_unusable_mail_or_database_url(tmp_path, flag, value, says,
                                                               http_server):
    result = rolebook("serve", "--port", str(live.free_port()), flag, value,
                      "--server", http_server, data_dir=tmp_path / "var")
    assert result.returncode == 2, result.stderr
    assert f"rolebook: cannot start: {flag} / ROLEBOOK_" in result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_sighup_reloads_every_worker_and_sigterm_stops(tmp_path, http_server):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    server = live.start(tmp_path / "var", "--workers", "2", "--policy-dir", str(policies),
                        "--server", http_server)
    try:
        reader = Caller(server, "reader")
        v2 = (policies / "convert/v1.yaml").read_text().replace("version: 1", "version: 2")
        (policies / "convert/v2.yaml").write_text(v2)
        server.process.send_signal(signal.SIGHUP)
        deadline, seen = time.monotonic() + 20, set()
        while time.monotonic() < deadline and len(seen) < 20:
            listed = reader.call("GET", "/v1/policies").json
            active = {(p["name"], p["version"]) for p in listed["policies"] if p["active"]}
            if ("convert", 2) in active:
                seen.add(len(seen))  # count consecutive answers that show the new version
            else:
                seen.clear()
        assert len(seen) >= 20, "every worker should serve convert@2 after SIGHUP"
    finally:
        code = server.stop()
    assert code == 0
    assert "SIGTERM" in server.output()


@pytest.mark.parametrize("times", [1, 10], ids=["once", "ten-times"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_whole_process_group_stops_every_process(tmp_path, signum, times,
                                                                 http_server):
    # Ctrl-C in a terminal, or a service manager stopping the unit, signals every process: each
    # worker hears it twice (from the group and from the supervisor) and must still exit once.
    # Pressed again and again, the signals must still stop each worker once, cleanly.
    server = live.start(tmp_path / "var", "--workers", "3", "--server", http_server)
    group = os.getpgid(server.process.pid)
    assert group == server.process.pid
    for _ in range(times):
        os.killpg(group, signum)
    assert server.process.wait(timeout=30) == 0, server.output()[-3000:]
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # no worker left behind
    assert "Traceback" not in server.output()
    assert server.output().count(f"{signal.Signals(signum).name}: no new connections") == 3


def test_schemathesis_cli_against_the_live_server(server):
    token = Caller(server, "fuzzer", "check admin").token
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run",
         str(REPO / "openapi.yaml"), "--url", server.url, "-H", f"Authorization: Bearer {token}",
         "--max-examples", "8", "--request-timeout", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout.lower()
