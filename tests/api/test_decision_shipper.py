"""The decision log's HTTP sink on its own, against a real local receiver: a batch the receiver
refuses for good (4xx) is dropped and counted, never retried; close() sends what is buffered;
lines offered after close are dropped and counted; a URL that is not http(s) with a host stops
`serve` before it starts, naming the setting."""

from __future__ import annotations

import pytest

from rolebook.api.config import Config
from rolebook.api.decision_log import DecisionLog, resource_entry
from rolebook.api.decision_shipper import HttpShipper, check_url, shown
from rolebook.api.server import StartupError, prepare
from tests.support.live import REPO
from tests.support.processes import wait_for
from tests.support.receiver import Receiver

HEAD = {"decision_id": "d", "caller": "c", "account_id": None, "policy": "p@1",
        "digest": "sha256:x", "latency_ns": 1, "principal": {"id": "u", "role": "r"}}
VIEW = {"effect": "allow", "rule": "p@1#r", "reason": "allowed by r"}


@pytest.fixture
def receiver():
    rec = Receiver().start()
    yield rec
    rec.stop()


def counted():
    seen = []
    return seen, lambda n=1: seen.append(n)


def test_a_refused_batch_is_dropped_and_counted_not_retried(receiver):
    receiver.status = 400
    drops, on_drop = counted()
    failures, on_failure = counted()
    shipper = HttpShipper(receiver.url, 1 << 20, on_drop=on_drop, on_failure=on_failure,
                          flush_seconds=0.05)
    for i in range(3):
        shipper.offer(b'{"n":%d}\n' % i)
    wait_for(lambda: sum(drops) == 3, timeout=10, what="the refused lines counted")
    shipper.close()
    assert receiver.refused == 1 and not failures and shipper.sent == 0


def test_close_sends_what_is_buffered_and_later_lines_are_dropped(receiver, tmp_path):
    sent, on_sent = counted()
    shipper = HttpShipper(receiver.url, 1 << 20, on_sent=on_sent, flush_seconds=3600)
    log = DecisionLog("off", tmp_path, shipper=shipper)
    assert log.enabled and not log.local
    for i in range(5):
        log.record({**HEAD, "decision_id": f"d{i}"},
                   [resource_entry("object", str(i), {}, {"view": VIEW}, {"view"})])
    assert receiver.count() == 0  # waiting for a full batch or the (hour-long) interval
    log.close()
    assert [e["decision_id"] for e in receiver.events] == [f"d{i}" for i in range(5)]
    assert sum(sent) == 5 and not (tmp_path / "decisions.log").exists()
    shipper.offer(b"{}\n")
    assert shipper.dropped == 1


@pytest.mark.parametrize("url", ["ftp://logs.example/x", "http:///nohost", "logs.example"])
def test_a_url_that_is_not_http_with_a_host_stops_serve(url, tmp_path):
    with pytest.raises(ValueError):
        check_url(url)
    config = Config(data_dir=str(tmp_path), decision_log_url=url, jwt_secret="s" * 40,
                    policy_dir=str(REPO / "policies"))
    with pytest.raises(StartupError, match="--decision-log-url"):
        prepare(config)


def test_a_password_in_the_url_is_never_shown():
    assert shown("https://ship:hunter2@logs.example/in") == "https://logs.example/in"
