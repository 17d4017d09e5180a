"""Path and query parameters, checked before a resource runs: a path id no database could hold
is 404, and a query string is checked against openapi.yaml (unknown or bad parameters are 400).
"""

from __future__ import annotations

import re
from functools import cache

from rolebook.api.contract import inline, judge, openapi
from rolebook.api.problems import bad_request, not_found
from rolebook.api.request_context import openapi_path
from rolebook.api.storable import storable_id
from rolebook.engine.fast_schema import fast_validator
from rolebook.engine.schema_errors import first_errors


@cache
def query_schema(path: str, method: str) -> dict | None:
    item = openapi()["paths"].get(path)
    if item is None or method not in item:
        return None
    params = [*item.get("parameters", []), *item[method].get("parameters", [])]
    properties = {}
    for param in params:
        if "$ref" in param:
            param = openapi()["components"]["parameters"][param["$ref"].rsplit("/", 1)[-1]]
        if param["in"] == "query":
            properties[param["name"]] = inline(param["schema"])
    return {"type": "object", "properties": properties, "additionalProperties": False}


@cache
def query_checks(path: str, method: str):
    """(fast accept, full describer) for one operation's query string, or None."""
    schema = query_schema(path, method)
    if schema is None:
        return None
    return fast_validator(schema), judge(schema)


def _coerce(value: str, schema: dict) -> object:
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


class ParamsMiddleware:
    """Falcon calls it once the route, and so the path parameters, are known."""

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or not req.uri_template:
            return
        for value in params.values():
            if isinstance(value, str) and not storable_id(value):
                raise not_found("no such resource")
        if not req.params:
            return
        checks = query_checks(openapi_path(req.uri_template), req.method.lower())
        if checks is None:
            return
        fast, describe = checks
        props = describe.schema["properties"]
        query = {}
        for name, value in req.params.items():
            if isinstance(value, list):
                raise bad_request(f"{name}: give the parameter once",
                                  [{"field": name, "message": "repeated"}])
            query[name] = _coerce(value, props.get(name, {}))
        if fast.is_valid(query):
            return
        listed = first_errors(describe, query, "(query)")
        if listed:  # jsonschema is the judge, as for bodies
            raise bad_request(f"query {listed[0]['field']}: {listed[0]['message']}", listed)
