"""The compiled request-schema predicates agree with jsonschema on every body.

Contract: for each request schema of openapi.yaml that `api.schema_code`
compiles, bodies shaped like the schema (from valid ones to ones with wrong
types, bad lengths, missing or extra keys, and arbitrary JSON anywhere) get
the same verdict from the predicate as from jsonschema's Draft 2020-12
validator; schemas outside the supported subset are not compiled.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebook.api import contract
from rolebook.api.schema_code import compile_predicate

COMPONENTS = sorted(contract.openapi()["components"]["schemas"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([
    0.0, 1.0, 1.5, -1.0, 2.0 ** 70]), st.text(max_size=3), st.sampled_from(["", "x" * 64,
                                                                             "x" * 65, "y" * 257]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6)


def shaped(schema: dict) -> st.SearchStrategy:
    """Values that mostly follow `schema` (so the interesting checks run) and sometimes not."""
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind or []
    options = [JSON]
    if "string" in kinds:
        low, high = schema.get("minLength", 0), schema.get("maxLength", 8)
        options.append(st.text(min_size=max(0, low - 1), max_size=min(high + 1, 300)))
    if "integer" in kinds or "number" in kinds:
        low = schema.get("minimum", -3)
        options.append(st.one_of(st.integers(low - 2, low + 3), st.just(float(low))))
    if "array" in kinds:
        item = shaped(schema.get("items", {}))
        options.append(st.lists(item, min_size=max(0, schema.get("minItems", 0) - 1),
                                max_size=min(schema.get("maxItems", 3) + 1, 4)))
    if "object" in kinds:
        options.append(objects(schema))
    return st.one_of(*options)


@st.composite
def objects(draw, schema: dict) -> dict:
    out = {}
    for name, sub in schema.get("properties", {}).items():
        if (name in schema.get("required", []) and draw(st.integers(0, 9))) or draw(st.booleans()):
            out[name] = draw(shaped(sub))
    extra = schema.get("additionalProperties", True)
    if draw(st.integers(0, 4)) == 0:
        out[draw(st.text(max_size=4))] = draw(shaped(extra) if isinstance(extra, dict) else JSON)
    return out


def compiled() -> list[str]:
    return [c for c in COMPONENTS
            if compile_predicate(contract.inline(contract.openapi()["components"]["schemas"][c]))]


def test_the_hot_request_bodies_are_compiled():
    assert {"CheckRequest", "MemberUpdate", "AcceptRequest"} <= set(compiled())


@pytest.mark.parametrize("component", compiled())
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_predicate_agrees_with_jsonschema(component, data):
    schema = contract.inline(contract.openapi()["components"]["schemas"][component])
    body = data.draw(st.one_of(shaped(schema), JSON))
    expected = not list(contract.validator(component).iter_errors(body))
    assert compile_predicate(schema)(body) is expected, body


def test_schemas_outside_the_subset_are_left_to_fastjsonschema():
    assert compile_predicate({"type": "string", "format": "email"}) is None
    assert compile_predicate({"type": "object", "properties": {"a": {"pattern": "x"}}}) is None
    assert compile_predicate({"anyOf": [{"type": "string"}]}) is None
