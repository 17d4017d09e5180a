"""Install the benchmark's own extras when they are missing. None is a runtime dependency.

- ``cedarpy`` and ``casbin`` with pip, into the running interpreter's environment;
- ``wrk`` with ``apt-get install -y wrk`` (only when running as root);
- the Cerbos PDP binary from the npm package ``@cerbos/cerbos-linux-x64`` into
  ``bench/.tools/`` (gitignored) with ``npm install --prefix bench/.tools``.

Every step is bounded by a timeout; a failure is reported and the part that needs the extra
is skipped, the rest of the benchmark still runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
PIP_EXTRAS = {"cedarpy": "cedarpy>=4.12", "casbin": "casbin>=1.43"}
CERBOS_PACKAGE = "@cerbos/cerbos-linux-x64@0.55.0"
CERBOS_BIN = TOOLS / "node_modules" / "@cerbos" / "cerbos-linux-x64" / "cerbos-linux-x64"


def _run(cmd: list[str], timeout: float) -> tuple[bool, str]:
    print(f"  $ {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return proc.returncode == 0, "\n".join(tail)


def ensure_pip() -> dict[str, str]:
    missing = [spec for mod, spec in PIP_EXTRAS.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return {}
    print(f"installing Python extras into {sys.prefix}: {', '.join(missing)}", flush=True)
    ok, out = _run([sys.executable, "-m", "pip", "install", "-q", *missing], timeout=600)
    importlib.invalidate_caches()
    if not ok:
        return {"pip": f"pip install failed: {out}"}
    return {}


def ensure_wrk() -> str | None:
    """Path to wrk, installing it with apt-get when missing and root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("wrk is missing and we are not root (or have no apt-get): HTTP part skipped")
        return None
    print("installing wrk with apt-get", flush=True)
    ok, _ = _run(["apt-get", "install", "-y", "-q", "wrk"], timeout=600)
    if not ok:  # a fresh machine may need the package lists first
        _run(["apt-get", "update", "-q"], timeout=600)
        _run(["apt-get", "install", "-y", "-q", "wrk"], timeout=600)
    return shutil.which("wrk")


def ensure_cerbos() -> Path | None:
    """Path to the Cerbos PDP binary, installing the npm package into bench/.tools."""
    if CERBOS_BIN.is_file() and os.access(CERBOS_BIN, os.X_OK):
        return CERBOS_BIN
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        print(f"{CERBOS_PACKAGE} is for linux-x64 only: Cerbos skipped")
        return None
    npm = shutil.which("npm")
    if not npm:
        print("npm is missing: Cerbos skipped")
        return None
    print(f"installing {CERBOS_PACKAGE} into {TOOLS}", flush=True)
    TOOLS.mkdir(exist_ok=True)
    ok, out = _run(
        [npm, "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", CERBOS_PACKAGE],
        timeout=900,
    )
    if not ok:
        print(f"npm install failed: {out}")
    return CERBOS_BIN if CERBOS_BIN.is_file() else None


def tool_version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"
