"""Issue #8 end to end, as an agent does it through the SDK's in-memory client.

One video made of the user's own material: a clip, a music bed and a voiceover imported
from the allowed root, assembled; an import from outside the root refused; a voice cloned
from the voiceover (loopback ElevenLabs) speaking a second narration; a thumbnail whose
background comes from a loopback Stable Diffusion server and whose title is in an
imported font. Every output is probed, not taken from the results. The figures are
printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image, ImageFont

from core.config import Settings
from core.media.mix import measure_loudness
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from tests.mcp_helpers import ok
from tests.vendors import elevenlabs_mock as el
from tests.vendors import sd_mock as sm
from tests.vendors.loopback import LoopbackServer, loopback_server
from ytap_mcp.server import build_server

KEY = "FAKE-elevenlabs-BYO-4d2f8a6c1e-DISTINCT"
TTS = r"/v1/text-to-speech/[^/]+/with-timestamps"


pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture(scope="module")
def mine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's folder: a 720p24 clip with its own sound, a voiceover, a music bed, a font."""
    root = tmp_path_factory.mktemp("my_material").resolve()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24:d=2", "-f", "lavfi", "-i", "sine=f=330:r=44100:d=2",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                str(root / "holiday.mp4")], what="clip")
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=200:r=44100:d=2.5", "-af", "tremolo=f=4:d=0.7", "-ac", "1",
                str(root / "my_voice.wav")], what="voiceover")
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=880:r=44100:d=6", "-c:a", "libmp3lame", str(root / "bed.mp3")],
               what="music")
    # Aileron Regular (CC0): the font Pillow itself embeds, nothing like the bundled Inter.
    (root / "Aileron.ttf").write_bytes(ImageFont.load_default(20).font_bytes)
    return root


@pytest.fixture
def vendors() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    with loopback_server() as eleven, loopback_server() as sd:
        eleven.route("POST", TTS, sticky=el.speaking(1.2))
        eleven.route("POST", el.VOICES_ADD_PATH, sticky=el.cloning())
        sd.route("POST", sm.TXT2IMG, sticky=sm.txt2img_reply(sm.png_bytes(), seed=31337))
        yield eleven, sd


@pytest.fixture
def rt(tmp_path: Path, mine: Path, vendors: tuple[LoopbackServer, LoopbackServer]) -> Iterator[Runtime]:
    eleven, sd = vendors
    runtime = Runtime.create(Settings.from_env({
        "YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(mine), "YTAP_X264_PRESET": "ultrafast",
        "ELEVENLABS_API_KEY": KEY, "ELEVENLABS_BASE_URL": eleven.url, "YTAP_SD_BASE_URL": sd.url,
    }))
    runtime.catalog.retry = RetryPolicy(attempts=2, base_delay_s=0.05, retry_after_cap_s=5)
    yield runtime
    runtime.close()



