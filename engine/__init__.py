"""rolebook's policy engine: load, validate, compile and evaluate policy files.

Pure: no I/O beyond reading policy files, and no import from `api` or `storage`.
"""

from rolebook.engine.decision import Decision
from rolebook.engine.evaluate import Policy
from rolebook.engine.problems import PolicyLoadError, Problem
from rolebook.engine.snapshot import Snapshot, build, build_files, load_snapshot, policy_files

__all__ = [
    "Decision", "Policy", "PolicyLoadError", "Problem", "Snapshot",
    "build", "build_files", "load_snapshot", "policy_files",
]
