"""`rolebook.client` against a real `rolebook serve` (waitress, real sockets, Maildir mail).

Contract protected: the client's single and batch checks give exactly the decisions the
server's raw `/v1/check` answer holds; the member and invitation calls complete the whole
flow (invite, the token from the Maildir, accept, list page by page, change a role, remove);
checks fail closed (deny, with the reason) when rolebook is stopped, unreachable or
refusing, and raise instead with `fail_closed=False`; every problem+json answer raises
`RolebookError` with its fields; a request that never left is retried, a write whose
answer was lost is not; the Falcon guard lets a route run only when rolebook allows it.
The typed answers match openapi.yaml's schemas, and the README's example runs.
"""

from __future__ import annotations

import re
import typing

import falcon
import falcon.testing
import httpx
import pytest
import yaml

from rolebook.api.auth import mint
from rolebook.api.config import Config
from rolebook.client import (
    AcceptResult,
    Account,
    Client,
    Invitation,
    Member,
    Permissions,
    Resource,
    RolebookError,
    falcon_guard,
)
from tests.support import live
from tests.support.client import over_http
from tests.support.mail import token_of, wait_for_mail
from tests.support.policies import REPO

SECRET = "e2e-client-" + "c" * 32
FLAGS = ("--workers", "1", "--jwt-secret", SECRET, "--decision-log", "off")


def token(sub: str, scope: str = "", email: str | None = None) -> str:
    return mint(Config(jwt_secret=SECRET), sub, email or f"{sub}@example.com", scope)


def connect(url: str, sub: str, scope: str = "", **options) -> Client:
    return Client(url, token(sub, scope), **options)


