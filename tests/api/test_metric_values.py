"""Batched multiprocess values: what a scrape adds up is what was counted, in prometheus_client's
own files, per process (a forked worker never writes its parent's file)."""

from __future__ import annotations

import os

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

from rolebook.api import metric_values
from tests.support.mail import wait_for


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(prometheus_values, "ValueClass", metric_values.BatchedValue)
    return tmp_path


def scraped(folder) -> dict[tuple, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}


def test_a_flush_writes_every_count_and_series_exist_from_their_creation(folder):
    registry = CollectorRegistry()
    hits = Counter("hits", "h", ["route"], registry=registry)
    took = Histogram("took", "t", buckets=(0.1, 1.0), registry=registry)
    hits.labels("/a")  # at 0 in the file before any increment, as prometheus_client's
    assert scraped(folder)[("hits_total", (("route", "/a"),))] == 0
    for _ in range(3):
        hits.labels("/a").inc()
    took.observe(0.5)
    metric_values.flush()
    seen = scraped(folder)
    assert seen[("hits_total", (("route", "/a"),))] == 3
    assert seen[("took_bucket", (("le", "0.1"),))] == 0
    assert seen[("took_bucket", (("le", "1.0"),))] == 1
    assert seen[("took_sum", ())] == 0.5


def test_the_writer_thread_writes_without_a_flush(folder):
    hits = Counter("ticks", "t", registry=CollectorRegistry())
    hits.inc(7)
    wait_for(lambda: scraped(folder).get(("ticks_total", ())) == 7, timeout=10,
             what="the writer thread's batch")


def test_a_gauge_is_written_when_set(folder):
    ready = Gauge("ready", "r", registry=CollectorRegistry(), multiprocess_mode="liveall")
    ready.set(4)
    assert [v for (name, _), v in scraped(folder).items() if name == "ready"] == [4]
    assert (folder / f"gauge_liveall_{os.getpid()}.db").exists()


def test_a_forked_child_counts_in_its_own_file(folder):
    calls = Counter("forked", "f", registry=CollectorRegistry())
    calls.inc(5)
    metric_values.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit status carries the result)
        try:
            calls.inc(2)
            metric_values.flush()
        finally:
            os._exit(0 if calls._value.get() == 2 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (folder / f"counter_{child}.db").exists()
    assert scraped(folder)[("forked_total", ())] == 7  # the parent's 5 and the child's 2
    calls.inc(1)
    metric_values.flush()
    assert scraped(folder)[("forked_total", ())] == 8
