"""The decision log's writer: a file renamed away by log rotation is reopened (nothing written
after the rotation is lost), and the queue is bounded in bytes: past the bound lines are
dropped and counted, never queued."""

from __future__ import annotations

import json

from rolebook.api.decision_log import DecisionLog, resource_entry

HEAD = {"decision_id": "d", "caller": "c", "account_id": None, "policy": "p@1",
        "digest": "sha256:x", "latency_ns": 1, "principal": {"id": "u", "role": "r"}}


def entry(action: str) -> list[dict]:
    view = {"effect": "allow", "rule": "p@1#r", "reason": "allowed by r"}
    return [resource_entry("object", "1", {"a": 1}, {action: view}, {action})]


def test_a_rotated_file_is_reopened(tmp_path):
    log = DecisionLog("file", tmp_path)
    log.record(HEAD, entry("before"))
    log.flush()
    log.path.rename(tmp_path / "decisions.log.1")  # logrotate's default (create) mode
    log.record(HEAD, entry("after"))
    log.close()
    rotated = [json.loads(x) for x in (tmp_path / "decisions.log.1").read_text().splitlines()]
    fresh = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert [list(x["resources"][0]["actions"]) for x in rotated] == [["before"]]
    assert [list(x["resources"][0]["actions"]) for x in fresh] == [["after"]]


def test_the_queue_is_bounded_in_bytes_and_drops_are_counted(tmp_path):
    drops = []
    log = DecisionLog("file", tmp_path, on_drop=lambda: drops.append(1), max_queued_bytes=100)
    for i in range(5):
        log.record(HEAD, entry(f"a{i}"))  # each line is several hundred bytes
    log.close()
    assert log.dropped == 5 and len(drops) == 5
    assert log.path.read_text() == ""


def test_undefined_actions_are_listed_once_not_repeated():
    view = {"effect": "deny", "rule": "p@1#default-deny", "reason": "no such action"}
    resource = resource_entry("object", "1", None, {"view": view, "fly": view, "swim": view},
                              {"view"})
    assert resource["actions"] == {"view": view}
    assert resource["undefined_actions"] == ["fly", "swim"] and resource["attr"] == {}
