"""A native engine that crashes costs one request, never the server (issue 20, finding 1).

Before: ``synthesize_narration(text="Hello. " + "s'" * 220)`` with no keys made
libespeak-ng 1.52 (in the server's process, through ctypes) overflow its stack:
``*** buffer overflow detected ***``, the server exited with -6 (SIGABRT), the client saw
``Connection closed`` and every job in flight was lost. Now espeak-ng runs in a worker
process; the tests below start the real server on stdio, as MCP clients do.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from core.errors import Crashed, OperationCancelled
from core.media import espeak
from core.media.native_worker import NativeWorker
from core.media.probe import probe
from tests.security.acceptance import record

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "Hello. " + "s'" * 220  # a ~440-character token: libespeak-ng 1.52 aborts on it

# The real server, with the sanitiser that splits long tokens turned off, so the hostile text
# reaches the engine as it did before the fix: isolation has to hold on its own.
_UNSANITISED_SERVER = ("from core.media import espeak; espeak.MAX_TOKEN_CHARS = 10**9; "
                       "from ytap_mcp.cli import main; raise SystemExit(main())")


async def _call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


async def _narrate(client: Client, video_id: str, text: str) -> dict[str, Any]:
    env = await _call(client, "synthesize_narration", {"video_id": video_id, "text": text, "wait_seconds": 0})
    with anyio.fail_after(120):
        while env["status"] in ("queued", "running"):
            env = await _call(client, "job_status", {"job_id": env["job_id"], "wait_seconds": 20})
    return env


def _run_stdio(home: Path, sanitised: bool, body: Any) -> Any:
    """Run ``body(client)`` against a real stdio server (its stderr is the test's)."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ytap_mcp"] if sanitised else ["-c", _UNSANITISED_SERVER],
        cwd=str(REPO), env={"YTAP_HOME": str(home), "PATH": "/usr/bin:/bin", "YTAP_LOG_LEVEL": "INFO"})

    async def main() -> Any:
        async with Client(params, mode="legacy") as client:
            return await body(client)

    return anyio.run(main)


def test_isolation_a_crashing_engine_fails_one_attempt_and_the_server_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def body(client: Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        crashed = await _narrate(client, "crash", HOSTILE)
        report = await _call(client, "provider_report", {"video_id": "crash"})
        after = await _narrate(client, "after", "The server is still here. So is the voice.")
        return crashed, report, after

    crashed, report, after = _run_stdio(home, False, body)
    assert crashed["status"] == "failed", crashed
    espeak_attempts = [a for a in crashed["error"]["attempts"] if a["provider"] == "local:espeak-ng"]
    assert [a["error_code"] for a in espeak_attempts] == ["crashed"], crashed["error"]
    assert "crashed (killed by SIGABRT)" in espeak_attempts[0]["reason"]  # the engine did abort, in its worker
    status = {p["id"]: p for p in report["providers"]}["local:espeak-ng"]
    assert status["failures"] == 1 and report["totals"]["failed_attempts"] >= 1, report
    # The next call is untouched: a narration made by a fresh worker, probed.
    assert after["status"] == "succeeded", after
    wav = home / "workspaces" / "default" / "videos" / "after" / "audio" / "narration.wav"
    info = probe(wav)
    assert info.audio is not None and info.audio.sample_rate == 48_000 and info.duration_s > 1.0
    record("native engine crashes survived by the server")


def test_isolation_the_hostile_text_is_split_before_the_engine(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def body(client: Client) -> dict[str, Any]:
        return await _narrate(client, "split", HOSTILE)

    env = _run_stdio(home, True, body)
    assert env["status"] == "succeeded", env
    assert env["result"]["provider"] == "local:espeak-ng"
    assert [w["text"] for w in env["result"]["segments"][0]["words"]] == ["Hello.", "s'" * 220]


# --- the worker itself -------------------------------------------------------------------------


def test_isolation_worker_crash_is_crashed_and_the_next_call_gets_a_new_process(tmp_path: Path) -> None:
    espeak.list_voices()
    first = espeak._WORKER.pid
    assert first is not None and first != os.getpid()
    with pytest.raises(Crashed) as info:
        espeak._WORKER.call("render", {"text": HOSTILE, "voice": "gmw/en-US", "wpm": 175})
    assert "SIGABRT" in str(info.value) and info.value.retryable is False
    assert espeak._WORKER.pid is None  # reaped, not left as a zombie
    timings = espeak.synthesize(["Still working."], tmp_path / "ok.wav")
    assert [w.text for w in timings[0].words] == ["Still", "working."]
    assert espeak._WORKER.pid not in (None, first)


def test_isolation_engine_text_keeps_character_positions() -> None:
    text = "Hi " + "x" * 200 + " end"
    cut = espeak._engine_text(text)
    assert len(cut) == len(text) and cut[:3] == "Hi " and cut.endswith(" end")
    assert max(len(t) for t in cut.split()) <= espeak.MAX_TOKEN_CHARS
    assert espeak._engine_text("ordinary words stay as they are") == "ordinary words stay as they are"


def test_isolation_cancel_kills_the_worker_mid_request() -> None:
    worker = NativeWorker("sleeper", "tests.reliability.test_isolation:sleepy_engine", idle_s=0)
    try:
        assert worker.call("echo", {"x": 1}) == ({"x": 1}, b"\x00\x01")
        pid = worker.pid
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(OperationCancelled):
            worker.call("sleep", {"s": 30}, cancel=cancel)
        assert time.monotonic() - started < 2
        assert pid is not None and not _alive(pid)
        assert worker.call("echo", {"y": 2})[0] == {"y": 2}  # a new child
    finally:
        worker.stop()


def test_isolation_worker_is_retired_after_max_requests() -> None:
    worker = NativeWorker("sleeper", "tests.reliability.test_isolation:sleepy_engine", max_requests=2, idle_s=0)
    try:
        pids = []
        for i in range(5):
            worker.call("echo", {"i": i})
            pids.append(worker.pid)
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert worker.restarts == 2
    finally:
        worker.stop()


def test_isolation_stray_stdout_of_the_engine_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    worker = NativeWorker("sleeper", "tests.reliability.test_isolation:sleepy_engine", idle_s=0)
    try:
        assert worker.call("print", {})[0] == "printed"
    finally:
        worker.stop()
    out, err = capfd.readouterr()
    assert "stray output" not in out and "stray output" in err


def sleepy_engine(op: str, args: dict[str, Any]) -> tuple[Any, bytes]:
    """A stand-in engine for the worker tests (runs in the worker process)."""
    if op == "sleep":
        time.sleep(float(args["s"]))
    if op == "print":
        os.write(1, b"stray output\n")  # what a C library's printf would do
        return "printed", b""
    return args, b"\x00\x01"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True



def test_isolation_idle_worker_is_stopped_and_started_again_on_demand() -> None:
    worker = NativeWorker("sleeper", "tests.reliability.test_isolation:sleepy_engine", idle_s=0.5)
    try:
        worker.call("echo", {})
        first = worker.pid
        time.sleep(0.3)
        worker.call("echo", {})  # still warm: the idle clock starts again
        assert worker.pid == first
        deadline = time.monotonic() + 5
        while (worker.pid is not None or _alive(first)) and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.05)
        assert worker.pid is None and first is not None and not _alive(first)
        worker.call("echo", {})
        assert worker.pid not in (None, first)
    finally:
        worker.stop()
