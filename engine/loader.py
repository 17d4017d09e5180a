"""Read policy YAML into plain data plus a map of JSON paths to source positions.

PyYAML's safe loader loses line numbers and silently keeps the last of two
duplicate keys; validation needs both, so we walk the composed node tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from rolebook.engine.problems import PolicyProblem

Path = tuple[str | int, ...]
# libyaml parses a policy ten times faster than PyYAML's Python parser (2 ms, not 23), with
# the same marks; PyYAML without libyaml still works.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Source:
    """One policy file: its bytes, parsed data and where each value sits."""

    file: str
    text: str
    data: object = None
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)  # of the key

    def where(self, path: Path) -> tuple[int, int]:
        """The line and column of the nearest located ancestor of `path` (1-based)."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.positions:
                return self.positions[path[:cut]]
        return (1, 1)

    def problem(self, path: Path, message: str, stage: str,
                at_key: bool = False) -> PolicyProblem:
        """`at_key`: point at the last key of `path` itself rather than at its value."""
        line, col = self.key_positions.get(path) if at_key and path in self.key_positions \
            else self.where(path)
        return PolicyProblem(self.file, line, col, json_path(path),
                             self._rule_named(path) + message, stage)

    def _rule_named(self, path: Path) -> str:
        """`rule '<its name>': ` for a problem inside a rule: people know
        their rules by name, not by index."""
        if len(path) < 4 or path[0] != "resources" or path[2] != "rules" or path[4:] == ("name",):
            return ""  # outside a rule, or about the name itself
        try:
            name = self.data["resources"][path[1]]["rules"][path[3]]["name"]
        except (KeyError, IndexError, TypeError):
            return ""
        return f"rule {name!r}: " if isinstance(name, str) else ""


def json_path(path: Path) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_source(file: str, text: str) -> tuple[Source, list[PolicyProblem]]:
    """Parse `text`; on a YAML error return the problem instead of raising."""
    source = Source(file, text)
    loader = _Loader(text)
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
        problems.append(PolicyProblem(file, line, col, "$", yaml_sentence(exc, text), "parse"))
    finally:
        loader.dispose()
    return source, problems


# The parser's words for the mistakes people make, and what they mean in a policy file
# (libyaml's wording, then PyYAML's where it differs).
_YAML_SENTENCES = (
    (("mapping values are not allowed",),
     "a ':' YAML did not expect: is this line indented deeper than the key above it, "
     "or does a value contain ': ' without quotes?"),
    (("did not find expected key", "did not find expected '-' indicator", "expected <block end>"),
     "this line's indentation matches no key or list above it: align it with its siblings"),
    (("found unexpected end of stream",), "a quote is opened and never closed"),
    (("expected ',' or ']'",), "a [ list ] is never closed"),
    (("expected ',' or '}'",), "a { mapping } is never closed"),
)


def yaml_sentence(exc: yaml.YAMLError, text: str) -> str:
    problem = str(getattr(exc, "problem", None) or exc)
    mark = getattr(exc, "problem_mark", None)
    if mark is not None and text[mark.index:mark.index + 1] == "\t":
        return f"not valid YAML: a tab: YAML indents with spaces only ({problem})"
    for starts, sentence in _YAML_SENTENCES:
        if any(start in problem for start in starts):
            return f"not valid YAML: {sentence} (the YAML parser says: {problem})"
    return f"not valid YAML: {problem}"


def _build(loader, node, path: Path, source: Source, problems: list[PolicyProblem]):
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            source.key_positions[(*path, key)] = (key_node.start_mark.line + 1,
                                                  key_node.start_mark.column + 1)
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
