"""Bearer JWT authentication: pinned algorithms, required claims, strict claim values.

Keys: the built-in HS256 secret by default; an identity provider's PEM key, its JWKS URL, or
its OIDC issuer (which names the JWKS URL) otherwise. Every token must carry `exp` within the
configured maximum lifetime; `iss` and `aud` are required when configured; `nbf` and `iat` are
honoured with the configured leeway. `none` is never accepted.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from dataclasses import dataclass

import falcon
import jwt

from rolebook.api.config import BY_NAME, Config, duration_seconds, jwt_secret
from rolebook.api.problems import Problem

VERIFIED_CACHE_SIZE = 4096
CHECK_SCOPE = "check"
ADMIN_SCOPE = "admin"
MAX_SUB = 256  # the longest path segment a member route takes: a longer id could never be removed
MAX_EMAIL = 254
# One "@", something on each side, no white space or control characters: as strict as bodies.
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
KID_REFRESH_SECONDS = 10  # made-up `kid`s refetch the provider's keys at most this often
FETCH_TIMEOUT = 10


@dataclass(frozen=True)
class Caller:
    id: str
    email: str
    scopes: frozenset[str]
    email_verified: bool | None = None  # None: the token does not say

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class IdentityError(Exception):
    """The provider's configuration or keys cannot be had; the message names the setting."""


def _named(setting: str) -> str:
    return f"{BY_NAME[setting].flag} / {BY_NAME[setting].env}"


