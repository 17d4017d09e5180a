"""The review endpoints behind the console: the diff of two loaded versions and the impact of a
candidate on this replica's decision log, with their refusals as problem+json."""

from __future__ import annotations

from tests.support.markers import sqlite_only

CHECK = {"principal": {"id": "ed", "role": "edit"},
         "resources": [{"kind": "object", "id": "1", "actions": ["delete", "view"]}]}


@sqlite_only
def test_diff_of_a_version_with_itself_is_empty_and_unknown_versions_are_404(user):
    reader = user("reader")
    same = reader.get("/v1/policies/convert/diff?from=1&to=1")
    assert same.status == 200 and same.json["changes"] == [] and same.json["cases"] > 0
    assert reader.get("/v1/policies/convert/diff?from=1&to=9").status == 404
    missing = reader.get("/v1/policies/convert/diff?from=1")
    assert missing.status == 400


@sqlite_only
def test_impact_replays_the_logged_decisions_and_needs_the_admin_scope(user, services):
    assert user("svc", scope="check").post("/v1/check", CHECK).status == 200
    services.decisions.flush()
    body = {"policy": "convert", "version": 1}
    assert user("svc", scope="check").post("/v1/policies/impact", body).status == 403
    report = user("root", scope="admin").post("/v1/policies/impact", body)
    assert report.status == 200, report.json
    assert report.json["replayed"] >= 2 and report.json["flipped"] == 0
    assert report.json["log"]["from_byte"] == 0
    unknown = user("root", scope="admin").post("/v1/policies/impact",
                                               {"policy": "convert", "version": 7})
    assert unknown.status == 404
    future = user("root", scope="admin").post(
        "/v1/policies/impact", {**body, "since": "2999-01-01T00:00:00Z"})
    assert future.status == 200 and future.json["replayed"] == 0


@sqlite_only
def test_a_since_no_clock_shows_is_a_400_naming_the_field(user):
    """A leap second passes a Rust date-time check but not Python's datetime: it was a 500."""
    for since in ("2016-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "yesterday"):
        refused = user("root", scope="admin").post(
            "/v1/policies/impact", {"policy": "convert", "version": 1, "since": since})
        assert refused.status == 400, (since, refused.json)
        assert refused.json["errors"][0]["field"] == "since"
