"""``ytap-mcp demo``: the whole job through a real MCP client, as an agent pipeline runs it.

The server is started as a subprocess over stdio with the official client; three scenes,
the narration by segments, the thumbnail and the assembly are requested as jobs and
polled, with progress shown; the files and the provider report are printed at the end.
The narration is made first and each scene lasts as long as its sentence is heard. With no
key every scene is a title card; ``--providers`` names a video provider per scene
(in turn), e.g. stills in motion for two scenes and a card between them: a mixed video.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from ytap_mcp.cli import passthrough_env

__all__ = ["run_demo", "DEMO_SCENES"]

DEMO_TITLE = "How Lighthouses Work"
DEMO_SCENES: list[tuple[str, str]] = [
    (
        "A lighthouse on a rocky coast at dawn, waves crashing, cinematic wide shot",
        "For centuries, lighthouses have guided sailors safely home through the dark.",
    ),
    (
        "Close-up of a huge Fresnel lens turning slowly, light refracting into bright beams",
        "The secret is the Fresnel lens, which bends scattered light into a single powerful beam.",
    ),
    (
        "A ship at night following a sweeping beam of light across a stormy sea",
        "Each lighthouse flashes its own pattern, so a captain knows exactly where the ship is.",
    ),
]
_MIN_SCENE_SECONDS = 1.0  # generate_scene's least duration_s
# The bed 2 dB under the narration where she pauses; the ducking takes about 10 dB more while she speaks,
# so the music sits about 12 dB under the voice (benchmarks/music.py measures it on the mix). The
# default (-12) puts it about 22 dB under: barely there under a narration that hardly pauses.
DEMO_MUSIC_VOLUME_DB = -2.0


def scene_seconds(narration: dict[str, Any]) -> list[float]:
    """Each scene's length from the narration's timings: from its segment's start (the first from 0) to the
    next segment's start, the last to the narration's end. A pause between sentences stays on the scene before."""
    segments = narration["segments"]
    starts = [0.0] + [seg["start_s"] for seg in segments[1:]]
    ends = starts[1:] + [narration["duration_s"]]
    return [max(_MIN_SCENE_SECONDS, round(end - start, 3)) for start, end in zip(starts, ends, strict=True)]


class DemoFailed(RuntimeError):
    pass


def _say(msg: str) -> None:
    print(msg, flush=True)


async def _call(client: Client, t0: float, name: str, args: dict[str, Any], label: str) -> dict[str, Any]:
    """Call a generating tool and poll its job to the end, showing progress."""

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        frac = progress / total if total else progress
        _say(f"  [{time.monotonic() - t0:5.1f}s] {label}: {frac:4.0%} {message or ''}")

    result = await client.call_tool(name, args, progress_callback=on_progress)
    env = _structured(result, name)
    while env["status"] in ("queued", "running"):
        result = await client.call_tool(
            "job_status", {"job_id": env["job_id"], "wait_seconds": 30}, progress_callback=on_progress
        )
        env = _structured(result, "job_status")
    if env["status"] != "succeeded":
        raise DemoFailed(f"{label}: job {env['job_id']} {env['status']}: {env.get('error')}")
    res = env["result"]
    _say(f"  [{time.monotonic() - t0:5.1f}s] {label}: done by {res['provider']} -> {res['path']}")
    return res


def _structured(result: Any, name: str) -> dict[str, Any]:
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise DemoFailed(f"{name} failed: {text}")
    return result.structured_content


async def run_demo(home: Path, video_id: str = "ytap-demo", scene_providers: list[str] | None = None) -> int:
    t0 = time.monotonic()
    # The server's own log (stderr) would drown the demo's progress lines; warnings still show.
    env = {"YTAP_LOG_LEVEL": "WARNING"} | passthrough_env() | {"YTAP_HOME": str(home)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ytap_mcp", "serve", "--transport", "stdio"],
                                   env=env)
    _say(f"ytap-mcp demo: starting the server over stdio ({sys.executable} -m ytap_mcp)")
    try:
        async with Client(params) as client:
            tools = await client.list_tools()
            _say(f"  connected; {len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}")
            # The narration first: each scene then lasts as long as its sentence is heard, so the words
            # play over the picture they describe.
            narration = await _call(
                client,
                t0,
                "synthesize_narration",
                {"video_id": video_id, "segments": [text for _, text in DEMO_SCENES], "wait_seconds": 30},
                "narration",
            )
            seconds = scene_seconds(narration)
            for i, (prompt, _) in enumerate(DEMO_SCENES, 1):
                scene = {"video_id": video_id, "scene_index": i, "prompt": prompt, "duration_s": seconds[i - 1],
                         "wait_seconds": 30}
                if scene_providers:
                    scene["providers"] = [scene_providers[(i - 1) % len(scene_providers)]]
                await _call(client, t0, "generate_scene", scene, f"scene {i}")
            bed = await _call(
                client,
                t0,
                "generate_music",
                {"video_id": video_id, "mood": "calm, hopeful", "duration_s": max(5.0, round(sum(seconds), 2)),
                 "wait_seconds": 30},
                "music",
            )
            thumb = await _call(
                client,
                t0,
                "make_thumbnail",
                {"video_id": video_id, "title": DEMO_TITLE, "subtitle": "Explained in 15 seconds", "wait_seconds": 30},
                "thumbnail",
            )
            final = await _call(client, t0, "assemble_video", {"video_id": video_id, "wait_seconds": 45,
                                                               "music_volume_db": DEMO_MUSIC_VOLUME_DB}, "assembly")
            report = await client.call_tool("provider_report", {"video_id": video_id})
            report_data = _structured(report, "provider_report")
    except DemoFailed as exc:
        _say(f"demo FAILED: {exc}")
        return 1

    props = final["properties"]
    _say("\nDone in %.1f s." % (time.monotonic() - t0))
    _say(f"  final video : {final['path']}")
    _say(f"  music       : {bed['path']} ({bed['provider']}, {bed['integrated_lufs']:.1f} LUFS, "
         f"{'loops seamlessly' if bed['loops_seamlessly'] else 'does not loop cleanly'}; ducked under the narration)")
    _say(
        f"                {props['video_codec']} {props['profile']} {props['pix_fmt']} {props['width']}x{props['height']}"
        f" {props['fps']:g} fps, {props['audio_codec']} {props['sample_rate']} Hz {props['channels']} ch,"
        f" {final['duration_s']:.3f} s, faststart={props['faststart']}"
    )
    readiness = final["youtube_readiness"]
    _say(f"                YouTube-ready: {readiness['ready']}" + "".join(f"\n                - {d}" for d in readiness["deviations"]))
    _say(f"  thumbnail   : {thumb['path']} ({thumb['width']}x{thumb['height']}, {thumb['bytes']} bytes)")
    _say(f"  narration   : {Path(final['path']).parent / 'audio' / 'narration.wav'} (+ narration.srt)")
    _say(f"  manifest    : {Path(final['path']).parent / 'manifest.json'}")
    _say("\nProvider report:")
    _say(_format_report(report_data))
    return 0


def _format_report(report: dict[str, Any]) -> str:
    lines = ["  providers:"]
    for p in report["providers"]:
        state = "available" if p["configured"] else f"unavailable ({p['reason']})"
        lines.append(
            f"    {p['capability']:<6} {p['id']:<34} {state:<40} calls={p['calls']} failures={p['failures']}"
            f" cost=${p['cost_usd']:.4f}"
        )
    lines.append("  assets:")
    for a in report["assets"]:
        tried = ", ".join(f"{t['provider']}={t['outcome']}" for t in a["attempts"])
        label = f"{a['kind']} {a['scene_index']}" if a.get("scene_index") else a["kind"]
        lines.append(f"    {label:<12} by {a['provider']:<20} ${a['cost_usd']:.4f}  attempts: {tried}")
    t = report["totals"]
    lines.append(f"  totals: ${t['cost_usd']:.4f} for {t['assets']} assets, {t['attempts']} attempts"
                 f" ({t['failed_attempts']} failed); by provider {json.dumps(t['by_provider'])}")
    return "\n".join(lines)
