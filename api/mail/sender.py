"""The outbox sender: one background thread per process delivers queued invitation mail.

Invitations queue their email in the outbox in the same transaction as the
change, so a crash can lose neither. This thread polls `outbox.due()` (which
claims each row it returns for this sender, under a lease, so several
processes, on one host or many, never send one row at the same time), renews
the claim right before each send (a batch can outlast its lease: a slow SMTP
server gets 30 s per command; a row another sender claimed meanwhile is left to
it), builds the RFC 5322 message, hands it to the transport and marks the row
sent, or failed with the next attempt after an exponential backoff (base,
2*base, 4*base... capped). `wake()` makes it look at once, which the invitation
routes call right after their commit so delivery is prompt.

Delivery is at least once: if the process dies, or the database cannot record a
successful send, between the send and its record, the row's lease runs out and
it is sent again.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from pony.orm.dbapiprovider import DBException

from rolebook.api.mail.compose import rfc5322
from rolebook.api.mail.transports import PermanentFailure, from_url
from rolebook.storage.outbox import new_claimer

log = logging.getLogger("rolebook.mail")


class OutboxSender:
    def __init__(self, outbox, transport, mail_from: str, *, retry_base_seconds: float = 1.0,
                 retry_cap_seconds: float = 300.0, max_attempts: int = 20,
                 poll_seconds: float = 2.0, batch: int = 10, lease_seconds: int = 120,
                 on_outcome=None):
        self.outbox, self.transport, self.mail_from = outbox, transport, mail_from
        # on_outcome("sent" | "retried" | "failed") after each attempt is recorded (metrics)
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.retry_base, self.retry_cap = retry_base_seconds, retry_cap_seconds
        self.max_attempts, self.poll_seconds = max_attempts, poll_seconds
        self.batch, self.lease_seconds = batch, lease_seconds
        self.claimer = new_claimer()  # made in the worker process: its own pid
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> OutboxSender:
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="rolebook-mail",
                                                daemon=True)
                self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in hand, then stop; idempotent."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                handled = self.deliver_due()
            except DBException as exc:  # an outage, not a bug: one line, no traceback
                log.error("mail: could not read the outbox (%s); retrying in %ss",
                          str(exc).strip(), self.poll_seconds)
                handled = 0
            except Exception:
                log.exception("mail: could not read the outbox; retrying in %ss",
                              self.poll_seconds)
                handled = 0
            if handled >= self.batch:
                continue  # more may be waiting
            self._wake.wait(self.poll_seconds)
        try:
            self.outbox.db.disconnect()  # this thread's pooled connection
        except Exception:
            log.debug("mail: disconnect failed", exc_info=True)

    # ---- one round -------------------------------------------------------------------

    def delay(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: base * 2^(attempts-1), capped."""
        return min(self.retry_cap, self.retry_base * 2 ** max(0, attempts - 1))

    def deliver_due(self) -> int:
        """Send every row that is due now (one leased batch); returns how many were handled."""
        rows = self.outbox.due(limit=self.batch, lease_seconds=self.lease_seconds,
                               claimer=self.claimer)
        for row in rows:
            if self._stopping.is_set():
                break  # its lease runs out and a later run sends it
            if not self.outbox.renew(row["id"], self.claimer, self.lease_seconds):
                log.info("mail %s: claimed by another sender or settled meanwhile; not sent "
                         "here", row["id"])
                continue
            self._deliver(row)
        return len(rows)

    def _deliver(self, row: dict) -> None:
        try:
            self.transport.send(rfc5322(row, self.mail_from))
        except PermanentFailure as exc:
            log.warning("mail %s refused for good (%s)", row["id"], type(exc).__name__)
            log.debug("mail %s to %s: %s", row["id"], row["to"], exc)
            self._record(self.outbox.mark_failed, row["id"], _describe(exc), None,
                         self.claimer)
            self.on_outcome("failed")
            return
        except Exception as exc:
            attempts = row["attempts"] + 1
            if attempts >= self.max_attempts:
                log.warning("mail %s failed %d times, giving up (%s)", row["id"], attempts,
                            type(exc).__name__)
                log.debug("mail %s to %s: %s", row["id"], row["to"], exc)
                self._record(self.outbox.mark_failed, row["id"], _describe(exc), None,
                             self.claimer)
                self.on_outcome("failed")
                return
            wait = self.delay(attempts)
            log.info("mail %s failed (attempt %d, %s), retrying in %.1fs", row["id"],
                     attempts, type(exc).__name__, wait)
            log.debug("mail %s to %s: %s", row["id"], row["to"], exc)
            self._record(self.outbox.mark_failed, row["id"], _describe(exc),
                         self.outbox.now() + timedelta(seconds=wait), self.claimer)
            self.on_outcome("retried")
            return
        self._record(self.outbox.mark_sent, row["id"])
        self.on_outcome("sent")
        log.info("mail %s sent via %r", row["id"], self.transport)
        log.debug("mail %s was to %s", row["id"], row["to"])

    def _record(self, mark, *args, tries: int = 3) -> None:
        """Record an outcome; a lost race is retried, since a row left leased is sent again."""
        for attempt in range(1, tries + 1):
            try:
                mark(*args)
                return
            except Exception:
                if attempt == tries:
                    raise
                log.warning("mail: recording the outcome of %s failed (try %d); retrying",
                            args[0], attempt, exc_info=True)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def mailer_for(config, store, on_outcome=None) -> OutboxSender:
    """The sender a Config asks for; test knobs live in config.extra."""
    extra = getattr(config, "extra", None) or {}
    return OutboxSender(
        store.outbox, from_url(config.effective_mail_url), config.mail_from,
        on_outcome=on_outcome,
        retry_base_seconds=float(extra.get("mail_retry_base_seconds", 1.0)),
        retry_cap_seconds=float(extra.get("mail_retry_cap_seconds", 300.0)),
        max_attempts=int(extra.get("mail_max_attempts", 20)),
        poll_seconds=float(extra.get("mail_poll_seconds", 2.0)),
    )
