"""openapi.yaml is a contract that linters accept and that generated clients can use well.

Protects: openapi-spec-validator accepts the document; every key of every
schema is a JSON Schema or OpenAPI keyword (OpenAPI 3.1 schemas accept any
key, so validators miss a YAML flow mapping cut short by an unquoted comma,
which once hid half of a description in a junk key); every object or enum a
client generator would have to name is a component, named by us; every
operation has a unique camelCase operationId and declared, described tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml
from openapi_spec_validator import validate

from tests.support.policies import REPO

OPENAPI = yaml.safe_load((REPO / "openapi.yaml").read_text())
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}

# JSON Schema 2020-12 (every vocabulary of the meta-schema) and OpenAPI 3.1's additions.
KEYWORDS = frozenset({
    "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
    "$comment", "$defs",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems",
    "items", "contains", "properties", "patternProperties", "additionalProperties",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties",
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required",
    "dependentRequired",
    "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
    "format", "contentEncoding", "contentMediaType", "contentSchema",
    "discriminator", "xml", "externalDocs", "example",
})
ONE_SCHEMA = ("additionalProperties", "items", "contains", "not", "if", "then", "else",
              "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def subschemas(schema: dict, at: str) -> Iterator[tuple[str, object, str]]:
    """(pointer, subschema, keyword that holds it) for each schema directly inside `schema`."""
    for key in ONE_SCHEMA:
        if key in schema:
            yield f"{at}/{key}", schema[key], key
    for key in SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key, [])):
            yield f"{at}/{key}/{i}", sub, key
    for key in SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield f"{at}/{key}/{name}", sub, key


def bad_schema_keys(schema: object, at: str) -> Iterator[str]:
    """Pointers to every key that is no keyword, and every 'schema' that is no schema."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        yield f"{at}: {schema!r} is not a schema"
        return
    for key in schema:
        if key not in KEYWORDS and not key.startswith("x-"):
            yield f"{at}/{key}"
    for pointer, sub, _ in subschemas(schema, at):
        yield from bad_schema_keys(sub, pointer)


def top_schemas(document: dict) -> Iterator[tuple[str, object]]:
    """(pointer, schema) for the components and every `schema` of a parameter, header or body."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        yield f"#/components/schemas/{name}", schema

    def walk(node: object, at: str) -> Iterator[tuple[str, object]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema":
                    yield f"{at}/schema", value
                elif key not in ("schemas", "example", "examples"):
                    yield from walk(value, f"{at}/{_escaped(key)}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(item, f"{at}/{i}")
    yield from walk(document, "#")


def _escaped(key: str) -> str:
    """A JSON pointer token (RFC 6901): paths like /v1/check become ~1v1~1check."""
    return key.replace("~", "~0").replace("/", "~1")


def unknown_keys(document: dict) -> list[str]:
    return [bad for at, schema in top_schemas(document) for bad in bad_schema_keys(schema, at)]


def test_openapi_spec_validator_accepts_the_contract():
    validate(OPENAPI)


def test_every_schema_key_is_a_keyword():
    assert unknown_keys(OPENAPI) == []


def test_a_flow_mapping_cut_by_a_comma_is_caught():
    # The bug this guards against, as it was: YAML reads "or null ..." as a key of its own.
    cut = yaml.safe_load("""
components:
  schemas:
    Account:
      properties:
        policy_version: {type: integer, description: The pinned version, or null to follow}
""")
    # A validator lets it through: 3.1 schemas may carry any key.
    components = OPENAPI["components"]
    validate({**OPENAPI, "components": {**components, "schemas": {
        **components["schemas"], **cut["components"]["schemas"]}}})
    assert unknown_keys(cut) == [
        "#/components/schemas/Account/properties/policy_version/or null to follow"]


def unnamed(document: dict) -> list[str]:
    """Inline objects and enums: a generator would name them after their parents."""
    found = []

    def visit(schema: object, at: str, named: bool) -> None:
        if not isinstance(schema, dict):
            return
        kinds = schema.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        defines = ("enum" in schema or "properties" in schema or "object" in kinds
                   or isinstance(schema.get("additionalProperties"), dict))
        if defines and not named:
            found.append(at)
        for pointer, sub, keyword in subschemas(schema, at):
            # allOf's parts are merged into the schema that holds them, under its name.
            visit(sub, pointer, named and keyword == "allOf")

    for at, schema in top_schemas(document):
        visit(schema, at, at.startswith("#/components/schemas/"))
    return found


def test_every_object_and_enum_is_a_named_component():
    assert unnamed(OPENAPI) == []
    assert unnamed({"paths": {"/x": {"get": {"parameters": [
        {"name": "s", "in": "query", "schema": {"type": "string", "enum": ["a"]}}]}}}}) == [
        "#/paths/~1x/get/parameters/0/schema"]


def operations() -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in OPENAPI["paths"].items()
            for method, op in item.items() if method in METHODS]


def test_every_operation_has_a_unique_camel_case_operation_id():
    ids = [op.get("operationId") for _, _, op in operations()]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-z][a-zA-Z0-9]*", i) for i in ids), ids
    assert len(ids) == len(set(ids))


def test_every_operation_has_declared_tags_and_every_tag_is_described_and_used():
    declared = {tag["name"]: tag.get("description", "") for tag in OPENAPI["tags"]}
    used = set()
    for path, method, op in operations():
        assert op.get("tags"), f"{method.upper()} {path} has no tags"
        assert set(op["tags"]) <= set(declared), (method, path, op["tags"])
        used |= set(op["tags"])
    assert all(description.strip() for description in declared.values()), declared
    assert used == set(declared)
