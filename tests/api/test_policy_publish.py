"""Published policy versions: the database as the policy source, on SQLite and PostgreSQL.

Protects: publishing is idempotent and all-or-nothing; a published version never changes;
a broken file or a failing suite publishes nothing and names file:line:col; activation over
HTTP needs `admin`, is 404 for a version never published and 409 on a folder-serving
replica; a replica follows publishes by itself (NOTIFY on PostgreSQL, a poll on SQLite);
one that cannot build a published version keeps serving its set and says so; publishes and
activations are fleet-wide audit events; an unexpected notification is logged and ignored.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace

import falcon.testing
import pytest

from rolebook.api.app import build_services, create_app
from rolebook.api.cli import main
from rolebook.engine import load_snapshot
from rolebook.storage import Store
from rolebook.storage.policies import CHANNEL, FLEET, VersionChanged
from tests.support import postgres
from tests.support.client import User, in_process
from tests.support.markers import postgres_only
from tests.support.policies import REPO

FOLLOW_SECONDS = 1.5  # the feed's promise is 1 s (SQLite poll); PostgreSQL is faster


def versions_of(folder) -> list[dict]:
    return [{"name": p.name, "version": p.version, "digest": p.digest, "source": p.source}
            for p in load_snapshot(folder).all()]


def v2_folder(tmp_path):
    """A copy of the shipped policies plus convert@2 (editors may manage billing)."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "policies", folder)
    v1 = (folder / "convert/v1.yaml").read_text()
    billing = "effect: allow\n        min_role: owner\n\n  audit:"
    assert billing in v1
    (folder / "convert/v2.yaml").write_text(v1.replace("version: 1", "version: 2", 1).replace(
        billing, billing.replace("owner", "edit")))
    return folder


@pytest.fixture
def store(config):
    store = Store(config.effective_database_url)
    yield store
    store.close()


@pytest.fixture
def published(store):
    """The shipped policies, published as a first publish would."""
    return store.policies.publish(versions_of(REPO / "policies"), "ops")


@pytest.fixture
def replica(config, published):
    """An in-process app serving the published versions, following the database."""
    services = build_services(replace(config, policy_source="database"))
    yield services
    close(services)


def close(services) -> None:
    services.policies.close()
    services.mailer.stop()
    services.decisions.close()
    services.store.close()


def admin(services, scope="admin") -> User:
    client = falcon.testing.TestClient(create_app(services.config, services))
    return User(in_process(client), services.config, "ops", scope=scope)


def until(condition, seconds=FOLLOW_SECONDS) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the deadline"
        time.sleep(0.01)
    return time.monotonic() - started


def test_publishing_twice_changes_nothing_the_second_time(store, published):
    assert {(o["name"], o["version"], o["outcome"], o["activated"]) for o in published} == {
        ("anytrack", 1, "published", True), ("convert", 1, "published", True)}
    before = store.policies.state()
    again = store.policies.publish(versions_of(REPO / "policies"), "someone-else")
    assert {o["outcome"] for o in again} == {"unchanged"}
    assert store.policies.state() == before
    events = store.policies.fleet_events()
    assert [(e["action"], e["target"], e["actor"], e["account_id"]) for e in events] == [
        ("policy.published", "convert@1", "ops", FLEET),
        ("policy.published", "anytrack@1", "ops", FLEET)]
    assert events[0]["after"]["digest"] == published[1]["digest"]


def test_a_published_version_never_changes_and_a_refused_publish_stores_nothing(
        store, published, tmp_path):
    before = store.policies.state()
    folder = v2_folder(tmp_path)
    changed = (folder / "convert/v1.yaml").read_text().replace("read < edit", "read, edit")
    (folder / "convert/v1.yaml").write_text(changed)
    with pytest.raises(VersionChanged) as refused:
        store.policies.publish(versions_of(folder), "ops")  # a new v2 beside a changed v1
    assert "convert@1 is published with digest" in str(refused.value)
    assert store.policies.state() == before  # convert@2 was not stored either
    assert len(store.policies.fleet_events()) == 2


