"""`rolebook token`: mint a bearer token for the key a server verifies with, for curl and tests."""

from __future__ import annotations

import sys
from dataclasses import replace

from rolebook.api.config import (
    BY_NAME,
    add_arguments,
    duration_seconds,
    existing_jwt_secret,
    from_arguments,
)


def register(sub) -> None:
    parser = sub.add_parser("token", help="mint a JWT for the key a server verifies with",
                            description="Mint a bearer token. It is signed with the server's "
                            "HS256 key (--jwt-secret, or <data-dir>/jwt-secret that `rolebook "
                            "serve` creates), or with --private-key for RS256/ES256.")
    parser.add_argument("--sub", required=True, help="user id (the token's subject)")
    parser.add_argument("--email", required=True, help="the user's email address")
    parser.add_argument("--scope", default="", help="space-separated scopes: check, admin "
                        "(default: none)")
    parser.add_argument("--ttl", default="1h", help="lifetime, e.g. 30m, 1h, 7d (default: 1h)")
    parser.add_argument("--private-key", metavar="PEM",
                        help="PEM private key: sign RS256/ES256 instead of HS256")
    add_arguments(parser, ("data_dir", "jwt_secret", "jwt_algorithm", "jwt_issuer",
                           "jwt_audience"))
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_arguments(args)
    try:
        ttl = duration_seconds(args.ttl)
        if ttl <= 0:
            raise ValueError("every token must carry exp: give --ttl a lifetime, e.g. 1h")
    except ValueError as exc:
        print(f"rolebook token: --ttl: {exc}", file=sys.stderr)
        return 2
    from rolebook.api.auth import mint  # PyJWT and cryptography: only when minting

    if args.private_key:
        with open(args.private_key, "rb") as handle:
            key = handle.read()
        print(f"rolebook token: signed {config.jwt_algorithm} with {args.private_key}",
              file=sys.stderr)
        print(mint(config, args.sub, args.email, args.scope, ttl, key))
        return 0
    found = existing_jwt_secret(config)
    if found is None:
        data_dir = BY_NAME["data_dir"]
        print(f"rolebook token: no signing key in {config.data_path}: `rolebook serve` creates "
              f"it on first start; name the server's data folder with {data_dir.flag} / "
              f"{data_dir.env}, or pass its secret with --jwt-secret", file=sys.stderr)
        return 2
    secret, source = found
    print(f"rolebook token: signed HS256 with the key from {source}", file=sys.stderr)
    print(mint(replace(config, jwt_secret=secret), args.sub, args.email, args.scope, ttl))
    return 0
