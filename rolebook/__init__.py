"""rolebook: policy-as-data access decisions for multi-user accounts.

In process (the engine, no server)::

    import rolebook
    policies = rolebook.load("policies")
    decision = policies.check("convert", {"id": "u_7", "role": "edit"}, "object", "update")
    decision.allowed, decision.rule, decision.reason

The import names are `rolebook.engine` (load, validate, compile, evaluate), `rolebook.api` (the
HTTP service and its command line) and `rolebook.storage` (accounts, members, invitations); the
folders stay at the repository's top level and setuptools maps them under this one name, so an
installed rolebook never collides with a user's own `api/` or `engine/`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rolebook.engine import Decision, Policy, PolicyLoadError
    from rolebook.policies import Policies, load

__all__ = ["Decision", "Policies", "Policy", "PolicyLoadError", "load"]

# Loaded on first use: `import rolebook.api.cli` (every command) must not pay for the engine.
_LAZY = {
    "Decision": "rolebook.engine",
    "Policy": "rolebook.engine",
    "PolicyLoadError": "rolebook.engine",
    "Policies": "rolebook.policies",
    "load": "rolebook.policies",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'rolebook' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
