"""A real `rolebook serve` (waitress, real socket) in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.policies import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    process: subprocess.Popen
    url: str
    data_dir: Path
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(data_dir: Path, *extra: str, env: dict | None = None, timeout: float = 30.0,
          program: tuple[str, ...] = (), cwd: Path = REPO, port: int | None = None) -> LiveServer:
    """Start the server (on a free port unless given one) and wait (bounded) until /healthz
    answers.

    By default this checkout's rolebook with the repository's policies; `program` names another
    installed `rolebook` (then it runs in `cwd` with its own default policy folder).
    """
    port = port or free_port()
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [*(program or (sys.executable, "-m", "rolebook")), "serve", "--port", str(port),
            "--data-dir", str(data_dir)]
    environment = {**os.environ, **(env or {})}
    if not program:
        args += ["--policy-dir", str(REPO / "policies")]
        environment["PYTHONPATH"] = str(REPO)
    with open(log, "wb") as out:
        # A process group of its own, as under a terminal or a service manager, so tests can
        # signal all of it; pytest's own Ctrl-C does not reach it.
        process = subprocess.Popen([*args, *extra], cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
    server = LiveServer(process, f"http://127.0.0.1:{port}", data_dir, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rolebook serve exited early:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"rolebook serve did not answer within {timeout}s:\n{server.output()}")
