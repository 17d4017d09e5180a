"""One registry of settings: each has a flag, an environment variable and a default.

The README's configuration table and `rolebook serve --help` are both made
from SETTINGS, and a test checks the README lists every one.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rolebook.storage.postgres import Limits


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: object = None
    type: type = str
    choices: tuple | None = None
    shown: str = ""  # how --help states a default that is computed at start (empty: the value)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "ROLEBOOK_" + self.name.upper()

    @property
    def default_text(self) -> str:
        return self.shown or repr(self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "address to listen on", "127.0.0.1"),
    Setting("port", "port to listen on", 8080, int),
    Setting("workers", "server processes sharing the port", 0, int,
            shown="one and a half per core (rounded up) under waitress, one under granian"),
    Setting("threads", "request threads per process", 0, int,
            shown="8 under waitress, 4 under granian"),
    Setting("server", "HTTP server in each process: 'waitress', or 'granian' (faster; "
            "pip install 'rolebook[granian]')", "waitress", choices=("waitress", "granian")),
    Setting("data_dir", "folder for the SQLite database, the Maildir and the signing key",
            "./var"),
    Setting("database_url", "database URL; postgresql://user@host:port/db for several "
            "instances", "", shown="SQLite in the data dir"),
    Setting("db_connect_timeout", "seconds to wait for a new PostgreSQL connection", 3.0, float),
    Setting("db_statement_timeout", "seconds a PostgreSQL statement may run (the server's "
            "statement_timeout; a transaction may sit idle twice that); a server that stops "
            "answering is given up 1 s later", 5.0, float),
    Setting("db_network_timeout", "seconds before a PostgreSQL connection whose peer is "
            "unreachable counts as dead (TCP keepalives and tcp_user_timeout)", 10.0, float),
    Setting("ready_timeout", "seconds /readyz waits for the database before answering 503",
            1.0, float),
    Setting("policy_dir", "folder of policies: <name>/v<N>.yaml", "./policies"),
    Setting("policy_source", "serve the policy folder ('dir') or the versions published to "
            "the database with `rolebook policy publish` ('database')", "dir",
            choices=("dir", "database")),
    Setting("default_policy", "policy of new accounts that name none", "convert"),
    Setting("pin", "pin active versions: NAME@VERSION, comma-separated", "",
            shown="the highest version of each"),
    Setting("mail_url", "maildir:PATH or smtp://[user:pass@]host:port[?starttls=1]", "",
            shown="maildir:<data-dir>/mail"),
    Setting("mail_from", "sender address of invitation emails", "rolebook@localhost"),
    Setting("public_url", "base URL of accept links", "", shown="http://<host>:<port>"),
    Setting("jwt_secret", "HS256 secret", "", shown="generated once into <data-dir>/jwt-secret"),
    Setting("jwt_public_key", "PEM public key file: verify an identity provider's tokens "
            "with it instead of HS256", "", shown="none"),
    Setting("jwt_jwks_url", "the identity provider's JWKS URL: keys chosen by `kid`, cached, "
            "refetched for a new `kid` (at most every 10 s)", "", shown="none"),
    Setting("oidc_issuer", "the provider's issuer URL: reads <issuer>/.well-known/"
            "openid-configuration for its jwks_uri and issuer", "", shown="none"),
    Setting("jwt_algorithm", "algorithms accepted from the provider, comma-separated (RS256, "
            "ES256, EdDSA, ...); also token --private-key's", "RS256"),
    Setting("jwt_issuer", "required `iss` of every token (minted tokens carry it)", "",
            shown="the OIDC issuer's, else not checked"),
    Setting("jwt_audience", "required `aud` of every token (minted tokens carry it)", "",
            shown="none: a token carrying `aud` is refused"),
    Setting("jwt_leeway", "seconds of clock skew allowed on exp, nbf and iat", 30, int),
    Setting("jwt_max_lifetime", "longest token lifetime accepted (exp - now), e.g. 1h, 7d; "
            "every token must carry exp", "7d"),
    Setting("jwt_jwks_cache_seconds", "how long fetched provider keys are used before they are "
            "fetched again: a key removed at the provider is refused within this", 300, int),
    Setting("jwt_email_claim", "the claim that holds the user's email address", "email"),
    Setting("jwt_scope_claims", "claims that hold scopes, comma-separated: a space-separated "
            "string or a list", "scope,scp,permissions"),
    Setting("require_verified_email", "accepting an invitation needs `email_verified: true`; "
            "'auto' is on with an identity provider and off with the built-in secret", "auto",
            choices=("auto", "on", "off")),
    Setting("decision_log", "where decision logs go: 'file' (data dir), 'stdout' or 'off'",
            "file", choices=("file", "stdout", "off")),
    Setting("decision_log_url", "also POST decision-log lines to this http(s) URL, as "
            "gzip-compressed JSON-lines batches retried with backoff", "", shown="none"),
    Setting("decision_log_buffer_bytes", "decision-log lines each destination (file or stdout, "
            "URL) holds waiting, at most; past it new lines are dropped and counted",
            64 * 1024 * 1024, int),
    Setting("max_body_bytes", "largest request body accepted", 1_048_576, int),
    Setting("invitations_per_hour", "invitations an account may send per hour", 50, int),
    Setting("invitations_per_user_per_hour", "invitations one user may send per hour, all of "
            "their accounts together", 100, int),
    Setting("accounts_per_user_per_hour", "accounts one user may create per hour", 10, int),
    Setting("account_cache", "keep members' roles and the count of each account's owning role "
            "in memory until their account changes (other hosts' changes arrive by PostgreSQL "
            "notification); 'auto' is on", "auto",
            choices=("auto", "on", "off")),
    Setting("log_level", "logging level", "INFO"),
    Setting("log_format", "log lines as 'text' or 'json'; 'auto' is text on a terminal and JSON "
            "lines otherwise", "auto", choices=("auto", "text", "json")),
    Setting("access_log", "one log line per request (method, route, status, duration, request "
            "id, caller, bytes)", "on", choices=("on", "off")),
)
BY_NAME = {s.name: s for s in SETTINGS}


# Per server: (worker processes per core, request threads per worker) when none are set.
# A waitress process idles about a quarter of the time between its I/O thread and its request
# threads, even with requests queued; more processes than cores fill that. Two per core
# overshoot: the kernel spreads connections over SO_REUSEPORT sockets by a hash, so with more
# processes the busiest one holds further above its share (32 connections over 4: 10-16 in the
# busiest), and it sets the tail. On 2 cores, 3 processes against 4, five alternating pairs:
# p99 at 32 connections 20-24 ms against 22-26, 50 checks a request +6 to +17%, one check the
# same or up to 8% more. Granian's I/O is Rust threads that leave no such gap (a second process
# per core only time-slices with the first: p99 at 32 connections 12-14 ms against 9 ms), and
# its Python threads only run the app, so past what database waits need they only queue for
# the GIL (4 threads: p99 9-11 ms against 14-20 ms for 8, at the same requests a second).
# Checks that waitress's I/O thread answers itself (api/request_lanes.py) leave no such gap
# either: for them 2 processes served 3% more than 3 at one check a request (p99 8 ms against
# 11) and 1% less at 50 (six and five alternating pairs); the rest of the API still crosses
# threads, so waitress keeps one and a half.
SERVER_DEFAULTS = {"waitress": (1.5, 8), "granian": (1, 4)}


class _Derived:
    """What follows from the settings: computed defaults and parsed values."""

    @property
    def effective_workers(self) -> int:
        return self.workers or math.ceil(SERVER_DEFAULTS[self.server][0] * (os.cpu_count() or 1))

    @property
    def effective_threads(self) -> int:
        return self.threads or SERVER_DEFAULTS[self.server][1]

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'rolebook.db'}"

    @property
    def uses_account_cache(self) -> bool:
        return self.account_cache != "off"

    @property
    def external_identity(self) -> bool:
        return bool(self.jwt_public_key or self.jwt_jwks_url or self.oidc_issuer)

    @property
    def needs_verified_email(self) -> bool:
        if self.require_verified_email == "auto":
            return self.external_identity
        return self.require_verified_email == "on"

    @property
    def effective_mail_url(self) -> str:
        return self.mail_url or f"maildir:{self.data_path / 'mail'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def pins(self) -> dict[str, int]:
        out = {}
        for item in filter(None, (p.strip() for p in self.pin.split(","))):
            name, _, version = item.partition("@")
            if not version.isdigit():
                raise ValueError(f"--pin wants NAME@VERSION, got {item!r}")
            out[name] = int(version)
        return out


# The settings' values, their defaults taken from SETTINGS (written once); `extra` carries
# test-only knobs (mail polling intervals) that are no user's setting.
Config = make_dataclass(
    "Config",
    [(s.name, s.type, field(default=s.default)) for s in SETTINGS]
    + [("extra", dict, field(default_factory=dict, compare=False))],
    bases=(_Derived,), frozen=True, namespace={"__module__": __name__},
)


def add_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...] = ()) -> None:
    """The settings as flags (all, or those named), each saying its variable and default."""
    for s in (BY_NAME[n] for n in names) if names else SETTINGS:
        parser.add_argument(s.flag, dest=s.name, type=s.type, choices=s.choices, default=None,
                            metavar="N" if s.type in (int, float) else None,
                            help=f"{s.help} [env {s.env}; default: {s.default_text}]")


def database_limits(config: Config) -> Limits:
    """How long PostgreSQL may keep a request waiting (storage/postgres.py)."""
    from rolebook.storage.postgres import Limits

    return Limits(config.db_connect_timeout, config.db_statement_timeout,
                  config.db_network_timeout)


def from_arguments(args: argparse.Namespace, environ=os.environ) -> Config:
    """Flags win over environment variables, which win over defaults."""
    values = {}
    for s in SETTINGS:
        flag = getattr(args, s.name, None)
        if flag is not None:
            values[s.name] = flag
        elif s.env in environ:
            values[s.name] = s.type(environ[s.env])
    return Config(**values)


DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """'30m', '1h', '7d' in seconds."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(f"a duration is a number and a unit (s, m, h, d), e.g. 30m, 1h, 7d; "
                         f"got {text!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


def jwt_secret(config: Config) -> str:
    """The configured secret, or one generated once into the data dir (mode 0600)."""
    if config.jwt_secret:
        return config.jwt_secret
    path = secret_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def secret_path(config: Config) -> Path:
    return config.data_path / "jwt-secret"


def existing_jwt_secret(config: Config) -> tuple[str, str] | None:
    """The secret a running server verifies with, and where it came from; None where there is
    none yet. Minting never creates one: a new key beside a server would only mint tokens that
    server refuses."""
    if config.jwt_secret:
        return config.jwt_secret, f"{BY_NAME['jwt_secret'].flag} / {BY_NAME['jwt_secret'].env}"
    path = secret_path(config)
    if not path.is_file():
        return None
    return path.read_text().strip(), str(path)
