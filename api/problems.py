"""One error model (RFC 9457 problem+json), mapped to HTTP status in one place.

Resources raise `Problem` (or let storage errors through); the handlers here
turn every one into `application/problem+json` with type, title, status, detail.
"""

from __future__ import annotations

import logging

import falcon
import orjson
from pony.orm.dbapiprovider import DBException

from rolebook.storage import errors as storage_errors
from rolebook.storage.postgres import DatabaseTimeout

PROBLEM_TYPE = "https://rolebook.dev/problems/"
QUERY_CANCELED = "57014"  # SQLSTATE of statement_timeout (and of a cancelled query)
log = logging.getLogger("rolebook.api")


class Problem(falcon.HTTPError):
    """An HTTP error with a stable type slug and optional extension members."""

    def __init__(self, status: int, slug: str, title: str, detail: str, headers=None, **extra):
        super().__init__(falcon.code_to_http_status(status), title=title, description=detail,
                         headers=headers)
        self.slug = slug
        self.extra = extra

    def to_problem(self) -> dict:
        body = {
            "type": PROBLEM_TYPE + self.slug,
            "title": self.title,
            "status": int(self.status_code),
            "detail": self.description or self.title,
        }
        body.update(self.extra)
        return body


def bad_request(detail: str, errors: list[dict] | None = None) -> Problem:
    return Problem(400, "invalid-request", "Invalid request", detail, errors=errors or [])


def not_found(detail: str = "no such resource") -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def forbidden(rule: str | None, reason: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden by policy", reason, rule=rule)


SLUGS = {400: "invalid-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
         406: "not-acceptable", 411: "length-required", 413: "payload-too-large",
         415: "unsupported-media-type", 429: "rate-limited"}


def serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    body = exc.to_problem() if isinstance(exc, Problem) else {
        "type": PROBLEM_TYPE + SLUGS.get(exc.status_code, "error"),
        "title": exc.title or falcon.code_to_http_status(exc.status_code)[4:],
        "status": exc.status_code,
        "detail": exc.description or exc.title or "",
    }
    resp.data = orjson.dumps(body)
    resp.content_type = "application/problem+json"
    resp.append_header("Vary", "Accept")


def _storage_problem(exc: storage_errors.StorageError) -> Problem:
    if isinstance(exc, storage_errors.NotFound):
        return not_found(exc.detail)
    if isinstance(exc, storage_errors.Denied):
        return forbidden(exc.rule, exc.reason)
    if isinstance(exc, storage_errors.Conflict):
        return Problem(409, "conflict", "Conflict", exc.detail, rule=exc.rule)
    if isinstance(exc, storage_errors.IntegrityFault):  # logged by storage, with the cause
        return Problem(503, "storage-integrity", "Storage refused the change", exc.detail)
    if isinstance(exc, storage_errors.Gone):
        return Problem(410, "gone", "Gone", exc.detail)
    if isinstance(exc, storage_errors.RateLimited):
        return Problem(429, "rate-limited", "Too many requests", str(exc),
                       headers={"Retry-After": str(exc.retry_after_seconds)})
    log.exception("unmapped storage error", exc_info=exc)
    return Problem(503, "storage-unavailable", "Storage unavailable", "try again later")


def handle_storage(req, resp, exc, params):
    raise _storage_problem(exc)


def handle_database(req, resp, exc, params):
    log.error("database error on %s %s: %s", req.method, req.path, exc)
    raise Problem(503, "storage-unavailable", "Storage unavailable", _database_reason(exc))


def _database_reason(exc: DBException) -> str:
    """Why, in words a client can act on: a timeout says how long was waited."""
    driver = getattr(exc, "original_exc", exc)
    if isinstance(driver, DatabaseTimeout):
        return f"{driver}; try again"
    if getattr(driver, "pgcode", None) == QUERY_CANCELED:
        return "the database ran past its statement timeout; try again"
    return "the database could not complete the request; try again"


def handle_unexpected(req, resp, exc, params):
    if isinstance(exc, falcon.HTTPError):
        raise exc
    log.exception("unexpected error on %s %s", req.method, req.path, exc_info=exc)
    raise Problem(500, "internal-error", "Internal server error",
                  "the server failed; the error is logged")


def install(app: falcon.App) -> None:
    """Handlers match most specific first, so the catch-all only sees true surprises."""
    app.add_error_handler(Exception, handle_unexpected)
    app.set_error_serializer(serialize)
    app.add_error_handler(storage_errors.StorageError, handle_storage)
    app.add_error_handler(DBException, handle_database)
