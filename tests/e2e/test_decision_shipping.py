"""The decision log's HTTP sink against a real receiver on a local port: every decision of a
two-worker server arrives once (gzip-compressed JSON lines), also those still buffered at
SIGTERM; while the receiver answers 503 or is down, decisions are answered as fast as before,
the sink keeps at most its byte bound, drops and counts the rest, and delivers what it kept
once the receiver is back."""

from __future__ import annotations

import statistics
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rolebook.api.config import Config
from tests.support import live
from tests.support.client import User, over_http
from tests.support.processes import fresh_get, wait_for
from tests.support.receiver import Receiver

SECRET = "e2e-shipping-" + "s" * 32
BOUND = 20_000
HEALTHY = 20  # about 11 kB of lines


@pytest.fixture
def receiver():
    rec = Receiver().start()
    yield rec
    rec.stop()


def checker(server) -> User:
    return User(over_http(server.url), Config(jwt_secret=SECRET), "svc", scope="check")


def check(user: User, i: int) -> tuple[str, float]:
    """One decision; its id and how long the answer took."""
    started = time.perf_counter()
    answer = user.post("/v1/check", {"principal": {"id": f"u{i}", "role": "read"},
                                     "resources": [{"kind": "report", "actions": ["view"]}]})
    assert answer.status == 200, answer.json
    return answer.json["decision_id"], time.perf_counter() - started


def metric(server, name: str, **labels) -> float:
    status, body = fresh_get(server.url, "/metrics", timeout=10)
    assert status == 200
    return sum(s.value for f in text_string_to_metric_families(body.decode())
               for s in f.samples if s.name == name and labels.items() <= s.labels.items())


def test_every_decision_arrives_once_including_those_buffered_at_shutdown(tmp_path, receiver):
    server = live.start(tmp_path / "var", "--workers", "2", "--jwt-secret", SECRET,
                        "--decision-log-url", receiver.url, "--access-log", "off")
    try:
        user = checker(server)
        first = [check(user, i)[0] for i in range(150)]
        wait_for(lambda: receiver.count() == 150, timeout=30, what="150 shipped decisions")
        last = [check(user, i)[0] for i in range(150, 200)]
    finally:
        assert server.stop() == 0, server.output()[-3000:]  # SIGTERM at once: the last wait
    assert "Traceback" not in server.output()
    shipped = [e["decision_id"] for e in receiver.events]
    assert sorted(shipped) == sorted(first + last)  # each once, none lost at shutdown
    assert all(e["request_id"] and e["resources"][0]["kind"] == "report"
               for e in receiver.events)
    assert {p["Content-Encoding"] for p in receiver.posts} == {"gzip"}
    assert {p["Content-Type"] for p in receiver.posts} == {"application/x-ndjson"}
    in_file = (server.data_dir / "decisions.log").read_text().splitlines()
    assert len(in_file) == 200  # the file sink still gets every line too


def test_an_outage_drops_only_past_the_bound_counts_it_and_never_slows_a_decision(
        tmp_path, receiver):
    server = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                        "--decision-log-url", receiver.url, "--access-log", "off",
                        "--decision-log-buffer-bytes", str(BOUND))
    try:
        user = checker(server)
        healthy = [check(user, i)[1] for i in range(HEALTHY)]  # their lines fit the bound
        wait_for(lambda: receiver.count() == HEALTHY, timeout=30, what="shipped decisions")
        receiver.status = 503
        outage = [check(user, i) for i in range(HEALTHY, HEALTHY + 150)]
        wait_for(lambda: receiver.refused, timeout=30, what="a post answered 503")
        receiver.stop()  # then refusing connections
        outage += [check(user, i) for i in range(HEALTHY + 150, HEALTHY + 300)]
        answered = receiver.refused
        wait_for(lambda: metric(server, "rolebook_decision_log_ship_failures_total")
                 > answered, timeout=30, what="a refused connection counted as a failure")
        dropped = metric(server, "rolebook_decision_log_dropped_total", sink="http")

        # The 300 lines written during the outage, as the file sink has the same bytes.
        sizes = [len(x) + 1 for x in
                 (server.data_dir / "decisions.log").read_bytes().splitlines()[HEALTHY:]]
        kept = 300 - dropped
        assert BOUND // max(sizes) - 1 <= kept <= BOUND // min(sizes), (kept, sizes[:3])
        assert receiver.count() == HEALTHY

        times = [t for _, t in outage]
        assert statistics.median(times) <= 3 * statistics.median(healthy) + 0.02, \
            (statistics.median(times), statistics.median(healthy))
        assert max(times) < 1.0  # a sink in the request's path would wait out its retries
        print(f"outage: kept {kept:.0f} lines ({sum(sizes[:int(kept)])} bytes), dropped "
              f"{dropped:.0f}; answers p50 {statistics.median(healthy) * 1000:.1f} ms before, "
              f"{statistics.median(times) * 1000:.1f} ms during, max {max(times) * 1000:.1f} ms")

        receiver.status = 204
        receiver.start()
        wait_for(lambda: receiver.count() == HEALTHY + kept, timeout=60,
                 what=f"the {kept} kept lines delivered after the outage")
        # counted once the 2xx is read, a moment after the receiver has the lines
        wait_for(lambda: metric(server, "rolebook_decision_log_shipped_total") == HEALTHY + kept,
                 timeout=10, what="the shipped lines counted")
    finally:
        assert server.stop() == 0, server.output()[-3000:]
    ids = [e["decision_id"] for e in receiver.events]
    assert len(set(ids)) == len(ids) == HEALTHY + kept
    assert set(ids[HEALTHY:]) <= {d for d, _ in outage}
    assert "Traceback" not in server.output()


def test_a_receiver_that_never_answers_neither_slows_decisions_nor_holds_up_shutdown(
        tmp_path, receiver):
    server = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                        "--decision-log-url", receiver.url, "--access-log", "off")
    try:
        receiver.hang()
        user = checker(server)
        times = [check(user, i)[1] for i in range(50)]
        wait_for(lambda: receiver.held, timeout=30, what="a POST held by the receiver")
        times += [check(user, i)[1] for i in range(50, 100)]
        assert max(times) < 1.0, max(times)  # the sink waits up to 10 s for an answer
        stopping = time.monotonic()
        assert server.stop() == 0
        took = time.monotonic() - stopping
    finally:
        receiver.release()
        server.stop()
    assert took < 15, took  # SIGTERM: at most 5 s of trying to ship, then exit
    assert "not shipped before shutdown" in server.output()
    assert "Traceback" not in server.output()
