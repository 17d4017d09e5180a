"""Helpers to call the API as a given user, in process or over HTTP, with one interface."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import falcon.testing

from rolebook.api.auth import mint
from rolebook.api.config import Config


@dataclass
class Response:
    status: int
    json: object
    headers: dict


class User:
    """Calls the API with a token for (sub, email, scope); `.get/.post/...` return Response."""

    def __init__(self, transport, config: Config, sub: str, email: str | None = None,
                 scope: str = ""):
        self.transport, self.id = transport, sub
        self.email = email or f"{sub}@example.com"
        self.token = mint(config, sub, self.email, scope)

    def call(self, method: str, path: str, body=None, headers=None) -> Response:
        hdrs = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.transport(method, path, body, hdrs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def in_process(client: falcon.testing.TestClient):
    def transport(method, path, body, headers):
        path, _, query = path.partition("?")
        result = client.simulate_request(method, path, query_string=query or None,
                                         json=body, headers=headers)
        try:
            payload = result.json
        except (ValueError, json.JSONDecodeError):
            payload = result.text
        return Response(result.status_code, payload, dict(result.headers))
    return transport


def over_http(base_url: str):
    def transport(method, path, body, headers):
        data = None
        headers = dict(headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return Response(status, payload, hdrs)
    return transport


def users_of(base_url: str, secret: str):
    """A factory of `User`s calling a live server whose HS256 secret is `secret`."""
    config, transport = Config(jwt_secret=secret), over_http(base_url)

    def make(sub: str, email: str | None = None) -> User:
        return User(transport, config, sub, email)
    return make
