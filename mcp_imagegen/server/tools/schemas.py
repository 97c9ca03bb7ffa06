"""JSON schemas as compact as they can be without losing meaning: every host sends every tool's
schemas to the model on every turn, so each character is paid for again and again.

pydantic's schemas repeat each property's name as a `title`, spell an optional value as
`anyOf: [{type: X}, {type: null}]` with `default: null`, and name the root model; none of that
tells a model anything the property name and type do not.
"""

from __future__ import annotations

from typing import Any


def compact(schema: Any) -> Any:
    """`schema` without titles, with nullable types as type lists and no null defaults."""
    if isinstance(schema, list):
        return [compact(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: compact(prop) for name, prop in value.items()}
            continue
        out[key] = compact(value)
    return _nullable(out)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [S, {type: null}]` becomes S with "null" added to its type (or enum)."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return schema
    other = next(option for option in options if option != {"type": "null"})
    if not isinstance(other, dict) or "$ref" in other or "anyOf" in other:
        return schema
    merged = {key: value for key, value in schema.items() if key != "anyOf"}
    merged.update(other)
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
        merged.pop("type", None)
    elif isinstance(merged.get("type"), str):
        merged["type"] = [merged["type"], "null"]
    else:
        return schema
    return merged


def outline(schema: dict[str, Any]) -> dict[str, Any]:
    """The published form of an output schema: its references inlined, only the properties a
    result always has (required, or an enum such as `status`), nested objects reduced to the
    names they always carry, no descriptions. Results are still validated against the full model
    on the server; the outline stays true for every result (objects stay open), while the full
    schema would cost thousands of characters per tool."""
    definitions = schema.get("$defs", {})

    def walk(node: Any, depth: int = 0) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return walk(definitions[ref.removeprefix("#/$defs/")], depth)
        if depth > 0 and node.get("type") == "object":
            return {"type": "object", "required": node.get("required", [])}
        out: dict[str, Any] = {}
        required = set(node.get("required", ()))
        for key, value in node.items():
            if key in ("$defs", "description", "title", "default", "additionalProperties"):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {
                    name: walk(prop, depth + 1)
                    for name, prop in value.items()
                    if name in required or (isinstance(prop, dict) and "enum" in prop)
                }
                continue
            out[key] = walk(value, depth)
        return out

    result: dict[str, Any] = walk(compact(schema))
    return result
