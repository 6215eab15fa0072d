"""A job interrupted by a server crash is reported as failed after a restart, never forgotten."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ytap_mcp", "serve", "--transport", "streamable-http", "--port", str(port)],
        env={"YTAP_HOME": str(home), "PATH": "/usr/bin:/bin", "YTAP_LOG_LEVEL": "WARNING"},
        stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.slow
def test_restart_reports_the_interrupted_job_as_failed_and_leaves_no_partial(tmp_path: Path) -> None:
    home, port, log = tmp_path / "home", _free_port(), tmp_path / "server.log"
    proc = _start(home, port, log)
    url = f"http://127.0.0.1:{port}/mcp"

    async def submit() -> str:
        async with Client(url) as client:
            env = (await client.call_tool("generate_scene", {"video_id": "crash", "scene_index": 1, "prompt": "long",
                                                             "duration_s": 60, "wait_seconds": 1})).structured_content
            assert env["status"] == "running"
            return env["job_id"]

    try:
        job_id = anyio.run(submit)
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its ffmpeg, mid-render
        proc.wait(timeout=10)
        scenes = home / "workspaces" / "default" / "videos" / "crash" / "scenes"
        assert not (scenes / "scene_001.mp4").exists()
        proc = _start(home, port, log)

        async def poll() -> dict:
            async with Client(url) as client:
                return (await client.call_tool("job_status", {"job_id": job_id})).structured_content

        env = anyio.run(poll)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert env["status"] == "failed"
    assert env["error"]["code"] == "interrupted" and "restart" in env["message"]
    assert [p.name for p in scenes.iterdir()] == []  # the partial file was swept at start-up
