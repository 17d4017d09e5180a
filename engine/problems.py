"""The one error shape every pipeline stage reports: where, what, and which stage found it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, declared: Iterable[str]) -> str:
    """` (did you mean 'edit'?)` when a declared name is close to a mistyped one, else ''."""
    close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int
    column: int
    path: str
    message: str
    stage: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message} [{self.stage}]"

    def as_dict(self) -> dict:
        return {
            "file": self.file, "line": self.line, "column": self.column,
            "path": self.path, "message": self.message, "stage": self.stage,
        }


class PolicyLoadError(Exception):
    """Raised when a policy set cannot be built; carries every problem found."""

    def __init__(self, problems: list[PolicyProblem]):
        self.problems = list(problems)
        head = str(self.problems[0]) if self.problems else "no policy found"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(head + more)
