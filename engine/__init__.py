"""rolebook's policy engine: load, validate, compile and evaluate policy files.

Pure: no I/O beyond reading policy files, and no import from `api` or `storage`.
"""

from rolebook.engine.model import Decision, Membership, Policy
from rolebook.engine.problems import PolicyLoadError, PolicyProblem
from rolebook.engine.snapshot import Snapshot, build, build_files, load_snapshot, policy_files

__all__ = [
    "Decision", "Membership", "Policy", "PolicyLoadError", "PolicyProblem", "Snapshot",
    "build", "build_files", "load_snapshot", "policy_files",
]
