"""A rolling restart of two replicas on one PostgreSQL loses no request a replica accepted.

Contract: two real `rolebook serve` replicas (separate data folders and ports,
one throw-away database) are stopped with SIGTERM and started again one after
the other while clients keep calling `/v1/check` (with an account, so each call
reads the database) on fresh connections, as a load balancer would: a refused
connection was never accepted and goes to the other replica; every other
failure (reset, timeout, 5xx) counts. None may occur but the one TCP leaves open: a
connection the kernel completes in the instant between a worker's last accept and the close
of its socket is reset (README, Stopping). At each stop, a request
whose body is half sent and a connection that has sent nothing yet, both opened
before the SIGTERM, are answered after the replica has stopped taking new
connections. Deadlines and client timeouts, no sleeps. Under `--server granian` the one
difference: a connection that has not delivered a whole request at the SIGTERM may be closed
(granian has no wait for it); every request it received is answered.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading

import pytest

from rolebook.api.auth import mint
from rolebook.api.config import Config
from tests.support import live, postgres
from tests.support.processes import port_of, wait_for

pytestmark = pytest.mark.postgres

SECRET = "e2e-rolling-" + "r" * 32
CLIENT_TIMEOUT = 10.0
CLIENTS = 4
# How a client sees a connection closed under it.
CUT = {"BrokenPipeError", "ConnectionResetError", "RemoteDisconnected"}


class Replica:
    def __init__(self, name: str, data_dir, database_url: str, http_server: str):
        self.name, self.data_dir, self.url = name, data_dir, database_url
        self.http_server = http_server
        self.port, self.server, self.logs = None, None, []

    def start(self):
        self.server = live.start(self.data_dir, "--workers", "2", "--database-url", self.url,
                                 "--jwt-secret", SECRET, "--decision-log", "off",
                                 "--server", self.http_server, port=self.port)
        self.port = port_of(self.server.url)

    def stop(self) -> int:
        code = self.server.process.wait(timeout=60)
        self.logs.append(self.server.output())
        return code


def connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)


class Client:
    """Threads calling the replicas in turn; a refused connection is tried on the next one."""

    def __init__(self, replicas, body: bytes, token: str):
        self.replicas, self.body = replicas, body
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Connection": "close"}
        self.calls: list[tuple[str, str]] = []  # (replica, outcome)
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def call(self, replica) -> str:
        conn = connection(replica.port)
        try:
            try:
                conn.connect()
            except ConnectionRefusedError:
                return "refused"  # never accepted: a load balancer tries another replica
            conn.request("POST", "/v1/check", self.body, self.headers)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 200:
                return f"status {resp.status}: {answer[:200]!r}"
            return "ok"
        except TimeoutError:
            return "timeout"
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            conn.close()

    def _run(self, i: int):
        turn = i
        while not self.done.is_set() and len(self.calls) < 100_000:
            for attempt in range(len(self.replicas)):
                replica = self.replicas[(turn + attempt) % len(self.replicas)]
                outcome = self.call(replica)
                self.calls.append((replica.name, outcome))
                if outcome != "refused":
                    break
            turn += 1

    def served_by(self, name: str) -> int:
        return sum(1 for r, o in self.calls if r == name and o == "ok")


def in_flight_then_stop(replica, body: bytes, headers: dict) -> list[int]:
    """SIGTERM with a half-sent request and a silent connection open; their statuses."""
    half = connection(replica.port)
    half.putrequest("POST", "/v1/check")
    for key, value in {**headers, "Content-Length": str(len(body))}.items():
        half.putheader(key, value)
    half.endheaders(body[: len(body) // 2])
    silent = connection(replica.port)
    silent.connect()
    replica.server.process.send_signal(signal.SIGTERM)

    def refusing():
        probe = connection(replica.port)
        try:
            probe.connect()
        except ConnectionRefusedError:
            return True
        finally:
            probe.close()
        return False
    wait_for(refusing, 20, f"replica {replica.name} refusing new connections")
    statuses = []
    for conn, send in ((half, lambda: half.send(body[len(body) // 2:])),
                       (silent, lambda: silent.request("POST", "/v1/check", body, headers))):
        try:
            send()
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        except (OSError, http.client.HTTPException) as exc:  # the connection was closed
            statuses.append(type(exc).__name__)
        conn.close()
    return statuses


def test_rolling_restart_loses_no_accepted_request(tmp_path, http_server):
    with postgres.throwaway_database("rolebook_rolling") as name:
        url = postgres.url(name)
        # One after the other: replicas racing to create the tables is another matter.
        replicas = [Replica(n, tmp_path / n, url, http_server) for n in ("a", "b")]
        for replica in replicas:
            replica.start()
        try:
            config = Config(jwt_secret=SECRET)
            owner = {"Authorization": f"Bearer {mint(config, 'alice', 'alice@example.com')}",
                     "Content-Type": "application/json"}
            conn = connection(replicas[0].port)
            conn.request("POST", "/v1/accounts", json.dumps({"name": "Acme"}), owner)
            account = json.loads(conn.getresponse().read())
            conn.close()
            body = json.dumps({
                "principal": {"id": "alice"}, "account_id": account["id"],
                "resources": [{"kind": "object", "id": str(i), "actions": ["update", "delete"]}
                              for i in range(20)]}).encode()
            client = Client(replicas, body, mint(config, "svc", "svc@example.com", "check"))
            headers = {k: v for k, v in client.headers.items() if k != "Connection"}
            probes = []
            for t in client.threads:
                t.start()
            try:
                for replica in replicas:
                    other = next(r for r in replicas if r is not replica)
                    floor = (client.served_by(replica.name), client.served_by(other.name))
                    wait_for(lambda f=floor, r=replica, o=other:
                             client.served_by(r.name) >= f[0] + 50
                             and client.served_by(o.name) >= f[1] + 50,
                             60, "both replicas serving")
                    probes.append(in_flight_then_stop(replica, body, headers))
                    stopped_at = len(client.calls)
                    assert replica.stop() == 0, replica.logs[-1][-3000:]
                    wait_for(lambda s=stopped_at, o=other: sum(
                        1 for r, out in client.calls[s:] if r == o.name and out == "ok") >= 50,
                        60, "the other replica serving alone")
                    replica.start()
                wait_for(lambda: all(client.served_by(r.name) >= 200 for r in replicas), 60,
                         "both replicas back")
            finally:
                client.done.set()
                for t in client.threads:
                    t.join(timeout=CLIENT_TIMEOUT * 2)
        finally:
            for replica in replicas:
                assert replica.server.stop() == 0, replica.server.output()[-3000:]
                replica.logs.append(replica.server.output())
    outcomes = {}
    for _, outcome in client.calls:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if http_server == "waitress":
        # The one failure TCP leaves possible (README, Stopping): a connection the kernel
        # completes in the microseconds between a worker's last accept and its close is reset
        # by that close, at most the one call each client is connecting at each stop.
        reset = outcomes.get("ConnectionResetError", 0)
        assert set(outcomes) <= {"ok", "refused", "ConnectionResetError"}, outcomes
        assert reset <= CLIENTS * len(replicas), outcomes
        assert probes == [[200, 200], [200, 200]]
    else:
        # granian may close a connection that has not delivered a whole request at SIGTERM:
        # either probe, and at most the one call each client had in the making at each stop;
        # nothing else fails (no 5xx, no timeout).
        cut = {o: n for o, n in outcomes.items() if o not in ("ok", "refused")}
        assert set(cut) <= CUT and sum(cut.values()) <= CLIENTS * len(replicas), outcomes
        assert all(s == 200 or s in CUT for probe in probes for s in probe), probes
    for replica in replicas:
        assert all("Traceback" not in log for log in replica.logs)
        assert replica.logs[0].count("SIGTERM: no new connections") == 2
    print(f"\nrolling restart: {outcomes}")
