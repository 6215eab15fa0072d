"""What tests that talk to the server through an MCP client share: the contract's tool names and
the calls an agent makes (call a tool, poll its job until it ends, read a tool error).

The ``server`` fixture (a server over a private YTAP_HOME, with a scripted failing video
provider) is in tests/conftest.py.
"""

from __future__ import annotations

from typing import Any

from mcp import Client

__all__ = ["CONTRACT_TOOLS", "call", "error_text", "finish", "ok", "text"]

# DESIGN.md §2, written out: a tool dropped or renamed fails every test that checks the list.
CONTRACT_TOOLS = frozenset({
    "generate_scene", "synthesize_narration", "make_thumbnail", "assemble_video", "provider_report",
    "import_asset", "clone_voice", "delete_voice", "archive_video", "job_status", "cancel_job", "generate_music",
    "review_video",
})


def text(result: Any) -> str:
    """The text blocks of a tool result, joined (a tool error's message)."""
    return " ".join(getattr(c, "text", "") for c in result.content)


async def call(client: Client, name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A tool call that must succeed: its structured content (a job envelope for the job tools)."""
    result = await client.call_tool(name, args, **kw)
    assert not result.is_error, text(result)
    return result.structured_content


async def finish(client: Client, env: dict[str, Any]) -> dict[str, Any]:
    """Poll a job envelope with job_status until the job ends; it must succeed. Its result."""
    while env["status"] in ("queued", "running"):
        env = await call(client, "job_status", {"job_id": env["job_id"], "wait_seconds": 20})
    assert env["status"] == "succeeded", env
    return env["result"]


async def ok(client: Client, name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A tool call that must succeed: a job tool's result once its job has succeeded, another tool's answer."""
    answer = await call(client, name, args, **kw)
    return await finish(client, answer) if "job_id" in answer else answer


async def error_text(client: Client, name: str, args: dict[str, Any]) -> str:
    """A tool call that must fail as a tool error (is_error): its message."""
    result = await client.call_tool(name, args)
    assert result.is_error, result.structured_content
    return text(result)
