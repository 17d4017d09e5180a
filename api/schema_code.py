"""JSON Schema to one Python predicate, for the request bodies on the hot path.

fastjsonschema spent ~3 us on each resource of a `/v1/check` body (a set of
keys, a formatted name and several type tests per object): a quarter of a
50-check request. The bodies we accept use a small part of JSON Schema, so
this writes one function per schema for exactly that part and answers only
yes or no; a "no" is then explained, field by field, by jsonschema, which is
also the judge: a body jsonschema accepts is accepted whatever this says. A
schema with any keyword outside SUPPORTED is not compiled here (`None`), and
fastjsonschema serves it. A property test holds both to the same verdicts.

Types are tested by exact class, as orjson builds them: JSON has no other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

SUPPORTED = frozenset({
    "type", "minLength", "maxLength", "minimum", "maximum", "required", "properties",
    "additionalProperties", "minProperties", "maxProperties", "items", "minItems", "maxItems",
    "description", "title", "examples",
})
TYPES = {
    "string": "{v}.__class__ is str",
    "integer": "({v}.__class__ is int or ({v}.__class__ is float and {v}.is_integer()))",
    "number": "({v}.__class__ is int or {v}.__class__ is float)",
    "boolean": "{v}.__class__ is bool",
    "null": "{v} is None",
    "object": "{v}.__class__ is dict",
    "array": "{v}.__class__ is list",
}
_MISSING = object()


def compile_predicate(schema: dict) -> Callable[[object], bool] | None:
    """A function telling whether a JSON value matches `schema`; None if out of our subset."""
    if not _supported(schema):
        return None
    names: dict[str, object] = {"MISSING": _MISSING}
    lines = ["def accepts(v0):"]
    _node(schema, "v0", 1, lines, names, itertools.count(1))
    lines.append("    return True")
    exec(compile("\n".join(lines), "<request schema>", "exec"), names)
    return names["accepts"]  # type: ignore[return-value]


def _supported(schema: object) -> bool:
    if not isinstance(schema, dict) or not set(schema) <= SUPPORTED:
        return False
    types = schema.get("type", "string")
    if not all(t in TYPES for t in ([types] if isinstance(types, str) else types)):
        return False
    if not isinstance(schema.get("additionalProperties", True), bool | dict):
        return False
    if not isinstance(schema.get("items", {}), dict):
        return False
    children = [*schema.get("properties", {}).values()]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    return all(_supported(c) for c in children)


def _node(schema: dict, v: str, depth: int, lines: list, names: dict, ids) -> None:
    pad = "    " * depth

    def fail_if(test: str) -> None:
        lines.append(f"{pad}if {test}:")
        lines.append(f"{pad}    return False")

    types = schema.get("type")
    listed = [types] if isinstance(types, str) else types or []
    if listed:
        fail_if("not (" + " or ".join(TYPES[t].format(v=v) for t in listed) + ")")

    def guarded(kind: str) -> str:
        """A block that runs only when v is of `kind` (keywords of other types are moot)."""
        if listed == [kind] or (kind == "number" and listed in (["integer"], ["number"])):
            return pad  # the type test above already returned for anything else
        lines.extend((f"{pad}if {TYPES[kind].format(v=v)}:", f"{pad}    pass"))
        return pad + "    "
    if "minLength" in schema or "maxLength" in schema:
        inner = guarded("string")
        _bounds(f"len({v})", schema.get("minLength"), schema.get("maxLength"), inner, lines)
    if "minimum" in schema or "maximum" in schema:
        inner = guarded("number")
        _bounds(v, schema.get("minimum"), schema.get("maximum"), inner, lines)
    if {"required", "properties", "additionalProperties", "minProperties",
            "maxProperties"} & set(schema):
        inner = guarded("object")
        _object(schema, v, len(inner) // 4, lines, names, ids)
    if {"items", "minItems", "maxItems"} & set(schema):
        inner = guarded("array")
        _bounds(f"len({v})", schema.get("minItems"), schema.get("maxItems"), inner, lines)
        if "items" in schema:
            item = f"v{next(ids)}"
            lines += [f"{inner}for {item} in {v}:", f"{inner}    pass"]
            _node(schema["items"], item, len(inner) // 4 + 1, lines, names, ids)


def _bounds(value: str, low, high, pad: str, lines: list) -> None:
    tests = ([f"{value} < {low!r}"] if low is not None else []) + (
        [f"{value} > {high!r}"] if high is not None else [])
    if tests:
        lines += [f"{pad}if {' or '.join(tests)}:", f"{pad}    return False"]


def _object(schema: dict, v: str, depth: int, lines: list, names: dict, ids) -> None:
    """Keywords of an object, at `depth`, where v is known to be a dict."""
    pad = "    " * depth
    properties = schema.get("properties", {})
    known = f"KNOWN{next(ids)}"
    names[known] = frozenset(properties)
    for name in schema.get("required", []):
        lines += [f"{pad}if {name!r} not in {v}:", f"{pad}    return False"]
    _bounds(f"len({v})", schema.get("minProperties"), schema.get("maxProperties"), pad, lines)
    extra = schema.get("additionalProperties", True)
    if extra is False:
        lines += [f"{pad}if not {v}.keys() <= {known}:", f"{pad}    return False"]
    elif isinstance(extra, dict):
        key, value = f"k{next(ids)}", f"v{next(ids)}"
        lines += [f"{pad}for {key}, {value} in {v}.items():",
                  f"{pad}    if {key} not in {known}:", f"{pad}        pass"]
        _node(extra, value, depth + 2, lines, names, ids)
    for name, sub in properties.items():
        value = f"v{next(ids)}"
        lines += [f"{pad}{value} = {v}.get({name!r}, MISSING)",
                  f"{pad}if {value} is not MISSING:", f"{pad}    pass"]
        _node(sub, value, depth + 1, lines, names, ids)
