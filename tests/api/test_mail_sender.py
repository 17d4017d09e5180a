"""The outbox sender: backoff, exclusive delivery across processes, and a clean stop.

Contract protected: a failed delivery is retried after base, 2*base, 4*base...
(capped), measured on storage's clock, and the invitation shows the attempts
and the error meanwhile; two senders on two connections to one database
(as two server processes would be) never deliver the same outbox row twice
and together deliver every row, on SQLite and PostgreSQL, even when a batch
outlasts its lease and the other sender claims the rest meanwhile; a database error
does not kill the sender thread; `stop()` ends the thread and is idempotent.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from pony.orm import db_session
from prometheus_client.parser import text_string_to_metric_families

from rolebook.api.mail.sender import OutboxSender
from rolebook.api.metrics import Metrics, OutboxBacklog
from rolebook.storage import InvitationRules, Store
from rolebook.storage.base import iso
from rolebook.storage.invitations import hash_token
from tests.support.clock import START, Clock
from tests.support.mail import wait_for
from tests.support.markers import postgres_only, sqlite_only
from tests.support.membership import SetupDecision


class Recorder:
    """A transport that keeps what it was given; fails while `failures` > 0."""

    def __init__(self, failures: int = 0):
        self.sent, self.failures, self.lock = [], failures, threading.Lock()

    def send(self, message) -> None:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionRefusedError("no server")
            self.sent.append(message)


def queue_invitations(store: Store, count: int) -> tuple[str, list[str]]:
    account = store.accounts.create("owner", "owner@example.com", name="Acme", policy="convert",
                                    owner_role="owner", single_email_scope=False)
    ids = []
    for i in range(count):
        inv, _ = store.invitations.create(account["id"], "owner", email=f"p{i}@example.com",
                                          role="read", decide=lambda *a: SetupDecision(),
                                          make_message=lambda inv,
                                          tok: (inv["email"], "hi", tok, None),
                                          rules=InvitationRules(3600))
        ids.append(inv["id"])
    return account["id"], ids


def test_backoff_doubles_from_the_base_and_is_capped():
    sender = OutboxSender(None, None, "x@y", retry_base_seconds=1.0, retry_cap_seconds=300)
    assert [sender.delay(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_failed_delivery_is_retried_on_schedule(database_url):
    clock = Clock(START)
    store = Store(database_url, clock=clock)
    try:
        account, [inv_id] = queue_invitations(store, 1)
        transport = Recorder(failures=2)
        sender = OutboxSender(store.outbox, transport, "rb@x.example", retry_base_seconds=10)

        assert sender.deliver_due() == 1  # attempt 1 fails: next in 10 s
        inv = store.invitations.get(account, inv_id)
        assert (inv["delivery_status"], inv["delivery_attempts"]) == ("queued", 1)
        assert "no server" in inv["last_error"]
        assert sender.deliver_due() == 0  # not due yet

        clock.advance(seconds=9)
        assert sender.deliver_due() == 0
        clock.advance(seconds=1)
        assert sender.deliver_due() == 1  # attempt 2 fails: next in 20 s
        [row] = store.outbox.due(now=clock.now + timedelta(seconds=20), limit=10)
        assert row["next_attempt_at"] == iso(clock.now + timedelta(seconds=20))
        assert row["attempts"] == 2

        clock.advance(seconds=200)  # past that lease too
        assert sender.deliver_due() == 1  # attempt 3 succeeds
        inv = store.invitations.get(account, inv_id)
        assert (inv["delivery_status"], inv["delivery_attempts"]) == ("sent", 3)
        assert len(transport.sent) == 1
        assert sender.deliver_due() == 0
    finally:
        store.close()


def test_two_processes_never_send_one_row_twice(database_url):
    stores = [Store(database_url), Store(database_url)]  # two connections, like two workers
    transports = [Recorder(), Recorder()]
    senders = [OutboxSender(s.outbox, t, "rb@x.example", poll_seconds=0.01, batch=3)
               for s, t in zip(stores, transports, strict=True)]
    try:
        account, _ = queue_invitations(stores[0], 40)
        for sender in senders:
            sender.start()

        def all_sent():
            items, _ = stores[0].invitations.list(account, 100)
            return all(i["delivery_status"] == "sent" for i in items)
        wait_for(all_sent, timeout=60, what="every invitation email sent")
    finally:
        for sender in senders:
            sender.stop()
        for store in stores:
            store.close()
    delivered = [m["To"] for t in transports for m in t.sent]
    assert sorted(delivered) == sorted(f"p{i}@example.com" for i in range(40))
    message_ids = [m["Message-ID"] for t in transports for m in t.sent]
    assert len(set(message_ids)) == 40


class Slow(Recorder):
    """A transport whose every send takes `seconds` of storage's clock; during its second,
    `other` (another replica's sender) delivers what is due."""

    def __init__(self, clock, seconds: int):
        super().__init__()
        self.clock, self.seconds, self.other = clock, seconds, None

    def send(self, message) -> None:
        self.clock.advance(seconds=self.seconds)
        super().send(message)
        if len(self.sent) == 2:
            self.other.deliver_due()


def test_a_batch_that_outlasts_its_lease_sends_nothing_twice(database_url):
    """Sender A claims three rows under a 60 s lease; each send takes 40 s, so while A sends
    the second (renewed before it), the third's lease has run out and sender B claims and
    delivers it. A asks before its third send and leaves that row to B."""
    clock = Clock(START)
    stores = [Store(database_url, clock=clock), Store(database_url, clock=clock)]
    try:
        account, ids = queue_invitations(stores[0], 3)
        slow, other = Slow(clock, 40), Recorder()
        a, b = (OutboxSender(s.outbox, t, "rb@x.example", batch=3, lease_seconds=60)
                for s, t in zip(stores, (slow, other), strict=True))
        slow.other = b
        assert a.deliver_due() == 3
        assert [m["To"] for m in slow.sent] == ["p0@example.com", "p1@example.com"]
        assert [m["To"] for m in other.sent] == ["p2@example.com"]
        for inv_id in ids:
            inv = stores[0].invitations.get(account, inv_id)
            assert (inv["delivery_status"], inv["delivery_attempts"]) == ("sent", 1)
        claims = [stores[0].outbox.get(n)["claimed_by"] for n in (1, 2, 3)]
        assert claims == [a.claimer, a.claimer, b.claimer]
        clock.advance(seconds=600)
        assert a.deliver_due() == b.deliver_due() == 0
    finally:
        for store in stores:
            store.close()


def test_a_late_outcome_of_a_lost_claim_does_not_undo_the_new_claimants(database_url):
    clock = Clock(START)
    store = Store(database_url, clock=clock)
    try:
        account, [inv_id] = queue_invitations(store, 1)
        [first] = store.outbox.due(lease_seconds=60, claimer="host-a:1:aa")
        clock.advance(seconds=61)
        [second] = store.outbox.due(lease_seconds=60, claimer="host-b:2:bb")
        assert first["id"] == second["id"]
        assert not store.outbox.renew(first["id"], "host-a:1:aa")
        store.outbox.mark_failed(first["id"], "timed out", None, "host-a:1:aa")
        assert store.outbox.get(first["id"])["status"] == "pending"  # still B's to send
        assert store.outbox.renew(first["id"], "host-b:2:bb")
        store.outbox.mark_sent(first["id"])
        store.outbox.mark_sent(first["id"])  # a late record of the same delivery
        assert not store.outbox.renew(first["id"], "host-b:2:bb")  # sent: nobody sends again
        inv = store.invitations.get(account, inv_id)
        assert (inv["delivery_status"], inv["delivery_attempts"]) == ("sent", 1)
    finally:
        store.close()


class FlakyOutbox:
    """Raises on the first `due`, then hands out one row once."""

    def __init__(self):
        self.calls, self.sent, self.db = 0, [], None

    def due(self, limit, lease_seconds, claimer):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database unavailable")
        if self.calls == 2:
            return [{"id": 1, "to": "a@b.example", "subject": "s", "text": "t", "html": None,
                     "invitation_id": None, "attempts": 0}]
        return []

    def renew(self, message_id, claimer, lease_seconds):
        return True

    def mark_sent(self, message_id):
        self.sent.append(message_id)


def test_the_thread_survives_a_database_error_and_stops_cleanly():
    outbox, transport = FlakyOutbox(), Recorder()
    sender = OutboxSender(outbox, transport, "rb@x.example", poll_seconds=0.01).start()
    try:
        wait_for(lambda: outbox.sent == [1], what="delivery after a failed poll")
        assert sender.running
    finally:
        sender.stop()
    assert not sender.running
    sender.stop()  # idempotent
    sender.wake()  # harmless after stop
    assert sender.start() is sender and not sender.running  # a stopped sender stays stopped
    assert len(transport.sent) == 1


class RacyOutbox(FlakyOutbox):
    """Hands out one row; recording it as sent loses a race once."""

    def __init__(self):
        super().__init__()
        self.calls, self.marks = 1, 0

    def mark_sent(self, message_id):
        self.marks += 1
        if self.marks == 1:
            raise RuntimeError("a concurrent change conflicted with this one; retry")
        super().mark_sent(message_id)


def test_a_lost_race_while_recording_the_outcome_is_retried():
    outbox, transport = RacyOutbox(), Recorder()
    sender = OutboxSender(outbox, transport, "rb@x.example")
    assert sender.deliver_due() == 1
    assert (outbox.marks, outbox.sent, len(transport.sent)) == (2, [1], 1)


@sqlite_only
def test_stop_leaves_unsent_mail_for_later(database_url):
    store = Store(database_url)
    try:
        account, [inv_id] = queue_invitations(store, 1)
        transport = Recorder()
        sender = OutboxSender(store.outbox, transport, "rb@x.example")
        sender.stop()
        assert sender.deliver_due() == 1 and transport.sent == []  # stopping: not sent
        assert store.invitations.get(account, inv_id)["delivery_status"] == "queued"
    finally:
        store.close()


@postgres_only
def test_mail_marked_sent_mid_accept_does_not_fail_the_accept(database_url):
    """The sender records a delivery while an accept is between its reads and its commit.

    Only PostgreSQL lets these interleave (SQLite serialises writers). While the
    delivery columns took part in Pony's optimistic checks, the accept failed with 409.
    """
    clock = Clock()
    store = Store(database_url, clock=clock)
    try:
        account, [inv_id] = queue_invitations(store, 1)
        [row] = store.outbox.due()
        token = "t0ken"
        with db_session:  # give the invitation a token this test knows
            store.db.Invitation[inv_id].token_hash = hash_token(token)
        marked = []

        def mark_from_another_connection():
            thread = threading.Thread(target=lambda: marked.append(
                store.outbox.mark_sent(row["id"]) or True))
            thread.start()
            thread.join(timeout=20)

        clock.call_once_inside("_audit", mark_from_another_connection)
        result = store.invitations.accept(token, "p0", "p0@example.com")
        assert marked == [True], "the sender ran inside the accept"
        assert result["invitation"]["status"] == "accepted"
        after = store.invitations.get(account, inv_id)
        assert (after["status"], after["delivery_status"]) == ("accepted", "sent")
    finally:
        store.close()


def test_metrics_report_the_backlog_from_the_database_and_each_outcome(database_url):
    clock = Clock(START)
    store = Store(database_url, clock=clock)
    metrics = Metrics()
    metrics.scraped.append(OutboxBacklog(store.outbox))

    def scraped() -> dict:
        return {(s.name, tuple(s.labels.values())): s.value
                for f in text_string_to_metric_families(metrics.render().decode())
                for s in f.samples}
    try:
        queue_invitations(store, 2)
        clock.advance(seconds=90)
        before = scraped()
        assert before[("rolebook_outbox_queued", ())] == 2
        assert before[("rolebook_outbox_oldest_pending_age_seconds", ())] == 90
        sender = OutboxSender(store.outbox, Recorder(failures=1), "rb@x.example",
                              retry_base_seconds=10,
                              on_outcome=lambda o: metrics.mail.labels(o).inc())
        assert sender.deliver_due() == 2  # the first fails (retried in 10 s), the second is sent
        after = scraped()
        assert after[("rolebook_outbox_queued", ())] == 1
        assert after[("rolebook_outbox_deliveries_total", ("retried",))] == 1
        assert after[("rolebook_outbox_deliveries_total", ("sent",))] == 1
        assert after[("rolebook_outbox_deliveries_total", ("failed",))] == 0

        class Unreachable:
            def backlog(self):
                raise ConnectionRefusedError("the database is down")
        metrics.scraped[-1] = OutboxBacklog(Unreachable())
        # the scrape still answers, without the backlog
        assert ("rolebook_outbox_queued", ()) not in scraped()
        assert ("rolebook_outbox_deliveries_total", ("sent",)) in scraped()
    finally:
        store.close()
