"""Every child process group the server started, so a shutdown can kill them all at once.

ffmpeg and the native-engine workers are started in their own sessions (a kill of the
group reaches whatever they spawn, and a Ctrl-C in a terminal does not reach them
before the server has decided what to do). The price is that they outlive a server
that exits without killing them: :func:`kill_all` is that kill, called by the
SIGTERM/SIGINT handler and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
from typing import Any

__all__ = ["register", "kill_all", "live_pids"]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LIVE: dict[int, subprocess.Popen[Any]] = {}


def register(proc: subprocess.Popen[Any]) -> None:
    """Put ``proc`` (a session leader) on the kill list; finished ones drop off by themselves."""
    with _LOCK:
        for pid in [pid for pid, p in _LIVE.items() if p.returncode is not None]:
            del _LIVE[pid]
        _LIVE[proc.pid] = proc


def live_pids() -> list[int]:
    with _LOCK:
        return [pid for pid, proc in _LIVE.items() if proc.poll() is None]


def kill_all() -> int:
    """SIGKILL every tracked process group; return how many were still running."""
    with _LOCK:
        procs = list(_LIVE.values())
    killed = 0
    for proc in procs:
        if proc.poll() is not None:
            continue
        killed += 1
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    if killed:
        log.info("killed %d child process group(s) on shutdown", killed)
    return killed


atexit.register(kill_all)
