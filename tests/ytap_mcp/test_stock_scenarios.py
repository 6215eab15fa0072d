"""Stock footage through the MCP client: each provider makes a 16:9 and a 9:16 scene from loopback servers
speaking its API (real MP4/WebM served), the scenes probed at full size; provider_report carries the
credits block and assemble_video says credits are needed; with only PEXELS_API_KEY set the default chain
takes Pexels; with no key and no network the Commons attempt fails fast and the placeholder makes the scene.

Set YTAP_TEST_FRAMES_DIR to keep a middle frame of each scene as a PNG (to look at).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.config import Settings
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from tests.mcp_helpers import ok
from tests.vendors import stock_mock as sm
from tests.vendors.loopback import LoopbackServer, json_reply, loopback_server
from ytap_mcp.server import build_server

pytestmark = pytest.mark.usefixtures("no_vendor_environment")

KEYS = {"PEXELS_API_KEY": "FAKE-pexels-STOCK-1234abcd", "PIXABAY_API_KEY": "FAKE-pixabay-STOCK-5678efgh"}
PROMPT = "A lighthouse on a rocky coast at dusk"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("stockclips")
    return {
        "wide": sm.make_clip(d / "wide.mp4", 1920, 1080, 3, "red"),
        "tall_short": sm.make_clip(d / "tall.mp4", 1080, 1920, 2.5, "green"),  # shorter than the 3 s scene
        "wide_webm": sm.make_clip(d / "wide.webm", 1280, 720, 3.5, "orange", webm=True),
        "tall_webm": sm.make_clip(d / "tall.webm", 720, 1280, 3.5, "purple", webm=True),
    }


@pytest.fixture
def vendors(clips: dict[str, bytes]) -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        wide = sm.serve_file(server, "wide.mp4", clips["wide"])
        tall = sm.serve_file(server, "tall.mp4", clips["tall_short"])
        wide_webm = sm.serve_file(server, "wide.webm", clips["wide_webm"], mime="video/webm")
        tall_webm = sm.serve_file(server, "tall.webm", clips["tall_webm"], mime="video/webm")
        server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([
            sm.pexels_video(801, "lighthouse-on-a-rocky-coast", 3, [(1920, 1080, wide, "hd")], user="Sea Shooter"),
            sm.pexels_video(802, "lighthouse-at-dusk-vertical", 2, [(1080, 1920, tall, "hd")], user="Tall Shooter"),
        ])))
        server.route("GET", "/api/videos/", sticky=json_reply(sm.pixabay_search([
            sm.pixabay_hit(901, "lighthouse, coast, rocks, dusk", 3, {"large": (1920, 1080, wide)}),
            sm.pixabay_hit(902, "lighthouse, coast, vertical", 2, {"large": (1080, 1920, tall)}),
        ])))
        server.route("GET", "/w/api.php", sticky=json_reply(sm.commons_search([
            sm.commons_page(71, "Lighthouse_on_rocky_coast.webm", 1280, 720, 3.5, wide_webm),
            sm.commons_page(72, "Lighthouse_coast_portrait.webm", 720, 1280, 3.5, tall_webm, licence="CC0",
                            licence_url=None, artist="Unknown author"),
        ])))
        yield server


def _runtime(tmp_path: Path, env: dict[str, str]) -> Runtime:
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), **env}))
    rt.catalog.retry = RetryPolicy(attempts=1)
    return rt


def _one_scene(tmp_path: Path, env: dict[str, str], *, duration_s: float) -> dict[str, Any]:
    """One scene through the MCP client on the default chain."""
    rt = _runtime(tmp_path, env)

    async def run() -> dict[str, Any]:
        async with Client(build_server(runtime=rt)) as client:
            return await ok(client, "generate_scene", {"workspace_id": "ws", "video_id": "v", "scene_index": 1,
                                                       "prompt": PROMPT, "duration_s": duration_s})

    try:
        return anyio.run(run)
    finally:
        rt.close()


def _check(result: dict[str, Any], width: int, height: int, seconds: float, name: str) -> None:
    info = probe(result["path"], count_frames=True)
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height, info.video.fps) == (width, height, 30)
    assert info.video.frames == round(seconds * 30)
    frames_dir = os.environ.get("YTAP_TEST_FRAMES_DIR")
    if frames_dir:
        Path(frames_dir).mkdir(parents=True, exist_ok=True)
        run_ffmpeg(["-ss", str(seconds / 2), "-i", result["path"], "-frames:v", "1", "-threads", "2",
                    str(Path(frames_dir) / f"{name}.png")], what="a frame to look at")


@pytest.mark.slow  # six full-size scenes and a 720p assembly: ~40 s per provider on two cores
@pytest.mark.parametrize(("provider", "first", "second", "required"), [
    ("pexels:video", "pexels:801", "pexels:802", False),
    ("pixabay:video", "pixabay:901", "pixabay:902", False),
    ("commons:video", "commons:71", "commons:72", True),
])
def test_stock_scenes_through_mcp(vendors: LoopbackServer, tmp_path: Path, provider: str, first: str, second: str,
                                  required: bool) -> None:
    rt = _runtime(tmp_path, {**KEYS, "PEXELS_BASE_URL": vendors.url, "PIXABAY_BASE_URL": vendors.url,
                             "YTAP_COMMONS_BASE_URL": vendors.url})

    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with Client(build_server(runtime=rt)) as client:
            base = {"workspace_id": "ws", "video_id": "v1", "prompt": PROMPT, "duration_s": 3, "providers": [provider]}
            wide = await ok(client, "generate_scene", {**base, "scene_index": 1, "aspect_ratio": "16:9"})
            tall = await ok(client, "generate_scene", {**base, "video_id": "v2", "scene_index": 1,
                                                       "aspect_ratio": "9:16"})
            report = await ok(client, "provider_report", {"workspace_id": "ws", "video_id": "v1"})
            final = await ok(client, "assemble_video", {"workspace_id": "ws", "video_id": "v1", "height": 720})
            return wide, tall, report, final

    try:
        wide, tall, report, final = anyio.run(run)
    finally:
        rt.close()
    tag = provider.split(":")[0]
    assert wide["provider"] == tall["provider"] == provider
    _check(wide, 1920, 1080, 3, f"{tag}_16x9")
    _check(tall, 1080, 1920, 3, f"{tag}_9x16")  # the best portrait clip is shorter than the scene
    for result, source in ((wide, first), (tall, second)):
        decision = result["attempts"][-1]["decision"]
        assert f"chose {source}" in decision and "queries: 'lighthouse coast'" in decision, decision
    assert report["credits"][0] == "Footage:" and len(report["credits"]) == 2
    assert first.split(":")[1] in report["credits"][1] or "Lighthouse_on_rocky_coast" in report["credits"][1]
    note = [n for n in final["notes"] if n.startswith("credits")]
    assert note and note[0].startswith("credits required: " if required else "credits: "), final["notes"]
    # The keys (Pixabay's travels in the query string) in no result, registry row or file.
    shown = json.dumps([wide, tall, report, final])
    assert not any(key in shown for key in KEYS.values())
    for f in (tmp_path / "home").rglob("*"):
        if f.is_file():
            assert not any(key.encode() in f.read_bytes() for key in KEYS.values()), f


def test_stock_only_a_pexels_key_makes_scenes_from_pexels(vendors: LoopbackServer, tmp_path: Path) -> None:
    result = _one_scene(tmp_path, {"PEXELS_API_KEY": KEYS["PEXELS_API_KEY"], "PEXELS_BASE_URL": vendors.url,
                                   "YTAP_COMMONS_BASE_URL": "http://commons.invalid"}, duration_s=2)
    assert result["provider"] == "pexels:video"
    tried = [(a["provider"], a["outcome"]) for a in result["attempts"]]
    assert tried[-1] == ("pexels:video", "succeeded")
    assert all(outcome == "skipped" for _, outcome in tried[:-1])  # the AI tiers, for want of keys


def test_stock_offline_zero_key_scene_from_the_placeholder_commons_failed_fast(tmp_path: Path) -> None:
    result = _one_scene(tmp_path, {"YTAP_COMMONS_BASE_URL": "http://commons.invalid"}, duration_s=1)
    assert result["provider"] == "local:placeholder"
    commons = next(a for a in result["attempts"] if a["provider"] == "commons:video")
    assert commons["outcome"] == "failed" and commons["error_code"] == "unavailable"
    assert commons["elapsed_s"] < 3.0, commons
    skipped = {a["provider"]: a["reason"] for a in result["attempts"] if a["outcome"] == "skipped"}
    assert skipped["pexels:video"] == "PEXELS_API_KEY not set" and skipped["pixabay:video"] == "PIXABAY_API_KEY not set"


@pytest.mark.slow  # two 1080p scenes
def test_stock_a_clip_is_not_used_twice_in_a_video(vendors: LoopbackServer, tmp_path: Path) -> None:
    rt = _runtime(tmp_path, {"PEXELS_API_KEY": KEYS["PEXELS_API_KEY"], "PEXELS_BASE_URL": vendors.url})

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with Client(build_server(runtime=rt)) as client:
            base = {"workspace_id": "ws", "video_id": "v", "prompt": PROMPT, "duration_s": 1,
                    "providers": ["pexels:video"]}
            scenes = [await ok(client, "generate_scene", {**base, "scene_index": i}) for i in (1, 2)]
            return scenes, await ok(client, "provider_report", {"workspace_id": "ws", "video_id": "v"})

    try:
        scenes, report = anyio.run(run)
    finally:
        rt.close()
    chosen = [s["attempts"][-1]["decision"].split("chose ")[1].split(";")[0] for s in scenes]
    assert chosen == ["pexels:801", "pexels:802"]
    assert report["credits"] == [
        "Footage:",
        "Video by Sea Shooter from Pexels: https://www.pexels.com/video/lighthouse-on-a-rocky-coast-801/",
        "Video by Tall Shooter from Pexels: https://www.pexels.com/video/lighthouse-at-dusk-vertical-802/",
    ]
