"""The tools/list answer is context an agent pays for in every conversation: DESIGN.md §2 keeps it
under 36 KB of JSON with every output schema kept.

Measured as the server sends it (compact JSON, as the SDK's transports serialise it), listed
through the SDK's in-memory client in both protocol eras. ``pytest -s`` prints bytes per tool.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.mcp_helpers import CONTRACT_TOOLS
from ytap_mcp.server import INSTRUCTIONS, YtapServer
from ytap_mcp.tool_schemas import COMMON_PARAMETERS

BUDGET_BYTES = 36 * 1024


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _listed(server: YtapServer, mode: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with Client(server, mode=mode) as client:
            result = await client.list_tools()
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    return anyio.run(main)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_tool_budget_whole_tools_list_under_36_kb(server: YtapServer, mode: str) -> None:
    listed = _listed(server, mode)
    tools = listed["tools"]
    total = _json_bytes(listed)
    print(f"\ntools/list ({mode}): {'tool':<22}{'bytes':>7}{'input':>7}{'output':>7}")
    for tool in sorted(tools, key=lambda t: -_json_bytes(t)):
        print(f"{'':>20}{tool['name']:<22}{_json_bytes(tool):>7}{_json_bytes(tool['inputSchema']):>7}"
              f"{_json_bytes(tool['outputSchema']):>7}")
    print(f"{'':>20}{'total':<22}{total:>7}  (budget {BUDGET_BYTES}; "
          f"{len(json.dumps(listed).encode())} with json.dumps' default separators)")
    assert {t["name"] for t in tools} == CONTRACT_TOOLS
    assert all(t.get("outputSchema", {}).get("type") == "object" for t in tools), "every output schema is kept"
    assert total <= BUDGET_BYTES, f"tools/list is {total} bytes of JSON, over the {BUDGET_BYTES}-byte budget"


def _keywords(schema: Any) -> set[str]:
    """Every keyword used in a schema and its subschemas (property names are names, not keywords)."""
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            for sub in value.values():
                found |= _keywords(sub)
        elif key in ("items", "additionalProperties", "not"):
            found |= _keywords(value)
        elif key in ("anyOf", "allOf", "oneOf", "prefixItems"):
            for sub in value:
                found |= _keywords(sub)
    return found


def test_tool_budget_output_schemas_say_types_not_prose(server: YtapServer) -> None:
    """Descriptions live on the input side; an output schema keeps types, enums and required fields."""
    for tool in _listed(server, "auto")["tools"]:
        out = _keywords(tool["outputSchema"])
        assert not out & {"description", "title", "default"}, tool["name"]
        assert {"type", "properties", "required"} <= out, tool["name"]
        inp = _keywords(tool["inputSchema"])
        own = set(tool["inputSchema"]["properties"]) - COMMON_PARAMETERS
        assert "title" not in inp and ("description" in inp or not own), tool["name"]


def test_tool_budget_shared_parameters_are_described_once_in_the_instructions(server: YtapServer) -> None:
    """video_id, workspace_id, providers, fresh and wait_seconds mean the same everywhere: the server's
    instructions say so once; each tool keeps their types, patterns, bounds and defaults."""
    for name in COMMON_PARAMETERS:
        assert name in INSTRUCTIONS, name
    for tool in _listed(server, "auto")["tools"]:
        for name, schema in tool["inputSchema"]["properties"].items():
            assert ("\"description\"" in json.dumps(schema)) == (name not in COMMON_PARAMETERS), (tool["name"], name)
            assert "type" in schema or "anyOf" in schema, (tool["name"], name)


def test_tool_budget_a_shape_used_twice_is_defined_once(server: YtapServer) -> None:
    scene = next(t for t in _listed(server, "auto")["tools"] if t["name"] == "generate_scene")["outputSchema"]
    # Attempt: in the result's attempts and in the error's; everything used once is written in place.
    assert set(scene["$defs"]) == {"Attempt"}
    result = scene["properties"]["result"]  # optional: left out until there is one, so no "or null"
    assert result["properties"]["attempts"]["items"] == {"$ref": "#/$defs/Attempt"}
    assert result["properties"]["kind"]["const"] == "scene"
    assert set(result["required"]) >= {"asset_id", "path", "uri", "provider", "bytes", "scene_index"}


def _optional_nullables(schema: Any, where: str = "") -> list[str]:
    if isinstance(schema, list):
        return [hit for i, sub in enumerate(schema) for hit in _optional_nullables(sub, f"{where}[{i}]")]
    if not isinstance(schema, dict):
        return []
    required = set(schema.get("required") or ())
    hits = [f"{where}.{name}" for name, prop in (schema.get("properties") or {}).items()
            if isinstance(prop, dict) and name not in required and {"type": "null"} in (prop.get("anyOf") or [])]
    return hits + [hit for key, sub in schema.items() for hit in _optional_nullables(sub, f"{where}/{key}")]


def test_tool_budget_an_optional_output_field_is_its_type_not_type_or_null(server: YtapServer) -> None:
    """A result leaves out an optional field that holds nothing (tests/ytap_mcp validate every result
    against these schemas through the SDK's client), so "or null" is written only where a field is required."""
    tools = _listed(server, "auto")["tools"]
    assert [hit for t in tools for hit in _optional_nullables(t["outputSchema"], t["name"])] == []
    video = next(t for t in tools if t["name"] == "assemble_video")["outputSchema"]["properties"]["result"]
    assert video["properties"]["properties"]["properties"]["profile"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
