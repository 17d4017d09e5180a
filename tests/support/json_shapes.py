"""JSON values shaped like a JSON Schema, for tests that hold two validators to one verdict:
mostly following the schema (so its interesting checks run), sometimes not, plus arbitrary JSON."""

from __future__ import annotations

from hypothesis import strategies as st

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
