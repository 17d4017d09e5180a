"""Query parameters of every paginated list: `limit` (1-200, default 50) and an opaque `cursor`."""

from __future__ import annotations

import falcon

from rolebook.api.problems import bad_request
from rolebook.storage.errors import InvalidCursor

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def page_params(req: falcon.Request) -> tuple[int, str | None]:
    raw = req.get_param("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise bad_request(f"limit must be an integer from 1 to {MAX_LIMIT}",
                              [{"field": "limit", "message": f"1 to {MAX_LIMIT}"}])
        limit = int(raw)
    return limit, req.get_param("cursor")


def bad_cursor() -> falcon.HTTPError:
    return bad_request("cursor is not one this list handed out",
                       [{"field": "cursor", "message": "invalid cursor"}])


def listing(fetch, *args, **kwargs):
    """Call a storage list; a cursor it cannot decode is the client's mistake (400)."""
    try:
        return fetch(*args, **kwargs)
    except InvalidCursor:
        raise bad_cursor() from None
