"""Bearer JWT authentication: pinned algorithms, required `sub` and `email`, optional scopes.

HS256 with the configured (or generated) secret by default; RS256/ES256 with
an identity provider's public key when one is configured. `none` is never
accepted, and `exp` is honoured when present.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import falcon
import jwt

from rolebook.api.config import Config, jwt_secret
from rolebook.api.problems import Problem

VERIFIED_CACHE_SIZE = 4096
CHECK_SCOPE = "check"
ADMIN_SCOPE = "admin"


@dataclass(frozen=True)
class Caller:
    id: str
    email: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class Verifier:
    """Holds the key and the pinned algorithm list once, so each request only decodes."""

    def __init__(self, config: Config):
        if config.jwt_public_key:
            with open(config.jwt_public_key, "rb") as key:
                self.key = key.read()
            self.algorithms = [config.jwt_algorithm]
        else:
            self.key = jwt_secret(config)
            self.algorithms = ["HS256"]
        self._verified: dict[str, tuple[Caller, float | None]] = {}

    def verify(self, token: str) -> Caller:
        """Verify once per process per token; a service reuses its token for many calls."""
        hit = self._verified.get(token)
        if hit is not None and (hit[1] is None or hit[1] > time.time()):
            return hit[0]
        caller, expires = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (caller, expires)
        return caller

    def _decode(self, token: str) -> tuple[Caller, float | None]:
        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms,
                                options={"require": ["sub"]})
        except jwt.PyJWTError as exc:
            raise unauthorized(f"invalid token: {exc}") from None
        sub, email = claims.get("sub"), claims.get("email")
        if not isinstance(sub, str) or not sub or not isinstance(email, str) or "@" not in email:
            raise unauthorized("the token must carry a non-empty 'sub' and an 'email'")
        exp = claims.get("exp")
        return Caller(sub, email, _scopes(claims.get("scope"))), exp


def _scopes(raw) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail,
                   headers={"WWW-Authenticate": 'Bearer realm="rolebook"'})


class AuthMiddleware:
    """Authenticates every /v1 request before routing; other paths are public."""

    def __init__(self, verifier: Verifier):
        self.verifier = verifier

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not req.path.startswith("/v1/"):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("send Authorization: Bearer <JWT>")
        req.context.caller = self.verifier.verify(token.strip())


def mint(config: Config, sub: str, email: str, scopes: str = "", ttl_seconds: int | None = None,
         private_key: bytes | None = None) -> str:
    """A token for the configured key (HS256), or signed with a given private key."""
    now = int(time.time())
    claims = {"sub": sub, "email": email, "iat": now}
    if scopes:
        claims["scope"] = scopes
    if ttl_seconds:
        claims["exp"] = now + ttl_seconds
    if private_key is not None:
        return jwt.encode(claims, private_key, algorithm=config.jwt_algorithm)
    return jwt.encode(claims, jwt_secret(config), algorithm="HS256")
