"""`rolebook token`: mint a bearer token for the configured key, for curl and tests."""

from __future__ import annotations

import re

from rolebook.api.auth import mint
from rolebook.api.config import add_arguments, from_arguments

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> int:
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"--ttl wants e.g. 30m, 1h, 7d; got {text!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


def register(sub) -> None:
    parser = sub.add_parser("token", help="mint a JWT for the configured key")
    parser.add_argument("--sub", required=True, help="user id (the token's subject)")
    parser.add_argument("--email", required=True, help="the user's email address")
    parser.add_argument("--scope", default="", help="space-separated scopes: check, admin")
    parser.add_argument("--ttl", default="1h", help="lifetime, e.g. 30m, 1h, 7d (default 1h)")
    parser.add_argument("--private-key", help="PEM private key to sign RS256/ES256 tokens")
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_arguments(args)
    key = None
    if args.private_key:
        with open(args.private_key, "rb") as handle:
            key = handle.read()
    print(mint(config, args.sub, args.email, args.scope, seconds(args.ttl), key))
    return 0
