"""One registry of settings: each has a flag, an environment variable and a default.

The README's configuration table and `rolebook serve --help` are both made
from SETTINGS, and a test checks the README lists every one.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: object = None
    type: type = str
    choices: tuple | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "ROLEBOOK_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "address to listen on", "127.0.0.1"),
    Setting("port", "port to listen on", 8080, int),
    Setting("workers", "server processes sharing the port (default: two per core)", 0, int),
    Setting("threads", "request threads per process", 8, int),
    Setting("data_dir", "folder for the SQLite database, the Maildir and the signing key",
            "./var"),
    Setting("database_url", "database URL (default: SQLite in the data dir; "
            "postgresql://user@host:port/db for several instances)", ""),
    Setting("policy_dir", "folder of policies/<name>/v<N>.yaml", "./policies"),
    Setting("default_policy", "policy of new accounts that name none", "convert"),
    Setting("pin", "pin active versions, e.g. 'convert@1,anytrack@2' (default: highest)", ""),
    Setting("mail_url", "maildir:PATH or smtp://[user:pass@]host:port[?starttls=1] "
            "(default: maildir:<data-dir>/mail)", ""),
    Setting("mail_from", "sender address of invitation emails", "rolebook@localhost"),
    Setting("public_url", "base URL of accept links (default: http://<host>:<port>)", ""),
    Setting("jwt_secret", "HS256 secret (default: generated once into the data dir)", ""),
    Setting("jwt_public_key", "PEM public key file: verify RS256/ES256 tokens of an "
            "identity provider instead of HS256", ""),
    Setting("jwt_algorithm", "algorithm with --jwt-public-key", "RS256",
            choices=("RS256", "ES256")),
    Setting("decision_log", "where decision logs go: 'file' (data dir), 'stdout' or 'off'",
            "file", choices=("file", "stdout", "off")),
    Setting("max_body_bytes", "largest request body accepted", 1_048_576, int),
    Setting("invitations_per_hour", "invitations an account may send per hour", 50, int),
    Setting("account_cache", "keep members' roles and owner counts in memory until their "
            "account changes; 'auto' is on with SQLite and off with PostgreSQL, where another "
            "host's changes would not reach this host's cache", "auto",
            choices=("auto", "on", "off")),
    Setting("log_level", "logging level", "INFO"),
)


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    threads: int = 8
    data_dir: str = "./var"
    database_url: str = ""
    policy_dir: str = "./policies"
    default_policy: str = "convert"
    pin: str = ""
    mail_url: str = ""
    mail_from: str = "rolebook@localhost"
    public_url: str = ""
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_algorithm: str = "RS256"
    decision_log: str = "file"
    max_body_bytes: int = 1_048_576
    invitations_per_hour: int = 50
    account_cache: str = "auto"
    log_level: str = "INFO"
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def effective_workers(self) -> int:
        # A waitress process idles about a quarter of the time between its I/O thread and its
        # request threads, even with requests queued; a second process per core fills that.
        return self.workers or 2 * (os.cpu_count() or 1)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'rolebook.db'}"

    @property
    def uses_account_cache(self) -> bool:
        if self.account_cache == "auto":
            return self.effective_database_url.startswith("sqlite:")
        return self.account_cache == "on"

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

    def with_(self, **changes) -> Config:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Config(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for s in SETTINGS:
        parser.add_argument(s.flag, dest=s.name, type=s.type, choices=s.choices, default=None,
                            help=f"{s.help} [env {s.env}; default {s.default!r}]")


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


def jwt_secret(config: Config) -> str:
    """The configured secret, or one generated once into the data dir (mode 0600)."""
    if config.jwt_secret:
        return config.jwt_secret
    path = config.data_path / "jwt-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
