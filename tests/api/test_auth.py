"""Authentication: every /v1 call needs a valid bearer JWT; algorithms are pinned.

Protects: 401 problem+json for a missing, malformed, expired, unsigned (`alg:
none`) or wrongly signed token, or one without `sub`/`email`; RS256 tokens of
an identity provider verify with its public key; public routes stay public; whether a token is
judged without the network (the loop thread answers only such checks, api/request_lanes.py).
"""

from __future__ import annotations

import time
from dataclasses import replace

import falcon.testing
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rolebook.api.app import create_app
from rolebook.api.auth import Verifier, mint
from rolebook.api.config import Config
from tests.support.identity_provider import Provider
from tests.support.markers import sqlite_only

SECRET = "test-secret-" + "x" * 32


def get(client, token=None, header=None):
    headers = {"Authorization": header or f"Bearer {token}"} if (token or header) else {}
    return client.simulate_get("/v1/accounts", headers=headers)


def assert_unauthorized(result):
    assert result.status_code == 401
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["status"] == 401
    assert result.json["type"].endswith("/unauthorized")
    assert "Bearer" in result.headers["www-authenticate"]


@sqlite_only
class TestBearer:
    def test_missing_token(self, client):
        assert_unauthorized(get(client))

    def test_not_bearer(self, client):
        assert_unauthorized(get(client, header="Basic dXNlcjpwYXNz"))

    def test_garbage_token(self, client):
        assert_unauthorized(get(client, "not.a.jwt"))

    def test_wrong_secret(self, client):
        token = jwt.encode({"sub": "u1", "email": "u1@example.com"}, "another-secret-" + "y" * 32,
                           algorithm="HS256")
        assert_unauthorized(get(client, token))

    def test_alg_none_is_refused(self, client):
        token = jwt.encode({"sub": "u1", "email": "u1@example.com"}, None, algorithm="none")
        assert_unauthorized(get(client, token))

    def test_expired(self, client):
        token = jwt.encode({"sub": "u1", "email": "u1@example.com", "exp": int(time.time()) - 60},
                           SECRET, algorithm="HS256")
        result = get(client, token)
        assert_unauthorized(result)
        assert "expired" in result.json["detail"].lower()

    @pytest.mark.parametrize("claims", [{"email": "u1@example.com"}, {"sub": "u1"},
                                        {"sub": "", "email": "u1@example.com"},
                                        {"sub": "u1", "email": "no-at-sign"}])
    def test_sub_and_email_required(self, client, claims):
        assert_unauthorized(get(client, jwt.encode(claims, SECRET, algorithm="HS256")))

    def test_valid_token(self, client, config):
        result = get(client, mint(config, "u1", "u1@example.com"))
        assert result.status_code == 200
        assert result.json == {"items": [], "next_cursor": None}

    def test_public_routes_need_no_token(self, client):
        assert client.simulate_get("/healthz").status_code == 200
        assert client.simulate_get("/readyz").status_code == 200
        assert client.simulate_get("/metrics").status_code == 200


@pytest.fixture
def rsa_keys(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = tmp_path / "idp.pub.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@sqlite_only
def test_identity_provider_rs256(config, services, rsa_keys):
    private, public = rsa_keys
    idp_config = replace(config, jwt_public_key=str(public), jwt_algorithm="RS256")
    client = falcon.testing.TestClient(create_app(idp_config, services))
    good = mint(idp_config, "u1", "u1@example.com", private_key=private)
    assert get(client, good).status_code == 200
    # An HS256 token signed with the public key's bytes (the classic confusion attack) fails.
    forged = jwt.encode({"sub": "u1", "email": "u1@example.com"}, "x" * 40, algorithm="HS256")
    assert_unauthorized(get(client, forged))


def test_a_token_is_judged_offline_without_a_provider_or_once_verified(tmp_path):
    built_in = Verifier(Config(jwt_secret=SECRET, data_dir=str(tmp_path)))
    assert built_in.offline("Bearer anything")  # its key is here: nothing to fetch
    idp = Provider()
    try:
        idp.add_key("rsa-1")
        verifier = Verifier(Config(oidc_issuer=idp.issuer, jwt_audience="rolebook-api",
                                   jwt_algorithm="RS256", data_dir=str(tmp_path)))
        token = idp.token("rsa-1")
        assert not verifier.offline(f"Bearer {token}")  # its key might have to be fetched
        assert verifier.verify(token).id == "alice"
        assert verifier.offline(f"Bearer {token}")
        assert not verifier.offline(f"Bearer {idp.token('rsa-1', sub='bob')}")
    finally:
        idp.close()
