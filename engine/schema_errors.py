"""What is wrong with a refused JSON document, at a bounded cost.

jsonschema writes the whole offending value into each message (`{instance!r}`), checks every
item of an over-long array, and yields one error per bad item: a hostile 1 MB body of
500,000 wrong items took 35 s and answered 1.5 MB while every error was collected and
sorted, and a value nested 1,000 deep made `repr` raise RecursionError (a 500). Here each
keyword sees the value behind a proxy whose `repr` is an excerpt (reprlib's), arrays are
checked item by item only up to their schema's `maxItems` (the length is already an
error), and the walk stops at the first `limit` errors. Shared by the HTTP contract and the
offline `rolebook check`; the fast path that accepts valid bodies never comes here.
"""

from __future__ import annotations

import heapq
import reprlib
from functools import cache
from itertools import islice

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

MAX_ERRORS = 20
MAX_MESSAGE = 200  # e.g. additionalProperties lists every unexpected key
MAX_DEPTH = 254  # orjson's own limit, checked at C speed; repr and comparisons stay far from
# Python's recursion limit below it
_EXCERPT = reprlib.Repr()  # keyword arguments only from Python 3.12
_EXCERPT.maxlevel, _EXCERPT.maxlist, _EXCERPT.maxdict = 3, 4, 4
_EXCERPT.maxstring = _EXCERPT.maxother = 40
_ITEM_KEYWORDS = ("items", "prefixItems", "contains", "uniqueItems")


class _List(list):
    def __repr__(self) -> str:
        return _EXCERPT.repr_list(self, _EXCERPT.maxlevel)


class _Dict(dict):
    def __repr__(self) -> str:
        return _EXCERPT.repr_dict(self, _EXCERPT.maxlevel)


class _Str(str):
    def __repr__(self) -> str:
        return _EXCERPT.repr_str(self, _EXCERPT.maxlevel)


def _excerpted(instance: object) -> object:
    if isinstance(instance, list):
        return _List(instance)
    if isinstance(instance, dict):
        return _Dict(instance)
    if isinstance(instance, str) and len(instance) > _EXCERPT.maxstring:
        return _Str(instance)
    return instance


def _bounded(name: str, keyword):
    def check(validator, value, instance, schema):
        limit = schema.get("maxItems") if name in _ITEM_KEYWORDS else None
        if isinstance(instance, list) and isinstance(limit, int) and len(instance) > limit:
            instance = instance[:limit]
        yield from keyword(validator, value, _excerpted(instance), schema)
    return check


def _closed_object(keyword):
    """`additionalProperties: false` without patterns names at most a few unexpected keys;
    jsonschema sorts and quotes every one of them (100,000 keys: 190 ms)."""
    def check(validator, allowed, instance, schema):
        if allowed is not False or "patternProperties" in schema or not isinstance(
                instance, dict):
            yield from keyword(validator, allowed, instance, schema)
            return
        extra = set(instance) - set(schema.get("properties", {}))
        if extra:
            named = ", ".join(repr(name) for name in heapq.nsmallest(5, extra))
            more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
            yield ValidationError(f"Additional properties are not allowed ({named}{more} "
                                  f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    return check


@cache
def bounded_validator_class():
    """Draft 2020-12 with every keyword bounded as the module says."""
    keywords = {name: _bounded(name, keyword)
                for name, keyword in Draft202012Validator.VALIDATORS.items()}
    keywords["additionalProperties"] = _closed_object(keywords["additionalProperties"])
    return extend(Draft202012Validator, keywords)


def too_deep(document: object) -> bool:
    import orjson  # only refused documents come here; `rolebook policy` never does

    try:
        orjson.dumps(document)
    except orjson.JSONEncodeError:
        return True
    return False


def field_of(error, root: str) -> str:
    """`resources[0].actions`: where the error is, or the key missing or unknown there."""
    path = list(error.absolute_path)
    if error.validator == "required":
        path += [name for name in error.validator_value if name not in error.instance][:1]
    elif error.validator == "additionalProperties":
        extra = set(error.instance) - set(error.schema.get("properties", {}))
        path += [min(extra)] if extra else []
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


def first_errors(validator, document: object, root: str, limit: int = MAX_ERRORS,
                 by_path: bool = False) -> list[dict[str, str]]:
    """Up to `limit` errors as {field, message}, in the schema's order or sorted `by_path`;
    [] if there are none. `validator` is an instance of `bounded_validator_class()`."""
    if too_deep(document):
        return [{"field": root, "message": f"nested more than {MAX_DEPTH} levels deep"}]
    errors = list(islice(validator.iter_errors(document), limit))
    if by_path:
        errors.sort(key=lambda error: [(isinstance(part, str), part)
                                       for part in error.absolute_path])
    return [{"field": field_of(error, root), "message": _cut(error.message)} for error in errors]


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else f"{message[:MAX_MESSAGE - 1]}…"
