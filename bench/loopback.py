"""Over HTTP on loopback: rolebook serve and the Cerbos PDP, driven by wrk.

For each server, two body shapes (1 check per request, 50 checks per request, all with the
same principal) and two loads (1 connection: latency; 32 connections: throughput). wrk
cycles through pre-rendered bodies (bench/wrk/cycle.lua). CPU: the server's whole process
tree from /proc/<pid>/stat (utime+stime, plus reaped children's cutime+cstime) before and
after each run; wrk's from its rusage when it exits. Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workload import Check

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "wrk" / "cycle.lua"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BATCH = 50
SINGLE_BODIES = 20_000
BATCH_BODIES = 1_000


# ---------------------------------------------------------------- bodies
def rolebook_body(checks: Sequence[Check]) -> dict[str, Any]:
    c0 = checks[0]
    return {
        "principal": {"id": c0.principal_id, "role": c0.role},
        "policy": "convert",
        "resources": [
            {"kind": c.kind, "id": c.resource_id, "attr": c.attr, "actions": [c.action]}
            for c in checks
        ],
    }


def cerbos_body(checks: Sequence[Check]) -> dict[str, Any]:
    c0 = checks[0]
    return {
        "principal": {"id": c0.principal_id, "roles": [c0.role]},
        "resources": [
            {
                "actions": [c.action],
                "resource": {"kind": c.kind, "id": c.resource_id, "attr": c.attr},
            }
            for c in checks
        ],
    }


def group_by_principal(checks: Sequence[Check], size: int, limit: int) -> list[list[Check]]:
    """Consecutive workload checks bucketed by principal; a bucket is emitted when full."""
    buckets: dict[str, list[Check]] = {}
    out: list[list[Check]] = []
    for c in checks:
        b = buckets.setdefault(c.principal_id, [])
        b.append(c)
        if len(b) == size:
            out.append(b)
            buckets[c.principal_id] = []
            if len(out) >= limit:
                break
    return out


def _truthy_effect(value: Any) -> bool | None:
    if isinstance(value, dict):
        if "effect" in value:
            return _truthy_effect(value["effect"])
        if "allowed" in value:
            return bool(value["allowed"])
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.lower()
        if v in ("allow", "effect_allow", "allowed", "permit", "true"):
            return True
        if v in ("deny", "effect_deny", "denied", "forbid", "false", "effect_no_match"):
            return False
    return None


def parse_effects(doc: Any) -> list[dict[str, bool | None]]:
    """results[i].actions[action] -> allowed, tolerant of both servers' shapes."""
    results = doc.get("results") if isinstance(doc, dict) else doc
    if not isinstance(results, list):
        return []
    out: list[dict[str, bool | None]] = []
    for r in results:
        actions = r.get("actions", {}) if isinstance(r, dict) else {}
        if isinstance(actions, list):
            actions = {a.get("action"): a for a in actions if isinstance(a, dict)}
        out.append({str(k): _truthy_effect(v) for k, v in actions.items()})
    return out


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime+cutime+cstime in ticks) of one process, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3 of stat): ppid=4, utime=14, stime=15, cutime=16, cstime=17
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by root and all its live descendants (and reaped children)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                table[int(entry)] = st
    if root not in table:
        return float("nan")
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0, [root], set()
    while stack and len(seen) < 10_000:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (busy = total - idle - iowait)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(x) for x in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def wait_for_quiet(max_wait_s: float, threshold: float = 0.3, window_s: float = 1.0) -> float:
    """Wait (at most max_wait_s) until the machine's busy cores over a window drop below
    threshold; return the last window's figure. The benchmark's own servers idle meanwhile."""
    deadline = time.monotonic() + max_wait_s
    busy = float("nan")
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(window_s)
        busy = (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy < threshold or time.monotonic() + window_s > deadline:
            return busy


@dataclass
class Server:
    name: str
    version: str
    proc: subprocess.Popen[bytes]
    url: str  # the check endpoint
    health_url: str
    headers: dict[str, str]
    body: Callable[[Sequence[Check]], dict[str, Any]]
    log: Path
    workdir: Path
    notes: list[str] = field(default_factory=list)
    decides: bool = True  # False for the floor, whose answers are constant

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group, by id
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _split(url: str) -> tuple[str, int, str]:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


def wait_ready(server: Server, timeout_s: float = 60.0) -> bool:
    host, port, path = _split(server.health_url)
    assert host == HOST
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            return False
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # own process group: stop() ends exactly this tree
        )


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def start_cerbos(binary: Path) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cerbos-"))
    http_port, grpc_port = free_port(), free_port()
    cmd = [
        str(binary),
        "server",
        f"--config={HERE / 'cerbos' / 'config.yaml'}",
        "--log-level=error",
        f"--set=server.httpListenAddr={HOST}:{http_port}",
        f"--set=server.grpcListenAddr={HOST}:{grpc_port}",
        f"--set=storage.disk.directory={HERE / 'cerbos' / 'policies'}",
    ]
    env = dict(os.environ, CERBOS_NO_TELEMETRY="1", OTEL_SDK_DISABLED="true")
    log = workdir / "cerbos.log"
    proc = _spawn(cmd, env, log, workdir)
    from bench.extras import tool_version

    base = f"http://{HOST}:{http_port}"
    return Server(
        name="cerbos",
        version=f"cerbos {tool_version([str(binary), '--version'])}",
        proc=proc,
        url=f"{base}/api/check/resources",
        health_url=f"{base}/_cerbos/health",
        headers={},
        body=cerbos_body,
        log=log,
        workdir=workdir,
    )