def test_a_broken_file_publishes_nothing_and_names_file_line_and_column(
        config, store, published, tmp_path, capsys):
    folder = v2_folder(tmp_path)
    broken = folder / "convert/v2.yaml"
    broken.write_text(broken.read_text().replace("  billing:\n", "  billing:\n    colour: red\n"))
    before = store.policies.state()
    code = main(["policy", "publish", str(folder), "--database-url",
                 config.effective_database_url, "--data-dir", str(tmp_path / "var")])
    out, err = capsys.readouterr()
    assert code == 1 and "nothing published" in err
    assert f"{broken}:" in out and "colour" in out
    line = next(x for x in out.splitlines() if x.startswith(f"{broken}:"))
    row, col = line[len(str(broken)) + 1:].split(":")[:2]
    assert int(row) > 1 and int(col) >= 1
    assert store.policies.state() == before


def test_a_failing_suite_publishes_nothing(config, store, published, tmp_path, capsys):
    folder = v2_folder(tmp_path)
    suite = folder / "convert/tests/table_test.yaml"
    suite.write_text(suite.read_text().replace("version: 1", "version: 2", 1))  # v2 differs
    before = store.policies.state()
    code = main(["policy", "publish", str(folder), "--database-url",
                 config.effective_database_url, "--data-dir", str(tmp_path / "var")])
    out, err = capsys.readouterr()
    assert code == 1 and "test case(s) failed: nothing published" in err
    assert "table_test.yaml" in out  # the failing case, where it is written
    assert store.policies.state() == before


def test_activation_over_http_needs_admin_and_a_published_version(replica):
    assert admin(replica, scope="check").post(
        "/v1/policies/convert/versions/1/activate").status == 403
    missing = admin(replica).post("/v1/policies/convert/versions/9/activate")
    assert missing.status == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "convert@9 is not published" in missing.json["detail"]
    assert admin(replica).post("/v1/policies/nope/versions/1/activate").status == 404
    same = admin(replica).post("/v1/policies/convert/versions/1/activate")
    assert same.status == 200 and same.json["outcome"] == "unchanged"
    assert len(replica.store.policies.fleet_events()) == 2  # no event for a no-op


def test_activation_on_a_folder_serving_replica_is_refused(services):
    refused = admin(services).post("/v1/policies/convert/versions/1/activate")
    assert refused.status == 409 and "policy folder" in refused.json["detail"]


def test_a_replica_follows_publish_and_rollback_by_itself(replica, store, tmp_path):
    """SQLite: the poll; PostgreSQL: the notification. Either within the feed's promise."""
    folder = v2_folder(tmp_path)
    v2 = store.policies.publish(versions_of(folder), "ops")
    digest = next(o["digest"] for o in v2 if o["version"] == 2)
    until(lambda: replica.policies.snapshot.get("convert").digest == digest)
    listed = admin(replica).get("/v1/policies").json
    assert listed["source"] == "database" and listed["load_errors"] == []
    assert {(p["version"], p["active"]) for p in listed["policies"]
            if p["name"] == "convert"} == {(1, False), (2, True)}

    # Rolled back through another replica's HTTP call: the answering one swaps before it
    # answers, this one follows through the feed.
    other = build_services(replica.config)
    try:
        rolled = admin(other).post("/v1/policies/convert/versions/1/activate")
        assert rolled.status == 200 and rolled.json["outcome"] == "activated"
        assert rolled.json["previous"] == {"version": 2, "digest": digest}
        assert other.policies.snapshot.get("convert").version == 1
    finally:
        close(other)
    until(lambda: replica.policies.snapshot.get("convert").version == 1)
    event = store.policies.fleet_events()[0]
    assert (event["action"], event["target"], event["before"]["digest"]) == (
        "policy.activated", "convert@1", digest)


