"""Input limits, each refused with a message that says what is allowed.

Lengths of prompts and texts, counts of segments and overlays, durations, control
characters, provider ids; and the files an assembly reads: not media, empty, truncated,
too many pixels, too large, too long. Everything goes through the MCP client.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image

from core.media import probe as probe_mod
from core.services import assembly as assembly_service
from tests.security.acceptance import record
from tests.security.conftest import World

LONG = "x" * 100_000

# (tool, arguments, a fragment the error must contain)
REQUEST_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    ("generate_scene", {"scene_index": 1, "prompt": "p" * 4001}, "at most 4000"),
    ("generate_scene", {"scene_index": 1, "prompt": ""}, "at least 1"),
    ("generate_scene", {"scene_index": 1, "prompt": "   \n\t "}, "blank"),
    ("generate_scene", {"scene_index": 1, "prompt": "a\x00b"}, "U+0000"),
    ("generate_scene", {"scene_index": 1, "prompt": "\x1b[31mred"}, "U+001B"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "style": "s" * 501}, "at most 500"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "style": "a\x7fb"}, "U+007F"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "negative_prompt": "n" * 2001}, "at most 2000"),
    ("generate_scene", {"scene_index": 0, "prompt": "ok"}, "greater than or equal to 1"),
    ("generate_scene", {"scene_index": 1000, "prompt": "ok"}, "less than or equal to 999"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "duration_s": 0.5}, "greater than or equal to 1"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "duration_s": 61}, "less than or equal to 60"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "duration_s": 1e12}, "less than or equal to 60"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "aspect_ratio": "4:3"}, "16:9"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "wait_seconds": 51}, "less than or equal to 50"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "wait_seconds": -1}, "greater than or equal to 0"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "providers": [LONG]}, "at most 100"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "providers": ["a:b"] * 11}, "at most 10"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "providers": ["nope:model"]}, "known providers"),
    ("generate_scene", {"scene_index": 1, "prompt": "ok", "providers": ["local:espeak-ng"]}, "not a video one"),
    ("synthesize_narration", {"text": "t" * 20001}, "at most 20000"),
    ("synthesize_narration", {}, "give either text or segments"),
    ("synthesize_narration", {"segments": ["s"] * 201}, "at most 200"),
    ("synthesize_narration", {"segments": ["s" * 5001]}, "at most 5000"),
    ("synthesize_narration", {"segments": ["s" * 4500] * 5}, "20000 characters in all"),
    ("synthesize_narration", {"segments": ["ok", "   "]}, "segment 2 is empty"),
    ("synthesize_narration", {"segments": ["ok", ""]}, "at least 1"),
    ("synthesize_narration", {"segments": ["bell\x07"]}, "U+0007"),
    ("synthesize_narration", {"text": "ok", "voice": "v" * 201}, "at most 200"),
    ("synthesize_narration", {"text": "ok", "instructions": "i" * 2001}, "at most 2000"),
    ("synthesize_narration", {"text": "ok", "speed": 2.5}, "less than or equal to 2"),
    ("synthesize_narration", {"text": "ok", "speed": 0.1}, "greater than or equal to 0.5"),
    ("synthesize_narration", {"text": "ok", "pitch_semitones": 13}, "less than or equal to 12"),
    ("make_thumbnail", {"title": "t" * 101}, "at most 100"),
    ("make_thumbnail", {"title": ""}, "at least 1"),
    ("make_thumbnail", {"title": "  "}, "blank"),
    ("make_thumbnail", {"title": "a\x00"}, "U+0000"),
    ("make_thumbnail", {"title": "ok", "subtitle": "s" * 121}, "at most 120"),
    ("make_thumbnail", {"title": "ok", "prompt": "p" * 4001}, "at most 4000"),
    ("assemble_video", {"overlays": [{"text": "o", "start_s": 0, "end_s": 1}] * 51}, "at most 50"),
    ("assemble_video", {"overlays": [{"text": "o", "start_s": 2, "end_s": 1}]}, "must be after start_s"),
    ("assemble_video", {"overlays": [{"text": "o" * 201, "start_s": 0, "end_s": 1}]}, "at most 200"),
    ("assemble_video", {"overlays": [{"text": "o", "start_s": -1, "end_s": 1}]}, "greater than or equal to 0"),
    ("assemble_video", {"overlays": [{"text": "o", "start_s": 0, "end_s": 36_001}]}, "less than or equal to 36000"),
    ("assemble_video", {"overlays": [{"text": "o", "start_s": 0, "end_s": 1, "position": "middle"}]}, "top"),
    ("assemble_video", {"overlays": [{"text": "", "start_s": 0, "end_s": 1}]}, "at least 1"),
    ("assemble_video", {"overlays": [{"text": "late", "start_s": 600, "end_s": 601}]}, "after the video ends"),
    ("assemble_video", {"scenes": ["scenes/scene_001.mp4"] * 201}, "at most 200"),
    ("assemble_video", {"height": 4000}, "less than or equal to 2160"),
    ("assemble_video", {"fps": 24}, "30"),
    ("assemble_video", {"crossfade_s": 9}, "less than or equal to 3"),
    ("assemble_video", {"loudness_lufs": 0}, "less than or equal to -8"),
    ("assemble_video", {"chroma_color": "red"}, "pattern"),
    ("assemble_video", {"presenter_scenes": [1]}, "position 1 has nothing before it"),
    ("assemble_video", {"presenter_scenes": [2, 2]}, "twice"),
    ("assemble_video", {"scenes": ["scenes/scene_001.mp4"], "presenter_scenes": [5]}, "does not exist"),
    ("assemble_video", {"scenes": ["scenes"]}, "does not exist"),
    ("assemble_video", {"scenes": ["scenes/nope.mp4"]}, "does not exist"),
    ("archive_video", {"keep": ["everything"]}, "final_video"),
    ("archive_video", {"intermediates": "burn"}, "zip"),
    ("provider_report", {"video_id": "v" * 65}, "at most 64"),
]


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def _run_limits(world: World, cases: list[tuple[str, dict[str, Any], str]]) -> None:
    async def main() -> None:
        async with Client(world.server) as client:
            for tool, args, fragment in cases:
                full = {"video_id": "v", **args}
                if tool in ("generate_scene", "synthesize_narration", "make_thumbnail", "assemble_video"):
                    full.setdefault("wait_seconds", 30)
                result = await client.call_tool(tool, full)
                text = _text(result)
                assert result.is_error, (tool, args if len(str(args)) < 300 else str(args)[:300],
                                         result.structured_content)
                assert fragment in text, (tool, fragment, text[:600])
                assert len(text) <= 4100 and LONG not in text

    anyio.run(main)
    record("hostile inputs tried", len(cases))
    record("hostile inputs refused", len(cases))


def test_limits_request_bounds_refused_with_what_is_allowed(world: World) -> None:
    _run_limits(world, REQUEST_LIMITS)


def _files(world: World) -> dict[str, Path]:
    """Bad files inside the video's folder, each referenced by a legitimate path."""
    root = world.video
    bad = root / "bad"
    bad.mkdir(exist_ok=True)
    scene = root / "scenes" / "scene_001.mp4"
    (bad / "notes.txt").write_text("not media at all\n")
    (bad / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "truncated.mp4").write_bytes(scene.read_bytes()[:3000])
    Image.new("RGB", (9000, 16), (255, 0, 0)).save(bad / "wide.png")
    shutil.copy(scene, bad / "copy.mp4")
    return {p.name: p for p in bad.iterdir()}


