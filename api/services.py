"""The service bag: everything a resource needs, passed in so tests never monkeypatch."""

from __future__ import annotations

from dataclasses import dataclass

from rolebook.api.auth import Verifier
from rolebook.api.config import Config
from rolebook.api.decision_log import DecisionLog
from rolebook.api.mail import OutboxSender
from rolebook.api.metrics import Metrics
from rolebook.api.policy_set import PolicySet
from rolebook.api.worker_board import WorkerBoard
from rolebook.storage import Store


@dataclass
class Services:
    config: Config
    policies: PolicySet
    store: Store
    decisions: DecisionLog
    metrics: Metrics
    mailer: OutboxSender | None = None
    verifier: Verifier | None = None  # this app's identity settings: /readyz reports stale keys
    board: WorkerBoard | None = None  # the replica's worker processes; None: this one alone
