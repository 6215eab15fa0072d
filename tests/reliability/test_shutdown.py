"""SIGTERM and SIGINT stop the server within 2 s, and take every child with them (issue 20, finding 2).

Before: the server had no SIGTERM handling; ffmpeg runs in its own session, so ``kill -TERM``
ended the server in 0.02 s while the encode went on for ~28 s, writing into a folder the
next start sweeps. Now a signal takes the path closing stdin always took: running jobs are
cancelled (each kills its ffmpeg and removes its partial files) and recorded, every
tracked ffmpeg and engine process group is killed, and the process exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.media.ffmpeg import run_ffmpeg
from tests.reliability.procs import call, connect, hidden_leftovers, running_server, start_server
from tests.security.acceptance import crash_point

REPO = Path(__file__).resolve().parents[2]


def _videos(home: Path) -> Path:
    return home / "workspaces" / "default" / "videos"


def _source_clip(path: Path, seconds: int, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r=30:d={seconds},drawbox=c={colour}:t=fill:w=60:h=60",
                "-f", "lavfi", "-i", f"sine=f=330:r=48000:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], timeout_s=60, what="source clip")


def _ffmpeg_pids() -> dict[int, tuple[int, int]]:
    """Every ffmpeg on the machine: pid -> (parent pid, process group)."""
    out: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            exe = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if not exe.endswith(b"ffmpeg") and b"ffmpeg-linux" not in exe:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return out


def _descendant_ffmpeg(server_pid: int, before: set[int]) -> list[int]:
    """ffmpeg processes started since ``before`` whose parent is the server."""
    return [pid for pid, (ppid, _) in _ffmpeg_pids().items() if pid not in before and ppid == server_pid]


def _lasting_ffmpeg(server_pid: int, before: set[int]) -> list[int]:
    """The server's ffmpeg children still running 0.5 s after they were seen (the encode, not a probe)."""
    seen = _descendant_ffmpeg(server_pid, before)
    if not seen:
        return []
    time.sleep(0.5)
    return [p for p in seen if _alive(p)]


