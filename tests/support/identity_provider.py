"""A real local identity provider for tests: an HTTP server with an OIDC discovery document and
a JWKS whose keys the test rotates, and a signer for tokens as Auth0, Okta or Keycloak shape them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ALGORITHMS = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}


def new_key(algorithm: str):
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


class Provider:
    """Serves /.well-known/openid-configuration and /jwks; `keys` maps kid → (alg, private key)."""

    def __init__(self):
        self.keys: dict[str, tuple[str, object]] = {}
        self.broken: str | None = None  # "down" (HTTP 500) or "malformed" (not a key set)
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/jwks"}
                elif self.path == "/jwks":
                    provider.fetches += 1
                    body = provider.jwks()
                else:
                    body = None
                if provider.broken == "down" or body is None:
                    self.send_response(500 if body is not None else 404)
                    self.end_headers()
                    return
                raw = b"{\"keys\": 7}" if provider.broken == "malformed" and \
                    self.path == "/jwks" else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid: str, algorithm: str = "RS256") -> None:
        self.keys[kid] = (algorithm, new_key(algorithm))

    def jwks(self) -> dict:
        out = []
        for kid, (algorithm, key) in self.keys.items():
            jwk = json.loads(ALGORITHMS[algorithm].to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": algorithm})
        return {"keys": out}

    def token(self, kid: str, audience: str | None = "rolebook-api", lifetime: int = 600,
              **claims) -> str:
        algorithm, key = self.keys[kid]
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "alice", "email": "alice@example.com",
                "email_verified": True, "iat": now, "exp": now + lifetime}
        if audience is not None:
            body["aud"] = audience
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key,
                          algorithm=algorithm, headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
