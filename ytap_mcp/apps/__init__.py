"""MCP Apps (``io.modelcontextprotocol/ui``, SEP-1865) for ytap: the storyboard a person looks at.

``ui://ytap/storyboard.html`` is one self-contained HTML document (``storyboard.html`` beside
this file: inline script and style, allowed by their hashes in its own Content-Security-Policy,
nothing loaded from anywhere). The host renders it in a sandboxed iframe; it speaks JSON-RPC
over postMessage with the host (``ui/initialize``, then ``tools/call`` and ``resources/read``
relayed to this server), so every action it offers is an ordinary tool call the server validates.

Graceful degradation (SEP-2133): the tools that open the storyboard (review_video and the
generating tools) carry ``_meta.ui.resourceUri`` only in the tools/list of a client that
declared the extension with the app's mime type. Every other client's tools/list, results and
resources/list are exactly what they were; the app resource is not listed (the spec lets
UI-only resources be found through the tools), only read.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from mcp.client.extension import ClientExtension
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

__all__ = [
    "STORYBOARD_URI",
    "APP_TOOLS",
    "StoryboardApps",
    "AppsClientExtension",
    "apps_tools_list_middleware",
    "storyboard_html",
    "with_csp_hashes",
]

STORYBOARD_URI = "ui://ytap/storyboard.html"
# The tools whose result the storyboard shows: the review itself and every tool that makes part of a video.
APP_TOOLS = frozenset({"review_video", "generate_scene", "synthesize_narration", "make_thumbnail", "assemble_video",
                       "import_asset", "generate_music"})


@cache
def storyboard_html() -> str:
    return files(__package__).joinpath("storyboard.html").read_text("utf-8")


_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_HASH_SLOTS = {"script": re.compile(r"script-src '[^']*'"), "style": re.compile(r"style-src '[^']*'")}


def with_csp_hashes(html: str) -> str:
    """``html`` with its CSP's script-src and style-src set to the SHA-256 of its one inline script and style."""
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        html = _HASH_SLOTS[tag].sub(f"{tag}-src 'sha256-{digest}'", html, count=1)
    return html


class StoryboardApps(Apps):
    """The SDK's Apps extension holding the storyboard resource (its tools are ytap's own, bound per client)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_html_resource(
            STORYBOARD_URI,
            storyboard_html(),
            name="storyboard",
            title="Video storyboard",
            description="Scenes, narration, thumbnail, music and the final video of one video, with actions",
            csp=ResourceCsp(),  # no outside origin at all: the host's most restrictive policy
            prefers_border=True,
        )


def _bind(tools: Iterable[dict[str, Any]]) -> None:
    for tool in tools:
        if tool.get("name") in APP_TOOLS:
            meta = tool.get("_meta") or {}
            tool["_meta"] = {**meta, "ui": {**(meta.get("ui") or {}), "resourceUri": STORYBOARD_URI}}


async def apps_tools_list_middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """tools/list for a client that declared MCP Apps: the storyboard's tools point at it. Others: unchanged."""
    result = await call_next(ctx)
    if ctx.method == "tools/list" and isinstance(result, dict) and client_supports_apps(ctx):
        _bind(result.get("tools") or [])
    return result


class AppsClientExtension(ClientExtension):
    """Declares MCP Apps for the SDK's ``Client`` (what an Apps host sends): used by tests and the browser host."""

    identifier = EXTENSION_ID

    def settings(self) -> dict[str, Any]:
        return {"mimeTypes": [APP_MIME_TYPE]}
