"""What an on-call engineer reads: JSON log lines (one access line per request, refused ones
included) carrying the request id the caller sent or one generated and echoed, OpenAPI route
names in logs and metrics from closed sets, and no email address or token in the log at INFO."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support import live
from tests.support.client import users_of
from tests.support.mail import wait_for, wait_for_mail

SECRET = "e2e-logs-" + "l" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = live.start(tmp_path_factory.mktemp("logs") / "var", "--workers", "1",
                     "--jwt-secret", SECRET, "--log-format", "json")
    yield srv
    srv.stop()


def log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def access_lines(server, request_id: str) -> list[dict]:
    return [line for line in log_lines(server)
            if line["logger"] == "rolebook.access" and line["request_id"] == request_id]


def test_every_line_is_json_and_the_access_line_carries_the_callers_request_id(server):
    alice = users_of(server.url, SECRET)("alice")
    created = alice.post("/v1/accounts", {"name": "Logged"}, headers={"X-Request-ID": "req-1"})
    echoed = {k.lower(): v for k, v in created.headers.items()}["x-request-id"]
    assert created.status == 201 and echoed == "req-1"
    account = created.json["id"]
    alice.get(f"/v1/accounts/{account}/members", headers={"X-Request-ID": "req-2"})
    [line] = wait_for(lambda: access_lines(server, "req-2"), what="the access line")
    assert line["http"] == {**line["http"], "method": "GET", "status": 200, "sub": "alice",
                            "route": "/v1/accounts/{account_id}/members"}
    assert line["http"]["bytes"] > 0 and line["http"]["duration_ms"] >= 0
    assert line["time"].endswith("Z")
    assert all(isinstance(x, dict) for x in log_lines(server))
    assert not [x for x in server.output().splitlines() if x.strip() and not x.startswith("{")]


def test_a_refused_request_is_logged_under_its_route_with_a_generated_id(server):
    request = urllib.request.Request(server.url + "/v1/policies/convert/versions/1",
                                     headers={"X-Request-ID": "bad id with spaces" * 10})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    generated = refused.value.headers["X-Request-ID"]
    assert refused.value.code == 401 and generated and " " not in generated
    [line] = wait_for(lambda: access_lines(server, generated), what="the 401's access line")
    assert line["http"]["route"] == "/v1/policies/{name}/versions/{version}"
    assert line["http"]["status"] == 401 and line["http"]["sub"] is None


def test_made_up_methods_and_paths_add_no_metric_series(server):
    for i in range(20):
        request = urllib.request.Request(f"{server.url}/nowhere/{i}", method=f"FOO{i}")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    series = [m for m in metrics.splitlines() if m.startswith("rolebook_http_requests_total{")]
    assert not [s for s in series if "FOO" in s or "/nowhere" in s]
    assert any('method="OTHER"' in s and 'route="(unmatched)"' in s for s in series)


def test_no_email_address_or_token_is_logged_at_info(server):
    make = users_of(server.url, SECRET)
    olga = make("olga", "olga.secret@example.com")
    account = olga.post("/v1/accounts", {"name": "Quiet"}).json["id"]
    invited = olga.post(f"/v1/accounts/{account}/invitations",
                        {"email": "invitee.secret@example.com", "role": "read"})
    assert invited.status == 201
    wait_for_mail(server.data_dir / "mail", "invitee.secret@example.com", timeout=30)
    wait_for(lambda: "sent via" in server.output(), what="the mail's log line")
    text = server.output()
    assert "secret@example.com" not in text
    assert olga.token not in text
