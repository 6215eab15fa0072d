"""build_server(settings): the MCP face. Registers tools.TOOLS, the ytap:// resources, the prompt.

This module holds no tool bodies: each tool in ``tools/`` is an SDK-free async function
``(runtime, progress, **params)``; here it is wrapped so the SDK sees only the agent's
parameters plus a Context, and its progress reaches the client as notifications.
Errors the agent can fix come back as tool errors with a message saying what to change;
anything unexpected is logged on stderr and reported without internals.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import mimetypes
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pydantic
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp_types import INVALID_PARAMS, CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from mcp_types import Resource as MCPResource

import tools
from core.assets import parse_uri
from core.config import Settings, scrub_secrets
from core.errors import InputError, YtapError
from core.jobs import job_call
from core.runtime import Runtime
from tools import ToolInfo
from ytap_mcp.apps import StoryboardApps, apps_tools_list_middleware
from ytap_mcp.tasks import TasksExtension
from ytap_mcp.tool_schemas import lean_input_schema, lean_output_schema, structured

__all__ = ["build_server", "INSTRUCTIONS", "SERVER_NAME"]

log = logging.getLogger("ytap_mcp")

SERVER_NAME = "ytap"
INSTRUCTIONS = (
    "Produce a YouTube video step by step: generate_scene for each scene, synthesize_narration with one segment per "
    "scene, make_thumbnail, then assemble_video; provider_report tells who made what and what it cost. "
    "Generating tools return a job envelope after at most wait_seconds: while its status is queued or running, call "
    "job_status with its job_id (wait_seconds up to 50) until it is succeeded, failed or cancelled. "
    "Shared parameters: video_id names the video (e.g. 'lighthouses'), workspace_id a folder of videos; providers "
    "lists provider ids to try in order instead of the default chain; fresh=true regenerates even when an identical "
    "request is cached; wait_seconds is how long a call waits before returning the job envelope."
)
_MAX_INLINE_RESOURCE_BYTES = 50 * 1024 * 1024


class YtapServer(MCPServer[Any]):
    """MCPServer that serves workspace files with their own mime type, confined to the workspace."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime

    async def read_resource(self, uri: Any, context: Context[Any, Any] | None = None) -> Iterable[ReadResourceContents]:
        # Every refusal is "not found" (-32602 Invalid Params, SEP-2164): the uri is the caller's to fix.
        # Nothing outside the video's real folder is read: ids are validated, the folder must not be a
        # link out of the root, the file is resolved and confined, symlinks and .part files are not served.
        text = str(uri)
        if text.startswith("ui://"):  # the MCP Apps documents (ytap_mcp.apps), registered as static resources
            return await super().read_resource(uri, context)
        try:
            parsed = parse_uri(text)
            if parsed.job_id:
                env = self.runtime.jobs.envelope(parsed.job_id)
                body = scrub_secrets(env.model_dump_json(indent=2), self.runtime.settings.secrets())
                return [ReadResourceContents(content=body, mime_type="application/json")]
            paths = self.runtime.paths(parsed.workspace_id or "", parsed.video_id or "")
            paths.check_folders()
            if parsed.relative == "manifest":
                manifest = paths.confine(paths.manifest)
                if not manifest.is_file():
                    raise ResourceNotFoundError(f"video {parsed.workspace_id}/{parsed.video_id} has no manifest yet")
                body = scrub_secrets(manifest.read_text("utf-8"), self.runtime.settings.secrets())
                return [ReadResourceContents(content=body, mime_type="application/json")]
            lexical = paths.root / parsed.relative
            if lexical.is_symlink():
                raise ResourceNotFoundError("symlinks are not served: read the file the asset's own uri names")
            path = paths.confine(lexical)
        except YtapError as exc:
            raise ResourceNotFoundError(exc.message) from None
        except (OSError, ValueError) as exc:  # a name the filesystem refuses (too long, not encodable)
            raise ResourceNotFoundError(f"{text[:200]} cannot be read ({type(exc).__name__}); uris name files "
                                        "like ytap://{workspace}/{video}/scenes/scene_001.mp4") from None
        rel_parts = path.relative_to(paths.real_root).parts
        if not path.is_file() or any(part.startswith(".") for part in rel_parts):
            raise ResourceNotFoundError(
                f"{text[:200]} does not exist (hidden and unfinished .part files are not served)")
        size = path.stat().st_size
        if size > _MAX_INLINE_RESOURCE_BYTES:
            raise ResourceError(
                f"{text} is {size / 1e6:.0f} MB, too large to send over MCP; read it from its path: {path}"
            )
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if mime.startswith("text/") or mime in ("application/json", "application/x-subrip"):
            body = scrub_secrets(path.read_text("utf-8", errors="replace"), self.runtime.settings.secrets())
            return [ReadResourceContents(content=body, mime_type=mime)]
        return [ReadResourceContents(content=path.read_bytes(), mime_type=mime)]

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None,
                         context: Context[Any, Any] | None = None) -> Any:
        # The SDK answers an unknown prompt or bad arguments with an internal error; they are the caller's to fix.
        if self._prompt_manager.get_prompt(name) is None:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r}; the server has: produce_video")
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None

    async def list_resources(self) -> list[MCPResource]:
        """Every video's manifest and final video (files are reachable through the templates).

        Only real video folders are listed: a linked-in folder (or a name that is not a valid
        id) is skipped, so listing never reveals anything about files outside the root.
        """
        root = self.runtime.settings.workspaces_root
        out: list[MCPResource] = []
        if not root.is_dir():
            return out
        for manifest in sorted(root.glob("*/videos/*/manifest.json")):
            ws, vid = manifest.parts[-4], manifest.parts[-2]
            try:
                paths = self.runtime.paths(ws, vid)
                paths.check_folders()
                paths.confine(manifest)
            except YtapError:
                continue
            if manifest.is_symlink():
                continue
            out.append(
                MCPResource(
                    uri=f"ytap://{ws}/{vid}/manifest",
                    name=f"{ws}/{vid} manifest",
                    description="Every asset of the video and every provider attempt",
                    mime_type="application/json",
                )
            )
            final = manifest.parent / "final_video.mp4"
            if final.is_file() and not final.is_symlink():
                out.append(
                    MCPResource(
                        uri=f"ytap://{ws}/{vid}/final_video.mp4",
                        name=f"{ws}/{vid} final video",
                        mime_type="video/mp4",
                        size=final.stat().st_size,
                    )
                )
        return out


