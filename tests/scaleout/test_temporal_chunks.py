"""Chunks of a video on Temporal workers: an assembly on one worker renders its picture's chunks on every
worker (each chunk a workflow of its own), and a cancel reaches every chunk. Apart from tests/scaleout/test_temporal.py
so the two files run side by side under ``pytest -n 2 --dist loadfile``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.jobs import job_call
from core.media.probe import probe
from core.runtime import Runtime
from tests.scaleout.test_temporal import _poll, _start_worker, _stop_worker, cluster  # noqa: F401 - a fixture
from tests.security.acceptance import record
from tools import assemble_video, cancel_job, generate_scene

pytestmark = pytest.mark.slow  # a Temporal dev server, PostgreSQL and worker processes



def test_temporal_chunks_of_a_video_fan_out_over_two_workers(cluster: dict[str, str], tmp_path: Path) -> None:
    """An assembly on one worker renders its picture's chunks on both (each chunk a workflow any worker
    takes); the result has the properties of the same video rendered in one process."""
    import re
    import shutil

    cluster.update({"YTAP_VIDEO_PROVIDERS": "local:placeholder", "YTAP_LOG_LEVEL": "INFO"})
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [_start_worker(cluster, p) for p in logs]
    a = Runtime.create(Settings.from_env(cluster))
    here = Runtime.create(Settings.from_env({k: v for k, v in cluster.items() if not k.startswith("YTAP_TEMPORAL")}))
    folder = Path(cluster["YTAP_HOME"]) / "workspaces/default/videos/fan"
    assembly = {"video_id": "fan", "height": 720}
    try:
        async def distributed() -> Any:
            env = await _scenes_then_assembly(a, assembly, scenes=8, seconds=1.0)
            return await _poll(a, env.job_id, timeout_s=180)

        done = anyio.run(distributed)
        texts = [p.read_text(errors="replace") for p in logs]
        assert done.status == "succeeded", (done, texts[0][-2000:], texts[1][-2000:])
        fanned = (folder / "final_video.mp4").rename(tmp_path / "fanned.mp4")
        shutil.rmtree(folder / ".chunks")  # nothing reused: the same picture rendered again, in one process
        local = anyio.run(lambda: assemble_video(here, None, **assembly, wait_seconds=120))
        assert local.status == "succeeded", local
    finally:
        a.close()
        here.close()
        for w in workers:
            _stop_worker(w)
    # Which chunk ran where: the assembling worker names each chunk's worker, each worker its own chunks.
    placed = [m for t in texts for m in re.findall(r"(chunk-[0-9a-f]+) \(\d+ segment\(s\), \d+ frames\) rendered by "
                                                   r"worker (\S+)", t)]
    ran_here = [re.findall(r"rendered chunk (chunk-[0-9a-f]+) here", t) for t in texts]
    assert len(placed) == sum(map(len, ran_here)) >= 2, texts
    assert all(ran_here), ("every worker rendered chunks", ran_here)
    for n, chunks in enumerate(ran_here, 1):
        record(f"chunks of one 8-scene assembly rendered by worker {n} of 2", len(chunks))
    print("\n".join(f"{chunk} rendered by worker {worker}" for chunk, worker in placed))
    one, many = probe(folder / "final_video.mp4"), probe(fanned)
    assert one.video is not None and many.video is not None and one.audio is not None and many.audio is not None
    assert (many.video.width, many.video.height, many.video.fps, many.video.frames, many.video.profile) == \
        (one.video.width, one.video.height, one.video.fps, one.video.frames, one.video.profile) == \
        (1280, 720, 30.0, 240, "High")
    assert (many.audio.sample_rate, many.audio.channels) == (one.audio.sample_rate, one.audio.channels)
    assert abs(many.duration_s - one.duration_s) < 1e-3


def test_temporal_cancel_of_a_fanned_out_assembly_stops_its_chunks(cluster: dict[str, str], tmp_path: Path) -> None:
    """cancel_job of an assembly whose chunks run on two workers: every chunk's workflow is cancelled, no
    ffmpeg is left on either worker, no final file and no partial file in the video's folder."""
    cluster.update({"YTAP_VIDEO_PROVIDERS": "local:placeholder", "YTAP_LOG_LEVEL": "INFO"})
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [_start_worker(cluster, p) for p in logs]
    a = Runtime.create(Settings.from_env(cluster))
    folder = Path(cluster["YTAP_HOME"]) / "workspaces/default/videos/stop"
    assembly = {"video_id": "stop", "height": 1080}
    try:
        async def scenario() -> tuple[Any, float]:
            env = await _scenes_then_assembly(a, assembly, scenes=4, seconds=8.0)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                    "rendered chunk" in p.read_text(errors="replace") or _ffmpeg_children(w) for p, w in
                    zip(logs, workers)):
                await anyio.sleep(0.2)
            asked = time.monotonic()
            await cancel_job(a, None, env.job_id)
            done = await _poll(a, env.job_id, timeout_s=30)
            return done, time.monotonic() - asked

        done, took = anyio.run(scenario)
        texts = [p.read_text(errors="replace") for p in logs]
        assert done.status == "cancelled", (done, texts[0][-2000:], texts[1][-2000:])
        assert took < 15
        deadline = time.monotonic() + 10
        while any(_ffmpeg_children(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [_ffmpeg_children(w) for w in workers] == [[], []]
        record("seconds from cancel_job to a fanned-out assembly reading cancelled", round(took, 2))
    finally:
        a.close()
        for w in workers:
            _stop_worker(w)
    assert not (folder / "final_video.mp4").exists()
    assert [p for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".chunk-")] == []


async def _scenes_then_assembly(rt: Runtime, assembly: dict[str, Any], *, scenes: int, seconds: float) -> Any:
    """``scenes`` placeholder scenes made on the workers, then the assembly started (its envelope)."""
    started = []
    for i in range(1, scenes + 1):
        args = {"video_id": assembly["video_id"], "scene_index": i, "prompt": f"scene {i} of a long video",
                "duration_s": seconds}
        with job_call("generate_scene", args):
            started.append(await generate_scene(rt, None, **args, wait_seconds=0))
    for env in started:
        assert (await _poll(rt, env.job_id)).status == "succeeded"
    with job_call("assemble_video", assembly):
        return await assemble_video(rt, None, **assembly, wait_seconds=0)


def _ffmpeg_children(proc: subprocess.Popen[bytes]) -> list[int]:
    """Pids of the ffmpeg processes under ``proc`` (from /proc)."""
    found, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                try:
                    name = Path(f"/proc/{child}/comm").read_text().strip()
                except OSError:
                    continue
                if "ffmpeg" in name:
                    found.append(child)
                todo.append(child)
    return found
