"""The storyboard MCP App in a real browser: Debian's Chromium driven by playwright-core (storyboard.mjs).

The test host (host.html, served on 127.0.0.1) implements the Apps bridge over postMessage and
relays everything that is not ``ui/*`` to the REAL server through the SDK's in-memory client,
which declares MCP Apps as a host does. The video is made by the zero-key local providers; scene 2
is then regenerated as a still in motion (``motion:sd:default``, a loopback AUTOMATIC1111 server).
Screenshots land in $YTAP_BROWSER_SHOTS (default: the test's tmp folder).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from core.config import Settings
from core.runtime import Runtime
from tests.mcp_helpers import ok
from tests.vendors import sd_mock as sm
from tests.vendors.loopback import LoopbackServer, json_reply, loopback_server
from tests.vendors.stills import scenic_png
from ytap_mcp.apps import AppsClientExtension
from ytap_mcp.server import build_server

HERE = Path(__file__).parent
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")
PLAYWRIGHT = HERE / "node_modules" / "playwright-core"

pytestmark = [
    pytest.mark.slow,  # makes a 6-scene video, assembles it and drives a browser: about a minute
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not PLAYWRIGHT.is_dir(), reason="playwright-core is not installed: run npm ci in tests/browser"),
]

MOTION = "motion:sd:default"
HOSTILE = 'Lighthouse <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> at night'
PROMPTS = ["A rocky coast at dawn", "Waves breaking on a breakwater", "A keeper climbing a spiral stair",
           HOSTILE, "The lamp turning, beams sweeping fog", "Ships passing safely, the end"]


def _relay_app(client: Client) -> Any:
    """The test host's server: host.html, and POST /rpc relaying one MCP request through ``client``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        method, params = body["method"], body.get("params") or {}
        try:
            if method == "tools/list":
                result: Any = await client.list_tools()
            elif method == "tools/call":
                result = await client.call_tool(params["name"], params.get("arguments") or {})
            elif method == "resources/read":
                result = await client.read_resource(params["uri"])
            elif method == "ping":
                return JSONResponse({"result": {}})
            else:
                return JSONResponse({"error": {"code": -32601, "message": f"the test host does not relay {method}"}})
        except MCPError as exc:
            return JSONResponse({"error": {"code": exc.error.code, "message": exc.error.message}})
        return JSONResponse({"result": result.model_dump(mode="json", by_alias=True, exclude_none=True)})

    async def host(request: Request) -> FileResponse:
        return FileResponse(HERE / "host.html", media_type="text/html")

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(routes=[Route("/", host), Route("/rpc", rpc, methods=["POST"]), Route("/favicon.ico", no_icon)])


async def _make_video(client: Client) -> None:
    for i, prompt in enumerate(PROMPTS, 1):
        await ok(client, "generate_scene", {"video_id": "coast", "scene_index": i, "prompt": prompt,
                                            "providers": ["local:placeholder"], "duration_s": 1.5, "wait_seconds": 30})
    await ok(client, "synthesize_narration", {"video_id": "coast", "segments": [
        "Dawn on the coast.", "The sea keeps coming.", "Up the stairs he goes.", "Night falls.",
        "The lamp turns.", "Everyone gets home."]})
    await ok(client, "make_thumbnail", {"video_id": "coast", "title": "The last keeper"})
    await ok(client, "assemble_video", {"video_id": "coast", "height": 720, "wait_seconds": 50})


@pytest.fixture
def sd() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        server.route("POST", sm.TXT2IMG, sticky=lambda req: sm.txt2img_reply(scenic_png(7, 1344, 768)))
        server.route("POST", sm.INTERRUPT, sticky=json_reply({}))
        yield server


@pytest.fixture
def runtime(settings: Settings, sd: LoopbackServer) -> Iterator[Runtime]:
    rt = Runtime.create(dataclasses.replace(settings, sd_base_url=sd.url))
    yield rt
    rt.close()


