"""The policy rules hold over real HTTP, not only in process.

Members part — contract: against `rolebook serve --workers 2` on a real socket,
on SQLite and PostgreSQL, every member rule of both products' tables and every
self-service rule (the same table as tests/api/test_members_rules.py) gives the
same status, rule id, resulting members and audit event as in process.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.support.member_rules")

from tests.support.markers import BACKENDS  # noqa: E402
from tests.support.member_rules import CASES, check  # noqa: E402
from tests.support.served import served  # noqa: E402


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory):
    with served(tmp_path_factory.mktemp(f"rules-{request.param}"), request.param) as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_member_rule_over_http(case, live):
    _, store, make_user = live
    # One database serves every case here: give each its own user ids.
    check(make_user, store, case, ns=case.id.replace(":", ".") + ".")
