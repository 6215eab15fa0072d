"""Parallel scene generation: 8 scene jobs vs 1, through the MCP client, against a loopback Veo with 2 s latency.

The real GoogleVeoVideoProvider (google-genai SDK) talks to a loopback server speaking Vertex's
wire format; each submit answers after 2 s, the operation is done at the first poll and carries a
clip already in the scene format (so the measurement is about concurrency, not ffmpeg).
Jobs are fired with wait_seconds=0, then polled. Target (BENCHMARKS.md): t(8) / t(1) <= 1.5.
Veo's limit is raised to 8 calls in flight (YTAP_PROVIDER_CONCURRENCY) — the default is 4.
Paired runs (1 then 8) after one unmeasured warm-up job, median of --pairs. Each run also
reports the process's CPU time per job (client, server, jobs and the loopback vendor all live
in this process): on 2 cores the work that follows the vendor's answer is what 8 jobs queue
on. The load average is printed beside the ratio: a loaded machine stretches the 8-job runs
more than the 1-job runs.

Run: .venv/bin/python benchmarks/parallel_scenes.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402
from core.media.ffmpeg import run_ffmpeg  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from tests.vendors import google_mock as gm  # noqa: E402
from tests.vendors.loopback import loopback_server  # noqa: E402
from ytap_mcp.server import build_server  # noqa: E402

VEO = "veo-3.1-generate-001"
LATENCY_S = 2.0


def contract_clip(path: Path) -> bytes:
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=4", "-f", "lavfi", "-i", "sine=f=440:d=4",
                "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-x264-params", "8x8dct=1",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000", "-ac", "2", "-frames:v", "120",
                "-movflags", "+faststart", "-f", "mp4", str(path)])
    return path.read_bytes()


async def produce(rt: Runtime, n: int, tag: str) -> float:
    async with Client(build_server(runtime=rt)) as client:
        t0 = time.perf_counter()
        envs = []
        for i in range(1, n + 1):
            res = await client.call_tool("generate_scene", {"video_id": f"par-{tag}", "scene_index": i,
                                                            "prompt": f"{tag} scene {i}", "duration_s": 4,
                                                            "wait_seconds": 0})
            envs.append(res.structured_content)
        for env in envs:
            while env["status"] in ("queued", "running"):
                env = (await client.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 30})
                       ).structured_content
            assert env["status"] == "succeeded" and env["result"]["provider"] == "google:veo-3.1", env
        return time.perf_counter() - t0


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3, help="paired runs (1 job, then 8 jobs); the median is reported")
    args = ap.parse_args()
    for name in list(os.environ):
        if name.startswith(("GOOGLE_", "GEMINI_")):
            del os.environ[name]
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory() as home, loopback_server() as server:
        clip = contract_clip(Path(home) / "clip.mp4")
        op = gm.operation_name(VEO)
        server.route("POST", gm.predict_path(VEO), sticky=gm.Reply(**{**gm.operation_started(op).__dict__,
                                                                        "delay_s": LATENCY_S}))
        server.route("POST", gm.fetch_path(VEO), sticky=gm.operation_done(op, clip))
        settings = Settings.from_env({"YTAP_HOME": home, "GOOGLE_API_KEY": "FAKE-google-bench-not-a-key",
                                      "GOOGLE_VERTEX_BASE_URL": server.url,
                                      "YTAP_PROVIDER_CONCURRENCY": "google:veo-3.1=8"})
        rt = Runtime.create(settings)
        rt.catalog.get("google:veo-3.1").poll_interval_s = 0.05  # type: ignore[attr-defined]
        # Not measured: the first job pays one-off costs (imports, the SDK client, the first connection).
        anyio.run(produce, rt, 1, "warmup")
        ones, eights, cpu_ones, cpu_eights = [], [], [], []
        load_before = os.getloadavg()[0]
        for p in range(args.pairs):
            for n, tag, walls, cpus in ((1, "one", ones, cpu_ones), (8, "eight", eights, cpu_eights)):
                cpu0 = time.process_time()
                walls.append(anyio.run(produce, rt, n, f"{tag}{p}"))
                cpus.append((time.process_time() - cpu0) / n)
        rt.close()
    ratios = [e / o for o, e in zip(ones, eights, strict=True)]
    print(f"1 scene job : median {statistics.median(ones):.2f} s  ({', '.join(f'{x:.2f}' for x in ones)}); "
          f"CPU per job {statistics.median(cpu_ones):.3f} s")
    print(f"8 scene jobs: median {statistics.median(eights):.2f} s  ({', '.join(f'{x:.2f}' for x in eights)}); "
          f"CPU per job {statistics.median(cpu_eights):.3f} s")
    print(f"ratio t(8)/t(1): per pair {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median of pairs {statistics.median(ratios):.2f} (target <= 1.5)")
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
