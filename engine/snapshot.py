"""The pipeline (parse → schema → semantics → compile) and the immutable Snapshot it builds.

A Snapshot is every valid policy version in a directory. Reloading builds a
new one and swaps a reference; nothing in a Snapshot changes after it is made.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rolebook.engine.compiler import compile_policy
from rolebook.engine.loader import load_source
from rolebook.engine.model import Policy
from rolebook.engine.problems import PolicyLoadError, PolicyProblem
from rolebook.engine.validate import FILE_NAME, schema_problems, semantic_problems


def policy_files(path: str | Path) -> list[Path]:
    """`policies/<name>/v<N>.yaml` below a directory, or the one file given."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = [p for p in sorted(path.glob("*/v*.y*ml")) if FILE_NAME.match(p.name)]
    return sorted(found, key=lambda p: (p.parent.name, int(FILE_NAME.match(p.name).group(1))))


@dataclass
class Outcome:
    """What the pipeline made of one file, with each stage's time in microseconds."""

    file: str
    policy: Policy | None = None
    problems: list[PolicyProblem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def build(file: str, text: str) -> Outcome:
    """Run the named stages in order; stop at the first stage that finds problems."""
    outcome = Outcome(file)
    source = None

    def parse():
        nonlocal source
        source, problems = load_source(file, text)
        return problems

    stages = (
        ("parse", parse),
        ("schema", lambda: schema_problems(source)),
        ("semantics", lambda: semantic_problems(source)),
        ("compile", lambda: _compile(source, outcome)),
    )
    for name, stage in stages:
        started = time.perf_counter()
        problems = stage()
        outcome.timings[name] = round((time.perf_counter() - started) * 1e6, 1)
        if problems:
            outcome.problems = problems
            return outcome
    return outcome


def _compile(source, outcome: Outcome) -> list[PolicyProblem]:
    outcome.policy, problems = compile_policy(source)
    return problems


def build_files(files: Iterable[Path]) -> list[Outcome]:
    out = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.append(Outcome(str(file), problems=[PolicyProblem(str(file), 1, 1, "$",
                                                             f"cannot read: {exc}", "parse")]))
            continue
        out.append(build(str(file), text))
    return out


class Snapshot:
    """Every loaded policy version, which one is active per name, and a digest of the set."""

    def __init__(self, policies: Iterable[Policy], pins: dict[str, int] | None = None):
        self.versions: dict[str, dict[int, Policy]] = {}
        for policy in policies:
            self.versions.setdefault(policy.name, {})[policy.version] = policy
        pins = pins or {}
        for name, version in pins.items():
            if version not in self.versions.get(name, {}):
                raise PolicyLoadError([PolicyProblem("(configuration)", 1, 1, "$",
                                               f"pinned version {name}@{version} is not loaded",
                                               "configuration")])
        self.active = {n: pins.get(n, max(v)) for n, v in self.versions.items()}
        joined = "\n".join(f"{p.ref} {p.digest}" for p in self.all())
        self.digest = "sha256:" + hashlib.sha256(joined.encode()).hexdigest()
        self.loaded_at = time.time()

    def all(self) -> list[Policy]:
        return [p for name in sorted(self.versions) for _, p in sorted(self.versions[name].items())]

    def get(self, name: str, version: int | None = None) -> Policy:
        """The active version of `name`, or the one asked for; KeyError when not loaded."""
        versions = self.versions[name]
        return versions[self.active[name] if version is None else version]

    def is_active(self, policy: Policy) -> bool:
        return self.active.get(policy.name) == policy.version


def load_snapshot(path: str | Path, pins: dict[str, int] | None = None) -> Snapshot:
    """Build a Snapshot from a directory; any problem in any file fails the whole load."""
    files = policy_files(path)
    if not files:
        raise PolicyLoadError([PolicyProblem(str(path), 1, 1, "$", "no policy files found "
                                       "(expected <name>/v<N>.yaml)", "parse")])
    outcomes = build_files(files)
    problems = [p for o in outcomes for p in o.problems]
    if problems:
        raise PolicyLoadError(problems)
    return Snapshot((o.policy for o in outcomes), pins)
