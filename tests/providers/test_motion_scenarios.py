"""Stills in motion through the MCP client, against loopback vendors speaking their real wire formats.

The acceptance of issue 14 for the motion family: with only OPENAI_API_KEY the scenes come out as
``motion:openai:gpt-image-2`` (1920x1080 and 1080x1920, 30 fps, exact duration, probed), with only a
Gemini key as ``motion:google:gemini-3.1-flash-image`` (Veo refuses a Gemini API key), the fallback
from motion to the placeholder with its reason, the ``cheapest`` policy and the budget cap, each
figure read back from ``provider_report``. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.config import Settings
from core.media.probe import probe
from core.providers import pricing
from core.providers.replicate import ReplicateVideoProvider
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from tests.vendors import google_mock as gm
from tests.vendors import openai_mock as om
from tests.vendors import replicate_mock as rm
from tests.vendors.loopback import LoopbackServer, Reply, loopback_server
from tests.vendors.stills import scenic_png
from ytap_mcp.server import build_server

OPENAI_KEY = "FAKE-openai-MOTION-SCENARIO-4b1d"
GOOGLE_KEY = "FAKE-gemini-MOTION-SCENARIO-77aa"
REPLICATE_TOKEN = "r8_FAKE-replicate-SCENARIO-0d9e"
VEO = "veo-3.1-generate-001"
IMAGE_PRICE = pricing.cost_usd("openai:gpt-image-2", 1)

pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture
def vendors() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        server.route("POST", om.IMAGES, sticky=lambda req: om.images_reply(scenic_png(len(server.requests))))
        server.route("POST", gm.generate_content_path("gemini-3.1-flash-image"),
                     sticky=lambda req: gm.image_reply(scenic_png(len(server.requests), 1344, 768)))
        # Veo runs only on Vertex AI, which does not take a Gemini API key.
        server.route("POST", gm.predict_path(VEO), sticky=gm.api_error(
            401, "UNAUTHENTICATED", "API keys are not supported by this API. Expected OAuth2 access token or other "
                                    "authentication credentials that assert a principal."))
        yield server


def _runtime(tmp_path: Path, server: LoopbackServer, **env: str) -> Runtime:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "OPENAI_BASE_URL": server.url + "/v1",
                                  "GOOGLE_GEMINI_BASE_URL": server.url, "GOOGLE_VERTEX_BASE_URL": server.url, **env})
    rt = Runtime.create(settings)
    rt.catalog.retry = RetryPolicy(attempts=1)
    return rt


async def _scenes(rt: Runtime, *scenes: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    async with Client(build_server(runtime=rt)) as client:
        done = []
        for args in scenes:
            result = await client.call_tool("generate_scene", {"video_id": "v", "wait_seconds": 45, **args})
            assert not result.is_error, result.content
            env = result.structured_content
            while env["status"] in ("queued", "running"):
                env = (await client.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 30})
                       ).structured_content
            assert env["status"] == "succeeded", env
            done.append(env["result"])
        report = (await client.call_tool("provider_report", {"video_id": "v"})).structured_content
        return done, report


def _run(rt: Runtime, *scenes: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    try:
        return anyio.run(_scenes, rt, *scenes)
    finally:
        rt.close()


def _probed(scene: dict[str, Any]) -> tuple[int, int, float, int]:
    info = probe(Path(scene["path"]), count_frames=True)
    return info.video.width, info.video.height, round(info.video.fps, 3), info.video.frames


def _no_key_anywhere(rt: Runtime, *blobs: Any) -> None:
    text = json.dumps(blobs) + "".join(p.read_bytes().decode("latin-1") for p in rt.settings.home.rglob("*")
                                       if p.is_file())
    assert OPENAI_KEY not in text and GOOGLE_KEY not in text and REPLICATE_TOKEN not in text


def test_scenario_openai_key_alone_gives_stills_in_motion(tmp_path: Path, vendors: LoopbackServer) -> None:
    rt = _runtime(tmp_path, vendors, OPENAI_API_KEY=OPENAI_KEY)
    (wide, tall), report = _run(rt, {"scene_index": 1, "prompt": "a lighthouse at dawn", "duration_s": 2},
                                {"scene_index": 2, "prompt": "a harbour at night", "duration_s": 1.5,
                                 "aspect_ratio": "9:16"})
    assert wide["provider"] == tall["provider"] == "motion:openai:gpt-image-2"
    assert _probed(wide) == (1920, 1080, 30.0, 60) and _probed(tall) == (1080, 1920, 30.0, 45)
    assert wide["cost_usd"] == tall["cost_usd"] == IMAGE_PRICE > 0
    assert wide["model"].startswith("gpt-image-2 + ")  # the picture's model and the move
    skipped = {a["provider"]: a["reason"] for a in wide["attempts"] if a["outcome"] == "skipped"}
    assert "GOOGLE_API_KEY" in skipped["google:veo-3.1"]
    row = next(p for p in report["providers"] if p["id"] == "motion:openai:gpt-image-2")
    assert (row["capability"], row["configured"], row["in_chain"], row["calls"]) == ("video", True, True, 2)
    assert row["cost_usd"] == pytest.approx(2 * IMAGE_PRICE)
    assert report["totals"]["cost_usd"] == pytest.approx(2 * IMAGE_PRICE)
    tiers = {p["id"]: (p["tier"], p["scene_8s_usd"]) for p in report["providers"] if p["capability"] == "video"}
    assert tiers["motion:openai:gpt-image-2"] == ("stills_in_motion", IMAGE_PRICE)  # one image, whatever the length
    assert tiers["google:veo-3.1"] == ("ai_video", pytest.approx(8 * 0.40))
    assert tiers["replicate:seedance-1-lite"] == ("ai_video", pytest.approx(10 * 0.036))  # 5 or 10 s clips: 10
    assert tiers["local:placeholder"] == ("placeholder", 0.0)
    assert all(p.get("tier") is None for p in report["providers"] if p["capability"] != "video")
    sizes = [c.json()["size"] for c in vendors.calls("POST", om.IMAGES)]
    assert sizes == ["1536x1024", "1024x1536"]  # a still of each scene's shape
    _no_key_anywhere(rt, wide, tall, report)


def test_scenario_gemini_key_alone_gives_gemini_stills_in_motion(tmp_path: Path, vendors: LoopbackServer) -> None:
    rt = _runtime(tmp_path, vendors, GEMINI_API_KEY=GOOGLE_KEY)
    (scene,), report = _run(rt, {"scene_index": 3, "prompt": "pine forest, morning mist", "duration_s": 2})
    assert scene["provider"] == "motion:google:gemini-3.1-flash-image"
    assert _probed(scene) == (1920, 1080, 30.0, 60)
    assert scene["cost_usd"] == pricing.cost_usd("google:gemini-3.1-flash-image", 1) > 0
    tried = [(a["provider"], a["outcome"], a["error_code"]) for a in scene["attempts"]]
    assert tried[0] == ("google:veo-3.1", "failed", "not_configured")  # Vertex refused the Gemini key
    assert ("motion:openai:gpt-image-2", "skipped", "not_configured") in tried
    assert tried[-1] == ("motion:google:gemini-3.1-flash-image", "succeeded", "")
    assert report["totals"]["by_provider"]["motion:google:gemini-3.1-flash-image"] == scene["cost_usd"]
    _no_key_anywhere(rt, scene, report)


def test_scenario_motion_falls_back_to_the_placeholder_with_reasons(tmp_path: Path,
                                                                    vendors: LoopbackServer) -> None:
    vendors.route("POST", om.IMAGES, om.moderation_reply(("violence",)))  # before the sticky healthy answer
    vendors.route("POST", gm.generate_content_path("gemini-3.1-flash-image"), gm.blocked_prompt_reply())
    rt = _runtime(tmp_path, vendors, OPENAI_API_KEY=OPENAI_KEY, GEMINI_API_KEY=GOOGLE_KEY)
    (scene,), report = _run(rt, {"scene_index": 1, "prompt": "a battle", "duration_s": 1})
    assert scene["provider"] == "local:placeholder" and scene["cost_usd"] == 0
    failed = {a["provider"]: (a["error_code"], a["reason"]) for a in scene["attempts"] if a["outcome"] == "failed"}
    assert failed["motion:openai:gpt-image-2"][0] == "refused" and "violence" in failed["motion:openai:gpt-image-2"][1]
    assert failed["motion:google:gemini-3.1-flash-image"][0] == "refused"
    assert report["totals"]["failed_attempts"] == 4  # Veo, both stills, Commons (unreachable in tests)
    _no_key_anywhere(rt, scene, report)


def test_scenario_cheapest_policy_and_budget_cap(tmp_path: Path, vendors: LoopbackServer) -> None:
    rt = _runtime(tmp_path, vendors, OPENAI_API_KEY=OPENAI_KEY, GEMINI_API_KEY=GOOGLE_KEY,
                  YTAP_CHAIN_POLICY="cheapest", YTAP_BUDGET_USD="0.10")
    first, second = _run(rt, {"scene_index": 1, "prompt": "dunes", "duration_s": 1},
                         {"scene_index": 2, "prompt": "a river delta", "duration_s": 1})[0]
    assert first["provider"] == "motion:openai:gpt-image-2"  # the cheapest paid tier goes first
    assert not vendors.calls("POST", gm.predict_path(VEO))  # Veo ($3.20 for 8 s) was never reached
    # $0.037 left of $0.10: neither still fits; the free card does.
    assert second["provider"] == "local:placeholder"
    budget = {a["provider"]: a["reason"] for a in second["attempts"] if a["error_code"] == "budget_exceeded"}
    assert set(budget) >= {"motion:openai:gpt-image-2", "motion:google:gemini-3.1-flash-image"}
    assert "YTAP_BUDGET_USD=$0.10" in budget["motion:openai:gpt-image-2"]


def test_produce_video_prompt_asks_for_an_estimate_and_tells_how_to_mix_tiers(tmp_path: Path) -> None:
    async def prompt() -> str:
        rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path)}))
        try:
            async with Client(build_server(runtime=rt)) as client:
                got = await client.get_prompt("produce_video", {"topic": "volcanoes", "minutes": "2"})
                return got.messages[0].content.text
        finally:
            rt.close()

    text = anyio.run(prompt)
    assert "scene_8s_usd" in text and "Estimate the cost of 15 scenes" in text
    assert "stills in motion (motion:*" in text and "hero shots" in text


def test_scenario_aggregator_scenes_and_its_fallback_to_stills_in_motion(tmp_path: Path, vendors: LoopbackServer,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A Replicate token and an OpenAI key: AI video from the aggregator first (16:9 and 9:16, probed); a prompt
    the model refuses falls back to a still in motion, with the vendor's reason on the attempt."""
    flagged = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
    monkeypatch.setattr(ReplicateVideoProvider, "poll_interval_s", 0.05)  # 5 s between status checks in real use

    def status(req: Any) -> Reply:
        if len(vendors.calls("POST", rm.CREATE)) <= 2:
            return rm.prediction(vendors.url, "succeeded", output=rm.clip_url(vendors.url))
        return rm.prediction(vendors.url, "failed", error=flagged)

    vendors.route("POST", rm.CREATE, sticky=rm.prediction(vendors.url, "starting", http_status=201))
    vendors.route("GET", rm.GET, sticky=status)
    vendors.route("GET", rm.CLIP, sticky=Reply(body=om.mp4_bytes(seconds=5.0), headers={"content-type": "video/mp4"}))
    rt = _runtime(tmp_path, vendors, OPENAI_API_KEY=OPENAI_KEY, REPLICATE_API_TOKEN=REPLICATE_TOKEN,
                  REPLICATE_BASE_URL=vendors.url)
    (wide, tall, refused), report = _run(
        rt, {"scene_index": 1, "prompt": "waves on a black sand beach", "duration_s": 2},
        {"scene_index": 2, "prompt": "a harbour at night", "duration_s": 1.5, "aspect_ratio": "9:16"},
        {"scene_index": 3, "prompt": "a battle", "duration_s": 1})
    assert wide["provider"] == tall["provider"] == "replicate:seedance-1-lite"
    assert _probed(wide) == (1920, 1080, 30.0, 60) and _probed(tall) == (1080, 1920, 30.0, 45)
    clip_price = pricing.cost_usd("replicate:seedance-1-lite", 5)  # its shortest clip is 5 s
    assert wide["cost_usd"] == tall["cost_usd"] == clip_price > 0
    ratios = [c.json()["input"]["aspect_ratio"] for c in vendors.calls("POST", rm.CREATE)]
    assert ratios == ["16:9", "9:16", "16:9"]
    assert refused["provider"] == "motion:openai:gpt-image-2"
    failed = {a["provider"]: (a["error_code"], a["reason"]) for a in refused["attempts"] if a["outcome"] == "failed"}
    assert failed["replicate:seedance-1-lite"][0] == "refused" and "E005" in failed["replicate:seedance-1-lite"][1]
    row = next(p for p in report["providers"] if p["id"] == "replicate:seedance-1-lite")
    assert (row["calls"], row["failures"]) == (3, 1) and row["cost_usd"] >= 2 * clip_price
    _no_key_anywhere(rt, wide, tall, refused, report)
