"""Cache hit: an identical request again, through the MCP client (in-memory), wall time and provider calls.

Target (BENCHMARKS.md): < 100 ms, 0 provider calls. Median of N hits after one miss.
Run: .venv/bin/python benchmarks/cache.py [--hits 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402
from core.providers.testing import ScriptedProvider  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from ytap_mcp.server import build_server  # noqa: E402


def _clip(spec, out: Path) -> None:
    from core.media.ffmpeg import run_ffmpeg

    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={spec.width}x{spec.height}:r=30:d={spec.duration_s}",
                "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", str(spec.duration_s), "-c:v", "libx264",
                "-preset", "ultrafast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mp4",
                str(out)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=10)
    args = ap.parse_args()
    vendor = ScriptedProvider("bench:clip", "video", [_clip])
    with tempfile.TemporaryDirectory() as home:
        rt = Runtime.create(Settings.from_env({"YTAP_HOME": home}), extra_providers=[vendor])
        req = {"video_id": "bench", "scene_index": 1, "prompt": "cache me", "duration_s": 8,
               "providers": ["bench:clip"], "wait_seconds": 50}

        async def run() -> tuple[float, list[float], list[bool]]:
            async with Client(build_server(runtime=rt)) as client:
                t0 = time.perf_counter()
                await client.call_tool("generate_scene", req)
                miss = time.perf_counter() - t0
                hits, cached = [], []
                for _ in range(args.hits):
                    t0 = time.perf_counter()
                    res = await client.call_tool("generate_scene", req)
                    hits.append(time.perf_counter() - t0)
                    cached.append(res.structured_content["result"]["cached"])
                return miss, hits, cached

        miss, hits, cached = anyio.run(run)
        rt.close()
    print(f"miss (8 s 1080p clip made and registered): {miss * 1000:.0f} ms")
    print(f"hit: median {statistics.median(hits) * 1000:.1f} ms, min {min(hits) * 1000:.1f}, max {max(hits) * 1000:.1f}"
          f" over {len(hits)} hits; all cached={all(cached)}; provider calls after the miss: {len(vendor.calls) - 1}")
    print(f"ratio hit/miss: {statistics.median(hits) / miss:.3f}")


if __name__ == "__main__":
    main()
