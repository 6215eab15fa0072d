"""generate_music through the MCP client (the SDK's in-memory transport): the contract's parameters, the
job protocol, input errors, and assemble_video taking the video's bed by default."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp import Client

from core.media.mix import measure_loudness
from core.media.musicbed import decode
from core.media.probe import probe
from core.runtime import Runtime
from tests.mcp_helpers import error_text, ok
from ytap_mcp.server import build_server


def _session(rt: Runtime, body: Any) -> Any:
    async def main() -> Any:
        async with Client(build_server(runtime=rt)) as client:
            return await body(client)

    return anyio.run(main)


def test_generate_music_parameters_are_the_contracts(runtime: Runtime) -> None:
    async def body(client: Client) -> dict[str, Any]:
        return {t.name: t for t in (await client.list_tools()).tools}["generate_music"].input_schema

    schema = _session(runtime, body)
    assert set(schema["properties"]) == {"video_id", "mood", "workspace_id", "duration_s", "providers", "fresh",
                                         "wait_seconds"}
    assert schema["required"] == ["video_id", "mood"]
    d = schema["properties"]["duration_s"]
    assert (d["default"], d["minimum"], d["maximum"]) == (60.0, 5, 600)
    m = schema["properties"]["mood"]
    assert (m["minLength"], m["maxLength"]) == (1, 200)


def test_generate_music_makes_the_bed_and_caches_it(runtime: Runtime) -> None:
    async def body(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        args = {"video_id": "gm", "mood": "tense mystery", "duration_s": 6, "wait_seconds": 40}
        return await ok(client, "generate_music", args), await ok(client, "generate_music", args)

    first, again = _session(runtime, body)
    assert (first["kind"], first["provider"], first["cached"]) == ("music", "local:ambient", False)
    assert first["uri"] == "ytap://default/gm/audio/music.wav" and first["path"].endswith("/gm/audio/music.wav")
    assert first["loops_seamlessly"] is True and first["bpm"] > 0
    info = probe(first["path"])
    assert info.audio is not None and (info.audio.sample_rate, info.audio.channels) == (48000, 2)
    assert info.duration_s == pytest.approx(6.0, abs=0.01)
    assert measure_loudness(first["path"]).integrated_lufs == pytest.approx(first["integrated_lufs"], abs=0.05)
    assert again["cached"] is True and again["asset_id"] == first["asset_id"]


@pytest.mark.parametrize(("args", "says"), [
    ({"mood": ""}, "mood"),
    ({"mood": "calm\x07"}, "control character"),
    ({"mood": "x" * 201}, "mood"),
    ({"mood": "calm", "duration_s": 4}, "duration_s"),
    ({"mood": "calm", "providers": ["local:placeholder"]}, "not a music one"),
    ({"mood": "calm", "providers": ["nobody:music"]}, "unknown provider"),
])
def test_generate_music_refuses_what_the_agent_can_fix(runtime: Runtime, args: dict[str, Any], says: str) -> None:
    async def body(client: Client) -> str:
        return await error_text(client, "generate_music", {"video_id": "bad", **args})

    assert says in _session(runtime, body)


@pytest.mark.slow
def test_assemble_video_takes_the_videos_music_unless_told_not_to(runtime: Runtime) -> None:
    async def body(client: Client) -> tuple[dict[str, Any], ...]:
        await ok(client, "generate_scene", {"video_id": "am", "scene_index": 1, "prompt": "sea", "duration_s": 4,
                                            "wait_seconds": 40})
        await ok(client, "synthesize_narration", {"video_id": "am", "text": "The sea is calm.", "wait_seconds": 40})
        bed = await ok(client, "generate_music", {"video_id": "am", "mood": "calm", "duration_s": 5,
                                                  "wait_seconds": 40})
        default = await ok(client, "assemble_video", {"video_id": "am", "height": 720, "hardware_encoder": False,
                                                      "captions": False, "wait_seconds": 50})
        kept = Path(default["path"]).with_name("with_music.mp4")  # the next assembly writes the same file
        kept.write_bytes(Path(default["path"]).read_bytes())
        default["path"] = str(kept)
        off = await ok(client, "assemble_video", {"video_id": "am", "height": 720, "hardware_encoder": False,
                                                  "captions": False, "music": "", "wait_seconds": 50})
        return bed, default, off

    bed, default, off = _session(runtime, body)
    assert default["music"] == bed["uri"]
    assert off.get("music") is None
    # The bed is in the mix: after the last word (about 1.2 s), before the music's fade-out (from 2.7 s).
    def level_db(path: str) -> float:
        x = decode(Path(path))[int(1.8 * 48000): int(2.5 * 48000)]
        return 10 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-12)

    assert level_db(default["path"]) > -45 > -70 > level_db(off["path"])
    assert measure_loudness(default["path"]).integrated_lufs == pytest.approx(-14, abs=1)