def test_a_version_that_cannot_be_built_leaves_the_set_serving_and_says_so(replica, store):
    serving = replica.policies.snapshot
    text = (REPO / "policies/convert/v1.yaml").read_text().replace("version: 1", "version: 3")
    store.policies.publish([{"name": "convert", "version": 3, "source": text,
                             "digest": "sha256:" + "0" * 64}], "ops")  # a digest that lies
    until(lambda: replica.policies.last_error is not None)
    assert replica.policies.snapshot is serving
    listed = admin(replica).get("/v1/policies").json
    assert listed["snapshot_digest"] == serving.digest
    assert "not the published sha256:000" in listed["load_errors"][0]["message"]
    ready = admin(replica).get("/readyz").json
    assert "the previous policies still serve" in ready["warnings"][0]


@postgres_only  # notifications exist on PostgreSQL only
def test_an_unexpected_notification_is_logged_and_ignored(replica, store, caplog):
    until(replica.policies._feed.connected.is_set)
    serving = replica.policies.snapshot
    name = replica.config.effective_database_url.rsplit("/", 1)[1]
    with caplog.at_level(logging.WARNING, "rolebook.storage.policies"):
        conn = postgres.connect(name)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "not json"))
        conn.close()
        until(lambda: "unexpected notification" in caplog.text)
    assert replica.policies.snapshot is serving and replica.policies.last_error is None


@postgres_only  # notifications exist on PostgreSQL only
def test_a_dropped_listening_connection_reconnects_and_misses_nothing(
        replica, store, tmp_path, caplog):
    feed = replica.policies._feed
    until(feed.connected.is_set)
    name = replica.config.effective_database_url.rsplit("/", 1)[1]
    conn = postgres.connect(name)
    with caplog.at_level(logging.WARNING, "rolebook.storage.policies"):
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'rolebook policy feed' AND datname = %s",
                        (name,))
            assert cur.fetchone() == (True,)
        conn.close()
        # Published while the feed is down (it waits 0.1 s before reconnecting): the
        # notification is lost, and the reload after reconnecting catches up.
        v2 = store.policies.publish(versions_of(v2_folder(tmp_path)), "ops")
        digest = next(o["digest"] for o in v2 if o["version"] == 2)
        until(lambda: replica.policies.snapshot.get("convert").digest == digest, 3)
        assert "policy notifications lost" in caplog.text
    until(feed.connected.is_set)


def test_serve_refuses_a_database_with_nothing_published(tmp_path, capsys):
    code = main(["serve", "--policy-source", "database", "--data-dir", str(tmp_path / "var"),
                 "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "no policy version is published" in err
    assert "rolebook policy publish" in err


def test_an_unreachable_database_is_named_by_its_setting(tmp_path, capsys):
    code = main(["policy", "activate", "convert@1", "--data-dir", str(tmp_path),
                 "--database-url", "postgresql://postgres@127.0.0.1:1/nowhere"])
    err = capsys.readouterr().err
    assert code == 1 and "--database-url / ROLEBOOK_DATABASE_URL" in err


def test_only_a_new_highest_version_becomes_active(store, tmp_path):
    folder = v2_folder(tmp_path)
    first = store.policies.publish(versions_of(folder), "ops")  # v1 and v2 of convert at once
    assert {(o["name"], o["version"]): o["activated"] for o in first} == {
        ("anytrack", 1): True, ("convert", 1): False, ("convert", 2): True}
    store.policies.activate("convert", 1, "ops")  # a rollback holds until a newer version
    assert store.policies.publish(versions_of(folder), "ops")[2]["outcome"] == "unchanged"
    assert store.policies.state()["active"] == {"anytrack": 1, "convert": 1}
    v1 = (folder / "convert/v1.yaml").read_text()
    (folder / "convert/v3.yaml").write_text(v1.replace("version: 1", "version: 3", 1))
    third = store.policies.publish(versions_of(folder), "ops")
    assert [(o["version"], o["activated"]) for o in third if o["outcome"] == "published"] == [
        (3, True)]
    assert store.policies.state()["active"] == {"anytrack": 1, "convert": 3}
