"""rolebook as a new user installs it: a wheel built from this checkout, installed into a fresh
virtual environment, used from an empty folder. Only the `rolebook.*` import names are installed;
`rolebook init` writes the shipped example policies; `serve` starts on them; `token` signs with the
server's key; the first `/v1/check` answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.support import live
from tests.support.policies import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; its dependencies come from the test venv's
    site-packages through a path file, so nothing is downloaded and our checkout stays unseen."""
    root = tmp_path_factory.mktemp("installed")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, and the
    # checkout is shared with other test processes.
    source = root / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".*", "var", "build", "*.egg-info", "__pycache__", "bench"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(root / "dist"), str(source)], capture_output=True, text=True,
                           timeout=300)
    if built.returncode:
        pytest.fail(f"building the wheel failed:\n{built.stderr[-3000:]}")
    venv.create(root / "venv", with_pip=False)
    site = next((root / "venv" / "lib").glob("python*/site-packages"))
    ours = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "deps.pth").write_text(f"{ours}\n")
    wheel = next((root / "dist").glob("rolebook-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    return root


def test_the_wheel_installs_one_import_name_and_ships_what_an_installed_service_reads(
        installed):
    site = next((installed / "venv" / "lib").glob("python*/site-packages"))
    tops = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth"))}
    assert "rolebook" in tops and not tops & {"api", "engine", "storage"}
    for shipped in ("py.typed", "api/openapi.yaml", "api/accept_page.html",
                    "engine/policy.schema.json", "examples/convert/v1.yaml",
                    "examples/anytrack/tests/table_test.yaml"):
        assert (site / "rolebook" / shipped).is_file(), shipped


def test_a_new_user_goes_from_init_to_a_first_check(installed, tmp_path):
    program = str(installed / "venv" / "bin" / "python")

    def rolebook(*args):
        return subprocess.run([program, "-m", "rolebook", *args], cwd=tmp_path, text=True,
                              capture_output=True, timeout=60)

    where = subprocess.run([program, "-c", "import rolebook; print(rolebook.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert str(installed) in where.stdout, where.stdout + where.stderr
    assert rolebook("init").returncode == 0
    server = live.start(tmp_path / "var", "--workers", "1", program=(program, "-m", "rolebook"),
                        cwd=tmp_path)
    try:
        minted = rolebook("token", "--sub", "svc", "--email", "svc@example.com",
                          "--scope", "check")
        assert minted.returncode == 0 and "jwt-secret" in minted.stderr
        body = {"principal": {"id": "u_7", "role": "edit"},
                "resources": [{"kind": "object", "id": "42", "actions": ["update"]}]}
        request = urllib.request.Request(
            server.url + "/v1/check", json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {minted.stdout.strip()}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = json.load(resp)
        assert answer["policy"] == "convert"
        assert answer["results"][0]["actions"]["update"]["effect"] == "allow"
    finally:
        server.stop()