@pytest.mark.slow
def test_bring_your_own_material_voice_font_and_sd(rt: Runtime, mine: Path, tmp_path: Path,
                                                   vendors: tuple[LoopbackServer, LoopbackServer]) -> None:
    eleven, sd = vendors
    outside = tmp_path / "not_allowed" / "secret.mp3"
    outside.parent.mkdir()
    (outside).write_bytes((mine / "bed.mp3").read_bytes())

    async def main() -> dict[str, Any]:
        async with Client(build_server(runtime=rt)) as client:
            out: dict[str, Any] = {}
            out["clip"] = await ok(client, "import_asset", {"video_id": "trip", "source": "holiday.mp4",
                                                             "kind": "scene", "scene_index": 1, "wait_seconds": 40})
            out["voiceover"] = await ok(client, "import_asset", {
                "video_id": "trip", "source": "my_voice.wav", "kind": "narration",
                "transcript": "This is our trip to the lighthouse."})
            out["music"] = await ok(client, "import_asset", {"video_id": "trip", "source": "bed.mp3",
                                                              "kind": "music"})
            out["font"] = await ok(client, "import_asset", {"video_id": "trip", "source": "Aileron.ttf",
                                                             "kind": "font"})
            refused = await client.call_tool("import_asset", {"video_id": "trip", "source": str(outside),
                                                              "kind": "music"})
            out["refused"] = (refused.is_error, " ".join(getattr(c, "text", "") for c in refused.content))
            out["final"] = await ok(client, "assemble_video", {
                "video_id": "trip", "music": out["music"]["uri"], "height": 720, "caption_font": "aileron",
                "hardware_encoder": False, "wait_seconds": 45})
            out["voice"] = await ok(client, "clone_voice", {"video_id": "trip", "name": "me",
                                                             "sample": out["voiceover"]["uri"], "consent": True})
            out["cloned_narration"] = await ok(client, "synthesize_narration", {
                "video_id": "next-trip", "voice": "me", "segments": ["Back at the lighthouse.", "Same voice."]})
            out["thumbnail"] = await ok(client, "make_thumbnail", {
                "video_id": "trip", "title": "Our lighthouse trip", "font": "aileron", "providers": ["sd:default"],
                "negative_prompt": "people", "seed": 31337})
            out["report"] = await ok(client, "provider_report", {"video_id": "trip"})
            return out

    out = anyio.run(main)

    # 1. Imported clip, voiceover and music, assembled; probed.
    clip, voiceover, final = out["clip"], out["voiceover"], out["final"]
    assert (clip["provider"], clip["width"], clip["height"], clip["fps"]) == ("user:import", 1920, 1080, 30.0)
    assert (voiceover["provider"], voiceover["sample_rate"], voiceover["channels"]) == ("user:import", 48000, 2)
    info = probe(final["path"])
    loud = measure_loudness(final["path"])
    assert (info.video.codec, info.video.width, info.video.height, info.video.pix_fmt) == ("h264", 1280, 720,
                                                                                          "yuv420p")
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)
    assert info.duration_s >= 2.5 - 0.05  # held until the voiceover ends
    assert final["music"] == out["music"]["uri"]

    # 2. Outside the roots: refused, naming the variable; nothing copied.
    is_error, text = out["refused"]
    assert is_error and "YTAP_IMPORT_ROOTS" in text and "outside" in text
    assert not any(p.name == "secret.mp3" for p in rt.settings.home.rglob("*"))

    # 3. The cloned voice spoke the next narration: its vendor id in the request path.
    voice, narration = out["voice"], out["cloned_narration"]
    assert narration["voice"] == "me" and narration["provider"].startswith("elevenlabs:")
    assert {c.path for c in eleven.calls("POST", TTS)} == {f"/v1/text-to-speech/{voice['vendor_voice_id']}"
                                                           "/with-timestamps"}
    n_info = probe(narration["path"])
    assert (n_info.audio.sample_rate, n_info.audio.channels) == (48000, 2)

    # 4 + 5. The thumbnail: background from the loopback SD server, title in the imported font.
    thumb = out["thumbnail"]
    (txt2img,) = sd.calls("POST", sm.TXT2IMG)
    body = txt2img.json()
    assert (thumb["provider"], thumb["font"]) == ("sd:default", "fonts/aileron.ttf")
    assert (body["seed"], body["width"], body["height"]) == (31337, 1344, 768)
    assert body["negative_prompt"].endswith(", people")
    with Image.open(thumb["path"]) as im:
        assert (im.format, im.size) == ("JPEG", (1280, 720))
    assert {v["name"] for v in out["report"]["voices"]} == {"me"}
    assert KEY.encode() not in b"".join(p.read_bytes() for p in rt.settings.home.rglob("*") if p.is_file())

    print("\nissue #8 acceptance:")
    print(f"  imported: scene {clip['uri']} {clip['width']}x{clip['height']}@{clip['fps']:g} from 1280x720@24; "
          f"narration {voiceover['uri']} {voiceover['duration_s']:.2f} s {voiceover['sample_rate']} Hz "
          f"{voiceover['channels']} ch; music {out['music']['uri']} {out['music']['duration_s']:.2f} s")
    print(f"  final (probed): {info.video.codec} {info.video.profile} {info.video.pix_fmt} "
          f"{info.video.width}x{info.video.height} {info.video.fps:g} fps, {info.audio.codec} "
          f"{info.audio.sample_rate} Hz {info.audio.channels} ch, {info.duration_s:.3f} s, "
          f"{loud.integrated_lufs:.1f} LUFS, TP {loud.true_peak_dbtp:.1f} dBTP; caption_font {final.get('caption_font')}")
    print(f"  refused: {text[:160]}")
    print(f"  voice: {voice['name']} -> {voice['vendor_voice_id']}; narration by {narration['provider']} "
          f"voice={narration['voice']} {narration['duration_s']:.2f} s; TTS paths "
          f"{sorted({c.path for c in eleven.calls('POST', TTS)})}")
    print(f"  thumbnail: {thumb['provider']} font={thumb['font']} seed={body['seed']} "
          f"size={body['width']}x{body['height']} negative=...{body['negative_prompt'][-20:]!r}; "
          f"{json.dumps(out['report']['voices'][0]['name'])} in the report")