def test_limits_referenced_files_not_media_or_out_of_bounds(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _files(world)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("assemble_video", {"scenes": ["bad/notes.txt"]}, "not a readable audio, video or image file"),
        ("assemble_video", {"scenes": ["bad/fake.mp4"]}, "not a readable audio, video or image file"),
        ("assemble_video", {"scenes": ["bad/empty.mp4"]}, "is empty"),
        # A faststart file cut short probes fine (its index is whole); the encode finds the hole.
        ("assemble_video", {"scenes": ["bad/truncated.mp4"]}, "truncated.mp4 is truncated or corrupt"),
        ("assemble_video", {"scenes": ["manifest.json"]}, "not a readable audio, video or image file"),
        ("assemble_video", {"scenes": ["scenes/scene_001.mp4"], "narration": "bad/notes.txt"}, "not a readable"),
        ("assemble_video", {"scenes": ["scenes/scene_001.mp4"], "music": "bad/empty.mp4"}, "is empty"),
        ("assemble_video", {"scenes": ["scenes/scene_001.mp4"], "watermark": "bad/wide.png"}, "at most 8192 px"),
        ("assemble_video", {"scenes": ["bad/wide.png"]}, "at most 8192 px"),
    ]
    _run_limits(world, cases)
    # Size and duration limits, lowered so a small real clip passes them: the same refusal a huge file gets.
    monkeypatch.setattr(probe_mod, "MAX_MEDIA_BYTES", 1000)
    _run_limits(world, [("assemble_video", {"scenes": ["bad/copy.mp4"]}, "media files are at most 0 MB")])
    monkeypatch.setattr(probe_mod, "MAX_MEDIA_BYTES", 4 * 2**30)
    monkeypatch.setattr(probe_mod, "MAX_MEDIA_DURATION_S", 0.5)
    _run_limits(world, [("assemble_video", {"scenes": ["bad/copy.mp4"]}, "media files are at most 0 s")])
    # The whole video's length (4 h), lowered the same way: the scenes pass one by one, not together.
    monkeypatch.setattr(probe_mod, "MAX_MEDIA_DURATION_S", 12 * 3600)
    monkeypatch.setattr(assembly_service, "MAX_VIDEO_DURATION_S", 1.5)
    _run_limits(world, [("assemble_video", {"scenes": ["bad/copy.mp4", "bad/copy.mp4"], "captions": False},
                         "assemble_video makes videos up to")])
    assert not (world.video / "final_video.mp4").exists()
    assert not [p for p in world.video.rglob(".*") if p.name != ".hidden.mp4"]  # no failed job left a temp file
