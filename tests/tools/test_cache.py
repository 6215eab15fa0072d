"""The request cache through the MCP client: identical requests cost nothing, fresh=true regenerates."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from tests.mcp_helpers import call
from ytap_mcp.server import build_server


def _clip(spec, out: Path) -> None:
    from core.media.ffmpeg import run_ffmpeg

    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={spec.width}x{spec.height}:r=30:d={spec.duration_s}",
                "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", str(spec.duration_s),
                "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-f", "mp4", str(out)])


@pytest.mark.slow
def test_cache_identical_request_returns_the_asset_without_a_provider_call(settings) -> None:
    vendor = ScriptedProvider("vendor:clip", "video", [_clip, _clip], paid=False)
    rt = Runtime.create(settings, extra_providers=[vendor])
    args = {"video_id": "c", "scene_index": 1, "prompt": "same", "duration_s": 1, "providers": ["vendor:clip"],
            "wait_seconds": 30}

    async def main() -> dict[str, Any]:
        async with Client(build_server(runtime=rt)) as client:
            async def scene(extra: dict[str, Any]) -> tuple[dict[str, Any], float]:
                t0 = time.perf_counter()
                env = await call(client, "generate_scene", {**args, **extra})
                return env, time.perf_counter() - t0

            first, _ = await scene({})
            again, hit_s = await scene({})
            other_video, _ = await scene({"video_id": "c2"})
            fresh, _ = await scene({"fresh": True})
            status = await call(client, "job_status", {"job_id": again["job_id"]})
            report = await call(client, "provider_report", {"video_id": "c"})
            return {"first": first, "again": again, "hit_s": hit_s, "other": other_video, "fresh": fresh,
                    "status": status, "report": report}

    try:
        out = anyio.run(main)
    finally:
        rt.close()
    assert out["first"]["result"]["cached"] is False
    assert out["again"]["status"] == "succeeded" and out["again"]["result"]["cached"] is True
    assert out["again"]["result"]["asset_id"] == out["first"]["result"]["asset_id"]
    assert out["again"]["result"]["cost_usd"] == 0
    assert out["hit_s"] < 0.5  # measured in benchmarks/cache.py; generous here for a loaded CI machine
    assert out["other"]["result"]["cached"] is True and "/c2/" in out["other"]["result"]["path"]
    assert Path(out["other"]["result"]["path"]).read_bytes() == Path(out["first"]["result"]["path"]).read_bytes()
    assert out["fresh"]["result"]["cached"] is False
    assert len(vendor.calls) == 2  # the first request and the fresh one; the hits called nobody
    assert out["status"]["status"] == "succeeded"
    assert out["report"]["totals"]["cache_hits"] == 2


@pytest.mark.slow
def test_cache_survives_a_restart_and_distrusts_a_changed_file(settings) -> None:
    vendor = ScriptedProvider("vendor:clip", "video", [_clip, _clip])
    args = {"video_id": "r", "scene_index": 1, "prompt": "p", "duration_s": 1, "providers": ["vendor:clip"]}

    async def scene(rt: Runtime) -> dict[str, Any]:
        async with Client(build_server(runtime=rt)) as client:
            return await call(client, "generate_scene", {**args, "wait_seconds": 30})

    rt = Runtime.create(settings, extra_providers=[vendor])
    first = anyio.run(scene, rt)
    rt.close()
    rt = Runtime.create(settings, extra_providers=[vendor])
    try:
        assert anyio.run(scene, rt)["result"]["cached"] is True
        Path(first["result"]["path"]).write_bytes(b"tampered")
        assert anyio.run(scene, rt)["result"]["cached"] is False
    finally:
        rt.close()
    assert len(vendor.calls) == 2