def _fetch_json(url: str, setting: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as resp:
            document = json.load(resp)
    except (OSError, ValueError) as exc:
        raise IdentityError(f"{_named(setting)}: cannot read {url}: {exc}") from None
    if not isinstance(document, dict):
        raise IdentityError(f"{_named(setting)}: {url} is not a JSON object")
    return document


class ProviderKeys(jwt.PyJWKClient):
    """PyJWT's JWKS client (kid lookup, cache, rate-limited refetch on an unknown kid) that
    keeps the last good key set while the provider cannot be reached, and says so."""

    def __init__(self, url: str, lifespan: int):
        super().__init__(url, cache_jwk_set=True, lifespan=max(lifespan, 1),
                         cooldown_duration=min(KID_REFRESH_SECONDS, max(lifespan, 1)),
                         timeout=FETCH_TIMEOUT)
        self.last_good: dict | None = None
        self.outage: str | None = None

    def fetch_data(self):
        try:
            data = super().fetch_data()
            jwt.PyJWKSet.from_dict(data)  # a malformed set is refused here, never kept
        except jwt.PyJWTError as exc:
            if self.last_good is None:
                raise
            self.outage = f"the identity provider's keys cannot be fetched ({exc}); " \
                          "the cached keys still verify"
            self.jwk_set_cache.put(self.last_good)
            return self.last_good
        self.last_good, self.outage = data, None
        return data


class Verifier:
    """Holds the keys, pinned algorithms and required claims, so each request only decodes."""

    def __init__(self, config: Config):
        self.config = config
        self.issuer = config.jwt_issuer or None
        self.audience = config.jwt_audience or None
        self.leeway = config.jwt_leeway
        self.max_lifetime = duration_seconds(config.jwt_max_lifetime)
        self.scope_claims = [c.strip() for c in config.jwt_scope_claims.split(",") if c.strip()]
        self.provider: ProviderKeys | None = None
        self.key = None
        url = self._provider_url()
        # Verified tokens are remembered per process; with provider keys only as long as the keys
        # themselves, so a key removed at the provider is refused within the same bound.
        self.remember = config.jwt_jwks_cache_seconds if url else None
        if config.external_identity:
            self.algorithms = [a.strip() for a in config.jwt_algorithm.split(",") if a.strip()]
            if not self.algorithms or any(a.startswith("HS") or a == "none"
                                          for a in self.algorithms):
                raise IdentityError(f"{_named('jwt_algorithm')}: {config.jwt_algorithm!r}: "
                                    "name the provider's asymmetric algorithms (RS256, ES256, "
                                    "EdDSA, ...)")
        else:
            self.algorithms = ["HS256"]
        if url:
            self.provider = ProviderKeys(url, config.jwt_jwks_cache_seconds)
            try:
                self.provider.get_jwk_set()
            except jwt.PyJWTError as exc:
                setting = "jwt_jwks_url" if config.jwt_jwks_url else "oidc_issuer"
                raise IdentityError(f"{_named(setting)}: no usable keys at {url}: {exc}") \
                    from None
        elif config.jwt_public_key:
            with open(config.jwt_public_key, "rb") as key:
                self.key = key.read()
        else:
            self.key = jwt_secret(config)
        self._verified: dict[str, tuple[Caller, float]] = {}

    def _provider_url(self) -> str:
        if self.config.jwt_jwks_url:
            return self.config.jwt_jwks_url
        if not self.config.oidc_issuer:
            return ""
        if not hasattr(self, "_discovered"):
            base = self.config.oidc_issuer.rstrip("/")
            found = _fetch_json(f"{base}/.well-known/openid-configuration", "oidc_issuer")
            if not isinstance(found.get("jwks_uri"), str) or not isinstance(
                    found.get("issuer"), str):
                raise IdentityError(f"{_named('oidc_issuer')}: the provider's configuration "
                                    "names no jwks_uri or issuer")
            self._discovered = found
            self.issuer = self.issuer or found["issuer"]
        return self._discovered["jwks_uri"]

    @property
    def outage(self) -> str | None:
        """Why the provider's keys are stale, for /readyz; None when all is well. Asking
        refetches an expired key set, so a probe notices an outage no token has met yet."""
        if self.provider is None:
            return None
        with contextlib.suppress(jwt.PyJWTError):
            self.provider.get_jwk_set()
        return self.provider.outage

    def verify(self, token: str) -> Caller:
        """Verify once per process per token; a service reuses its token for many calls."""
        hit = self._verified.get(token)
        now = time.time()
        if hit is not None and hit[1] > now:
            return hit[0]
        caller, exp = self._decode(token)
        until = exp if self.remember is None else min(exp, now + self.remember)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (caller, until)
        return caller

    def offline(self, authorization: str) -> bool:
        """Whether this Authorization header is judged without the network: no provider keys to
        fetch, or its token verified and still remembered (api/request_lanes.py asks)."""
        if self.provider is None:
            return True
        hit = self._verified.get(authorization.partition(" ")[2].strip())
        return hit is not None and hit[1] > time.time()

    def _key(self, token: str):
        if self.provider is None:
            return self.key
        try:
            return self.provider.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise unauthorized(f"the identity provider's keys cannot be fetched: {exc}") \
                from None
        except jwt.PyJWKClientError as exc:
            raise unauthorized(f"invalid token: {exc}") from None
        except jwt.PyJWTError as exc:  # a header that cannot be read
            raise unauthorized(f"invalid token: {exc}") from None

    def _decode(self, token: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(token, self._key(token), algorithms=self.algorithms,
                                issuer=self.issuer, audience=self.audience, leeway=self.leeway,
                                options={"require": ["sub", "exp"] + (["iss"] if self.issuer
                                                                      else [])})
        except jwt.PyJWTError as exc:
            raise unauthorized(f"invalid token: {exc}") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp - time.time() > self.max_lifetime \
                + self.leeway:
            raise unauthorized(f"the token lives longer than {self.config.jwt_max_lifetime} "
                               f"({_named('jwt_max_lifetime')})")
        return self._caller(claims), float(exp)

    def _caller(self, claims: dict) -> Caller:
        sub, email = claims.get("sub"), claims.get(self.config.jwt_email_claim)
        if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB \
                or CONTROL.search(sub):
            raise unauthorized(f"the token's 'sub' must be 1 to {MAX_SUB} characters, not "
                               "blank, without control characters")
        if not isinstance(email, str) or len(email) > MAX_EMAIL or not EMAIL.match(email):
            raise unauthorized(f"the token's {self.config.jwt_email_claim!r} claim must be an "
                               "email address")
        # `email_verified`, or beside a namespaced email claim ("https://x/email" →
        # "https://x/email_verified"), where providers such as Auth0 put custom claims.
        verified = claims.get(self.config.jwt_email_claim + "_verified",
                              claims.get("email_verified"))
        if isinstance(verified, str):  # some providers send "true" / "false"
            verified = {"true": True, "false": False}.get(verified.lower())
        scopes = frozenset().union(*(_scopes(claims.get(c)) for c in self.scope_claims))
        return Caller(sub, email, scopes, verified if isinstance(verified, bool) else None)


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


def mint(config: Config, sub: str, email: str, scopes: str = "", ttl_seconds: int = 3600,
         private_key: bytes | None = None, **claims) -> str:
    """A token for the configured key (HS256), or signed with a given private key; it carries
    the configured issuer and audience, so the server that shares this configuration takes it."""
    if ttl_seconds <= 0:
        raise ValueError("a token needs a lifetime: every token must carry exp")
    now = int(time.time())
    claims = {"sub": sub, "email": email, "iat": now, "exp": now + ttl_seconds, **claims}
    if scopes:
        claims["scope"] = scopes
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    if private_key is not None:
        algorithm = config.jwt_algorithm.split(",")[0].strip()
        return jwt.encode(claims, private_key, algorithm=algorithm)
    return jwt.encode(claims, jwt_secret(config), algorithm="HS256")