def test_storyboard_browser_renders_regenerates_and_escapes(runtime: Runtime, sd: LoopbackServer,
                                                              tmp_path: Path) -> None:
    import uvicorn

    shots = Path(os.environ.get("YTAP_BROWSER_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    server = build_server(runtime=runtime)
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with Client(server, extensions=[AppsClientExtension()]) as client:
            await _make_video(client)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            web = uvicorn.Server(uvicorn.Config(_relay_app(client), log_level="warning", lifespan="off"))
            async with anyio.create_task_group() as tg:
                tg.start_soon(web.serve, [sock])
                while not web.started:
                    await anyio.sleep(0.05)
                url = f"http://127.0.0.1:{port}/?video=coast"
                proc = await anyio.run_process(
                    [NODE, str(HERE / "storyboard.mjs"), url, str(shots), "4", "2", MOTION],
                    cwd=HERE, check=False)
                web.should_exit = True
            out = proc.stdout.decode().strip().splitlines()
            seen.update(json.loads(out[-1]) if out else {})
            assert proc.returncode == 0, (seen.get("error"), proc.stderr.decode()[-2000:])

    anyio.run(main)
    (shots / "seen.json").write_text(json.dumps(seen, indent=1))

    # Six scenes in order, each with three decoded 320x180 frames, its provider and its narration with words.
    assert [s["index"] for s in seen["scenes"]] == [1, 2, 3, 4, 5, 6]
    for scene in seen["scenes"]:
        assert [f["w"] for f in scene["frames"]] == [320, 320, 320], scene
        assert "local:placeholder" in scene["facts"] and "$0.0000" in scene["facts"] and "1.5 s" in scene["facts"]
        assert scene["state"] == "ok"
        assert scene["narration"] and scene["words"] >= 2
    # The thumbnail: the 1280x720 file itself, shown full and at phone size.
    full, phone = seen["thumbnail"]
    assert full["natural"] == [1280, 720] and phone["shown"] == [320, 180]
    # The final video plays from a light rendition (a blob, never the full file inline).
    assert seen["video"]["src"] == "blob:" and seen["video"]["duration"] > 8 and seen["video"]["size"] == [640, 360]
    assert seen["played"]["at"] > 0.5 and seen["played"]["readyState"] >= 2

    # Escaped: the hostile prompt is text, nothing it names exists or ran, in the app or the host.
    assert seen["xss"] == {"flag": None, "scripts": 1, "onerrorImgs": 0, "srcX": 0}
    assert seen["hostXss"] is None
    assert "default-src 'none'" in seen["csp"] and "connect-src 'none'" in seen["csp"]
    # No network: every request the pages made went to the test host.
    assert all(u.startswith(f"http://127.0.0.1:") or u.startswith(("data:", "blob:", "about:"))
               for u in seen["requests"]), seen["requests"]

    # Regenerated through the bridge: generate_scene with the provider chosen from the server's list,
    # its job followed with job_status until it ended, then the new frame.
    assert {"local:placeholder", MOTION} <= set(seen["providerOptions"])
    call = seen["regenCall"]["arguments"]
    assert call["scene_index"] == 2 and call["providers"] == [MOTION] and call["fresh"] is True
    assert call["style"] == "cold blue light"
    assert "job_status" in seen["toolCalls"] and seen["toolCalls"][-1] == "review_video"
    for tool in ("generate_scene", "make_thumbnail", "synthesize_narration"):
        assert seen["toolCalls"].count(tool) == 1, seen["toolCalls"]
    assert seen["sceneFourWords"] >= 8  # the new segment's words, timed
    note = seen["staleNote"] or ""
    assert note.startswith("Out of date: ") and "scene 2" in note and "narration" in note, note
    thumb = runtime.registry.assets.current("default", "coast", "thumbnail")[0]
    assert thumb.props.title == "Keeper of the light"  # type: ignore[attr-defined]
    assert any("succeeded" in p for p in seen["progress"]) or seen["regenerated"]
    assert seen["regenerated"]["before"] != seen["regenerated"]["after"]
    assert seen["regeneratedPrompt"].startswith("A red fox")
    row = runtime.registry.assets.current("default", "coast", "scene")[1]
    assert row.scene_index == 2 and row.props.prompt.startswith("A red fox")  # type: ignore[attr-defined]
    fox = [r for r in sd.calls("POST", sm.TXT2IMG) if r.json()["prompt"].startswith("A red fox")]
    assert row.provider == MOTION and len(fox) == 1  # one still, put in motion
    assert row.asset_id.removeprefix("ast_") in seen["regenerated"]["after"]
    previews = sorted(p.name for p in (runtime.paths("default", "coast").root / "previews").glob("scene_002.*"))
    assert len(previews) == 3, previews  # the old scene's frames are gone

    # Opened by generate_scene's result (queued): the view followed the job, then loaded the storyboard.
    assert seen["narrowLog"][:2] == ["ui/initialize", "ui/notifications/initialized"]
    assert seen["narrowOpenedBy"][0] == "job_status" and "review_video" in seen["narrowOpenedBy"]
    # Narrow: nothing wider than the 380 px viewport.
    assert seen["narrowScrollWidth"] <= 380
    assert seen["consoleErrors"] == []  # no CSP violation, no failed load
    for name in ("storyboard-desktop.png", "storyboard-desktop-after.png", "storyboard-narrow.png"):
        assert (shots / name).stat().st_size > 10_000