def _annotations(info: ToolInfo) -> ToolAnnotations | None:
    """The hints that differ from the spec's defaults (not read-only, destructive, not idempotent, open world);
    the title is the tool's own."""
    hints = ToolAnnotations(
        read_only_hint=info.read_only or None,
        # Meaningful only for a tool that writes.
        destructive_hint=None if info.destructive or info.read_only else False,
        idempotent_hint=info.idempotent or None,
        open_world_hint=None if info.open_world else False,
    )
    return hints if hints.model_dump(exclude_none=True) else None


def _tool(runtime: Runtime, info: ToolInfo) -> Tool:
    """One tool as tools/list shows it: the SDK's schemas, leaned (ytap_mcp.tool_schemas)."""
    tool = Tool.from_function(_wrap(runtime, info), name=info.name, title=info.title,
                              annotations=_annotations(info), structured_output=True)
    tool.parameters = lean_input_schema(tool.parameters)
    # Read live by the SDK; the result is still validated against the return type's model.
    tool.fn_metadata.output_schema = lean_output_schema(tool.fn_metadata.output_schema)
    return tool


def _wrap(runtime: Runtime, info: ToolInfo) -> Any:
    """The tool as the SDK should see it: the agent's parameters plus a Context."""
    fn = info.fn
    sig = inspect.signature(fn, eval_str=True)
    hints = typing.get_type_hints(fn, include_extras=True)
    agent_params = list(sig.parameters.values())[2:]  # drop (runtime, progress)

    async def tool(ctx: Context[Any, Any], **kwargs: Any) -> Any:
        last = 0.0

        async def progress(fraction: float, message: str) -> None:
            # MCP requires progress to increase with every notification; heartbeats nudge it.
            nonlocal last
            last = min(0.999, max(fraction, last + 0.0005))
            await ctx.report_progress(last, 1.0, message)

        try:
            with job_call(info.name, kwargs):  # what a Temporal worker replays (core.scaleout)
                result = await fn(runtime, progress, **kwargs)
            return await _with_previews(runtime, result)
        except YtapError as exc:
            raise ToolError(_error_text(runtime, f"[{exc.code}] {exc.message}")) from None
        except pydantic.ValidationError as exc:
            raise ToolError(_error_text(runtime, "[invalid_input] " + _validation_message(exc))) from None
        except ValueError as exc:  # request-level checks (e.g. "give either text or segments")
            raise ToolError(_error_text(runtime, f"[invalid_input] {exc}")) from None
        except Exception as exc:
            log.exception("tool %s crashed", info.name)
            raise ToolError(f"[internal_error] {info.name} failed ({type(exc).__name__}); the server log has details") from None

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    tool.__signature__ = sig.replace(parameters=[*agent_params, ctx_param])  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: hints[p.name] for p in agent_params} | {"ctx": Context, "return": hints["return"]}
    tool.__name__ = fn.__name__
    tool.__qualname__ = fn.__name__
    tool.__doc__ = fn.__doc__
    return tool


_PREVIEW_KINDS = ("scene", "thumbnail", "final_video")
_PREVIEW_CACHE: dict[tuple[Any, ...], bytes] = {}
_PREVIEW_CACHE_MAX = 64


