"""`GET /admin`: the administrator's console, a static page served by rolebook itself.

The page holds no data and needs no sign-in to load; everything it shows comes from the API
with the bearer token the administrator pastes, kept in the page's memory only (no cookie, no
storage), so every action is authorised exactly as the same call from a script.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from rolebook.api.pages import security_headers

PAGE = (Path(__file__).resolve().parent.parent / "admin_console.html").read_text(
    encoding="utf-8")
HEADERS = security_headers(PAGE)


class AdminConsole:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.set_headers(HEADERS)
        resp.text = PAGE
