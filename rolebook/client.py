"""A client for services that ask rolebook before they act: checks, members and invitations.

Built on httpx: one pooled `httpx.Client` per `Client`, so calls reuse keep-alive
connections and no HTTP is parsed here. The two kinds of call fail differently, on purpose:

- Checks fail closed. A transport error, a timeout, an error answer or an unreadable body
  becomes a deny `Decision` whose reason says why, so an outage never opens a door. With
  `fail_closed=False` they raise `RolebookError` instead.
- Management calls (accounts, members, invitations, permissions) raise `RolebookError`,
  which carries the problem+json fields (`status`, `type`, `title`, `detail`, `rule`, ...).

Retries happen only where a repeat cannot do something twice. Every call is retried when
the connection failed before the request was sent (refused, connect timeout, no pooled
connection free). Reads (GET and `POST /v1/check`, which decides but changes nothing) are
also retried after a read timeout, a dropped connection or a 502/503/504. Writes (POST,
PATCH, DELETE) are never repeated once sent: the first one may have worked, and a repeat
would send a second invitation email, or answer 404/410 for a removal or revocation that
did happen. The pause between attempts doubles from `backoff`, capped at `MAX_BACKOFF`.
"""

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NotRequired, Self, TypedDict, TypeVar, cast
from urllib.parse import quote

import httpx
import orjson

__all__ = [
    "MAX_BACKOFF",
    "AcceptResult",
    "Account",
    "CheckResult",
    "Client",
    "Decision",
    "Invitation",
    "Member",
    "Page",
    "Permissions",
    "Resource",
    "ResourceResult",
    "RolebookError",
    "falcon_guard",
]

log = logging.getLogger("rolebook.client")

MAX_BACKOFF = 1.0  # seconds: the longest pause between two attempts
RETRY_STATUSES = frozenset({502, 503, 504})  # a proxy or a rolebook that is not ready yet
# The request never left this process: repeating it cannot do anything twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

AttrValue = str | int | bool | None
Params = dict[str, Any]  # the URI template fields Falcon hands a hook
T = TypeVar("T")


