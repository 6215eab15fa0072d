"""Workspace voices through the SDK's in-memory client: clone_voice, synthesize_narration(voice=<name>),
provider_report, delete_voice, against a loopback ElevenLabs (127.0.0.1 only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.config import Settings
from core.media.ffmpeg import run_ffmpeg
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from tests.mcp_helpers import finish, text
from tests.vendors import elevenlabs_mock as el
from tests.vendors.loopback import LoopbackServer, loopback_server
from ytap_mcp.server import build_server

KEY = "FAKE-elevenlabs-VOICES-7c1a9e3f5b-DISTINCT"
TTS = r"/v1/text-to-speech/[^/]+/with-timestamps"


pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An import root holding a 3 s 'voice' recording (a WAV) and a still picture."""
    from PIL import Image

    root = tmp_path_factory.mktemp("voice_root").resolve()
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=190:r=44100:d=3", "-ac", "1", str(root / "host.wav")])
    Image.new("RGB", (64, 64), (200, 40, 90)).save(root / "badge.png")
    return root


@pytest.fixture
def vendor() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        server.route("POST", TTS, sticky=el.speaking(1.0))
        yield server


def _runtime(tmp_path: Path, vendor: LoopbackServer, recordings: Path, *, key: bool = True,
             **extra: str) -> Runtime:
    env = {"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(recordings),
           "ELEVENLABS_BASE_URL": vendor.url, **extra}
    if key:
        env["ELEVENLABS_API_KEY"] = KEY
    rt = Runtime.create(Settings.from_env(env))
    rt.catalog.retry = RetryPolicy(attempts=2, base_delay_s=0.05, retry_after_cap_s=5)
    return rt


@pytest.fixture
def rt(tmp_path: Path, vendor: LoopbackServer, recordings: Path) -> Iterator[Runtime]:
    runtime = _runtime(tmp_path, vendor, recordings)
    yield runtime
    runtime.close()


