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
from tests.support.json_shapes import JSON, ODD, objects, shaped

COMPONENTS = sorted(contract.openapi()["components"]["schemas"])
QUERIES = sorted((path, method) for path, item in contract.openapi()["paths"].items()
                 for method in item if method != "parameters"
                 and request_params.query_schema(path, method)["properties"])


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