class RolebookError(Exception):
    """A call that failed: the server's problem+json, or why no answer came.

    `status` is the HTTP status, or None when no answer came (refused, timed out, dropped).
    `problem` holds every field the server sent, extensions such as `errors` included; a
    403's deciding rule is `rule` and the policy's reason is `detail`.
    """

    def __init__(self, message: str, *, status: int | None, title: str, detail: str,
                 type: str = "about:blank", problem: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.problem: dict[str, Any] = dict(problem or {})

    @property
    def rule(self) -> str | None:
        """The policy rule that denied (403) or guards the invariant (409), if any."""
        return self.problem.get("rule")

    @property
    def errors(self) -> list[Params]:
        """Each bad field of a 400, as `{"field", "message"}`."""
        return self.problem.get("errors") or []


@dataclass(frozen=True, slots=True)
class Decision:
    """One action's answer; `error` is set when the client denied because none came."""

    effect: Literal["allow", "deny"]
    rule: str | None
    reason: str
    decision_id: str | None = None
    trace: list[Params] | None = None
    error: RolebookError | None = None

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource of a batch check and the actions asked about it."""

    kind: str
    id: str | int | None = None
    actions: Sequence[str] = ()
    attr: Mapping[str, AttrValue] | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "actions": list(self.actions)}
        if self.id is not None:
            out["id"] = self.id
        if self.attr is not None:
            out["attr"] = dict(self.attr)
        return out


@dataclass(frozen=True, slots=True)
class ResourceResult:
    """The decisions on one resource, by action: `result["update"].allowed`."""

    kind: str
    id: str | int | None
    actions: dict[str, Decision]

    def __getitem__(self, action: str) -> Decision:
        return self.actions[action]

    @property
    def allowed(self) -> bool:
        """Every action asked about this resource is allowed."""
        return all(d.allowed for d in self.actions.values())


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A batch answer in request order; policy fields are None when the client denied."""

    results: list[ResourceResult]
    policy: str | None = None
    version: int | None = None
    digest: str | None = None
    decision_id: str | None = None
    role: str | None = None
    error: RolebookError | None = None

    def __getitem__(self, index: int) -> ResourceResult:
        return self.results[index]

    @property
    def allowed(self) -> bool:
        """Every action on every resource is allowed."""
        return all(r.allowed for r in self.results)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass `next_cursor` back for the next (None: this is the last)."""

    items: list[T]
    next_cursor: str | None


# The answers' shapes, as openapi.yaml names them (a test holds the two in agreement). The
# module has no `from __future__ import annotations`: TypedDict sees NotRequired only in
# evaluated annotations on Python 3.11.
class Account(TypedDict):
    id: str
    name: str
    policy: str
    policy_version: int | None
    effective_policy_version: NotRequired[int | None]
    created_at: str
    created_by: NotRequired[str]
    version: NotRequired[int]
    role: str | None


class Member(TypedDict):
    user_id: str
    email: str
    first_name: NotRequired[str | None]
    last_name: NotRequired[str | None]
    role: str
    joined_at: str


class Invitation(TypedDict):
    id: str
    account_id: str
    email: str
    role: str
    first_name: NotRequired[str | None]
    last_name: NotRequired[str | None]
    status: Literal["pending", "accepted", "expired", "revoked"]
    expires_at: str
    created_at: str
    invited_by: str
    accepted_by: NotRequired[str | None]
    accepted_at: NotRequired[str | None]
    revoked_at: NotRequired[str | None]
    delivery_status: NotRequired[Literal["queued", "sent", "failed"]]
    delivery_attempts: NotRequired[int]
    last_error: NotRequired[str | None]


class AcceptResult(TypedDict):
    account_id: str
    invitation_id: NotRequired[str]
    member: Member


class Permissions(TypedDict):
    account_id: str
    role: str
    policy: str
    policy_version: int
    digest: NotRequired[str]
    service_kinds: NotRequired[list[str]]
    permissions: dict[str, dict[str, Literal["allow", "deny", "conditional"]]]


class Client:
    """Calls one rolebook over keep-alive connections with one bearer token.

    `timeout` is per attempt (seconds, or an `httpx.Timeout`); `retries` is how many more
    attempts a retryable failure gets (see the module docstring for which are); `transport`
    is handed to httpx (a custom `httpx.HTTPTransport`, or `httpx.MockTransport` in tests).
    Thread-safe, as its `httpx.Client` is; close it, or use it as a context manager.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float | httpx.Timeout = 5.0,
                 retries: int = 2, backoff: float = 0.05, fail_closed: bool = True,
                 transport: httpx.BaseTransport | None = None):
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries, self.backoff, self.fail_closed = retries, backoff, fail_closed
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- decisions ---------------------------------------------------------------------

    def check(self, principal: str, kind: str, resource_id: str | int | None, action: str, *,
              account_id: str | None = None, role: str | None = None,
              attr: Mapping[str, AttrValue] | None = None, policy: str | None = None,
              policy_version: int | None = None) -> Decision:
        """May `principal` do `action` on the `kind` resource `resource_id`? One decision.

        Give `account_id` and rolebook looks up the principal's role (and a stored
        member's or invitation's facts); without it give `role` (and a token with the
        `check` scope).
        """
        result = self.check_batch(principal, [Resource(kind, resource_id, (action,), attr)],
                                  account_id=account_id, role=role, policy=policy,
                                  policy_version=policy_version)
        return result.results[0].actions[action]

    def check_batch(self, principal: str, resources: Sequence[Resource | Mapping[str, Any]], *,
                    account_id: str | None = None, role: str | None = None,
                    policy: str | None = None, policy_version: int | None = None,
                    explain: bool = False) -> CheckResult:
        """The full `POST /v1/check`: every action on every resource, in request order.

        Fails closed: when no usable answer comes, every action is denied with the reason
        (and `CheckResult.error`), unless the client was made with `fail_closed=False`.
        """
        principal_body: dict[str, Any] = {"id": principal}
        if role is not None:
            principal_body["role"] = role
        body: dict[str, Any] = {
            "principal": principal_body,
            "resources": [r.body() if isinstance(r, Resource) else dict(r) for r in resources],
        }
        for key, value in (("account_id", account_id), ("policy", policy),
                           ("policy_version", policy_version)):
            if value is not None:
                body[key] = value
        try:
            response = self._send("POST", "/v1/check", body=body, safe=True,
                                  params={"explain": "true"} if explain else None)
            if response.is_error:
                raise _from_answer(response)
            return _decisions(body, _json(response))
        except RolebookError as error:
            if not self.fail_closed:
                raise
            log.warning("rolebook check denied without a decision (fail closed): %s", error)
            return _denied(body, error)

    # --- accounts -----------------------------------------------------------------------

    def create_account(self, name: str, *, policy: str | None = None,
                       policy_version: int | None = None) -> Account:
        """A new account whose first owner is the token's user."""
        body = _without_none(name=name, policy=policy, policy_version=policy_version)
        return cast(Account, self._call("POST", "/v1/accounts", body=body))

    def list_accounts(self, *, limit: int | None = None,
                      cursor: str | None = None) -> Page[Account]:
        return self._page("/v1/accounts", limit, cursor)

    def iter_accounts(self, *, page_size: int | None = None) -> Iterator[Account]:
        """Every account of the token's user, fetching pages as the loop needs them."""
        return self._every("/v1/accounts", page_size)

    def get_account(self, account_id: str) -> Account:
        return cast(Account, self._call("GET", _account(account_id)))

    def delete_account(self, account_id: str) -> None:
        self._call("DELETE", _account(account_id))

    def permissions(self, account_id: str) -> Permissions:
        """The token user's allowed actions per kind (`allow`, `deny`, `conditional`)."""
        return cast(Permissions, self._call("GET", _account(account_id, "permissions")))

    # --- members ------------------------------------------------------------------------

    def list_members(self, account_id: str, *, role: str | None = None,
                     limit: int | None = None, cursor: str | None = None) -> Page[Member]:
        return self._page(_account(account_id, "members"), limit, cursor, role=role)

    def iter_members(self, account_id: str, *, role: str | None = None,
                     page_size: int | None = None) -> Iterator[Member]:
        """Every member (optionally of one role), fetching pages as the loop needs them."""
        return self._every(_account(account_id, "members"), page_size, role=role)

    def get_member(self, account_id: str, user_id: str) -> Member:
        return cast(Member, self._call("GET", _account(account_id, "members", user_id)))

    def update_role(self, account_id: str, user_id: str, role: str) -> Member:
        """Change a member's role, the token user's own included (as the policy allows)."""
        path = _account(account_id, "members", user_id)
        return cast(Member, self._call("PATCH", path, body={"role": role}))

    def remove_member(self, account_id: str, user_id: str) -> None:
        """Remove a member; with the token user's own id, leave the account."""
        self._call("DELETE", _account(account_id, "members", user_id))

    # --- invitations --------------------------------------------------------------------

    def create_invitation(self, account_id: str, email: str, role: str, *,
                          first_name: str | None = None,
                          last_name: str | None = None) -> Invitation:
        """Invite `email` with `role`; the token travels only in the email rolebook sends."""
        body = _without_none(email=email, role=role, first_name=first_name,
                             last_name=last_name)
        path = _account(account_id, "invitations")
        return cast(Invitation, self._call("POST", path, body=body))

    def list_invitations(self, account_id: str, *, status: str | None = None,
                         limit: int | None = None,
                         cursor: str | None = None) -> Page[Invitation]:
        return self._page(_account(account_id, "invitations"), limit, cursor, status=status)

    def iter_invitations(self, account_id: str, *, status: str | None = None,
                         page_size: int | None = None) -> Iterator[Invitation]:
        return self._every(_account(account_id, "invitations"), page_size, status=status)

    def get_invitation(self, account_id: str, invitation_id: str) -> Invitation:
        path = _account(account_id, "invitations", invitation_id)
        return cast(Invitation, self._call("GET", path))

    def revoke_invitation(self, account_id: str, invitation_id: str) -> Invitation:
        path = _account(account_id, "invitations", invitation_id)
        return cast(Invitation, self._call("DELETE", path))

    def resend_invitation(self, account_id: str, invitation_id: str) -> Invitation:
        """A new token, expiry and email; the old token stops working."""
        path = _account(account_id, "invitations", invitation_id, "resend")
        return cast(Invitation, self._call("POST", path))

    def accept_invitation(self, token: str) -> AcceptResult:
        """Accept as the token user (whose email must be the invited one)."""
        answer = self._call("POST", "/v1/invitations/accept", body={"token": token})
        return cast(AcceptResult, answer)

    # --- plumbing -----------------------------------------------------------------------

    def _send(self, method: str, path: str, *, safe: bool, body: Any = None,
              params: Mapping[str, Any] | None = None) -> httpx.Response:
        """One call with the retries allowed for it; RolebookError when no answer came."""
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, params=params,
                                              headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries or not (safe or isinstance(exc, NOT_SENT)):
                    raise RolebookError(f"rolebook unreachable: {type(exc).__name__}: {exc}",
                                        status=None, title="rolebook unreachable",
                                        detail=f"{type(exc).__name__}: {exc}") from exc
            else:
                if (attempt >= self.retries or not safe
                        or response.status_code not in RETRY_STATUSES):
                    return response
            delay = min(MAX_BACKOFF, self.backoff * 2 ** attempt)
            time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: replicas do not retry in step
            attempt += 1

    def _call(self, method: str, path: str, *, body: Any = None,
              params: Mapping[str, Any] | None = None) -> Any:
        response = self._send(method, path, body=body, params=params, safe=method == "GET")
        if response.is_error:
            raise _from_answer(response)
        if response.status_code == 204:
            return None
        return _json(response)

    def _page(self, path: str, limit: int | None, cursor: str | None,
              **filters: str | None) -> Page[Any]:
        params = _without_none(limit=limit, cursor=cursor, **filters)
        answer = self._call("GET", path, params=params)
        try:
            return Page(list(answer["items"]), answer["next_cursor"])
        except (KeyError, TypeError) as exc:
            raise _unreadable(f"no items/next_cursor in the page: {exc!r}") from exc

    def _every(self, path: str, page_size: int | None, **filters: str | None) -> Iterator[Any]:
        cursor = None
        while True:
            page = self._page(path, page_size, cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def falcon_guard(client: Client, kind: str, action: str, *,
                 principal_from: Callable[[Any], str],
                 account_from: str | Callable[[Any, Params], str | None] | None = None,
                 id_from: str | Callable[[Any, Params], str | int | None] | None = None
                 ) -> Callable[..., None]:
    """A `falcon.before` hook: the responder runs only if rolebook allows `action`.

    `principal_from(req)` is the user id your own authentication found. `account_from`
    and `id_from` name a URI template field (`"account_id"`) or are `callable(req,
    params)`. A denial, a fail-closed one included, is 403 with the decision's reason; the
    decision is left in `req.context.rolebook` for logging either way. With a
    `fail_closed=False` client a failed check raises `RolebookError` out of the hook instead,
    for the app's own error handler.
    """
    import falcon  # here, so services that only call rolebook do not load Falcon

    account_of, id_of = _reader(account_from), _reader(id_from)

    def guard(req: Any, resp: Any, resource: Any, params: Params) -> None:
        decision = client.check(principal_from(req), kind, id_of(req, params), action,
                                account_id=account_of(req, params))
        req.context.rolebook = decision
        if not decision.allowed:
            raise falcon.HTTPForbidden(title="Forbidden by policy", description=decision.reason)

    return guard


def _reader(source: str | Callable[[Any, Params], Any] | None
            ) -> Callable[[Any, Params], Any]:
    if source is None:
        return lambda req, params: None
    if isinstance(source, str):
        return lambda req, params: params[source]
    return source


def _account(account_id: str, *rest: str) -> str:
    """An account's path; ids quoted as segments, so a `/` or `?` in one cannot reroute it."""
    return "/".join(["/v1/accounts", *(quote(p, safe="") for p in (account_id, *rest))])


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise _unreadable(f"{response.status_code} answer is not JSON: {exc}") from exc


def _unreadable(detail: str) -> RolebookError:
    return RolebookError(f"rolebook answered something unreadable: {detail}", status=None,
                         title="unreadable answer", detail=detail)


def _from_answer(response: httpx.Response) -> RolebookError:
    """The problem+json of an error answer; a proxy's HTML page still gives status and text."""
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"detail": response.text[:300]}
    status = response.status_code
    title = str(problem.get("title") or response.reason_phrase)
    detail = str(problem.get("detail") or title)
    return RolebookError(f"rolebook answered {status} {title}: {detail}", status=status,
                         title=title, detail=detail,
                         type=str(problem.get("type") or "about:blank"), problem=problem)


def _decisions(body: dict[str, Any], answer: Any) -> CheckResult:
    """The answer to exactly what was asked; anything missing or odd makes it unreadable."""
    try:
        decision_id = answer.get("decision_id")
        results = []
        for asked, got in zip(body["resources"], answer["results"], strict=True):
            decisions = {}
            for action in asked["actions"]:
                d = got["actions"][action]
                if d["effect"] not in ("allow", "deny"):
                    raise ValueError(f"effect {d['effect']!r}")
                decisions[action] = Decision(d["effect"], d["rule"], d["reason"], decision_id,
                                             d.get("trace"))
            results.append(ResourceResult(asked["kind"], asked.get("id"), decisions))
        return CheckResult(results, answer["policy"], answer["version"], answer["digest"],
                           decision_id, answer["principal"]["role"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _unreadable(f"the check answer does not match the request: {exc!r}") from exc


def _denied(body: dict[str, Any], error: RolebookError) -> CheckResult:
    """Deny every action asked, with the reason no decision came."""
    reason = str(error)
    return CheckResult(
        [ResourceResult(r.get("kind", ""), r.get("id"),
                        {a: Decision("deny", None, reason, error=error)
                         for a in r.get("actions") or ()})
         for r in body["resources"]],
        error=error)
