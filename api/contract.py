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
from jsonschema import Draft202012Validator

from rolebook.api.problems import Problem, bad_request, not_found
from rolebook.api.schema_code import compile_predicate


@cache
def openapi() -> dict:
    # api/openapi.yaml links to the repository's openapi.yaml, so a built wheel carries it.
    text = resources.files("rolebook.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def validator(component: str) -> Draft202012Validator:
    """Describes every error of a refused body; too slow for the path that accepts."""
    root = {"$ref": f"#/components/schemas/{component}",
            "components": openapi()["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


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


def field_of(error) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path.append(missing)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path.append(extra[0] if extra else "")
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


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


def _unstorable_field(value: object, path: str = "") -> str | None:
    """The first string (key or value) with a NUL, which PostgreSQL text cannot store."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = _unstorable_field(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable_field(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def validate(body: object, component: str) -> dict:
    """Return the body if it matches the schema; otherwise a 400 naming each bad field."""
    if accepts(component)(body):
        return body
    errors = sorted(validator(component).iter_errors(body), key=lambda e: list(e.absolute_path))
    if not errors:  # jsonschema is the judge; the fast path only saves time
        return body
    listed = [{"field": field_of(e), "message": e.message} for e in errors[:20]]
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
    return fastjsonschema.compile(schema), Draft202012Validator(schema)


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
            listed = [{"field": field_of(e), "message": e.message}
                      for e in describe.iter_errors(query)][:20]
            listed = listed or [{"field": exc.name.removeprefix("data."), "message": exc.message}]
            raise bad_request(f"query {listed[0]['field']}: {listed[0]['message']}",
                              listed) from None
