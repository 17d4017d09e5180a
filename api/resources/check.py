"""POST /v1/check: the decision endpoint services call before they show or change anything.

The body is answered by `engine.check_request.answer_valid`, the same code as
the offline `rolebook check`; this resource only adds what storage knows: the
principal's role in the account and the facts of stored members,
invitations and accounts, which win over facts the caller sends.
"""

from __future__ import annotations

import time

import falcon

from rolebook.api import contract, tracing
from rolebook.api.account_lookup import no_account, policy_unavailable
from rolebook.api.auth import CHECK_SCOPE, Caller
from rolebook.api.decision_log import NONE, log_context, resource_entry
from rolebook.api.decisions import count_effects
from rolebook.api.problems import bad_request, forbidden
from rolebook.api.services import Services
from rolebook.api.storable import storable_id
from rolebook.api.unique_ids import new_id
from rolebook.engine import Policy
from rolebook.engine.check_request import CheckRequestError, answer_valid
from rolebook.engine.vocabulary import DEFAULT_DENY
from rolebook.storage import NotFound


class CheckResource:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        started = time.perf_counter_ns()
        caller: Caller = req.context.caller
        body = contract.body(req, "CheckRequest")
        explain = req.get_param_as_bool("explain", default=False)
        principal = body["principal"]
        trusted = caller.has(CHECK_SCOPE)
        if not trusted and principal["id"] != caller.id:
            raise forbidden(None, "without the 'check' scope a caller may only ask about itself")
        snapshot = self.services.policies.snapshot
        account_id = body.get("account_id")
        member = True
        if account_id is not None:
            member = self._from_account(body, account_id, trusted, snapshot)
        elif not trusted:
            raise bad_request("account_id is required without the 'check' scope: your role "
                              "is looked up, never taken from the request",
                              [{"field": "account_id", "message": "required"}])
        try:
            with tracing.span("rolebook.evaluate"):
                evaluating = time.perf_counter_ns()
                result = answer_valid(snapshot, body, self.services.policies.default_policy,
                                      explain)
                self.services.metrics.evaluation_seconds.observe(
                    (time.perf_counter_ns() - evaluating) / 1e9)
        except CheckRequestError as exc:
            raise bad_request(exc.message, [{"field": exc.field, "message": exc.message}]) \
                from None
        if not member:
            _deny_all(result, principal["id"], account_id)
        decision_id = new_id()
        result["decision_id"] = decision_id
        tracing.annotate("rolebook.decision_id", decision_id)
        self._log(body, result, caller, account_id, decision_id, started)
        resp.media = result

    def _from_account(self, body: dict, account_id: str, trusted: bool, snapshot) -> bool:
        """Fill policy, role and stored facts from the account; False when not a member."""
        store, principal = self.services.store, body["principal"]
        if not storable_id(account_id):  # "\t": no database holds such an id
            raise no_account(account_id)
        try:  # without the check scope the principal is the caller (see on_post)
            account, role = store.accounts.access(account_id, principal["id"])
        except NotFound:
            raise no_account(account_id) from None
        if not trusted and role is None:
            raise no_account(account_id)
        if body.setdefault("policy", account["policy"]) != account["policy"]:
            raise bad_request(f"account {account_id} is governed by policy "
                              f"{account['policy']!r}, not {body['policy']!r}",
                              [{"field": "policy", "message": "does not match the account"}])
        if body.get("policy_version") is None and account.get("policy_version"):
            body["policy_version"] = account["policy_version"]
            if account["policy_version"] not in snapshot.versions.get(account["policy"], {}):
                # The account's pin, not the request, names what this replica lacks: 503 as
                # on every account route, never a 400 blaming the caller.
                raise policy_unavailable(account)
        if "role" not in principal or not trusted:
            principal["role"] = role
        if principal["role"] is None:
            principal["role"] = ""
            return False
        policy = _policy(snapshot, body)  # the request's one snapshot: never two sets
        if policy is not None:
            for resource in body["resources"]:
                self._fill_facts(resource, account_id, principal["id"], policy)
        return True

    def _fill_facts(self, resource: dict, account_id: str, pid: str, policy: Policy) -> None:
        rid, kind, store = resource.get("id"), resource["kind"], self.services.store
        if rid is not None and not storable_id(str(rid)):
            return  # an id no database holds: nothing stored about it
        owner_role = policy.membership.owner_role
        stored: dict = {}
        try:
            if kind == "member" and rid is not None:
                stored = store.members.member_facts(account_id, pid, str(rid), owner_role)
                stored.pop("actor_role", None)
            elif kind == "invitation" and rid is not None:
                stored = {"role": store.invitations.get(account_id, str(rid))["role"]}
            elif kind == "account":
                stored = store.accounts.facts(account_id, owner_role)
        except NotFound:
            return
        resource["attr"] = {**(resource.get("attr") or {}), **stored}

    def _log(self, body: dict, result: dict, caller: Caller, account_id, decision_id: str,
             started: int):
        services = self.services
        elapsed = time.perf_counter_ns() - started
        services.metrics.check_resources.observe(len(result["results"]))
        allowed = total = 0
        for r in result["results"]:
            for d in r["actions"].values():
                total += 1
                allowed += d["effect"] == "allow"
        count_effects(services, allowed, total - allowed)
        if not services.decisions.enabled:
            return
        known = services.policies.snapshot.get(result["policy"], result["version"]).action_sets
        services.decisions.record(
            log_context(decision_id, caller, result["principal"], account_id,
                        f"{result['policy']}@{result['version']}", result["digest"],
                        elapsed // (total or 1)),
            [resource_entry(r["kind"], r["id"], asked.get("attr"), r["actions"],
                            known.get(r["kind"], NONE))
             for asked, r in zip(body["resources"], result["results"], strict=True)])


def _deny_all(result: dict, pid: str, account_id: str) -> None:
    rule = f"{result['policy']}@{result['version']}#{DEFAULT_DENY}"
    reason = f"{pid} is not a member of account {account_id}"
    for r in result["results"]:
        for action in r["actions"]:
            r["actions"][action] = {"effect": "deny", "rule": rule, "reason": reason}
    result["principal"]["role"] = None


def _policy(snapshot, body: dict) -> Policy | None:
    try:
        return snapshot.get(body["policy"], body.get("policy_version"))
    except KeyError:
        return None
