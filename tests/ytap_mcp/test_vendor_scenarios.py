"""Whole chains through the MCP client against loopback vendors speaking their real wire formats.

Three situations the chains exist for: every vendor healthy (the first tiers win), OpenAI down
(Google and ElevenLabs take over), and a cascade of different failures (the local tiers win,
every reason on the record). All traffic goes to 127.0.0.1.
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
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from tests.vendors import elevenlabs_mock as el
from tests.vendors import google_mock as gm
from tests.vendors import openai_mock as om
from tests.vendors.loopback import LoopbackServer, Reply, loopback_server
from ytap_mcp.server import build_server

KEYS = {
    "OPENAI_API_KEY": "FAKE-openai-SCENARIO-7f3a9c1d2e4b",
    "ELEVENLABS_API_KEY": "FAKE-elevenlabs-SCENARIO-51c0ffee",
    "GOOGLE_API_KEY": "FAKE-google-SCENARIO-0a1b2c3d",
}
VEO = "veo-3.1-generate-001"


pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture
def vendors() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        yield server


def _runtime(tmp_path: Path, server: LoopbackServer) -> Runtime:
    settings = Settings.from_env({
        "YTAP_HOME": str(tmp_path / "home"),
        **KEYS,
        "OPENAI_BASE_URL": server.url + "/v1",
        "ELEVENLABS_BASE_URL": server.url,
        "GOOGLE_GEMINI_BASE_URL": server.url,
        "GOOGLE_VERTEX_BASE_URL": server.url,
    })
    rt = Runtime.create(settings)
    rt.catalog.retry = RetryPolicy(attempts=2, base_delay_s=0.05, retry_after_cap_s=5)
    rt.catalog.get("google:veo-3.1").poll_interval_s = 0.05  # type: ignore[attr-defined]
    return rt


def _healthy_google(server: LoopbackServer) -> None:
    op = gm.operation_name(VEO)
    server.route("POST", gm.predict_path(VEO), sticky=gm.operation_started(op))
    server.route("POST", gm.fetch_path(VEO), gm.operation_running(op), sticky=gm.operation_done(
        op, om.mp4_bytes(seconds=2.0)))
    server.route("POST", gm.generate_content_path("gemini-3.1-flash-image"), sticky=gm.image_reply(om.png_bytes()))
    server.route("POST", gm.generate_content_path("gemini-3.8-flash-tts"), sticky=gm.audio_reply(om.pcm_bytes(1.0)))


def _healthy_openai(server: LoopbackServer) -> None:
    server.route("POST", "/v1/audio/speech", sticky=om.speech_reply(om.pcm_bytes(1.0)))
    server.route("POST", "/v1/images/generations", sticky=om.images_reply(om.png_bytes()))


def _healthy_elevenlabs(server: LoopbackServer) -> None:
    server.route("POST", r"/v1/text-to-speech/[^/]+/with-timestamps", sticky=el.speaking(1.0))


async def _produce(rt: Runtime) -> dict[str, Any]:
    async with Client(build_server(runtime=rt)) as client:

        async def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(tool, {"video_id": "v", "wait_seconds": 45, **args})
            assert not result.is_error, result.content
            env = result.structured_content
            while env["status"] in ("queued", "running"):
                env = (await client.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 30})
                       ).structured_content
            assert env["status"] == "succeeded", env
            return env["result"]

        scene = await run("generate_scene", {"scene_index": 1, "prompt": "a lighthouse at dawn", "duration_s": 2})
        narration = await run("synthesize_narration", {"segments": ["First line.", "Second line."]})
        thumb = await run("make_thumbnail", {"title": "Lighthouses"})
        report = (await client.call_tool("provider_report", {"video_id": "v"})).structured_content
        return {"scene": scene, "narration": narration, "thumbnail": thumb, "report": report}


def _everything_written(rt: Runtime) -> str:
    root = rt.settings.home
    text = [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]
    return "\n".join(text)


def _assert_no_key_anywhere(rt: Runtime, out: dict[str, Any]) -> None:
    blob = json.dumps(out) + _everything_written(rt)
    for key in KEYS.values():
        assert key not in blob


@pytest.mark.slow
def test_scenario_all_healthy_first_tiers_win(tmp_path: Path, vendors: LoopbackServer) -> None:
    _healthy_google(vendors)
    _healthy_openai(vendors)
    _healthy_elevenlabs(vendors)
    rt = _runtime(tmp_path, vendors)
    try:
        out = anyio.run(_produce, rt)
    finally:
        rt.close()
    assert out["scene"]["provider"] == "google:veo-3.1"
    assert out["narration"]["provider"] == "openai:gpt-4o-mini-tts"
    assert out["thumbnail"]["provider"] == "openai:gpt-image-2"
    assert (out["scene"]["width"], out["scene"]["height"], out["scene"]["fps"]) == (1920, 1080, 30.0)
    assert out["scene"]["cost_usd"] == pytest.approx(4 * 0.40)  # Veo bills 4 s for a 2 s request
    assert out["report"]["totals"]["cost_usd"] > 0
    auth = {r.headers.get("authorization") for r in vendors.calls("POST", "/v1/audio/speech")}
    assert auth == {f"Bearer {KEYS['OPENAI_API_KEY']}"}
    _assert_no_key_anywhere(rt, out)


@pytest.mark.slow
def test_scenario_openai_down_google_and_elevenlabs_win(tmp_path: Path, vendors: LoopbackServer) -> None:
    _healthy_google(vendors)
    _healthy_elevenlabs(vendors)
    vendors.route("POST", "/v1/audio/speech", sticky=om.server_error_reply(503))
    vendors.route("POST", "/v1/images/generations", sticky=om.server_error_reply(503))
    rt = _runtime(tmp_path, vendors)
    try:
        out = anyio.run(_produce, rt)
    finally:
        rt.close()
    assert out["scene"]["provider"] == "google:veo-3.1"
    assert out["narration"]["provider"] == "elevenlabs:eleven_multilingual_v2"
    assert out["thumbnail"]["provider"] == "google:gemini-3.1-flash-image"
    speech_tries = [(a["provider"], a["outcome"]) for a in out["narration"]["attempts"]]
    assert speech_tries == [("openai:gpt-4o-mini-tts", "failed"), ("openai:gpt-4o-mini-tts", "failed"),
                            ("elevenlabs:eleven_multilingual_v2", "succeeded")]
    assert all(s["words"] for s in out["narration"]["segments"])  # ElevenLabs alignment -> word timings
    assert vendors.calls("POST", r"/v1/text-to-speech/[^/]+/with-timestamps")[0].headers["xi-api-key"] == \
        KEYS["ELEVENLABS_API_KEY"]
    _assert_no_key_anywhere(rt, out)


def cascade(vendors: LoopbackServer) -> None:
    """A different failure at every paid tier."""
    vendors.route("POST", gm.predict_path(VEO), sticky=gm.api_error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests",
        headers={"retry-after": "600"}))
    vendors.route("POST", "/v1/audio/speech", sticky=om.server_error_reply(500))
    vendors.route("POST", r"/v1/text-to-speech/[^/]+/with-timestamps", sticky=el.invalid_api_key())
    vendors.route("POST", gm.generate_content_path("gemini-3.8-flash-tts"), sticky=gm.api_error(
        404, "NOT_FOUND", "models/gemini-3.8-flash-tts is not found for API version v1beta"))
    vendors.route("POST", "/v1/images/generations", sticky=om.moderation_reply(("violence",)))
    vendors.route("POST", gm.generate_content_path("gemini-3.1-flash-image"), sticky=Reply(drop=True))


def test_scenario_cascade_local_tiers_win_with_every_reason(tmp_path: Path, vendors: LoopbackServer) -> None:
    cascade(vendors)
    rt = _runtime(tmp_path, vendors)
    try:
        out = anyio.run(_produce, rt)
    finally:
        rt.close()
    assert out["scene"]["provider"] == "local:placeholder"
    assert out["narration"]["provider"] == "local:espeak-ng"
    assert out["thumbnail"]["provider"] == "local:pillow"
    codes = {(a["provider"], a["error_code"]) for k in ("scene", "narration", "thumbnail")
             for a in out[k]["attempts"] if a["outcome"] == "failed"}
    assert codes == {
        ("google:veo-3.1", "rate_limited"),
        ("openai:gpt-4o-mini-tts", "unavailable"),
        ("elevenlabs:eleven_multilingual_v2", "not_configured"),
        ("google:gemini-3.8-flash-tts", "unavailable"),
        ("openai:gpt-image-2", "refused"),
        ("google:gemini-3.1-flash-image", "unavailable"),
        # The stills in motion (issue 14) fail in the video chain as their image providers do.
        ("motion:openai:gpt-image-2", "refused"),
        ("motion:google:gemini-3.1-flash-image", "unavailable"),
        # The keyless stock tier (issue 15): Commons cannot be reached from a test.
        ("commons:video", "unavailable"),
    }
    assert all(a["reason"] for k in ("scene", "narration", "thumbnail") for a in out[k]["attempts"]
               if a["outcome"] != "succeeded")
    report = out["report"]
    assert report["totals"]["failed_attempts"] >= 6
    if os.environ.get("YTAP_SHOW_REPORT"):
        print(json.dumps(report, indent=2))  # noqa: T201 - for the closing note: pytest -s
    _assert_no_key_anywhere(rt, out)
