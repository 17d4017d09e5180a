"""The engine stands alone: it imports nothing from the API or storage, nor their libraries, so
the policy tools and embedders load it without a web framework or a database."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("rolebook.api", "rolebook.storage", "falcon", "pony", "jwt", "waitress",
             "psycopg2", "prometheus_client")


def imported_modules(file: Path) -> list[str]:
    """Every module (or module.name) a file imports, at any depth: in functions and
    TYPE_CHECKING blocks too. A relative import is inside the engine at level 1, an escape
    beyond it (kept with its dots)."""
    out = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                module = f"rolebook.engine.{module}".rstrip(".")
            elif node.level > 1:
                module = "." * node.level + module
            out += [f"{module}.{alias.name}" for alias in node.names]
    return out


def forbidden(module: str) -> bool:
    inside_rolebook = module == "rolebook" or module.startswith("rolebook.")
    in_engine = module == "rolebook.engine" or module.startswith("rolebook.engine.")
    return (inside_rolebook and not in_engine) or module.startswith(".") or any(
        module == f or module.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize("file", sorted(ENGINE.glob("*.py")), ids=lambda f: f.name)
def test_no_engine_module_imports_the_api_or_storage(file):
    assert [m for m in imported_modules(file) if forbidden(m)] == []


def test_the_checker_sees_what_it_must_refuse(tmp_path):
    escapes = tmp_path / "escapes.py"
    escapes.write_text("import falcon\nfrom rolebook import api\nfrom ..storage import Store\n"
                       "def late():\n    from rolebook.api.contract import body\n"
                       "from . import model\nfrom rolebook.engine import Policy\n")
    assert [m for m in imported_modules(escapes) if forbidden(m)] == [
        "falcon", "rolebook.api", "..storage.Store", "rolebook.api.contract.body"]


def test_importing_every_engine_module_loads_no_api_storage_or_service_library():
    probe = (
        "import pkgutil, sys, importlib, rolebook.engine\n"
        "for info in pkgutil.iter_modules(rolebook.engine.__path__, 'rolebook.engine.'):\n"
        "    importlib.import_module(info.name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))\n"
        "print(len([m for m in sys.modules if m.startswith('rolebook.engine.')]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    loaded, engine_modules = done.stdout.strip().splitlines()
    assert loaded == "[]", done.stderr
    assert int(engine_modules) == len(list(ENGINE.glob("*.py"))) - 1  # all but __init__
