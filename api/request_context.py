"""What ties one request's signals together: its id, its OpenAPI route, and its access-log line.

The request id comes from a well-formed `X-Request-ID` or is generated, is echoed in the response,
and is carried by every log record the request's thread writes (through a context variable).
Route and method labels come from closed sets, so no request can invent a new metric series.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from functools import cache

from rolebook.api import logs
from rolebook.api.unique_ids import new_id

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
CALLER_HEADER = "X-Request-ID"
WELL_FORMED_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONVERTER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
UNMATCHED = "(unmatched)"
access_log = logging.getLogger("rolebook.access")


@cache  # route templates are a closed set; every request asks
def openapi_path(template: str) -> str:
    """`/v1/policies/{name}/versions/{version:int(min=1)}` → `.../{version}`, as openapi.yaml
    names it."""
    return CONVERTER.sub(r"{\1}", template)


class RouteNames:
    """The OpenAPI path of a request, also when it was refused before routing (401, 413)."""

    def __init__(self, templates: list[str]):
        self._patterns = [(_pattern(t), openapi_path(t)) for t in templates]

    def of(self, req) -> str:
        """Named once per request (metrics and the access log both ask)."""
        named = getattr(req.context, "route", None)
        if named is None:
            named = req.context.route = self._name(req)
        return named

    def _name(self, req) -> str:
        if req.uri_template:
            return openapi_path(req.uri_template)
        for pattern, name in self._patterns:
            if pattern.match(req.path):
                return name
        return UNMATCHED


def _pattern(template: str) -> re.Pattern:
    parts = CONVERTER.split(template)
    # split() alternates literal text and field names: fields become one path segment
    regex = "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


class RequestContextMiddleware:
    """First in, last out: every response, refused ones included, gets the id and a line."""

    def __init__(self, routes: RouteNames, enabled: bool = True):
        self.routes, self.enabled = routes, enabled

    def process_request(self, req, resp) -> None:
        given = req.get_header(CALLER_HEADER)
        request_id = given if given and WELL_FORMED_ID.match(given) else new_id()
        req.context.request_id = request_id
        req.context.started = time.perf_counter()
        req.context.token = REQUEST_ID.set(request_id)
        req.context.route = None

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        request_id = getattr(req.context, "request_id", None)
        if request_id is None:
            return
        resp.set_header(CALLER_HEADER, request_id)
        route = self.routes.of(req)
        if self.enabled and access_log.isEnabledFor(logging.INFO):
            body = resp.render_body()
            caller = getattr(req.context, "caller", None)
            logs.access_line(access_log, (
                method_label(req.method), route, resp.status_code,
                time.perf_counter() - req.context.started, len(body) if body else 0,
                caller.id if caller is not None else None))
        REQUEST_ID.reset(req.context.token)