def _cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rolebook", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def _token_from(output: str) -> str:
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                doc = json.loads(line)
                return str(doc.get("token") or doc.get("access_token") or "")
            except ValueError:
                pass
        return line.split()[-1]
    return ""


class NotAvailable(Exception):
    pass


def start_rolebook(workers: int = 2, extra: Sequence[str] = (), name: str = "rolebook") -> Server:
    """rolebook serve on a free loopback port with a fresh data dir, plus a check token."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-rolebook-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(
        ROLEBOOK_HOST=HOST,
        ROLEBOOK_PORT=str(port),
        ROLEBOOK_DATA_DIR=str(data_dir),
        ROLEBOOK_POLICY_DIR=str(ROOT / "policies"),
    )
    try:
        help_ = _cli(["serve", "--help"], env)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise NotAvailable("`rolebook serve --help` timed out") from exc
    if help_.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        last = (help_.stderr or help_.stdout).strip().splitlines()[-1:] or ["?"]
        raise NotAvailable(f"`rolebook serve` is not available yet ({last[0]})")
    notes: list[str] = []
    cmd = ["serve", "--port", str(port), "--data-dir", str(data_dir)]
    if "--host" in help_.stdout:
        cmd += ["--host", HOST]
    if "--policy-dir" in help_.stdout:
        cmd += ["--policy-dir", str(ROOT / "policies")]
    if "--workers" in help_.stdout:
        cmd += ["--workers", str(workers)]
    else:
        notes.append("serve has no --workers flag yet: ran its default")
    cmd += list(extra)
    if extra:
        notes.append(f"extra serve flags: {' '.join(extra)}")

    token_args = ["token", "--sub", "bench", "--email", "bench@example.com", "--scope", "check"]
    tok_help = _cli(["token", "--help"], env)
    if "--data-dir" in tok_help.stdout:
        token_args += ["--data-dir", str(data_dir)]

    log = workdir / "rolebook.log"
    proc = _spawn([sys.executable, "-m", "rolebook", *cmd], env, log, ROOT)
    base = f"http://{HOST}:{port}"
    server = Server(
        name=name,
        version="rolebook " + " ".join(a for a in cmd if str(workdir) not in a),
        proc=proc,
        url=f"{base}/v1/check",
        health_url=f"{base}/healthz",
        headers={},
        body=rolebook_body,
        log=log,
        workdir=workdir,
        notes=notes,
    )
    # Mint the token after serve started: a data dir's key may be created by either command.
    if not wait_ready(server):
        tail = log_tail(log)
        server.stop()
        raise NotAvailable(f"rolebook serve did not become ready:\n{tail}")
    tok = _cli(token_args, env)
    token = _token_from(tok.stdout) if tok.returncode == 0 else ""
    if not token:
        server.stop()
        raise NotAvailable(f"`rolebook token` failed: {(tok.stderr or tok.stdout).strip()[-300:]}")
    server.headers = {"Authorization": f"Bearer {token}"}
    return server


def start_floor(http_server: str) -> Server:
    """The constant-answer app on rolebook's HTTP layer and worker settings (bench/floor.py)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "bench.floor", "--server", http_server, "--port", str(port)]
    log = workdir / "floor.log"
    base = f"http://{HOST}:{port}"
    server = Server(
        name=f"floor-{http_server}",
        version=f"constant-answer Falcon app on rolebook's {http_server} layer",
        proc=_spawn(cmd, env, log, ROOT),
        url=f"{base}/v1/check",
        health_url=f"{base}/healthz",
        headers={},
        body=rolebook_body,
        log=log,
        workdir=workdir,
        notes=["constant answer: reads the body, decides nothing"],
        decides=False,
    )
    if not wait_ready(server):
        tail = log_tail(log)
        server.stop()
        raise NotAvailable(f"the floor app on {http_server} did not become ready:\n{tail}")
    return server


