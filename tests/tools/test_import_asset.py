"""import_asset through the SDK's in-memory client: what an agent sees (envelope, links, errors)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.config import Settings
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.runtime import Runtime
from tests.mcp_helpers import error_text, ok
from ytap_mcp.server import YtapServer, build_server


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("mcp_import_root").resolve()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24:d=1", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", str(root / "clip.mp4")])
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=220:r=44100:d=1.2", "-ac", "1", str(root / "voice.wav")])
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=660:r=44100:d=3", "-c:a", "libmp3lame", str(root / "bed.mp3")])
    Image.new("RGB", (64, 64), (10, 200, 90)).save(root / "badge.png")
    return root


@pytest.fixture
def settings(tmp_path: Path, media: Path) -> Settings:
    """conftest's server fixture, with the module's folder as the only import root."""
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(media),
                              "YTAP_X264_PRESET": "ultrafast"})




def test_import_asset_tool_schema(server: YtapServer) -> None:
    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            return {t.name: t for t in (await client.list_tools()).tools}["import_asset"].input_schema

    schema = anyio.run(main)
    assert set(schema["required"]) == {"video_id", "source", "kind"}
    assert schema["properties"]["kind"]["enum"] == ["scene", "music", "narration", "image", "font"]
    assert schema["properties"]["scene_index"]["maximum"] == 999
    assert "YTAP_IMPORT_ROOTS" in schema["properties"]["source"]["description"]


@pytest.mark.slow
def test_import_asset_clip_voiceover_and_music_make_a_video(server: YtapServer, media: Path) -> None:
    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            raw = await client.call_tool("import_asset", {"video_id": "mine", "source": "badge.png", "kind": "image"})
            assert not raw.is_error
            image = raw.structured_content["result"]
            links = [c for c in raw.content if getattr(c, "type", "") == "resource_link"]
            previews = [c for c in raw.content if getattr(c, "type", "") == "image"]
            assert [str(link.uri) for link in links] == [image["uri"]] and len(previews) == 1
            assert base64.b64decode(previews[0].data)[:3] == b"\xff\xd8\xff"

            scene = await ok(client, "import_asset", {"video_id": "mine", "source": str(media / "clip.mp4"),
                                                       "kind": "scene", "scene_index": 1, "wait_seconds": 30})
            voice = await ok(client, "import_asset", {"video_id": "mine", "source": "voice.wav", "kind": "narration",
                                                       "transcript": "Hello from my own microphone."})
            music = await ok(client, "import_asset", {"video_id": "mine", "source": "bed.mp3", "kind": "music"})
            final = await ok(client, "assemble_video", {"video_id": "mine", "music": music["uri"], "height": 720,
                                                         "hardware_encoder": False, "wait_seconds": 40})
            report = await client.call_tool("provider_report", {"video_id": "mine"})
            return {"scene": scene, "voice": voice, "music": music, "final": final,
                    "report": report.structured_content}

    out = anyio.run(main)
    scene, voice, final = out["scene"], out["voice"], out["final"]
    assert (scene["provider"], scene["width"], scene["height"], scene["fps"]) == ("user:import", 1920, 1080, 30.0)
    assert (voice["sample_rate"], voice["channels"], len(voice["segments"])) == (48000, 2, 1)
    assert voice["srt_uri"] == "ytap://default/mine/audio/narration.srt"
    info = probe(final["path"])
    assert (info.video.codec, info.video.height) == ("h264", 720)
    assert (info.audio.codec, info.audio.sample_rate) == ("aac", 48000)
    assert info.duration_s >= 1.2 and final["music"] == out["music"]["uri"]
    assert {a["provider"] for a in out["report"]["assets"]} >= {"user:import"}


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ({"source": "/etc/passwd", "kind": "music"}, ["[import_refused]", "outside", "YTAP_IMPORT_ROOTS"]),
        ({"source": "../x/bed.mp3", "kind": "music"}, ["[import_refused]", "'..'"]),
        ({"source": "clip.mp4", "kind": "scene"}, ["[invalid_input]", "scene_index"]),
        ({"source": "badge.png", "kind": "scene", "scene_index": 1}, ["still image", "kind=image"]),
        ({"source": "clip.mp4", "kind": "movie"}, ["kind"]),
    ],
)
def test_import_asset_refusals_are_tool_errors(server: YtapServer, args: dict[str, Any], needles: list[str]) -> None:
    async def main() -> str:
        async with Client(server) as client:
            return await error_text(client, "import_asset", {"video_id": "mine", **args})

    text = anyio.run(main)
    for needle in needles:
        assert needle in text, text


def test_import_asset_is_off_until_roots_are_set(tmp_path: Path, media: Path) -> None:
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home")}))
    srv = build_server(runtime=rt)

    async def main() -> str:
        async with Client(srv) as client:
            return await error_text(client, "import_asset", {"video_id": "v", "source": str(media / "bed.mp3"),
                                                         "kind": "music"})

    try:
        text = anyio.run(main)
    finally:
        rt.close()
    assert "importing is off" in text and "YTAP_IMPORT_ROOTS" in text
    assert not (tmp_path / "home" / "workspaces" / "default" / "videos" / "v").exists()
