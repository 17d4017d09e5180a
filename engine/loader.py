"""Read policy YAML into plain data plus a map of JSON paths to source positions.

PyYAML's safe loader loses line numbers and silently keeps the last of two
duplicate keys; validation needs both, so we walk the composed node tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from rolebook.engine.problems import PolicyProblem

Path = tuple[str | int, ...]


@dataclass
class Source:
    """One policy file: its bytes, parsed data and where each value sits."""

    file: str
    text: str
    data: object = None
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path) -> tuple[int, int]:
        """The line and column of the nearest located ancestor of `path` (1-based)."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.positions:
                return self.positions[path[:cut]]
        return (1, 1)

    def problem(self, path: Path, message: str, stage: str) -> PolicyProblem:
        line, col = self.where(path)
        return PolicyProblem(self.file, line, col, json_path(path), message, stage)


def json_path(path: Path) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_source(file: str, text: str) -> tuple[Source, list[PolicyProblem]]:
    """Parse `text`; on a YAML error return the problem instead of raising."""
    source = Source(file, text)
    loader = yaml.SafeLoader(text)
    problems: list[PolicyProblem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(PolicyProblem(file, 1, 1, "$", "the file is empty", "parse"))
            return source, problems
        source.data = _build(loader, node, (), source, problems)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(PolicyProblem(file, line, col, "$", f"not valid YAML: {exc}", "parse"))
    finally:
        loader.dispose()
    return source, problems


def _build(loader, node, path: Path, source: Source, problems: list[PolicyProblem]):
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                line = key_node.start_mark.line + 1
                problems.append(
                    PolicyProblem(source.file, line, key_node.start_mark.column + 1,
                            json_path((*path, key)), f"duplicate key {key!r}", "parse")
                )
            out[key] = _build(loader, value_node, (*path, key), source, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = enumerate(node.value)
        return [_build(loader, item, (*path, i), source, problems) for i, item in items]
    return loader.construct_object(node, deep=True)
