"""openapi.yaml is the one source of truth for request bodies: we validate against it.

The component schemas are OpenAPI 3.1, i.e. JSON Schema 2020-12, so jsonschema
checks them directly; every violation becomes one entry of the 400's `errors`.
Query strings are checked against the same document by `request_params`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

import falcon
import orjson
import yaml

from rolebook.api.problems import Problem, bad_request
from rolebook.api.storable import first_nul_field
from rolebook.engine.fast_schema import fast_validator
from rolebook.engine.schema_errors import bounded_validator_class, first_errors


@cache
def openapi() -> dict:
    # api/openapi.yaml links to the repository's openapi.yaml, so a built wheel carries it.
    text = resources.files("rolebook.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def validator(component: str):
    """Describes the errors of a refused body; too slow for the path that accepts."""
    return judge({"$ref": f"#/components/schemas/{component}",
                  "components": openapi()["components"]})


def judge(schema: dict):
    """jsonschema with our bounds and format checks: it decides, and explains, every refusal."""
    bounded = bounded_validator_class()
    return bounded(schema, format_checker=bounded.FORMAT_CHECKER)


def inline(node: object) -> object:
    """Replace component $refs by their schemas (ours do not recurse)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return inline(openapi()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
        return {key: inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(item) for item in node]
    return node


@cache
def accepts(component: str) -> Callable[[object], bool]:
    """Yes or no, fast; a "no" is then explained, and judged, by `validator`."""
    # Inlined: with the $refs left to jsonschema-rs a check took three times as long.
    return fast_validator(inline(openapi()["components"]["schemas"][component])).is_valid


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
    bad = first_nul_field(media) if b"\\u0000" in raw else None
    if bad is not None:
        raise bad_request(f"{bad or '(body)'}: text may not contain NUL characters",
                          [{"field": bad or "(body)", "message": "contains NUL"}])
    return validate(media, component)


def validate(body: object, component: str) -> dict:
    """Return the body if it matches the schema; otherwise a 400 naming each bad field."""
    if accepts(component)(body):
        return body
    listed = first_errors(validator(component), body, "(body)", by_path=True)
    if not listed:  # jsonschema is the judge; the fast path only saves time
        return body
    first = listed[0]
    raise bad_request(f"{first['field']}: {first['message']}", listed)
