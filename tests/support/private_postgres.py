"""A PostgreSQL server of the test's own (initdb into a temporary folder, `postgres` on a free
port), so a test may freeze it (SIGSTOP on the postmaster and its backends: a hung server or a
network partition, as seen from the client) without touching the machine's shared server.

PostgreSQL refuses to run as root; under root the server runs as the `postgres` user (else
`nobody`) from a folder that user owns. Where no PostgreSQL binaries are installed the test is
skipped, saying so.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

from tests.support.live import free_port
from tests.support.processes import children

START_SECONDS = 30.0


@dataclass
class PrivatePostgres:
    process: subprocess.Popen
    port: int
    log: Path
    frozen: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def freeze(self) -> list[int]:
        """Stop the postmaster first (so it forks no new backend), then every backend."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = [self.process.pid, *sorted(children(self.process.pid))]
        for pid in self.frozen[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return self.frozen

    def thaw(self) -> None:
        for pid in reversed(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) to start "
                    "a private server")
    return Path(found[-1]).parent


def _account() -> dict:
    """Popen keywords that run PostgreSQL as a user it accepts."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    pytest.skip("running as root with neither a `postgres` nor a `nobody` user to run a private "
                "PostgreSQL server as")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Start a throw-away server (trust auth, user postgres); yield it; stop it and delete it."""
    binaries, account = _binaries(), _account()
    folder = Path(tempfile.mkdtemp(prefix="rolebook-pg-"))
    if account:
        os.chown(folder, account["user"], account["group"])
    log = folder / "server.log"
    try:
        subprocess.run([binaries / "initdb", "-D", folder / "data", "-A", "trust", "-U",
                        "postgres", "-E", "UTF8", "--no-sync"], check=True, cwd=folder,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **account)
        port = free_port()
        with open(log, "wb") as out:
            os.chown(log, account.get("user", -1), account.get("group", -1))
            process = subprocess.Popen(
                [binaries / "postgres", "-D", folder / "data", "-p", str(port), "-k", folder,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "max_connections=200"],
                cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                **account)
        server = PrivatePostgres(process, port, log)
        try:
            _wait_until_up(server)
            yield server
        finally:
            server.thaw()
            process.send_signal(signal.SIGINT)  # fast shutdown: ends the backends too
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_up(server: PrivatePostgres) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"private PostgreSQL exited at start:\n{server.output()}")
        try:
            psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres",
                             dbname="postgres", connect_timeout=2).close()
            return
        except psycopg2.Error:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"private PostgreSQL not up within {START_SECONDS} s:\n"
                                   f"{server.output()}") from None
            time.sleep(0.05)
