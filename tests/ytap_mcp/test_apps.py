"""MCP Apps: the storyboard app (ui://ytap/storyboard.html) and review_video, through the SDK's client.

Contract names are pinned literally. The browser half (the app rendering and acting in Chromium)
is tests/browser/test_storyboard_browser.py.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image

from core.media.ffmpeg import run_ffmpeg
from core.media.previews import scene_frames
from core.media.probe import probe
from tests.mcp_helpers import error_text, ok
from ytap_mcp.apps import AppsClientExtension, storyboard_html, with_csp_hashes
from ytap_mcp.server import YtapServer

STORYBOARD = "ui://ytap/storyboard.html"
APP_MIME = "text/html;profile=mcp-app"
BOUND = {"review_video", "generate_scene", "synthesize_narration", "make_thumbnail", "assemble_video", "import_asset",
         "generate_music"}


def _run(server: YtapServer, body: Any, *, apps: bool, mode: str = "auto") -> Any:
    async def main() -> Any:
        async with Client(server, mode=mode, extensions=[AppsClientExtension()] if apps else []) as client:
            return await body(client)

    return anyio.run(main)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_apps_tools_list_points_at_the_storyboard_only_for_apps_clients(server: YtapServer, mode: str) -> None:
    async def listed(client: Client) -> dict[str, Any]:
        return {t.name: t.meta for t in (await client.list_tools()).tools}

    plain = _run(server, listed, apps=False, mode=mode)
    assert all(not (meta or {}).get("ui") for meta in plain.values()), plain  # SEP-2133: no change without Apps
    with_apps = _run(server, listed, apps=True, mode=mode)
    assert {name for name, meta in with_apps.items() if meta} == BOUND
    assert all(with_apps[name] == {"ui": {"resourceUri": STORYBOARD}} for name in BOUND)
    assert with_apps["job_status"] is None and with_apps["provider_report"] is None


def test_apps_storyboard_resource_is_read_not_listed(server: YtapServer) -> None:
    async def body(client: Client) -> Any:
        caps = client.server_capabilities
        read = await client.read_resource(STORYBOARD)
        return caps, read, [str(r.uri) for r in (await client.list_resources()).resources]

    caps, read, listed = _run(server, body, apps=True)
    assert "io.modelcontextprotocol/ui" in (caps.extensions or {})
    [content] = read.contents
    assert content.mime_type == APP_MIME and content.text == storyboard_html()
    assert content.meta == {"ui": {"csp": {}, "prefersBorder": True}}  # no outside origin declared at all
    assert STORYBOARD not in listed  # UI-only resources are found through the tools (the spec allows it)
    _, read_plain, listed_plain = _run(server, body, apps=False)
    assert read_plain.contents[0].text == storyboard_html() and listed_plain == listed


def test_apps_storyboard_html_is_self_contained_under_a_strict_policy() -> None:
    html = storyboard_html()
    assert with_csp_hashes(html) == html, "the CSP's hashes are stale: write with_csp_hashes(html) to the file"
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    rules = dict(rule.strip().split(" ", 1) for rule in csp.split(";"))
    assert rules["default-src"] == "'none'" and rules["connect-src"] == "'none'"
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", rules["script-src"])
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", rules["style-src"])
    assert rules["img-src"] == rules["media-src"] == "data: blob:"
    assert rules["object-src"] == rules["base-uri"] == rules["form-action"] == rules["frame-src"] == "'none'"
    assert "unsafe" not in csp
    # Nothing from the network, nothing parsed as markup or code at run time.
    assert not re.search(r"https?://|//cdn|@import|\ssrc=|\shref=", html)
    assert html.count("<script>") == 1 and html.count("<style>") == 1
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers (CSP would block them anyway)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"on", "srcdoc"):
        assert sink not in html, sink


def _strip(board: dict[str, Any]) -> list[tuple[int, str, list[str]]]:
    return [(s["index"], s["prompt"], [f["at"] for f in s["frames"]]) for s in board["scenes"]]


def test_review_video_storyboard_of_a_video(server: YtapServer) -> None:
    hostile = 'dusk <script>alert(1)</script><img src=x onerror="alert(2)">'

    async def body(client: Client) -> Any:
        for i, prompt in ((2, hostile), (1, "a lighthouse at dawn")):
            await ok(client, "generate_scene", {"video_id": "cliffs", "scene_index": i, "prompt": prompt,
                                                "duration_s": 1})
        await ok(client, "synthesize_narration", {"video_id": "cliffs", "segments": ["The light comes up.",
                                                                                     "Night falls on the cliffs."]})
        await ok(client, "make_thumbnail", {"video_id": "cliffs", "title": "Cliff light"})
        board = await ok(client, "review_video", {"video_id": "cliffs"})
        frames = [await client.read_resource(f["uri"]) for f in board["scenes"][0]["frames"]]
        await ok(client, "generate_scene", {"video_id": "cliffs", "scene_index": 1, "prompt": "a lighthouse at noon",
                                            "fresh": True})
        again = await ok(client, "review_video", {"video_id": "cliffs"})
        return board, frames, again

    board, frames, again = _run(server, body, apps=False)  # the tool works for every client, Apps or not
    assert _strip(board) == [(1, "a lighthouse at dawn", ["first", "middle", "last"]),
                             (2, hostile, ["first", "middle", "last"])]  # stored as written; the app shows text
    one, two = board["scenes"]
    assert (one["provider"], one["state"], one["cost_usd"], one["duration_s"]) == ("local:placeholder", "ok", 0.0, 1.0)
    assert one["frames"][1]["uri"].startswith("ytap://default/cliffs/previews/scene_001.")
    for read in frames:  # each frame a real 320x180 JPEG served as a ytap:// file
        [content] = read.contents
        assert content.mime_type == "image/jpeg"
        import base64

        assert Image.open(io.BytesIO(base64.b64decode(content.blob))).size == (320, 180)
    # Each scene's narration segment under it, with word timings inside the segment.
    assert one["narration"]["text"] == "The light comes up." and two["narration"]["index"] == 2
    words = two["narration"]["words"]
    assert [w["text"] for w in words][:2] == ["Night", "falls"]
    assert two["narration"]["start_s"] <= words[0]["start_s"] < words[-1]["end_s"] <= two["narration"]["end_s"] + 0.05
    assert board["narration"]["provider"] == "local:espeak-ng" and board["narration"]["unplaced_segments"] == []
    assert board["thumbnail"]["uri"] == "ytap://default/cliffs/thumbnail.jpg"
    assert (board["thumbnail"]["width"], board["thumbnail"]["height"]) == (1280, 720)
    assert board["final_video"] == {} and board["music"] == {} and board["credits"] == []
    assert board["totals"]["cost_usd"] == 0.0 and board["totals"]["assets"] == 4
    assert "local:placeholder" in board["providers"]["video"] and "local:pillow" in board["providers"]["image"]
    assert "google:veo-3.1" not in board["providers"]["video"]  # not configured: not offered
    # A remade scene: new pictures under new names, the old ones gone.
    new = again["scenes"][0]
    assert new["prompt"] == "a lighthouse at noon" and new["asset_id"] != one["asset_id"]
    previews = server.runtime.paths("default", "cliffs").root / "previews"
    assert sorted(p.name for p in previews.glob("scene_001.*")) == sorted(
        f"scene_001.{new['asset_id'].removeprefix('ast_')}.{at}.jpg" for at in ("first", "middle", "last"))


def test_review_video_of_a_video_without_assets_says_what_to_do(server: YtapServer) -> None:
    async def body(client: Client) -> str:
        return await error_text(client, "review_video", {"video_id": "nothing-here"})

    message = _run(server, body, apps=True)
    assert "no assets yet" in message and "generate_scene" in message


def test_scene_frames_are_first_middle_and_last(tmp_path: Path) -> None:
    """A clip red, then green, then blue (one keyframe): each frame shows its own third."""
    clip = tmp_path / "rgb.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=320x180:r=30:d=1", "-f", "lavfi", "-i",
                "color=c=lime:s=320x180:r=30:d=1", "-f", "lavfi", "-i", "color=c=blue:s=320x180:r=30:d=1",
                "-filter_complex", "[0][1][2]concat=n=3:v=1", "-c:v", "libx264", "-g", "90", "-threads", "2",
                "-pix_fmt", "yuv420p", str(clip)])
    colours = []
    for jpeg in scene_frames(clip, width=160):
        im = Image.open(io.BytesIO(jpeg)).convert("RGB")
        assert im.size == (160, 90)
        colours.append(max(range(3), key=lambda c: im.getpixel((80, 45))[c]))
    assert colours == [0, 1, 2]  # red, green, blue


@pytest.mark.slow
def test_review_video_final_preview_is_a_light_rendition(server: YtapServer) -> None:
    async def body(client: Client) -> Any:
        for i in (1, 2):
            await ok(client, "generate_scene", {"video_id": "short", "scene_index": i, "prompt": f"part {i}",
                                                "duration_s": 1})
        final = await ok(client, "assemble_video", {"video_id": "short", "height": 720, "wait_seconds": 50})
        board = await ok(client, "review_video", {"video_id": "short"})
        await ok(client, "generate_scene", {"video_id": "short", "scene_index": 2, "prompt": "part 2, again",
                                            "duration_s": 1})
        return final, board, await ok(client, "review_video", {"video_id": "short"})

    final, board, after_edit = _run(server, body, apps=True)
    preview = board["final_video"]
    assert (preview["stale"], preview["stale_because"]) == (False, [])
    # Scene 2 made again after the assembly: the final video no longer shows it, and the board says so.
    assert (after_edit["final_video"]["stale"], after_edit["final_video"]["stale_because"]) == (True, ["scene 2"])
    assert preview["uri"] == "ytap://default/short/final_video.mp4" and preview["preview_width"] == 640
    path = server.runtime.paths("default", "short").root / preview["preview_uri"].split("/short/", 1)[1]
    info = probe(path)
    assert (info.video.width, info.video.height) == (640, 360)  # type: ignore[union-attr]
    assert info.video.codec == "h264" and abs(info.duration_s - final["duration_s"]) < 0.2  # type: ignore[union-attr]
    assert preview["preview_bytes"] == path.stat().st_size < final["bytes"]
