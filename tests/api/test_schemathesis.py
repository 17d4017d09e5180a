"""schemathesis holds the in-process app to openapi.yaml: no 500, no undocumented answer.

Every check is on (status codes, content types, response schemas, headers,
positive and negative data). The stateful phase walks links between
operations. The app runs on a throw-away SQLite file with a token that has
every scope, so authorised paths are reached too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import schemathesis

from rolebook.api.app import build_services, create_app
from rolebook.api.auth import mint
from rolebook.api.config import Config
from tests.support.policies import REPO

DATA = Path(tempfile.mkdtemp(prefix="rolebook-schemathesis-"))
CONFIG = Config(data_dir=str(DATA), policy_dir=str(REPO / "policies"),
                jwt_secret="schemathesis-" + "s" * 32, decision_log="off",
                invitations_per_hour=100_000)
SERVICES = build_services(CONFIG)
TOKEN = mint(CONFIG, "fuzzer", "fuzzer@example.com", "check admin")

schema = schemathesis.openapi.from_path(REPO / "openapi.yaml")
schema.app = create_app(CONFIG, SERVICES)


@schema.auth()
class Bearer:
    """Registered with schemathesis, so its auth checks can also send a bad or no token."""

    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

# A fuzzer's account exists so that account-scoped routes are reached, not only 404s.
SERVICES.store.accounts.create("fuzzer", "fuzzer@example.com", name="fuzz", policy="convert",
                               owner_role=SERVICES.policies.snapshot.get("convert").membership.owner_role)


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_every_operation_keeps_the_contract(case):
    case.call_and_validate()


Workflow = schema.as_state_machine()
Workflow.TestCase.settings = hypothesis.settings(
    max_examples=15, stateful_step_count=6, deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck))
TestStateful = Workflow.TestCase