def stopped_cleanly(server: live.LiveServer) -> None:
    code = server.stop()
    assert "Traceback" not in server.output(), server.output()[-4000:]
    assert code == 0, server.output()[-4000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = live.start(tmp_path_factory.mktemp("client") / "var", *FLAGS)
    yield srv
    stopped_cleanly(srv)


def join(server, owner: Client, account_id: str, sub: str, role: str) -> Client:
    """`sub` invited by `owner` with `role`, accepting with the token from the Maildir."""
    email = f"{sub}@example.com"
    owner.create_invitation(account_id, email, role, first_name=sub.title())
    [message] = wait_for_mail(server.data_dir / "mail", email, timeout=30)
    member = connect(server.url, sub)
    assert member.accept_invitation(token_of(message))["member"]["role"] == role
    return member


@pytest.fixture(scope="module")
def team(server):
    """An account of alice (owner), bob (edit) and carol (read)."""
    with connect(server.url, "alice") as alice:
        account = alice.create_account("Team")["id"]
        for sub, role in (("bob", "edit"), ("carol", "read")):
            join(server, alice, account, sub, role).close()
    return account


@pytest.fixture
def service(server):
    with connect(server.url, "shop-backend", "check") as client:
        yield client


def raw_check(server, body: dict) -> dict:
    answer = over_http(server.url)("POST", "/v1/check", body,
                                   {"Authorization": f"Bearer {token('shop-backend', 'check')}"})
    assert answer.status == 200, answer.json
    return answer.json


def as_tuples(result) -> list[dict]:
    return [{a: (d.effect, d.rule, d.reason) for a, d in r.actions.items()}
            for r in result.results]


def test_batch_and_single_checks_give_the_servers_raw_answer(server, team, service):
    resources = [Resource("member", "alice", ["update_role", "remove"], {"new_role": "read"}),
                 Resource("member", "carol", ["update_role", "remove"], {"new_role": "edit"}),
                 Resource("object", "42", ["view", "update", "delete"]),
                 Resource("billing", None, ["view"])]
    body = {"principal": {"id": "bob"}, "account_id": team,
            "resources": [r.body() for r in resources]}
    raw = raw_check(server, body)

    result = service.check_batch("bob", resources, account_id=team)
    assert result.error is None and result.role == "edit"
    assert (result.policy, result.version, result.digest) == (
        raw["policy"], raw["version"], raw["digest"])
    assert as_tuples(result) == [
        {a: (d["effect"], d["rule"], d["reason"]) for a, d in r["actions"].items()}
        for r in raw["results"]]
    effects = {d.effect for r in result.results for d in r.actions.values()}
    assert effects == {"allow", "deny"}, "the comparison covers both answers"
    assert result[1]["remove"].allowed and not result[0]["remove"].allowed
    assert not result.allowed and result[1].allowed

    for r, expected in zip(resources, raw["results"], strict=True):
        for action in r.actions:
            single = service.check("bob", r.kind, r.id, action, account_id=team, attr=r.attr)
            want = expected["actions"][action]
            assert (single.effect, single.rule, single.reason) == (
                want["effect"], want["rule"], want["reason"])
            assert single.decision_id and single.error is None

    explained = service.check_batch("bob", resources[:1], account_id=team, explain=True)
    assert all(isinstance(d.trace, list) and d.trace for d in explained[0].actions.values())


def test_a_user_token_checks_itself_with_its_looked_up_role(server, team):
    with connect(server.url, "carol") as carol:
        assert carol.check("carol", "object", "42", "view", account_id=team).allowed
        update = carol.check("carol", "object", "42", "update", account_id=team)
        assert not update.allowed and update.rule and update.error is None


def test_member_and_invitation_flow(server):
    mail = server.data_dir / "mail"
    with connect(server.url, "alice") as alice:
        account = alice.create_account("Flow")
        acc = account["id"]
        assert (account["role"], alice.get_account(acc)["name"]) == ("owner", "Flow")
        assert acc in [a["id"] for a in alice.iter_accounts(page_size=1)]

        invited = alice.create_invitation(acc, "dave@example.com", "edit", first_name="Dave")
        assert (invited["status"], invited["role"]) == ("pending", "edit")
        assert alice.get_invitation(acc, invited["id"])["email"] == "dave@example.com"
        assert [i["id"] for i in alice.list_invitations(acc, status="pending").items] == [
            invited["id"]]
        first = token_of(wait_for_mail(mail, "dave@example.com", timeout=30)[0])
        alice.resend_invitation(acc, invited["id"])
        tokens = {token_of(m) for m in wait_for_mail(mail, "dave@example.com", 2, timeout=30)}
        [fresh] = tokens - {first}

        with connect(server.url, "dave") as dave:
            with pytest.raises(RolebookError) as replaced:
                dave.accept_invitation(first)
            assert replaced.value.status == 404
            accepted = dave.accept_invitation(fresh)
            assert (accepted["account_id"], accepted["member"]["role"],
                    accepted["member"]["first_name"]) == (acc, "edit", "Dave")

            page = alice.list_members(acc, limit=1)
            assert len(page.items) == 1 and page.next_cursor
            assert [m["user_id"] for m in alice.iter_members(acc, page_size=1)] == [
                "alice", "dave"]
            assert [m["user_id"] for m in alice.iter_members(acc, role="edit")] == ["dave"]

            assert alice.update_role(acc, "dave", "read")["role"] == "read"
            assert alice.get_member(acc, "dave")["role"] == "read"
            allowed = dave.permissions(acc)
            assert (allowed["role"], allowed["permissions"]["object"]["view"],
                    allowed["permissions"]["object"]["update"]) == ("read", "allow", "deny")

        other = alice.create_invitation(acc, "erin@example.com", "read")
        assert alice.revoke_invitation(acc, other["id"])["status"] == "revoked"
        assert [i["id"] for i in alice.iter_invitations(acc, status="revoked")] == [other["id"]]

        assert alice.remove_member(acc, "dave") is None
        with pytest.raises(RolebookError) as gone:
            alice.get_member(acc, "dave")
        assert gone.value.status == 404
        assert alice.delete_account(acc) is None
        with pytest.raises(RolebookError) as deleted:
            alice.get_account(acc)
        assert deleted.value.status == 404


def test_problem_answers_raise_one_error_type_with_their_fields(server, team):
    with connect(server.url, "carol") as carol, connect(server.url, "alice") as alice:
        with pytest.raises(RolebookError) as denied:
            carol.create_invitation(team, "frank@example.com", "read")
        error = denied.value
        assert (error.status, error.title) == (403, "Forbidden by policy")
        assert error.type.endswith("/forbidden") and error.rule.startswith("convert@1#")
        assert error.detail and error.detail in str(error)

        with pytest.raises(RolebookError) as last_owner:
            alice.remove_member(team, "alice")
        assert last_owner.value.status == 409
        assert last_owner.value.rule == "convert@1#only-owner-stays"

        with pytest.raises(RolebookError) as bad:
            alice.create_invitation(team, "not an address", "read")
        assert bad.value.status == 400
        assert "email" in [e.get("field") for e in bad.value.errors]

        with pytest.raises(RolebookError) as missing:
            alice.get_account("acc_nobody")
        assert (missing.value.status, missing.value.problem["status"]) == (404, 404)

    with Client(server.url, "not-a-token") as stranger:
        with pytest.raises(RolebookError) as unauthorized:
            stranger.list_accounts()
        assert unauthorized.value.status == 401
        # A check that is refused is a deny too (fail closed), with the server's reason.
        refused = stranger.check("bob", "object", "42", "view", account_id=team)
        assert not refused.allowed and refused.error.status == 401
        assert refused.reason.startswith("rolebook answered 401")
    with Client(server.url, "not-a-token", fail_closed=False) as strict:
        with pytest.raises(RolebookError) as raised:
            strict.check("bob", "object", "42", "view", account_id=team)
        assert raised.value.status == 401


def test_checks_fail_closed_when_rolebook_stops(tmp_path):
    srv = live.start(tmp_path / "var", *FLAGS)
    options = {"retries": 1, "backoff": 0.0}
    client = connect(srv.url, "shop-backend", "check", **options)
    strict = connect(srv.url, "shop-backend", "check", fail_closed=False, **options)
    ask = {"role": "edit", "policy": "convert"}
    try:
        # Both hold a keep-alive connection to the running server first.
        assert client.check("bob", "object", "42", "update", **ask).allowed
        assert strict.check("bob", "object", "42", "update", **ask).allowed
        stopped_cleanly(srv)

        denied = client.check("bob", "object", "42", "update", **ask)
        assert (denied.effect, denied.rule) == ("deny", None)
        assert denied.reason.startswith("rolebook unreachable: ")
        assert denied.error.status is None
        batch = client.check_batch("bob", [Resource("object", "42", ["view", "update"]),
                                           Resource("report", None, ["view"])], **ask)
        assert batch.error is not None and batch.policy is None
        assert [sorted(r.actions) for r in batch.results] == [["update", "view"], ["view"]]
        assert {d.reason for r in batch.results for d in r.actions.values()} == {
            str(batch.error)}
        assert not any(d.allowed for r in batch.results for d in r.actions.values())

        with pytest.raises(RolebookError) as raised:
            strict.check("bob", "object", "42", "update", **ask)
        assert raised.value.status is None and "unreachable" in str(raised.value)
        with pytest.raises(RolebookError) as management:
            client.list_accounts()
        assert management.value.status is None
    finally:
        client.close()
        strict.close()
        srv.stop()


class Counting(httpx.HTTPTransport):
    """A real transport that counts what it was asked to send."""

    def __init__(self):
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def test_a_refused_connection_is_retried_even_for_a_write(tmp_path):
    port, servers = live.free_port(), []

    class StartOnRefusal(Counting):
        """The first refusal starts rolebook on the port: the retry then reaches it."""

        def handle_request(self, request):
            try:
                return super().handle_request(request)
            except httpx.ConnectError:
                if not servers:
                    servers.append(live.start(tmp_path / "var", *FLAGS, port=port))
                raise

    transport = StartOnRefusal()
    try:
        with connect(f"http://127.0.0.1:{port}", "alice", retries=1, backoff=0.0,
                     transport=transport) as alice:
            # Nobody listened the first time, so the request never left: safe to send again.
            created = alice.create_account("Late")
            assert transport.sent == ["POST /v1/accounts"] * 2 and len(servers) == 1
            assert [a["id"] for a in alice.iter_accounts()] == [created["id"]]
    finally:
        for srv in servers:
            stopped_cleanly(srv)


def test_retries_are_bounded_on_a_port_nobody_listens_on():
    transport = Counting()
    url = f"http://127.0.0.1:{live.free_port()}"
    with connect(url, "alice", retries=2, backoff=0.0, transport=transport) as alice:
        with pytest.raises(RolebookError) as refused:
            alice.create_account("Nowhere")
        assert refused.value.status is None
        assert not alice.check("alice", "report", None, "view", role="read").allowed
    assert transport.sent == ["POST /v1/accounts"] * 3 + ["POST /v1/check"] * 3


class LosingAnswers(Counting):
    """Delivers each of the first `lose` requests to the server, then drops its answer."""

    def __init__(self, lose: int):
        super().__init__()
        self.lose = lose

    def handle_request(self, request):
        response = super().handle_request(request)
        if self.lose:
            self.lose -= 1
            response.read()  # the server has answered, so it has acted
            response.close()
            raise httpx.ReadError("connection dropped before the answer arrived",
                                  request=request)
        return response


def test_a_lost_answer_is_retried_for_reads_but_never_for_writes(server):
    lossy = LosingAnswers(lose=1)
    with connect(server.url, "grace", retries=2, backoff=0.0, transport=lossy) as grace:
        with pytest.raises(RolebookError) as lost:
            grace.create_account("Once")
        assert lost.value.status is None and lossy.sent == ["POST /v1/accounts"]
        # The server did create it; the client did not create a second one.
        [once] = grace.iter_accounts()
        assert once["name"] == "Once"

        lossy.lose, lossy.sent = 1, []
        assert grace.list_accounts().items[0]["name"] == "Once"
        lossy.lose = 1
        assert grace.check("grace", "account", once["id"], "view",
                           account_id=once["id"]).allowed
        assert lossy.sent == ["GET /v1/accounts"] * 2 + ["POST /v1/check"] * 2


def guarded_app(client: Client) -> falcon.testing.TestClient:
    """A service's route that only runs for users rolebook lets update the object."""
    guard = falcon_guard(client, "object", "update",
                         principal_from=lambda req: req.get_header("X-User", required=True),
                         account_from="account_id", id_from="object_id")

    class Objects:
        @falcon.before(guard)
        def on_put(self, req, resp, account_id, object_id):
            resp.media = {"updated": object_id, "rule": req.context.rolebook.rule}

    app = falcon.App()
    app.add_route("/accounts/{account_id}/objects/{object_id}", Objects())
    return falcon.testing.TestClient(app)


def test_the_falcon_guard_lets_a_route_run_only_when_rolebook_allows(server, team, service):
    app = guarded_app(service)
    path = f"/accounts/{team}/objects/42"
    raw = raw_check(server, {"principal": {"id": "carol"}, "account_id": team,
                             "resources": [{"kind": "object", "id": "42",
                                            "actions": ["update"]}]})
    allowed = app.simulate_put(path, headers={"X-User": "bob"})
    assert allowed.status_code == 200 and allowed.json["updated"] == "42"
    assert allowed.json["rule"].startswith("convert@1#")
    denied = app.simulate_put(path, headers={"X-User": "carol"})
    assert denied.status_code == 403
    assert denied.json["description"] == raw["results"][0]["actions"]["update"]["reason"]
    stranger = app.simulate_put(path, headers={"X-User": "mallory"})
    assert stranger.status_code == 403 and "not a member" in stranger.json["description"]

    with connect(f"http://127.0.0.1:{live.free_port()}", "shop-backend", "check",
                 retries=0) as unreachable:
        down = guarded_app(unreachable).simulate_put(path, headers={"X-User": "bob"})
    assert down.status_code == 403
    assert down.json["description"].startswith("rolebook unreachable: ")


def readme_example() -> str:
    section = re.search(r"^## Call it from a service\n(.*?)^## ",
                        (REPO / "README.md").read_text(), re.M | re.S)
    assert section, "README has a 'Call it from a service' section"
    [code] = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    return code


class UserFromHeader:
    """Stands in for a service's own authentication: the user is in X-User."""

    def process_request(self, req, resp):
        req.context.user_id = req.get_header("X-User", required=True)


def test_the_readme_example_runs(server, team):
    code = readme_example()
    assert "http://127.0.0.1:8080" in code
    namespace = {"SERVICE_TOKEN": token("shop-backend", "check"), "ACCOUNT_ID": team}
    exec(compile(code.replace("http://127.0.0.1:8080", server.url), "README.md", "exec"),
         namespace)
    try:
        raw = raw_check(server, {"principal": {"id": "bob"}, "account_id": team,
                                 "resources": [{"kind": "object", "id": "42",
                                                "actions": ["update"]}]})
        want = raw["results"][0]["actions"]["update"]
        assert (namespace["decision"].effect, namespace["decision"].reason) == (
            want["effect"], want["reason"])
        assert namespace["result"].error is None and namespace["show_remove_button"] is False

        app = falcon.App(middleware=[UserFromHeader()])
        app.add_route("/accounts/{account_id}/experiments/{experiment_id}",
                      namespace["Experiments"]())
        http = falcon.testing.TestClient(app)
        path = f"/accounts/{team}/experiments/42"
        assert http.simulate_put(path, headers={"X-User": "bob"}).json == {"updated": "42"}
        assert http.simulate_put(path, headers={"X-User": "carol"}).status_code == 403
    finally:
        namespace["rolebook"].close()


@pytest.fixture(scope="module")
def schemas() -> dict:
    return yaml.safe_load((REPO / "openapi.yaml").read_text())["components"]["schemas"]


@pytest.mark.parametrize("shape", [Account, Member, Invitation, AcceptResult, Permissions])
def test_the_typed_answers_are_openapis_schemas(shape, schemas):
    schema = schemas[shape.__name__]
    assert set(typing.get_type_hints(shape)) == set(schema["properties"])
    assert shape.__required_keys__ == set(schema["required"])