# ---------------------------------------------------------------- verification
def post_json(url: str, headers: dict[str, str], body: bytes, conn_cache: dict) -> tuple[int, Any]:
    host, port, path = _split(url)
    assert host == HOST
    conn = conn_cache.get((host, port))
    if conn is None:
        conn = conn_cache[(host, port)] = http.client.HTTPConnection(host, port, timeout=10)
    hdrs = {"Content-Type": "application/json", **headers}
    try:
        conn.request("POST", path, body=body, headers=hdrs)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = conn_cache[(host, port)] = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("POST", path, body=body, headers=hdrs)
        resp = conn.getresponse()
    data = resp.read()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data[:300].decode(errors="replace")


@dataclass
class Verification:
    requests: int
    decisions: int
    agreed: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.decisions > 0 and self.agreed == self.decisions and not self.problems


def verify(
    server: Server, groups: Sequence[Sequence[Check]], sample: int, seed: int
) -> Verification:
    """Send a sample of the bodies and compare every decision with the reference."""
    rng = random.Random(seed)
    picked = rng.sample(list(groups), min(sample, len(groups)))
    conns: dict = {}
    decisions = agreed = 0
    problems: list[str] = []
    deadline = time.monotonic() + 60
    for group in picked:
        if time.monotonic() > deadline or len(problems) >= 5:
            break
        body = json.dumps(server.body(group), separators=(",", ":")).encode()
        status, doc = post_json(server.url, server.headers, body, conns)
        if status != 200:
            problems.append(f"HTTP {status}: {str(doc)[:300]}")
            continue
        effects = parse_effects(doc)
        if len(effects) != len(group):
            problems.append(f"{len(group)} sent, {len(effects)} results: {str(doc)[:300]}")
            continue
        for c, eff in zip(group, effects, strict=True):
            decisions += 1
            got = eff.get(c.action)
            if got is c.expected:
                agreed += 1
            elif len(problems) < 5:
                problems.append(f"{c.role} {c.kind}:{c.action} {c.attr} -> {got}, ref {c.expected}")
    for conn in conns.values():
        conn.close()
    return Verification(len(picked), decisions, agreed, problems)


# ---------------------------------------------------------------- wrk
@dataclass
class WrkRun:
    connections: int
    checks_per_request: int
    requests: int
    seconds: float
    requests_per_s: float
    decisions_per_s: float
    p50_ns: float
    p99_ns: float
    errors: dict[str, int]
    server_cores: float
    wrk_cores: float
    other_cores: float  # the rest of the machine during the run: noise from other processes


def write_bodies(server: Server, groups: Sequence[Sequence[Check]], path: Path) -> None:
    with open(path, "w") as fh:
        for g in groups:
            fh.write(json.dumps(server.body(g), separators=(",", ":")))
            fh.write("\n")


def run_wrk(
    wrk: str,
    server: Server,
    bodies: Path,
    checks_per_request: int,
    connections: int,
    seconds: int,
) -> WrkRun:
    token = server.headers.get("Authorization", "").removeprefix("Bearer ")
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.url,
        "--",
        str(bodies),
        token,
    ]
    out_path = bodies.with_suffix(".wrk.out")
    cpu0 = tree_cpu_seconds(server.proc.pid)
    busy0 = machine_busy_seconds()
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = t0 + seconds + 60
        status = None
        while status is None:  # bounded wait; wait4 gives wrk's own CPU time
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = st
                proc.returncode = os.waitstatus_to_exitcode(st)
                wrk_cpu = ru.ru_utime + ru.ru_stime
            elif time.monotonic() > deadline:
                proc.kill()
                _, st, ru = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(st)
                wrk_cpu = ru.ru_utime + ru.ru_stime
                status = st
            else:
                time.sleep(0.05)
    wall = time.monotonic() - t0
    cpu1 = tree_cpu_seconds(server.proc.pid)
    busy = machine_busy_seconds() - busy0
    text = out_path.read_text(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {text.strip()[-500:]}")
    doc = json.loads(line.removeprefix("WRKJSON "))
    secs = doc["duration_us"] / 1e6
    rps = doc["requests"] / secs if secs else float("nan")
    return WrkRun(
        connections=connections,
        checks_per_request=checks_per_request,
        requests=doc["requests"],
        seconds=secs,
        requests_per_s=rps,
        decisions_per_s=rps * checks_per_request,
        p50_ns=doc["p50_us"] * 1000,
        p99_ns=doc["p99_us"] * 1000,
        errors=doc["errors"],
        server_cores=(cpu1 - cpu0) / secs if secs else float("nan"),
        wrk_cores=wrk_cpu / wall,
        other_cores=max(0.0, (busy - (cpu1 - cpu0) - wrk_cpu) / wall),
    )
