"""The fast check of request bodies and query strings (jsonschema-rs) agrees with the judge
(jsonschema, Draft 2020-12, with its format checker) on every schema of openapi.yaml.

Bodies shaped like each schema (valid ones, wrong types, bad lengths, missing or extra keys,
odd whitespace, leap seconds, arbitrary JSON anywhere) get the same verdict from both.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rolebook.api import contract, request_params

COMPONENTS = sorted(contract.openapi()["components"]["schemas"])
QUERIES = sorted((path, method) for path, item in contract.openapi()["paths"].items()
                 for method in item if method != "parameters"
                 and request_params.query_schema(path, method)["properties"])
ODD = ["", " ", "\x1c", "\x1f", "\x85", "\ufeff", "\u00a0", "a", "x" * 64, "x" * 65, "y" * 257,
       "2016-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "2026-12-03T10:40:01Z",
       "2026-12-03T10:40:01.5+01:00", "a@example.com", "a@@b", "sha256:" + "0" * 64]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([
    0.0, 1.0, 1.5, -1.0, 2.0 ** 70, 2 ** 70, -(2 ** 64)]), st.text(max_size=3),
    st.sampled_from(ODD))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6)


def shaped(schema: dict) -> st.SearchStrategy:
    """Values that mostly follow `schema` (so the interesting checks run) and sometimes not."""
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind or []
    options = [JSON]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "string" in kinds:
        low, high = schema.get("minLength", 0), schema.get("maxLength", 8)
        options.append(st.text(min_size=max(0, low - 1), max_size=min(high + 1, 300)))
        options.append(st.sampled_from(ODD))
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


@pytest.mark.parametrize("component", COMPONENTS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bodies_get_the_judges_verdict(component, data):
    schema = contract.inline(contract.openapi()["components"]["schemas"][component])
    body = data.draw(st.one_of(shaped(schema), JSON))
    expected = not list(contract.validator(component).iter_errors(body))
    assert contract.accepts(component)(body) is expected, body


@pytest.mark.parametrize(("path", "method"), QUERIES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_query_strings_get_the_judges_verdict(path, method, data):
    fast, describe = request_params.query_checks(path, method)
    query = data.draw(objects(request_params.query_schema(path, method)))
    assert fast.is_valid(query) is not list(describe.iter_errors(query)), query


@given(name=st.sampled_from(ODD))
@example(name="\x1c")
@example(name="\ufeff")
def test_whitespace_is_pythons_in_patterns(name):
    """An account name needs a non-space character, as Python's re reads `\\S`."""
    body = {"name": name}
    assert contract.accepts("AccountCreate")(body) is not list(
        contract.validator("AccountCreate").iter_errors(body))


def test_a_leap_second_is_refused_as_the_judge_refuses_it():
    body = {"policy": "convert", "version": 1, "since": "2016-12-31T23:59:60Z"}
    assert not contract.accepts("ImpactRequest")(body)
    assert list(contract.validator("ImpactRequest").iter_errors(body))
