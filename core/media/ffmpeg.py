"""The one place ffmpeg is located and run.

Every ffmpeg call in ytap-mcp goes through :func:`run_ffmpeg` as an argument list, with
stdout and stderr captured: on stdio, the process's stdout belongs to the MCP protocol,
so a single stray byte from a child process would corrupt the session.

ffmpeg is taken from PATH first (a system build may have hardware encoders), else the
static binary that imageio-ffmpeg ships, so ``pip install`` alone is enough.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import MediaError, OperationCancelled

__all__ = [
    "FfmpegLocation",
    "locate_ffmpeg",
    "ffmpeg_exe",
    "run_ffmpeg",
    "DEFAULT_THREADS",
]

# Two cores on the reference machine: x264 scales on its own (``-threads 1`` was 1.5x
# slower, BENCHMARKS.md), but filter graphs default to one thread per core plus extra
# frame threads; bound the filter side so two concurrent jobs do not thrash.
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 2))
_STDERR_TAIL_LINES = 25


@dataclass(frozen=True)
class FfmpegLocation:
    path: str
    source: str  # "PATH" | "imageio-ffmpeg"
    version: str


@lru_cache(maxsize=1)
def locate_ffmpeg() -> FfmpegLocation:
    """Find ffmpeg: PATH first, else imageio-ffmpeg's bundled binary."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        path, source = on_path, "PATH"
    else:
        try:
            import imageio_ffmpeg
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise MediaError("ffmpeg not found on PATH and imageio-ffmpeg is not installed") from exc
        path, source = imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"
    try:
        out = subprocess.run(
            [path, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"ffmpeg at {path} does not run: {exc}") from exc
    first = out.splitlines()[0] if out else ""
    version = first.split(" ")[2] if first.startswith("ffmpeg version") else "unknown"
    return FfmpegLocation(path=path, source=source, version=version)


def ffmpeg_exe() -> str:
    return locate_ffmpeg().path


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float = 600.0,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    what: str = "ffmpeg",
) -> str:
    """Run ffmpeg with ``args`` (everything after the executable); return its stderr.

    ``duration_s`` is the expected output duration: with it and ``on_progress``, the
    ``-progress`` stream is parsed and ``on_progress(fraction)`` called as frames are
    written. ``cancel`` set from another thread kills ffmpeg and raises
    :class:`OperationCancelled`. A non-zero exit raises :class:`MediaError` carrying the
    last lines of stderr, which is where ffmpeg says why.
    """
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if on_progress is not None and duration_s:
        argv += ["-progress", "pipe:1", "-nostats"]
    argv += list(args)

    if cancel is not None and cancel.is_set():  # a short run could finish before the first check below
        raise OperationCancelled(f"{what} cancelled")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # a kill of the group reaches every child ffmpeg spawns
    )
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_tail.append(line.rstrip())

    def read_progress() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_progress is None or not duration_s:
                continue
            key, _, value = line.strip().partition("=")
            if key in ("out_time_us", "out_time_ms") and value.isdigit():
                # Both keys are microseconds (out_time_ms is a historic misnomer).
                on_progress(min(1.0, int(value) / 1e6 / duration_s))

    readers = [threading.Thread(target=drain_stderr, daemon=True), threading.Thread(target=read_progress, daemon=True)]
    for t in readers:
        t.start()

    deadline = time.monotonic() + timeout_s
    cancelled = timed_out = False
    while True:
        try:
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            cancelled = True
        elif time.monotonic() > deadline:
            timed_out = True
        if cancelled or timed_out:
            _kill(proc)
            break
    for t in readers:
        t.join(timeout=5)

    if cancelled:
        raise OperationCancelled(f"{what} cancelled")
    if timed_out:
        raise MediaError(f"{what} took longer than {timeout_s:.0f} s and was stopped")
    if proc.returncode != 0:
        tail = "\n".join(stderr_tail) or "(no output)"
        raise MediaError(f"{what} failed (ffmpeg exit {proc.returncode}): {tail}")
    if on_progress is not None:
        on_progress(1.0)
    return "\n".join(stderr_tail)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait(timeout=10)

