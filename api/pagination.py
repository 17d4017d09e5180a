"""Query parameters of every paginated list: `limit` (1-200, default 50) and an opaque `cursor`."""

from __future__ import annotations

import falcon

from rolebook.api.problems import bad_request
from rolebook.storage.errors import InvalidCursor

DEFAULT_LIMIT = 50


def page_params(req: falcon.Request) -> tuple[int, str | None]:
    """`limit` and `cursor`, already checked against openapi.yaml by ParamsMiddleware."""
    return req.get_param_as_int("limit", default=DEFAULT_LIMIT), req.get_param("cursor")


def bad_cursor() -> falcon.HTTPError:
    return bad_request("cursor is not one this list handed out",
                       [{"field": "cursor", "message": "invalid cursor"}])


def listing(fetch, *args, **kwargs):
    """Call a storage list; a cursor it cannot decode is the client's mistake (400)."""
    try:
        return fetch(*args, **kwargs)
    except InvalidCursor:
        raise bad_cursor() from None