def _preview(kind: str, clips: list[tuple[str, Path]]) -> bytes:
    """A preview, made once per file version (decoding frames costs far more than a cache hit). Blocking."""
    from core.media import previews

    key = (kind, *((label, str(p), p.stat().st_mtime_ns, p.stat().st_size) for label, p in clips))
    jpeg = _PREVIEW_CACHE.get(key)
    if jpeg is None:
        jpeg = previews.image_preview(clips[0][1]) if kind == "image" else previews.contact_sheet(clips)
        while len(_PREVIEW_CACHE) >= _PREVIEW_CACHE_MAX:
            _PREVIEW_CACHE.pop(next(iter(_PREVIEW_CACHE)), None)
        _PREVIEW_CACHE[key] = jpeg
    return jpeg


def _asset_preview(runtime: Runtime, asset: dict[str, Any]) -> bytes | None:
    """The inline preview of a finished asset (a result's dict), or None for kinds without one. Blocking."""
    if asset.get("kind") in ("thumbnail", "image"):
        return _preview("image", [("", Path(asset["path"]))])
    if asset.get("kind") == "scene":
        return _preview("sheet", [(f"scene {asset['scene_index']}", Path(asset["path"]))])
    if asset.get("kind") == "final_video":
        paths = runtime.paths(asset["workspace_id"], asset["video_id"])
        clips = [(f"scene {i}", paths.resolve_ref(uri)) for i, uri in enumerate(asset.get("scenes") or [], 1)]
        return _preview("sheet", clips) if clips else None
    return None


def _prewarm_preview(runtime: Runtime, result: Any) -> None:
    """A job finisher: the preview made inside the job, in parallel with other jobs, not in job_status."""
    asset = result.model_dump(mode="json") if isinstance(result, pydantic.BaseModel) else None
    if asset and asset.get("kind") in _PREVIEW_KINDS:
        try:
            _asset_preview(runtime, asset)
        except (YtapError, OSError) as exc:  # job_status will try again, and log it there
            log.debug("no preview made in the job for %s: %s", asset.get("uri"), exc)


async def _with_previews(runtime: Runtime, result: Any) -> Any:
    """A tool's result as sent: its structured content (:func:`structured`: no empty optional fields), the same
    as JSON text, and for a finished asset resource links and a small inline preview image.

    The content blocks add what a multimodal agent can look at (a downscaled thumbnail, a contact
    sheet of the scenes) and links to the files. Never whole media: every response stays well under 1 MiB.
    """
    if not isinstance(result, pydantic.BaseModel):
        return result
    data = structured(result)
    blocks: list[Any] = [TextContent(type="text", text=json.dumps(data))]
    asset = (data.get("result") or {}) if data.get("status") == "succeeded" else {}
    if asset.get("kind") not in (*_PREVIEW_KINDS, "narration", "music", "image", "font"):
        return CallToolResult(content=blocks, structured_content=data)
    blocks.append(ResourceLink(type="resource_link", uri=asset["uri"], name=Path(asset["path"]).name,
                               mime_type=mimetypes.guess_type(asset["path"])[0], size=asset.get("bytes")))
    if asset.get("srt_uri"):
        blocks.append(ResourceLink(type="resource_link", uri=asset["srt_uri"], name="narration.srt",
                                   mime_type="application/x-subrip"))
    try:
        jpeg = await anyio.to_thread.run_sync(lambda: _asset_preview(runtime, asset))
    except YtapError as exc:  # a preview is a courtesy: never fail a finished job over it
        log.warning("no preview for %s: %s", asset.get("uri"), exc.message)
        jpeg = None
    if jpeg:
        blocks.append(ImageContent(type="image", data=base64.b64encode(jpeg).decode(), mime_type="image/jpeg"))
    return CallToolResult(content=blocks, structured_content=data)


_MAX_ERROR_CHARS = 4000


def _error_text(runtime: Runtime, text: str) -> str:
    """A tool error as the client sees it: no secret in any form, and bounded (hostile input echoed in part at most)."""
    text = scrub_secrets(text, runtime.settings.secrets())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 40] + f" … ({len(text) - _MAX_ERROR_CHARS + 40} more characters)"
    return text


def _validation_message(exc: pydantic.ValidationError) -> str:
    """Field and rule, without echoing the rejected value back (it may be huge or hostile)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "request"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _produce_video_prompt(topic: str, minutes: str = "1", aspect_ratio: str = "16:9") -> str:
    try:
        mins = max(0.25, min(60.0, float(minutes)))
    except ValueError:
        raise InputError("minutes must be a number, e.g. 1 or 2.5") from None
    if aspect_ratio not in ("16:9", "9:16"):
        raise InputError("aspect_ratio must be 16:9 (a regular video) or 9:16 (a Short)")
    scenes = max(2, min(60, round(mins * 60 / 8)))
    video_id = "-".join("".join(c if c.isalnum() else " " for c in topic.lower()).split())[:48] or "my-video"
    return f"""Produce a YouTube video about: {topic}
