"""Jobs on Temporal: a job started through one replica runs on a `ytap-mcp worker` process and is
polled to the end through another replica; the registry is a throwaway PostgreSQL shared by all."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.jobs import job_call
from core.runtime import Runtime
from tests.security.acceptance import record
from tests.scaleout.services import PostgresCluster, TemporalDevServer
from tests.vendors import openai_mock as om
from tests.vendors.loopback import LoopbackServer, loopback_server
from tools import cancel_job, generate_scene, job_status, provider_report

REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.slow  # a Temporal dev server, PostgreSQL and worker processes


@pytest.fixture
def cluster(tmp_path: Path, pg_cluster: PostgresCluster, temporal_server: TemporalDevServer) -> dict[str, str]:
    return {
        "YTAP_HOME": str(tmp_path / "shared-home"),
        "YTAP_DATABASE_URL": pg_cluster.new_database(),
        "YTAP_TEMPORAL_ADDRESS": temporal_server.address,
        "YTAP_TEMPORAL_TASK_QUEUE": f"ytap-test-{secrets.token_hex(4)}",
    }


@pytest.fixture
def vendor() -> Iterator[LoopbackServer]:
    """A Sora that accepts a job and keeps working on it (its status stays in_progress)."""
    with loopback_server() as server:
        server.route("POST", om.VIDEOS, sticky=om.video_reply(status="queued"))
        server.route("GET", om.VIDEO, sticky=om.video_reply(status="in_progress", progress=40))
        yield server


@pytest.fixture
def cluster_with_vendor(cluster: dict[str, str], vendor: LoopbackServer) -> dict[str, str]:
    cluster.update({"OPENAI_API_KEY": "FAKE-openai-SCALEOUT-1b2c3d4e5f", "OPENAI_BASE_URL": vendor.url + "/v1",
                    "YTAP_VIDEO_PROVIDERS": "openai:sora-2", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    return cluster


def _start_worker(cluster: dict[str, str], log_path: Path, *options: str) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "ytap_mcp", "worker", *options], env={**os.environ, **cluster}, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def worker(cluster: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = _start_worker(cluster, tmp_path / "worker.log")
    yield proc
    _stop_worker(proc)


async def _poll(rt: Runtime, job_id: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        env = await job_status(rt, None, job_id, wait_seconds=2)
        if env.status not in ("queued", "running") or time.monotonic() > deadline:
            return env
        await anyio.sleep(0.2)


def test_temporal_job_started_on_one_replica_is_polled_to_the_end_on_another(
        cluster: dict[str, str], worker: subprocess.Popen[bytes], tmp_path: Path) -> None:
    a = Runtime.create(Settings.from_env(cluster))
    b = Runtime.create(Settings.from_env(cluster))
    try:
        args = {"video_id": "scaled", "scene_index": 1, "prompt": "a lighthouse at dusk", "duration_s": 1.0}

        async def scenario() -> tuple[Any, Any, Any, Any]:
            with job_call("generate_scene", args):
                started = await generate_scene(a, None, **args, wait_seconds=0)
            done = await _poll(b, started.job_id)
            return started, done, await provider_report(a, None, video_id="scaled"), \
                await provider_report(b, None, video_id="scaled")

        started, done, report_a, report_b = anyio.run(scenario)
        assert a.jobs.name == b.jobs.name == "temporal"
        assert started.status in ("queued", "running")
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert done.status == "succeeded", (done, log[-3000:])
        assert report_a.model_dump() == report_b.model_dump()
        scene = Path(cluster["YTAP_HOME"]) / "workspaces/default/videos/scaled/scenes/scene_001.mp4"
        assert scene.is_file() and scene.stat().st_size > 0
        assert f"job {started.job_id} (generate_scene): attempt 1 on this worker" in log
    finally:
        a.close()
        b.close()


async def _start_while_vendor_works(rt: Runtime, vendor: LoopbackServer, args: dict[str, Any]) -> Any:
    """Start a scene job through ``rt`` (as the MCP face does: the tool call set) and return its envelope
    once the vendor is polled (the job was submitted and the vendor is at work)."""
    with job_call("generate_scene", args):
        started = await generate_scene(rt, None, **args, wait_seconds=0)
    deadline = time.monotonic() + 60
    while not vendor.calls("GET", om.VIDEO) and time.monotonic() < deadline:
        await anyio.sleep(0.2)
    return started


def test_temporal_cancel_through_another_replica_stops_the_worker_within_15_s(
        cluster_with_vendor: dict[str, str], vendor: LoopbackServer, worker: subprocess.Popen[bytes],
        tmp_path: Path) -> None:
    cluster = cluster_with_vendor
    a = Runtime.create(Settings.from_env(cluster))
    b = Runtime.create(Settings.from_env(cluster))
    folder = Path(cluster["YTAP_HOME"]) / "workspaces/default/videos/cancelled"
    try:
        args = {"video_id": "cancelled", "scene_index": 1, "prompt": "a slow vendor", "duration_s": 4.0}

        async def scenario() -> tuple[Any, Any, float]:
            started = await _start_while_vendor_works(a, vendor, args)
            asked = time.monotonic()
            await cancel_job(b, None, started.job_id)
            done = await _poll(b, started.job_id, timeout_s=30)
            return started, done, time.monotonic() - asked

        started, done, took = anyio.run(scenario)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert vendor.calls("GET", om.VIDEO), log[-3000:]
        assert done.status == "cancelled" and done.error is not None and done.error.code == "cancelled", (done, log[-3000:])
        record("seconds from cancel_job through replica B to the job reading cancelled", round(took, 2))
        assert took < 15, took
        assert len(vendor.calls("POST", om.VIDEOS)) == 1
        assert not (folder / "scenes" / "scene_001.mp4").exists()
        leftovers = [p for p in folder.rglob("*") if p.name.endswith(".part") or ".part." in p.name]
        assert leftovers == []
    finally:
        a.close()
        b.close()


def test_temporal_doctor_says_temporal_and_postgresql_answer(cluster: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "ytap_mcp", "doctor"], env={**os.environ, **cluster}, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    lines = {ln.split()[0]: ln for ln in done.stdout.splitlines() if ln.strip().startswith(("registry", "jobs"))}
    assert lines["registry"].split()[1] == "postgresql" and lines["registry"].endswith("(answers)")
    assert lines["jobs"].split()[1:3] == ["temporal", cluster["YTAP_TEMPORAL_ADDRESS"]]
    assert lines["jobs"].endswith("(answers)")
    stopped = {**cluster, "YTAP_TEMPORAL_ADDRESS": "127.0.0.1:9"}  # nothing listens there
    down = subprocess.run([sys.executable, "-m", "ytap_mcp", "doctor"], env={**os.environ, **stopped}, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 1 and "NOT AVAILABLE" in [ln for ln in down.stdout.splitlines() if "jobs" in ln][0]


def test_temporal_worker_killed_during_the_vendor_call_the_job_succeeds_elsewhere_paying_once(
        cluster: dict[str, str], tmp_path: Path) -> None:
    """kill -9 of the worker while Sora works: another worker takes the job over and resumes the vendor's
    job by the id recorded when it was submitted; the vendor sees exactly one generate request."""
    import threading

    finished = threading.Event()
    with loopback_server() as vendor:
        vendor.route("POST", om.VIDEOS, sticky=om.video_reply(status="queued"))
        vendor.route("GET", om.VIDEO, sticky=lambda req: om.video_reply(
            status="completed" if finished.is_set() else "in_progress", progress=100 if finished.is_set() else 40))
        vendor.route("GET", om.VIDEO_CONTENT, sticky=om.video_content_reply(om.mp4_bytes(1.0, 320, 180)))
        cluster.update({"OPENAI_API_KEY": "FAKE-openai-SCALEOUT-1b2c3d4e5f", "OPENAI_BASE_URL": vendor.url + "/v1",
                        "YTAP_VIDEO_PROVIDERS": "openai:sora-2", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
        logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
        workers = [_start_worker(cluster, p) for p in logs]
        a = Runtime.create(Settings.from_env(cluster))
        b = Runtime.create(Settings.from_env(cluster))
        try:
            args = {"video_id": "killed", "scene_index": 1, "prompt": "a paid clip", "duration_s": 4.0}

            async def scenario() -> tuple[Any, Any, int]:
                started = await _start_while_vendor_works(a, vendor, args)
                first = next(i for i, p in enumerate(logs) if f"job {started.job_id}" in p.read_text(errors="replace"))
                os.kill(workers[first].pid, signal.SIGKILL)
                workers[first].wait()
                finished.set()  # the vendor's clip is done while nobody watches it
                return started, await _poll(b, started.job_id, timeout_s=90), first

            started, done, first = anyio.run(scenario)
            other = logs[1 - first].read_text(errors="replace")
            assert done.status == "succeeded", (done, other[-3000:])
            assert len(vendor.calls("POST", om.VIDEOS)) == 1
            assert f"job {started.job_id} (generate_scene): attempt 2 on this worker" in other
            record("generate requests the vendor saw for one job whose worker was killed mid-call",
                   len(vendor.calls("POST", om.VIDEOS)))
            report = anyio.run(lambda: provider_report(b, None, video_id="killed"))
            assert "openai:sora-2" in json.dumps(report.model_dump())
            scene = b.registry.assets.current("default", "killed", "scene")[0]
            assert scene.provider == "openai:sora-2" and scene.job_id == started.job_id
        finally:
            a.close()
            b.close()
            for w in workers:
                _stop_worker(w)


def test_temporal_provider_limit_holds_across_workers(cluster: dict[str, str], tmp_path: Path) -> None:
    """24 scene jobs at once over two workers, Sora limited to 4: the vendor never has more than 4 of
    our jobs in flight (from its create to its download), whichever worker runs them."""
    import itertools
    import threading

    lock, ids = threading.Lock(), itertools.count(1)
    created: dict[str, float] = {}
    in_flight: set[str] = set()
    most = [0]

    def create(req: Any) -> Any:
        with lock:
            vid = f"video_{next(ids):04d}"
            created[vid] = time.monotonic()
            in_flight.add(vid)
            most[0] = max(most[0], len(in_flight))
        return om.video_reply(video_id=vid, status="queued")

    def status(req: Any) -> Any:
        vid = req.path.rsplit("/", 1)[1]
        done = time.monotonic() - created[vid] > 1.0
        return om.video_reply(video_id=vid, status="completed" if done else "in_progress", progress=100 if done else 50)

    def content(req: Any) -> Any:
        with lock:
            in_flight.discard(req.path.split("/")[-2])
        return om.video_content_reply(om.mp4_bytes(1.0, 320, 180))

    with loopback_server() as vendor:
        vendor.route("POST", om.VIDEOS, sticky=create)
        vendor.route("GET", om.VIDEO, sticky=status)
        vendor.route("GET", om.VIDEO_CONTENT, sticky=content)
        cluster.update({"OPENAI_API_KEY": "FAKE-openai-SCALEOUT-1b2c3d4e5f", "OPENAI_BASE_URL": vendor.url + "/v1",
                        "YTAP_VIDEO_PROVIDERS": "openai:sora-2", "YTAP_PROVIDER_CONCURRENCY": "openai:sora-2=4",
                        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
        # 8 jobs at most per worker: the 24 are spread over both (the limit of 4 still binds)
        workers = [_start_worker(cluster, tmp_path / f"worker{i}.log", "--max-jobs", "8") for i in (1, 2)]
        a = Runtime.create(Settings.from_env(cluster))
        b = Runtime.create(Settings.from_env(cluster))
        try:
            async def scenario() -> list[Any]:
                started = []
                for n in range(24):
                    args = {"video_id": f"v{n:02d}", "scene_index": 1, "prompt": f"clip {n}", "duration_s": 2.0}
                    with job_call("generate_scene", args):
                        started.append(await generate_scene(a if n % 2 else b, None, **args, wait_seconds=0))
                return [await _poll(b, env.job_id, timeout_s=400) for env in started]

            done = anyio.run(scenario)
            logs = [(tmp_path / f"worker{i}.log").read_text(errors="replace") for i in (1, 2)]
            assert [d.status for d in done] == ["succeeded"] * 24, (done, logs[0][-2000:])
            ran = [sum(f"job {d.job_id} " in log for d in done) for log in logs]
            record("most Sora jobs in flight at once (24 jobs, limit 4, two workers)", most[0])
            for i, n in enumerate(ran, 1):
                record(f"jobs (of 24) worker {i} ran an attempt of", n)
            assert len(vendor.calls("POST", om.VIDEOS)) == 24
            assert most[0] <= 4 and most[0] >= 2
            assert all(ran), ran  # both workers took jobs: the limit held across them
        finally:
            a.close()
            b.close()
            for w in workers:
                _stop_worker(w)


def _http_replica(cluster: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``ytap-mcp serve --transport streamable-http`` on a free loopback port, as a load balancer's backend."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ytap_mcp", "serve", "--transport", "streamable-http",
                                 "--port", str(port)], env={**os.environ, **cluster}, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)


def test_temporal_two_http_replicas_any_one_answers_any_job(cluster: dict[str, str], tmp_path: Path) -> None:
    """Two real streamable-HTTP replicas and a worker over one PostgreSQL and Temporal, through the MCP
    client: a job started through A is polled to the end through B, both give the same provider_report;
    a job the vendor keeps working on is cancelled through B and reads cancelled through A within 15 s."""
    import threading

    from mcp import Client

    lock, hold, created = threading.Lock(), threading.Event(), {}

    def create(req: Any) -> Any:
        with lock:
            vid = f"video_{len(created) + 1:04d}"
            created[vid] = None if hold.is_set() else time.monotonic()  # None: kept in progress
        return om.video_reply(video_id=vid, status="queued")

    def status(req: Any) -> Any:
        at = created[req.path.rsplit("/", 1)[1]]
        done = at is not None and time.monotonic() - at > 1.0
        return om.video_reply(video_id=req.path.rsplit("/", 1)[1], status="completed" if done else "in_progress",
                              progress=100 if done else 40)

    async def call(url: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        async with Client(url) as client:
            result = await client.call_tool(name, args)
        assert not result.is_error, result.content
        return result.structured_content

    with loopback_server() as vendor:
        vendor.route("POST", om.VIDEOS, sticky=create)
        vendor.route("GET", om.VIDEO, sticky=status)
        vendor.route("GET", om.VIDEO_CONTENT, sticky=om.video_content_reply(om.mp4_bytes(1.0, 320, 180)))
        cluster.update({"OPENAI_API_KEY": "FAKE-openai-SCALEOUT-1b2c3d4e5f", "OPENAI_BASE_URL": vendor.url + "/v1",
                        "YTAP_VIDEO_PROVIDERS": "openai:sora-2", "YTAP_LOG_LEVEL": "INFO",
                        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
        worker = _start_worker(cluster, tmp_path / "worker.log")
        replicas = [_http_replica(cluster, tmp_path / f"replica-{name}.log") for name in "ab"]
        (_, a), (_, b) = replicas
        try:
            async def scenario() -> dict[str, Any]:
                out: dict[str, Any] = {}
                scene = {"video_id": "replicas", "scene_index": 1, "prompt": "a lighthouse at dusk", "duration_s": 2.0}
                env = await call(a, "generate_scene", {**scene, "wait_seconds": 0})
                out["started"] = env
                while env["status"] in ("queued", "running"):
                    env = await call(b, "job_status", {"job_id": env["job_id"], "wait_seconds": 5})
                out["done"] = env
                out["reports"] = [await call(url, "provider_report", {"video_id": "replicas"}) for url in (a, b)]
                hold.set()
                slow = await call(a, "generate_scene", {**scene, "scene_index": 2, "prompt": "a slow vendor",
                                                         "wait_seconds": 0})
                deadline = time.monotonic() + 60
                while len(created) < 2 and time.monotonic() < deadline:
                    await anyio.sleep(0.2)
                asked = time.monotonic()
                await call(b, "cancel_job", {"job_id": slow["job_id"]})
                while slow["status"] in ("queued", "running"):
                    slow = await call(a, "job_status", {"job_id": slow["job_id"], "wait_seconds": 2})
                out["cancelled"], out["cancel_s"] = slow, time.monotonic() - asked
                return out

            out = anyio.run(scenario)
        finally:
            for proc, _ in replicas:
                _stop_worker(proc)
            _stop_worker(worker)
    logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(tmp_path.glob("*.log")))
    assert out["started"]["status"] in ("queued", "running")
    assert out["done"]["status"] == "succeeded", (out["done"], logs)
    assert out["done"]["result"]["provider"] == "openai:sora-2"
    assert out["reports"][0] == out["reports"][1]
    assert out["cancelled"]["status"] == "cancelled", (out["cancelled"], logs)
    assert out["cancel_s"] < 15
    record("seconds from cancel_job through HTTP replica B to job_status through A reading cancelled",
           round(out["cancel_s"], 2))
    assert len(vendor.calls("POST", om.VIDEOS)) == 2
    folder = Path(cluster["YTAP_HOME"]) / "workspaces/default/videos/replicas"
    assert (folder / "scenes" / "scene_001.mp4").is_file() and not (folder / "scenes" / "scene_002.mp4").exists()
    assert [p for p in folder.rglob("*") if ".part" in p.name] == []

