"""Turn a condition tree (policy data) into type-checked Python closures, once.

Every compiled node keeps its closure, its operator and its children, so
`explain` can walk the same closures node by node. A closure takes `(pid, rid,
attr)`; principal role and rank are bound at compile time because plans are
built per role. Every node also carries the same test as a Python expression
over already-checked facts (`expr`, with the attributes it reads in `facts`),
from which `engine.codegen` writes one function per plan: the fast path when
every fact is present and well typed.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rolebook.engine.problems import did_you_mean

Getter = Callable[[str, object, dict], object]

COMPARISONS = {
    "eq": (operator.eq, "=="), "ne": (operator.ne, "!="),
    "lt": (operator.lt, "<"), "le": (operator.le, "<="),
    "gt": (operator.gt, ">"), "ge": (operator.ge, ">="),
}
ORDERED = {"lt", "le", "gt", "ge"}
_RANK = re.compile(r"^rank\((.+)\)$")
_REFERENCE_PREFIXES = ("principal.", "resource.", "membership.", "rank(")

# What a fact of each declared type must be, as a Python test of `{v}`: written once, read by
# the generated code (engine.codegen) and compiled here into the closures' own checks.
FACT_CHECKS = {
    "role": "{v}.__class__ is str and {v} in RANKS",
    "integer": "{v}.__class__ is int",
    "boolean": "{v}.__class__ is bool",
    "string": "{v}.__class__ is str",
}
_FACT_TESTS = {kind: eval(f"lambda v, RANKS: {test.format(v='v')}")
               for kind, test in FACT_CHECKS.items()}


class Unevaluable(Exception):
    """A fact a condition needs is missing or ill-typed; the rule fails closed."""


@dataclass
class Scope:
    """What names a condition may use, and the principal it is compiled for."""

    attributes: dict[str, str]
    ranks: dict[str, int]
    membership: dict[str, object]
    role: str | None = None
    rank: int | None = None


@dataclass
class Operand:
    type: str  # string | integer | boolean | role
    text: str
    get: Getter
    constant: bool = False
    value: object = None
    expr: str = ""  # the value as a Python expression (see module docstring)
    facts: frozenset = frozenset()  # (attribute, type) pairs read; "resource.id" if the id is


@dataclass
class Node:
    op: str
    text: str
    fn: Callable[[str, object, dict], bool]
    children: list[Node] = field(default_factory=list)
    expr: str = ""
    facts: frozenset = frozenset()


def fact_variable(name: str) -> str:
    """The generated code's local name for an attribute's value."""
    return "v_" + (name if name.isidentifier() else name.encode().hex())


class ConditionError(Exception):
    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


def compile_condition(data: dict, path: tuple, scope: Scope) -> Node:
    """Compile one condition tree; raise ConditionError at the first bad name or type."""
    ((op, arg),) = data.items()
    here = (*path, op)
    if op in ("all", "any"):
        kids = [compile_condition(c, (*here, i), scope) for i, c in enumerate(arg)]
        return _boolean(op, kids)
    if op == "not":
        kid = compile_condition(arg, here, scope)
        inner = kid.fn
        return Node("not", f"not ({kid.text})", lambda p, r, a: not inner(p, r, a), [kid],
                    f"(not {kid.expr})", kid.facts)
    if op == "in":
        return _membership_test(arg, here, scope)
    return _comparison(op, arg, here, scope)


def operands(data: dict) -> Iterator[object]:
    """Every operand of a condition tree in order, as written (`in` lists item by item, as
    `{"literal": item}`): what `engine.diff` reads to choose the values worth trying."""
    ((op, arg),) = data.items()
    if op in ("all", "any"):
        for child in arg:
            yield from operands(child)
    elif op == "not":
        yield from operands(arg)
    elif op == "in":
        yield arg[0]
        yield from ({"literal": item} for item in arg[1])
    else:
        yield from arg


def is_reference(raw: object) -> bool:
    """A name (`principal.id`, `rank(...)`, ...) rather than a literal."""
    return isinstance(raw, str) and raw.startswith(_REFERENCE_PREFIXES)


def rank_argument(ref: str) -> str | None:
    """`x` of `rank(x)`; None for any other reference."""
    match = _RANK.match(ref)
    return match.group(1).strip() if match else None


def _boolean(op: str, kids: list[Node]) -> Node:
    fns = tuple(k.fn for k in kids)
    joiner = " and " if op == "all" else " or "
    text = joiner.join(f"({k.text})" if k.op in ("all", "any") else k.text for k in kids)
    expr = "(" + joiner.join(k.expr for k in kids) + ")"
    facts = frozenset().union(*(k.facts for k in kids))
    if len(fns) == 1:
        return Node(op, text, fns[0], kids, expr, facts)
    test = all if op == "all" else any
    return Node(op, text, lambda p, r, a: test(f(p, r, a) for f in fns), kids, expr, facts)


def _comparison(op: str, pair: list, path: tuple, scope: Scope) -> Node:
    left = operand(pair[0], (*path, 0), scope)
    right = operand(pair[1], (*path, 1), scope)
    _check_types(op, left, right, path, scope)
    compare, symbol = COMPARISONS[op]
    text = f"{left.text} {symbol} {right.text}"
    lget, rget = left.get, right.get
    return Node(op, text, lambda p, r, a: compare(lget(p, r, a), rget(p, r, a)),
                expr=f"({left.expr} {symbol} {right.expr})", facts=left.facts | right.facts)


def _membership_test(arg: list, path: tuple, scope: Scope) -> Node:
    left = operand(arg[0], (*path, 0), scope)
    values = []
    for i, raw in enumerate(arg[1]):
        item = operand({"literal": raw}, (*path, 1, i), scope)
        _check_types("eq", left, item, (*path, 1, i), scope)
        values.append(raw)
    choices = frozenset(values)
    get = left.get
    text = f"{left.text} in [{', '.join(_literal_text(v) for v in values)}]"
    listed = "".join(f"{v!r}, " for v in values)
    return Node("in", text, lambda p, r, a: get(p, r, a) in choices,
                expr=f"({left.expr} in ({listed}))", facts=left.facts)


def _check_types(op: str, left: Operand, right: Operand, path: tuple, scope: Scope) -> None:
    if op in ORDERED:
        for side in (left, right):
            if side.type != "integer":
                hint = " (compare roles with rank(...))" if side.type == "role" else ""
                raise ConditionError(
                    path, f"'{op}' orders integers, but {side.text} is a {side.type}{hint}"
                )
        return
    types = {left.type, right.type}
    if types == {"role", "string"}:
        literal = right if right.type == "string" else left
        if not literal.constant:
            raise ConditionError(path, f"cannot compare role {left.text} with string {right.text}")
        if literal.value not in scope.ranks:
            raise ConditionError(path, f"undefined role {literal.value!r}"
                                       f"{did_you_mean(literal.value, scope.ranks)}")
        literal.type = "role"
        return
    if left.type != right.type:
        raise ConditionError(
            path, f"cannot compare {left.text} ({left.type}) with {right.text} ({right.type})"
        )


def _literal_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _constant(kind: str, value: object, text: str | None = None) -> Operand:
    return Operand(kind, text or _literal_text(value), lambda p, r, a: value, True, value,
                   repr(value))


def operand(raw: object, path: tuple, scope: Scope) -> Operand:
    """Resolve a reference or literal to a typed getter."""
    if isinstance(raw, dict):
        raw = raw["literal"]
        return _constant(_type_of(raw), raw)
    if is_reference(raw):
        return _reference(raw, path, scope)
    return _constant(_type_of(raw), raw)


def _type_of(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "integer" if isinstance(value, int) else "string"


def _reference(ref: str, path: tuple, scope: Scope) -> Operand:
    inner = rank_argument(ref)
    if inner is not None:
        return _rank_of(inner, ref, path, scope)
    if ref == "principal.id":
        return Operand("string", ref, lambda p, r, a: p, expr="p")
    if ref == "principal.role":
        return _constant("role", scope.role, ref)
    if ref == "principal.rank":
        return _constant("integer", scope.rank, ref)
    if ref == "resource.id":
        def get_id(p, r, a):
            if r is None:
                raise Unevaluable("the resource id is missing")
            return r
        return Operand("string", ref, get_id, expr="r", facts=frozenset({"resource.id"}))
    if ref.startswith("membership."):
        setting = ref.removeprefix("membership.")
        if setting not in scope.membership:
            raise ConditionError(path, f"unknown membership setting {setting!r}"
                                       f"{did_you_mean(setting, scope.membership)}")
        value = scope.membership[setting]
        kind = "role" if setting == "owner_role" else _type_of(value)
        return _constant(kind, value, ref)
    if ref.startswith("resource.attr."):
        return _attribute(ref.removeprefix("resource.attr."), ref, path, scope)
    known = ("principal.id", "principal.role", "principal.rank", "resource.id",
             *(f"resource.attr.{name}" for name in scope.attributes),
             *(f"membership.{name}" for name in scope.membership))
    raise ConditionError(path, f"unknown reference {ref!r}{did_you_mean(ref, known)}")


def _attribute(name: str, ref: str, path: tuple, scope: Scope) -> Operand:
    if name not in scope.attributes:
        hint = did_you_mean(name, scope.attributes) or " (declare it under attributes)"
        raise ConditionError(path, f"undefined attribute {name!r}{hint}")
    kind = scope.attributes[name]
    ranks, valid = scope.ranks, _FACT_TESTS[kind]
    wrong = "is not a role of this policy" if kind == "role" else f"is not a {kind}"

    def get(p, r, a):
        try:
            value = a[name]
        except (KeyError, TypeError):
            raise Unevaluable(f"attribute {name} is missing") from None
        if not valid(value, ranks):
            raise Unevaluable(f"attribute {name} {wrong}")
        return value
    return Operand(kind, ref, get, expr=fact_variable(name), facts=frozenset({(name, kind)}))


def _rank_of(inner: str, ref: str, path: tuple, scope: Scope) -> Operand:
    ranks = scope.ranks
    if not is_reference(inner):
        if inner not in ranks:
            raise ConditionError(path, f"undefined role {inner!r} in {ref}"
                                       f"{did_you_mean(inner, ranks)}")
        return _constant("integer", ranks[inner], ref)
    target = _reference(inner, path, scope)
    if target.type != "role":
        raise ConditionError(path, f"rank() takes a role, but {inner} is a {target.type}")
    if target.constant:
        return _constant("integer", ranks[target.value], ref)
    get = target.get
    return Operand("integer", ref, lambda p, r, a: ranks[get(p, r, a)],
                   expr=f"RANKS[{target.expr}]", facts=target.facts)