Target length: about {mins:g} minute(s), aspect ratio {aspect_ratio}. Use video_id "{video_id}".

1. Write a script of {scenes} scenes of about 8 s each: for every scene, one narration sentence or two
   (about 20 words) and a visual prompt (subject, action, setting, camera, mood).
2. Budget first: call provider_report() and read each configured video provider's tier and
   scene_8s_usd. Estimate the cost of {scenes} scenes, tell the user, and keep within their budget:
   AI video (tier ai_video, dollars per scene) for a few hero shots, stills in motion (motion:*, cents
   per scene) for the rest, by passing providers=[...] per scene.
3. Call synthesize_narration(video_id, segments=[one string per scene, in order]) first: its result's
   segments give each sentence's start_s. Scene i lasts from segment i's start (scene 1 from 0) to segment
   i+1's start (the last to the narration's duration_s), so each sentence plays over its own picture.
   For each scene i = 1..{scenes}: call generate_scene(video_id, scene_index=i, prompt=..., duration_s=<that>,
   aspect_ratio="{aspect_ratio}"). You may start them all before polling any.
4. Call generate_music(video_id, mood=<2-5 mood words, e.g. "calm, hopeful"; no artist names>,
   duration_s={min(600, max(5, round(mins * 60)))}).
5. Call make_thumbnail(video_id, title=<2-6 punchy words>, subtitle=<optional>).
6. Call assemble_video(video_id, aspect_ratio="{aspect_ratio}") (it mixes the music under the narration).
7. Call provider_report(video_id=...) and tell the user where final_video.mp4 and thumbnail.jpg are,
   which providers made what, and the total cost.

Job protocol: every generating tool returns a job envelope {{job_id, status, progress, message, result, error}}.
If status is "queued" or "running", call job_status(job_id, wait_seconds=50) until it is "succeeded"
(use result), "failed" (read error.message and error.attempts, adjust, retry) or "cancelled".
"""


def build_server(settings: Settings | None = None, *, runtime: Runtime | None = None) -> YtapServer:
    """The ytap MCP server over a runtime (built from ``settings`` when not given)."""
    if runtime is None:
        runtime = Runtime.create(settings or Settings.from_env())
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("ytap-mcp")
    except PackageNotFoundError:  # running from a checkout
        ver = "0.0.0"
    server = YtapServer(
        runtime,
        name=SERVER_NAME,
        title="YouTube production (ytap)",
        instructions=INSTRUCTIONS,
        version=ver,
        log_level=typing.cast(Any, runtime.settings.log_level),
        # The MCP tasks extension: job tools answered as tasks for clients that declare it.
        extensions=[TasksExtension(runtime, tools.TOOLS, lambda envelope: _with_previews(runtime, envelope)),
                    # MCP Apps: the storyboard, opened only by clients that declare the extension.
                    StoryboardApps()],
        tools=[_tool(runtime, info) for info in tools.TOOLS],
    )
    server.middleware.append(apps_tools_list_middleware)
    runtime.jobs.add_finisher("preview", lambda result: _prewarm_preview(runtime, result))
    _add_templates(server)
    server.prompt(
        name="produce_video",
        title="Produce a YouTube video",
        description="The production recipe, step by step, with the job protocol.",
    )(_produce_video_prompt)
    return server


def _add_templates(server: YtapServer) -> None:
    """Templates so clients can discover the uri shapes. YtapServer.read_resource answers reads
    first (it knows each file's mime type); these functions give the same content if reached."""

    async def _content(uri: str) -> str | bytes:
        return list(await server.read_resource(uri))[0].content

    @server.resource("ytap://jobs/{job_id}", name="job", mime_type="application/json",
                     description="A job's envelope (status, progress, result or error)")
    async def job(job_id: str) -> str | bytes:
        return await _content(f"ytap://jobs/{job_id}")

    @server.resource("ytap://{workspace_id}/{video_id}/manifest", name="manifest", mime_type="application/json",
                     description="Every asset of a video and every provider attempt")
    async def manifest(workspace_id: str, video_id: str) -> str | bytes:
        return await _content(f"ytap://{workspace_id}/{video_id}/manifest")

    @server.resource("ytap://{workspace_id}/{video_id}/{+path}", name="file", mime_type="application/octet-stream",
                     description="A file of a video: scenes/scene_001.mp4, audio/narration.wav, audio/narration.srt, "
                     "thumbnail.jpg, final_video.mp4 (served with its own mime type)")
    async def file(workspace_id: str, video_id: str, path: str) -> str | bytes:
        return await _content(f"ytap://{workspace_id}/{video_id}/{path}")
