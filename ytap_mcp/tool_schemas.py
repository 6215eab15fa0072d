"""The tool list as the agent reads it: every fact once, on the side where it is used.

``tools/list`` is context a client pays for in every conversation (DESIGN.md §2 keeps it
under 36 KB). pydantic's schemas repeat themselves: a title per property (the property's
name again), and output schemas that restate the descriptions of the fields. The agent
chooses inputs, so inputs keep their descriptions; it reads outputs, whose field names
say what they hold, so an output schema keeps types, enums, required fields and the
shapes shared through ``$defs``. An optional output field is left out of a result when it
holds nothing (:func:`structured`), so its schema is its type alone, not "X or null".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

__all__ = ["COMMON_PARAMETERS", "lean_input_schema", "lean_output_schema", "structured"]

# Keywords whose value is a map of names to schemas, one schema, or a list of schemas.
_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")

# Input: a title repeats its property's name, and an empty default ("" or []) says no more than the
# property's absence from "required" (a description says what empty means where it means something).
_INPUT_NOISE = frozenset({"title"})
_EMPTY_DEFAULTS = ("", [])
# Output: descriptions are the input side's business; defaults, bounds and closed objects are
# promises about what the server writes, which a reader of the result does not choose.
_OUTPUT_NOISE = frozenset({"title", "description", "default", "examples", "minimum", "maximum", "exclusiveMinimum",
                           "exclusiveMaximum"})


def _strip(node: Any, drop: Callable[[str, Any], bool]) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if drop(key, value):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: _strip(sub, drop) for name, sub in value.items()}
        elif key in _SCHEMA_ONE:
            value = _strip(value, drop)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [_strip(sub, drop) for sub in value]
        out[key] = value
    return out


def _input_noise(key: str, value: Any) -> bool:
    return key in _INPUT_NOISE or (key == "default" and value in _EMPTY_DEFAULTS)


def _output_noise(key: str, value: Any) -> bool:
    return key in _OUTPUT_NOISE or (key == "additionalProperties" and isinstance(value, bool))


_LOCAL_REF = "#/$defs/"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_LOCAL_REF):
            yield ref.removeprefix(_LOCAL_REF)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _inline_single_use(schema: dict[str, Any]) -> dict[str, Any]:
    """``$defs`` keep the shapes used more than once; a shape used once is written where it is used."""
    defs: dict[str, Any] = schema.get("$defs") or {}
    uses = Counter(_refs(schema))
    once = {name for name in defs if uses[name] == 1 and name not in set(_refs(defs[name]))}
    if not once:
        return schema

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if len(node) == 1 and isinstance(ref, str) and ref.removeprefix(_LOCAL_REF) in once:
                return inline(defs[ref.removeprefix(_LOCAL_REF)])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    shared = {name: inline(sub) for name, sub in defs.items() if name not in once}
    body = {key: inline(value) for key, value in schema.items() if key != "$defs"}
    return {"$defs": shared, **body} if shared else body


# Parameters that mean the same in every tool that takes them: the server's instructions describe them once
# (INSTRUCTIONS in ytap_mcp/server.py); each tool's schema keeps their type, pattern, bounds and default.
COMMON_PARAMETERS = frozenset({"video_id", "workspace_id", "providers", "fresh", "wait_seconds"})


def lean_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema without pydantic's titles and empty defaults, and without the descriptions of the
    parameters every tool shares (the instructions say them once)."""
    lean = _inline_single_use(_strip(schema, _input_noise))
    properties = lean.get("properties") or {}
    for name in COMMON_PARAMETERS & set(properties):
        properties[name] = {key: value for key, value in properties[name].items() if key != "description"}
    return lean


_NULL = {"type": "null"}


def _optional_without_null(node: Any) -> Any:
    """Every optional property typed ``X`` instead of ``X or null``: :func:`structured` leaves it out instead."""
    if isinstance(node, list):
        return [_optional_without_null(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _optional_without_null(value) for key, value in node.items()}
    required = set(out.get("required") or ())
    for name, prop in (out.get("properties") or {}).items():
        branches = prop.get("anyOf") if isinstance(prop, dict) else None
        if name not in required and isinstance(branches, list) and len(branches) == 2 and _NULL in branches:
            rest = {key: value for key, value in prop.items() if key != "anyOf"}
            out["properties"][name] = {**next(b for b in branches if b != _NULL), **rest}
    return out


def lean_output_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A tool's output schema reduced to types, enums, required fields and the shared shapes in ``$defs``."""
    return None if schema is None else _inline_single_use(_optional_without_null(_strip(schema, _output_noise)))


def _drop_empty_optionals(value: Any, data: Any) -> Any:
    if isinstance(value, BaseModel) and isinstance(data, dict):
        for name, field in type(value).model_fields.items():
            key = field.serialization_alias or field.alias or name
            if key not in data:
                continue
            if data[key] is None and not field.is_required():
                del data[key]
            else:
                _drop_empty_optionals(getattr(value, name), data[key])
    elif isinstance(value, (list, tuple)) and isinstance(data, list):
        for item, dumped in zip(value, data, strict=False):
            _drop_empty_optionals(item, dumped)
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, item in value.items():
            if str(key) in data:
                _drop_empty_optionals(item, data[str(key)])
    return data


def structured(model: BaseModel) -> dict[str, Any]:
    """A result as a tool sends it (its structured content): JSON, by alias, without the optional fields that
    hold nothing, which is what :func:`lean_output_schema` publishes. A required field keeps its null."""
    return _drop_empty_optionals(model, model.model_dump(mode="json", by_alias=True))
