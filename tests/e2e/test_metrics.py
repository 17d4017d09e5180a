"""What Prometheus scrapes from a real `rolebook serve --workers 2`: every metric the README's
table lists, with its type and labels, and no other, parsed by prometheus_client's parser;
label values from closed sets (50 requests with made-up methods and paths add no series; a 401
counts under its route); each worker's process metrics, told apart by pid; and the exposition
passes `promtool check metrics` where promtool is installed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rolebook.api.config import Config
from rolebook.api.request_context import METHODS, UNMATCHED
from tests.e2e.conftest import SERVERS
from tests.support import live
from tests.support.client import User, over_http
from tests.support.processes import children, fresh_get, wait_for

SECRET = "e2e-metrics-" + "m" * 32
REPO = Path(__file__).resolve().parents[2]
ROUTES = set(yaml.safe_load((REPO / "openapi.yaml").read_text())["paths"]) | {UNMATCHED}
CLASSES = {"1xx", "2xx", "3xx", "4xx", "5xx"}


def readme_table() -> dict[str, tuple[str | None, set[str]]]:
    """The README's metrics table: name (without _total) → (type, label names); a row naming
    several metrics gives no one type."""
    found = {}
    for row in (REPO / "README.md").read_text().splitlines():
        if not row.startswith(("| `rolebook_", "| `process_")):
            continue
        names, kind, labels = row.split(" | ")[:3]
        labels = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", labels)))
        names = re.findall(r"`(\w+)`", names)
        for name in names:
            found[name.removesuffix("_total")] = (kind if len(names) == 1 else None, labels)
    return found


@pytest.fixture(scope="module", params=SERVERS)
def server(tmp_path_factory, request):
    srv = live.start(tmp_path_factory.mktemp("metrics") / "var", "--workers", "2",
                     "--jwt-secret", SECRET, "--access-log", "off", "--server", request.param)
    yield srv
    assert srv.stop() == 0
    assert "Traceback" not in srv.output(), srv.output()[-4000:]


def scrape(server) -> str:
    status, body = fresh_get(server.url, "/metrics", timeout=10)
    assert status == 200
    return body.decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def series(text: str, prefix: str = "rolebook_http_") -> set[tuple]:
    return {(s.name, tuple(sorted(s.labels.items())))
            for f in text_string_to_metric_families(text) if f.name.startswith(prefix)
            for s in f.samples}


def made_up(server, count: int, start: int = 0) -> None:
    """Unknown methods on known and unknown paths, unknown paths with a known method."""
    for i in range(start, start + count):
        method, path = [(f"FOO{i}", f"/nowhere/{i}"), (f"BAR{i}", "/v1/check"),
                        ("GET", f"/v1/nothing-{i}/x")][i % 3]
        status, _ = fresh_get(server.url, path, timeout=10, method=method)
        assert 400 <= status < 500


def test_every_metric_has_its_type_and_labels_and_each_worker_its_process(server):
    checker = User(over_http(server.url), Config(jwt_secret=SECRET), "svc", scope="check")
    asked = checker.post("/v1/check", {
        "principal": {"id": "u1", "role": "read"},
        "resources": [{"kind": "report", "actions": ["view"]}, {"kind": "report", "id": "2",
                                                                 "actions": ["view", "fly"]}]})
    assert asked.status == 200
    workers = children(server.process.pid)
    assert len(workers) == 2
    # Each worker lists itself once ready; a scrape in either reports both, and the check's
    # counts once the worker that served it has written them (metric_values.FLUSH_SECONDS):
    # the request's duration is the last of them.
    served = ('rolebook_http_request_duration_seconds_count{method="POST",route="/v1/check",'
              'status_class="2xx"} 1.0')
    text = wait_for(lambda: (lambda t: t if {s.labels["pid"] for s in families(t)[
        "process_resident_memory_bytes"].samples} == {str(p) for p in workers}
        and served in t else None)(
        scrape(server)), timeout=15, what="both workers' process metrics and the check's counts")
    found = families(text)
    documented = readme_table()
    assert len(documented) > 20
    for name, (kind, labels) in documented.items():
        assert name in found, name
        assert kind is None or found[name].type == kind, (name, found[name].type)
        for sample in found[name].samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    assert {n for n in found if n.startswith("rolebook_")} <= set(documented)
    [build] = found["rolebook_build_info"].samples
    assert build.value == 1 and re.match(r"^3\.\d+\.\d+", build.labels["python"])
    assert {s.labels["pid"] for s in found["rolebook_policy_last_reload_success"].samples} \
        == {str(p) for p in workers}
    assert all(s.value == 1 for s in found["rolebook_policy_last_reload_success"].samples)
    assert all(time.time() - 600 < s.value <= time.time()
               for s in found["rolebook_policy_last_reload_timestamp_seconds"].samples)
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in found.values() for s in f.samples}
    assert value[("rolebook_check_resources_count", ())] == 1
    assert value[("rolebook_check_resources_sum", ())] == 2
    assert value[("rolebook_policy_evaluation_seconds_count", ())] == 1
    assert value[("rolebook_decisions_total", (("effect", "allow"),))] >= 2
    assert value[("rolebook_decisions_total", (("effect", "deny"),))] >= 1
    assert value[("rolebook_outbox_queued", ())] == 0
    assert value[("rolebook_http_request_duration_seconds_count",
                  (("method", "POST"), ("route", "/v1/check"), ("status_class", "2xx")))] == 1


def test_unauthenticated_requests_count_under_their_route(server):
    status, _ = fresh_get(server.url, "/v1/accounts/acc_1/members/u_2", timeout=10)
    assert status == 401
    samples = series(scrape(server))
    route = ("route", "/v1/accounts/{account_id}/members/{user_id}")
    assert ("rolebook_http_requests_total", (("method", "GET"), route, ("status", "401"))) \
        in samples
    assert ("rolebook_http_request_duration_seconds_count",
            (("method", "GET"), route, ("status_class", "4xx"))) in samples


def test_made_up_methods_and_paths_add_no_series(server):
    made_up(server, 3)  # one of each kind: their shared series exist from here on
    scrape(server)  # and /metrics' own
    before = series(scrape(server))
    made_up(server, 50, start=3)
    after = series(scrape(server))
    assert after == before
    for _, labels in after:
        labels = dict(labels)
        assert labels["method"] in METHODS | {"OTHER"}
        assert labels["route"] in ROUTES
        assert labels.get("status_class", "2xx") in CLASSES


def test_promtool_accepts_the_exposition(server):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's `prometheus` package has it)")
    run = subprocess.run([promtool, "check", "metrics"], input=scrape(server), text=True,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr



def test_a_replaced_worker_leaves_metrics_with_its_pid(server):
    """Last here: it kills a worker. Its per-process series go; its replacement's come."""
    before = children(server.process.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    now = wait_for(lambda: (lambda c: c if len(c) == 2 and victim not in c else None)(
        children(server.process.pid)), timeout=30, what="a replacement worker")

    def pids_in(found, name) -> set[str]:
        return {s.labels["pid"] for s in found[name].samples}
    wanted = {str(p) for p in now}
    found = wait_for(lambda: (lambda f: f if pids_in(f, "process_resident_memory_bytes")
                              == pids_in(f, "rolebook_policy_last_reload_success") == wanted
                              else None)(families(scrape(server))),
                     timeout=30, what="metrics of exactly the live workers")
    assert {s.labels["pid"] for s in found["rolebook_policy_info"].samples} == wanted
