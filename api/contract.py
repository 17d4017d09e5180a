"""openapi.yaml is the one source of truth for request bodies: we validate against it.

The component schemas are OpenAPI 3.1, i.e. JSON Schema 2020-12, so jsonschema
checks them directly; every violation becomes one entry of the 400's `errors`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib import resources

import falcon
import fastjsonschema
import orjson
import yaml

from rolebook.api.problems import Problem, bad_request, not_found
from rolebook.api.schema_code import compile_predicate
from rolebook.engine.schema_errors import bounded_validator_class, first_errors


@cache
def openapi() -> dict:
    # api/openapi.yaml links to the repository's openapi.yaml, so a built wheel carries it.
    text = resources.files("rolebook.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def validator(component: str):
    """Describes the errors of a refused body; too slow for the path that accepts."""
    root = {"$ref": f"#/components/schemas/{component}",
            "components": openapi()["components"]}
    bounded = bounded_validator_class()
    return bounded(root, format_checker=bounded.FORMAT_CHECKER)


def _inline(node: object) -> object:
    """Replace component $refs by their schemas (ours do not recurse) so compiled code is flat."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return _inline(openapi()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
        return {key: _inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item) for item in node]
    return node


@cache
def accepts(component: str) -> Callable[[object], bool]:
    """Yes or no, fast: our own compiled predicate, or fastjsonschema's for other schemas."""
    schema = _inline(openapi()["components"]["schemas"][component])
    predicate = compile_predicate(schema)
    if predicate is not None:
        return predicate
    strict = fastjsonschema.compile(schema)

    def by_fastjsonschema(body: object) -> bool:
        try:
            strict(body)
            return True
        except fastjsonschema.JsonSchemaValueException:
            return False
    return by_fastjsonschema


def body(req: falcon.Request, component: str) -> dict:
    """The request's JSON body, validated; 415 for another media type, 400 for bad JSON."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "send the body as JSON with Content-Type: application/json")
    raw = req.bounded_stream.read()
    try:
        media = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "a JSON body is required" if not raw.strip() else f"the body is not JSON: {exc}"
        raise bad_request(detail, [{"field": "(body)", "message": detail}]) from None
    # JSON can only carry NUL as an escape, so bodies without one need no walk.
    bad = _unstorable_field(media) if b"\\u0000" in raw else None
    if bad is not None:
        raise bad_request(f"{bad or '(body)'}: text may not contain NUL characters",
                          [{"field": bad or "(body)", "message": "contains NUL"}])
    return validate(media, component)


MAX_ID_LENGTH = 256


def storable(text: str, limit: int) -> bool:
    """Ids that no database could hold are simply not found, before any query runs."""
    return len(text) <= limit and bool(text.strip()) and "\x00" not in text


def _unstorable_field(value: object) -> str | None:
    """The first string (key or value) with a NUL, which PostgreSQL text cannot store.
    A loop rather than recursion: a body may nest a thousand levels before it is validated."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            children = []
            for key, item in node.items():
                here = f"{path}.{key}" if path else str(key)
                children += [(here, key), (here, item)]  # the key, then what it holds
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(node)]))
    return None


def validate(body: object, component: str) -> dict:
    """Return the body if it matches the schema; otherwise a 400 naming each bad field."""
    if accepts(component)(body):
        return body
    listed = first_errors(validator(component), body, "(body)", by_path=True)
    if not listed:  # jsonschema is the judge; the fast path only saves time
        return body
    first = listed[0]
    raise bad_request(f"{first['field']}: {first['message']}", listed)


@cache
def _openapi_path(uri_template: str) -> str:
    """Falcon's `/x/{version:int(min=1)}` is OpenAPI's `/x/{version}`."""
    return re.sub(r"{(\w+):[^}]*}", r"{\1}", uri_template)


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
            properties[param["name"]] = _inline(param["schema"])
    return {"type": "object", "properties": properties, "additionalProperties": False}


@cache
def query_checks(path: str, method: str):
    """(fast accept, full describer) for one operation's query string, or None."""
    schema = query_schema(path, method)
    if schema is None:
        return None
    return fastjsonschema.compile(schema), bounded_validator_class()(schema)


def _coerce(value: str, schema: dict) -> object:
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


class QueryMiddleware:
    """Query strings are checked against openapi.yaml too: unknown or bad parameters are 400."""

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or not req.uri_template:
            return
        for value in params.values():
            if isinstance(value, str) and not storable(value, MAX_ID_LENGTH):
                raise not_found("no such resource")
        if not req.params:
            return
        checks = query_checks(_openapi_path(req.uri_template), req.method.lower())
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
        try:
            fast(query)
        except fastjsonschema.JsonSchemaValueException as exc:
            listed = first_errors(describe, query, "(query)")
            listed = listed or [{"field": exc.name.removeprefix("data."), "message": exc.message}]
            raise bad_request(f"query {listed[0]['field']}: {listed[0]['message']}",
                              listed) from None
