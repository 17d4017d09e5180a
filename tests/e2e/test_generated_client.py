"""A client generated from openapi.yaml completes the README's first session on a real server.

Contract protected: openapi-python-client turns openapi.yaml into a client
whose models carry our component names (no names it had to make up), and
through that client alone, against a real `rolebook serve`: Alice creates an
account, invites Bob, Bob accepts with the token from the email in the
Maildir, and a service checks what Bob may do, getting typed decisions with
the facts from storage; a used token comes back as a typed 410 Problem.
Skipped, with the reason, where the generator cannot be installed or run.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import yaml

from rolebook.api.auth import mint
from rolebook.api.config import Config
from tests.support import live
from tests.support.mail import token_of, wait_for_mail
from tests.support.policies import REPO

pytest.importorskip("openapi_python_client", reason="openapi-python-client is not installed "
                    "(it is in the `test` extra: pip install -e '.[test]')")

SECRET = "e2e-generated-client-" + "s" * 32
PACKAGE = "rolebook_generated_client"


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """The client package, generated from openapi.yaml into tmp_path and imported from there."""
    config = tmp_path / "generator.yaml"
    # No post hooks: formatting the output with ruff is not what this test is about.
    config.write_text(yaml.safe_dump({"package_name_override": PACKAGE, "post_hooks": []}))
    run = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path",
         str(REPO / "openapi.yaml"), "--config", str(config), "--meta", "none",
         "--output-path", str(tmp_path / PACKAGE)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if run.returncode != 0 or not (tmp_path / PACKAGE / "__init__.py").exists():
        pytest.skip(f"openapi-python-client could not generate a client:\n{run.stdout}"
                    f"{run.stderr}")
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE), tmp_path / PACKAGE
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture
def server(tmp_path):
    srv = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                     "--decision-log", "off")
    yield srv
    srv.stop()


def test_the_generated_models_are_our_components(generated):
    _, folder = generated
    components = yaml.safe_load((REPO / "openapi.yaml").read_text())["components"]["schemas"]
    modules = {p.stem for p in (folder / "models").glob("*.py")} - {"__init__"}
    assert modules <= {snake(name) for name in components}, sorted(
        modules - {snake(name) for name in components})
    assert {"check_request", "check_resource", "resource_attributes", "permission_table"} <= (
        modules)


def test_the_readme_first_session_through_the_generated_client(generated, server):
    client, _ = generated
    api = importlib.import_module(f"{PACKAGE}.api")
    accounts, invitations, decisions = (importlib.import_module(f"{api.__name__}.{tag}")
                                        for tag in ("accounts", "invitations", "decisions"))
    for module in ("create_account", "get_account", "get_permissions"):
        importlib.import_module(f"{accounts.__name__}.{module}")
    for module in ("create_invitation", "accept_invitation"):
        importlib.import_module(f"{invitations.__name__}.{module}")
    importlib.import_module(f"{decisions.__name__}.check")
    models = importlib.import_module(f"{PACKAGE}.models")

    config = Config(jwt_secret=SECRET)

    def signed_in(sub: str, email: str, scope: str = ""):
        return client.AuthenticatedClient(base_url=server.url,
                                          token=mint(config, sub, email, scope))

    alice = signed_in("alice", "alice@example.com")
    bob = signed_in("bob", "bob@example.com")
    service = signed_in("shop-backend", "ops@example.com", "check")

    # Alice creates an account and becomes its first owner (policy: the default, convert).
    created = accounts.create_account.sync_detailed(
        client=alice, body=models.AccountCreate(name="Acme"))
    assert created.status_code == 201, created.content
    account = created.parsed
    assert isinstance(account, models.Account)
    assert (account.name, account.role, account.policy) == ("Acme", "owner", "convert")

    # She invites Bob as an editor; the email lands in the server's Maildir.
    invitation = invitations.create_invitation.sync(
        account.id, client=alice,
        body=models.InvitationCreate(email="bob@example.com", role="edit"))
    assert isinstance(invitation, models.Invitation), invitation
    assert invitation.status is models.InvitationStatus.PENDING
    [message] = wait_for_mail(server.data_dir / "mail", "bob@example.com", timeout=30)

    # Bob accepts with the token from the email, and becomes a member.
    accept = models.AcceptRequest(token=token_of(message))
    accepted = invitations.accept_invitation.sync(client=bob, body=accept)
    assert isinstance(accepted, models.AcceptResult), accepted
    assert (accepted.account_id, accepted.member.user_id, accepted.member.role) == (
        account.id, "bob", "edit")
    assert accounts.get_account.sync(account.id, client=bob).role == "edit"
    again = invitations.accept_invitation.sync_detailed(client=bob, body=accept)
    assert again.status_code == 410 and isinstance(again.parsed, models.Problem)
    assert again.parsed.status == 410

    # A service asks: may Bob change Alice's role, and may he edit object 42?
    asked = models.CheckRequest(
        principal=models.CheckPrincipal(id="bob"), account_id=account.id,
        resources=[
            models.CheckResource(kind="member", id="alice",
                                 attr=models.ResourceAttributes.from_dict({"new_role": "read"}),
                                 actions=["update_role", "remove"]),
            models.CheckResource(kind="object", id="42", actions=["update"])])
    answer = decisions.check.sync(client=service, body=asked, explain=True)
    assert isinstance(answer, models.CheckResponse), answer
    assert (answer.policy, answer.principal.role) == ("convert", "edit")  # looked up
    member, obj = answer.results
    effects = {(r.kind, action): d.effect for r in (member, obj)
               for action, d in r.actions.additional_properties.items()}
    # Convert's rules: an editor may manage members except owners (Alice's role, from
    # storage), and may modify objects.
    assert effects == {("member", "update_role"): models.Effect.DENY,
                       ("member", "remove"): models.Effect.DENY,
                       ("object", "update"): models.Effect.ALLOW}
    decision = obj.actions["update"]
    assert decision.rule.startswith(f"convert@{answer.version}#") and decision.reason
    assert decision.trace and all(isinstance(s, models.TraceStep) for s in decision.trace)

    # What Bob's UI would show: his permissions, typed down to each effect.
    permissions = accounts.get_permissions.sync(account.id, client=bob)
    assert isinstance(permissions, models.Permissions), permissions
    assert permissions.permissions["object"]["update"] is models.PermissionEffect.ALLOW
    assert permissions.permissions["billing"]["view"] is models.PermissionEffect.DENY