def _wait(what: str, check: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _time_exit(proc: subprocess.Popen[bytes], stop: Any) -> float:
    """Seconds from ``stop()`` to the process's exit (waiting up to 15 s)."""
    started = time.monotonic()
    stop()
    proc.wait(timeout=15)
    return time.monotonic() - started


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Whatever the verdict, no server is left running for the next test."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    for n, colour in ((1, "red"), (2, "blue")):
        _source_clip(root / f"src_{n}.mp4", 30, colour)
    return root


def _seed(home: Path, sources: Path, video_id: str) -> Path:
    root = _videos(home) / video_id
    (root / "scenes").mkdir(parents=True)
    for src in sources.iterdir():
        (root / "scenes" / src.name).write_bytes(src.read_bytes())
    return root


_ASSEMBLY = {"scenes": ["scenes/src_1.mp4", "scenes/src_2.mp4"], "captions": False, "hardware_encoder": False}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_signal_mid_assembly_stops_everything_within_2s(tmp_path: Path, sources: Path,
                                                                sig: signal.Signals) -> None:
    home, log, tmpdir = tmp_path / "home", tmp_path / "server.log", tmp_path / "tmp"
    tmpdir.mkdir()
    root = _seed(home, sources, "sig")
    before = set(_ffmpeg_pids())
    server = start_server(home, log, env={"TMPDIR": str(tmpdir)})  # scratch kept where the test sees it
    try:
        async def submit() -> dict[str, Any]:
            async with connect(server.url) as client:
                return await call(client, "assemble_video", {"video_id": "sig", "wait_seconds": 0, **_ASSEMBLY})

        env = anyio.run(submit)
        encoders = _wait("the assembly's long encode", lambda: _lasting_ffmpeg(server.proc.pid, before))
        exit_s = _time_exit(server.proc, lambda: os.kill(server.proc.pid, sig))
    finally:
        _kill_group(server.proc)
    left = [p for p in encoders if _alive(p)]
    for pid in left:  # never leave them running for the next test, whatever the verdict
        os.kill(pid, signal.SIGKILL)
    crash_point(f"{sig.name} mid-assembly", exit_s=round(exit_s, 2), ffmpeg_left=len(left),
                exit_code=server.proc.returncode)
    assert exit_s < 2.0, (exit_s, log.read_text(errors="replace")[-3000:])
    assert left == [], f"ffmpeg still running after {sig.name}: {left}"
    assert server.proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert not (root / "final_video.mp4").exists()
    assert hidden_leftovers(root) == []  # removed by the job's own cleanup, before any restart sweep
    assert list(tmpdir.iterdir()) == []

    with running_server(home, log) as again:
        async def status() -> dict[str, Any]:
            async with connect(again.url) as client:
                return await call(client, "job_status", {"job_id": env["job_id"]})

        after = anyio.run(status)
    assert after["status"] == "cancelled", after
    assert "interrupted" in after["message"] and sig.name in after["message"], after
    assert hidden_leftovers(root) == []


def test_shutdown_sigterm_on_stdio_kills_the_engine_worker(tmp_path: Path) -> None:
    """On stdio (as MCP clients launch it), with espeak-ng's worker warm: SIGTERM ends both."""
    proc, rpc = _stdio_server(tmp_path / "home")
    try:
        rpc.call("synthesize_narration", {"video_id": "v", "text": "Warm up.", "wait_seconds": 30})
        workers = _wait("the espeak-ng worker", lambda: [int(p) for p in _children(proc.pid)
                                                          if b"native_worker" in _cmdline(int(p))])
        exit_s = _time_exit(proc, lambda: proc.send_signal(signal.SIGTERM))
    finally:
        _kill_group(proc)
    assert exit_s < 2.0 and proc.returncode == 0, (exit_s, proc.returncode)
    time.sleep(0.2)
    assert [w for w in workers if _alive(w)] == []


class _Stdio:
    """A raw JSON-RPC line client on the server's stdin/stdout (what an MCP client does)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.next_id = proc, 0

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdout is not None
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server closed stdout"
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert not reply["result"].get("isError"), reply
        return reply["result"]["structuredContent"]


def _stdio_server(home: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], _Stdio]:
    proc = subprocess.Popen([sys.executable, "-m", "ytap_mcp"], cwd=str(REPO), stdin=subprocess.PIPE,
                            env={"YTAP_HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    rpc = _Stdio(proc)
    rpc.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "t", "version": "0"}})
    rpc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return proc, rpc


def test_shutdown_closing_stdin_mid_assembly_is_the_same_path(tmp_path: Path, sources: Path) -> None:
    """The path a signal now reuses: an MCP client closing the pipe (before the fix: 0.32 s, already clean)."""
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    tmpdir.mkdir()
    root = _seed(home, sources, "eof")
    before = set(_ffmpeg_pids())
    proc, rpc = _stdio_server(home, {"TMPDIR": str(tmpdir)})
    try:
        env = rpc.call("assemble_video", {"video_id": "eof", "wait_seconds": 0, **_ASSEMBLY})
        encoders = _wait("the assembly's long encode", lambda: _lasting_ffmpeg(proc.pid, before))
        exit_s = _time_exit(proc, proc.stdin.close)  # type: ignore[union-attr]
    finally:
        _kill_group(proc)
    left = [p for p in encoders if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert exit_s < 2.0 and proc.returncode == 0 and left == [], (exit_s, proc.returncode, left)
    assert hidden_leftovers(root) == [] and list(tmpdir.iterdir()) == []

    again, rpc = _stdio_server(home)
    try:
        after = rpc.call("job_status", {"job_id": env["job_id"]})
    finally:
        again.stdin.close()  # type: ignore[union-attr]
        again.wait(timeout=15)
    assert after["status"] == "cancelled" and after["message"].startswith("interrupted"), after


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