class Agent:
    """The calls an agent makes, each result also kept as text for the key search."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[str] = []

    async def ok(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await self.client.call_tool(name, args)
        self.seen.append(json.dumps(result.structured_content) + text(result))
        assert not result.is_error, text(result)
        answer = result.structured_content
        if "job_id" not in answer:
            return answer
        done = await finish(self.client, answer)
        self.seen.append(json.dumps(done))
        return done

    async def error(self, name: str, args: dict[str, Any]) -> str:
        result = await self.client.call_tool(name, args)
        self.seen.append(text(result))
        assert result.is_error, result.structured_content
        return text(result)

    async def import_sample(self, video_id: str = "studio") -> dict[str, Any]:
        return await self.ok("import_asset", {"video_id": video_id, "source": "host.wav", "kind": "narration"})


def _run(rt: Runtime, body: Any) -> Any:
    async def main() -> Any:
        async with Client(build_server(runtime=rt)) as client:
            return await body(Agent(client))

    return anyio.run(main)


def _raw_files(home: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


# --- the whole life of a voice ---------------------------------------------------------------------


def test_voices_clone_speak_report_delete(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
    vendor.route("DELETE", el.VOICE_PATH, sticky=el.voice_deleted())

    async def body(agent: Agent) -> dict[str, Any]:
        sample = await agent.import_sample()
        voice = await agent.ok("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                               "consent": True, "description": "The channel's host"})
        # Another video of the workspace speaks with it.
        spoken = await agent.ok("synthesize_narration", {"video_id": "episode-1", "voice": "host",
                                                         "segments": ["Welcome back.", "Today: lighthouses."]})
        again = await agent.ok("synthesize_narration", {"video_id": "episode-1", "voice": "host",
                                                        "segments": ["Welcome back.", "Today: lighthouses."]})
        report = await agent.ok("provider_report", {})
        deleted = await agent.ok("delete_voice", {"name": "host"})
        after = await agent.ok("provider_report", {})
        refused = await agent.error("synthesize_narration", {"video_id": "episode-1", "voice": "host",
                                                              "text": "Hello again."})
        return {"sample": sample, "voice": voice, "spoken": spoken, "again": again, "report": report,
                "deleted": deleted, "after": after, "refused": refused, "seen": agent.seen}

    out = _run(rt, body)
    voice, spoken = out["voice"], out["spoken"]
    clone_id = "cLoNe000000000000001"
    assert (voice["name"], voice["provider"], voice["vendor_voice_id"]) == ("host", "elevenlabs", clone_id)
    assert voice["sample_uri"] == out["sample"]["uri"] == "ytap://default/studio/audio/narration.wav"
    assert voice["sample_asset_id"] == out["sample"]["asset_id"] and voice["description"] == "The channel's host"
    assert voice["sample_duration_s"] == pytest.approx(3.0, abs=0.1)
    assert any("minute or two" in n for n in voice["notes"])  # a 3 s sample is short, and the result says so

    # The upload: one multipart request, the sample as mono MP3, the workspace in the vendor-side name.
    (add,) = vendor.calls("POST", el.VOICES_ADD_PATH)
    parts = {p.name: p for p in el.multipart(add)}
    assert parts["name"].text == "host (ytap default)"
    assert parts["files"].filename == "host.mp3" and parts["files"].data[:3] in (b"ID3", b"\xff\xfb")

    # The narration went to ElevenLabs with the clone's id in the path; the result names the workspace voice.
    tts = vendor.calls("POST", TTS)
    assert [c.path for c in tts] == [f"/v1/text-to-speech/{clone_id}/with-timestamps"] * 2
    assert spoken["provider"] == "elevenlabs:eleven_multilingual_v2" and spoken["voice"] == "host"
    assert out["again"]["cached"] is True and out["again"]["voice"] == "host"

    listed = out["report"]["voices"]
    assert [(v["name"], v["provider"], v["sample_uri"]) for v in listed] == [
        ("host", "elevenlabs", "ytap://default/studio/audio/narration.wav")]
    assert listed[0]["created_at"] == voice["created_at"]

    deleted = out["deleted"]
    assert (deleted["name"], deleted["vendor_deleted"], deleted["notes"]) == ("host", True, [])
    assert [c.path for c in vendor.calls("DELETE", el.VOICE_PATH)] == [f"/v1/voices/{clone_id}"]
    assert out["after"]["voices"] == []
    assert "[invalid_input]" in out["refused"] and "'host' was deleted" in out["refused"]
    assert "clone_voice" in out["refused"]
    assert len(vendor.calls("POST", TTS)) == 2  # the refused narration never reached a vendor

    # The key: in no result, report or error, and in no file of the home (database and WAL included).
    assert not any(KEY in text for text in out["seen"])
    home = rt.settings.home
    assert any(p.name.startswith("ytap.db") for p in home.iterdir())
    assert KEY.encode() not in _raw_files(home)


def test_voices_a_name_cloned_anew_does_not_hit_the_old_cache(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
    vendor.route("DELETE", el.VOICE_PATH, sticky=el.voice_deleted())
    args = {"video_id": "ep", "voice": "host", "text": "Same words, new voice."}

    async def body(agent: Agent) -> list[dict[str, Any]]:
        sample = await agent.import_sample()
        clone = {"video_id": "studio", "name": "host", "sample": sample["uri"], "consent": True}
        await agent.ok("clone_voice", clone)
        first = await agent.ok("synthesize_narration", args)
        await agent.ok("delete_voice", {"name": "host"})
        await agent.ok("clone_voice", clone)  # the same name again: a new voice at ElevenLabs
        second = await agent.ok("synthesize_narration", args)
        return [first, second]

    first, second = _run(rt, body)
    assert first["cached"] is False and second["cached"] is False
    assert [c.path.split("/")[3] for c in vendor.calls("POST", TTS)] == ["cLoNe000000000000001",
                                                                         "cLoNe000000000000002"]


def test_voices_the_chain_is_narrowed_to_the_vendor_of_the_clone(
    tmp_path: Path, vendor: LoopbackServer, recordings: Path
) -> None:
    """A chain configured without ElevenLabs still speaks a clone with it; a mixed providers list keeps only it."""
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
    rt = _runtime(tmp_path, vendor, recordings, YTAP_SPEECH_PROVIDERS="local:espeak-ng")

    async def body(agent: Agent) -> list[dict[str, Any]]:
        sample = await agent.import_sample()
        await agent.ok("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                       "consent": True})
        configured = await agent.ok("synthesize_narration", {"video_id": "ep", "voice": "host", "text": "One."})
        mixed = await agent.ok("synthesize_narration", {"video_id": "ep", "voice": "host", "text": "Two.",
                                                        "providers": ["local:espeak-ng",
                                                                      "elevenlabs:eleven_multilingual_v2"]})
        plain = await agent.ok("synthesize_narration", {"video_id": "ep", "voice": "en-us", "text": "Three."})
        return [configured, mixed, plain]

    try:
        configured, mixed, plain = _run(rt, body)
    finally:
        rt.close()
    for result in (configured, mixed):
        assert result["provider"] == "elevenlabs:eleven_multilingual_v2" and result["voice"] == "host"
        assert [a["provider"] for a in result["attempts"]] == ["elevenlabs:eleven_multilingual_v2"]
    assert plain["provider"] == "local:espeak-ng"  # any other voice: the configured chain, as before
    assert len(vendor.calls("POST", TTS)) == 2


# --- refusals ----------------------------------------------------------------------------------------


def test_voices_without_consent_nothing_is_sent(rt: Runtime, vendor: LoopbackServer) -> None:
    async def body(agent: Agent) -> tuple[str, str]:
        sample = await agent.import_sample()
        refused = await agent.error("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                                    "consent": False})
        missing = await agent.error("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"]})
        return refused, missing

    refused, missing = _run(rt, body)
    assert "[invalid_input]" in refused and "requires the speaker's permission" in refused
    assert "consent" in missing
    assert vendor.calls("POST", el.VOICES_ADD_PATH) == []


def test_voices_without_a_key_cloning_is_refused_naming_the_variable(
    tmp_path: Path, vendor: LoopbackServer, recordings: Path
) -> None:
    rt = _runtime(tmp_path, vendor, recordings, key=False)

    async def body(agent: Agent) -> str:
        sample = await agent.import_sample()
        return await agent.error("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                                 "consent": True})

    try:
        message = _run(rt, body)
    finally:
        rt.close()
    assert "[not_configured]" in message and "ELEVENLABS_API_KEY" in message
    assert vendor.requests == []


def test_voices_refusals_say_what_to_change(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())

    async def body(agent: Agent) -> dict[str, str]:
        sample = await agent.import_sample()
        await agent.ok("import_asset", {"video_id": "studio", "source": "badge.png", "kind": "image"})
        base = {"video_id": "studio", "consent": True}
        await agent.ok("clone_voice", {**base, "name": "host", "sample": sample["uri"]})
        return {
            "duplicate": await agent.error("clone_voice", {**base, "name": "host", "sample": sample["uri"]}),
            "picture": await agent.error("clone_voice", {**base, "name": "other", "sample": "images/badge.png"}),
            "outside": await agent.error("clone_voice", {**base, "name": "other", "sample": "../../../x.wav"}),
            "missing": await agent.error("clone_voice", {**base, "name": "other", "sample": "audio/none.wav"}),
            "bad_name": await agent.error("clone_voice", {**base, "name": "Host Voice", "sample": sample["uri"]}),
            "others": await agent.error("synthesize_narration", {"video_id": "ep", "voice": "host", "text": "Hi.",
                                                                 "providers": ["local:espeak-ng"]}),
            "unknown": await agent.error("delete_voice", {"name": "nobody"}),
        }

    out = _run(rt, body)
    assert "already has a voice named 'host'" in out["duplicate"] and "delete_voice" in out["duplicate"]
    assert "not an audio recording" in out["picture"]
    assert "outside the video's folder" in out["outside"]
    assert "does not exist" in out["missing"] and "import_asset" in out["missing"]
    assert "name" in out["bad_name"] and "pattern" in out["bad_name"]
    assert "only elevenlabs providers can speak it" in out["others"]
    assert "elevenlabs:eleven_multilingual_v2" in out["others"]
    assert "no voice named 'nobody'" in out["unknown"] and "host" in out["unknown"]
    assert len(vendor.calls("POST", el.VOICES_ADD_PATH)) == 1


def test_voices_vendor_failures_come_back_as_tool_errors(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, el.voice_limit_reached(), el.bad_sample(), el.invalid_api_key(),
                 el.rate_limited("0.1"), sticky=el.cloning())

    async def body(agent: Agent) -> dict[str, Any]:
        sample = await agent.import_sample()
        args = {"video_id": "studio", "name": "host", "sample": sample["uri"], "consent": True}
        return {
            "limit": await agent.error("clone_voice", args),
            "sample": await agent.error("clone_voice", args),
            "key": await agent.error("clone_voice", args),
            "retried": await agent.ok("clone_voice", args),  # a 429, then the clone
            "report": await agent.ok("provider_report", {}),
            "seen": agent.seen,
        }

    out = _run(rt, body)
    assert "[unavailable]" in out["limit"] and "no custom voice slot left" in out["limit"]
    assert "[invalid_input]" in out["sample"] and "no speech was detected" in out["sample"]
    assert "[not_configured]" in out["key"] and "ELEVENLABS_API_KEY was rejected (401)" in out["key"]
    assert out["retried"]["name"] == "host" and len(vendor.calls("POST", el.VOICES_ADD_PATH)) == 5
    assert [v["name"] for v in out["report"]["voices"]] == ["host"]  # only the clone that succeeded
    assert not any(KEY in seen for seen in out["seen"])


def test_voices_delete_of_a_voice_elevenlabs_lost_removes_the_entry(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
    vendor.route("DELETE", el.VOICE_PATH, el.not_found("voice_not_found"))

    async def body(agent: Agent) -> dict[str, Any]:
        sample = await agent.import_sample()
        await agent.ok("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                       "consent": True})
        deleted = await agent.ok("delete_voice", {"name": "host"})
        again = await agent.error("delete_voice", {"name": "host"})
        report = await agent.ok("provider_report", {})
        return {"deleted": deleted, "again": again, "report": report}

    out = _run(rt, body)
    assert out["deleted"]["vendor_deleted"] is False and "no longer had voice" in out["deleted"]["notes"][0]
    assert "already deleted" in out["again"]
    assert out["report"]["voices"] == []


def test_voices_delete_keeps_the_entry_when_elevenlabs_fails(rt: Runtime, vendor: LoopbackServer) -> None:
    vendor.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
    vendor.route("DELETE", el.VOICE_PATH, el.server_error(500), el.server_error(500), sticky=el.voice_deleted())

    async def body(agent: Agent) -> dict[str, Any]:
        sample = await agent.import_sample()
        await agent.ok("clone_voice", {"video_id": "studio", "name": "host", "sample": sample["uri"],
                                       "consent": True})
        failed = await agent.error("delete_voice", {"name": "host"})  # 500 twice: the retry too
        kept = await agent.ok("provider_report", {})
        deleted = await agent.ok("delete_voice", {"name": "host"})
        return {"failed": failed, "kept": kept, "deleted": deleted}

    out = _run(rt, body)
    assert "[unavailable]" in out["failed"] and "500" in out["failed"]
    assert [v["name"] for v in out["kept"]["voices"]] == ["host"]
    assert out["deleted"]["vendor_deleted"] is True
