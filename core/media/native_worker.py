"""Native engines (libespeak-ng today, onnxruntime next) run in a worker process each.

A C library called in the server's process takes the server down with it when it
crashes: libespeak-ng 1.52 aborts on a stack overflow for ``"Hello. " + "s'" * 220``
(``*** buffer overflow detected ***``, SIGABRT), and every job in flight is lost. Here the
engine lives in a child process; a crash costs that one request, which fails with
:class:`~core.errors.Crashed` (a provider error: the chain records it and moves on), and
the next request starts a fresh child.

Why a subprocess with a small framed protocol rather than :mod:`multiprocessing`:

* the child's stdout must never be the server's (on stdio, stdout is the MCP protocol);
  here the request and reply pipes are the child's stdin and stdout, and the child points
  its file descriptor 1 at stderr before loading the engine, so a stray ``printf`` in C
  lands in the log. ``spawn`` children inherit the server's fd 1 and re-import its
  ``__main__``; ``forkserver`` adds a long-lived helper process and a resource tracker;
* the child gets its own session (one ``killpg`` reaches whatever it starts, see
  :mod:`core.media.children`) and an empty environment: an engine that misbehaves holds
  no API key;
* replies are JSON plus one raw byte blob, never pickle: the far side of the pipe is the
  process whose memory a hostile input just corrupted.

Frames: a 4-byte big-endian length, a UTF-8 JSON header, then a 4-byte length and the
blob. Request header ``{"op": ..., "args": {...}}``; reply ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": <core.errors class name>, "message": ...}``.

An engine is a module-level function ``handle(op, args) -> (result, blob)`` named as
``"package.module:function"``; it runs in the child, one request at a time. The worker is
started on first use, kept warm, retired after ``max_requests`` requests or ``max_age_s``
seconds (slow leaks in a C library stay bounded), stopped after ``idle_s`` without work,
and killed by :func:`stop_all` (the server's shutdown) and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from core import errors
from core.errors import Crashed, OperationCancelled, ProviderError, TimedOut, YtapError
from core.media import children

__all__ = ["NativeWorker", "stop_all"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
_MAX_FRAME = 1 << 30
_POLL_S = 0.05

# The child's whole program: the server's import path, then the loop below.
_BOOTSTRAP = "import sys; sys.path[:0] = {path!r}; from core.media.native_worker import _child_main; _child_main({target!r})"

_WORKERS: list[NativeWorker] = []
_WORKERS_LOCK = threading.Lock()


class NativeWorker:
    """One engine in one child process; :meth:`call` is thread-safe (requests are serialised)."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        max_requests: int = 1000,
        max_age_s: float = 3600.0,
        idle_s: float = 300.0,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.name = name
        self.target = target
        self.max_requests = max_requests
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._requests = 0
        self._last_used = 0.0
        self._reaper: threading.Timer | None = None
        self.restarts = 0  # children started after the first: crashes, retirements, cancels
        with _WORKERS_LOCK:
            _WORKERS.append(self)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        timeout_s: float = 120.0,
        cancel: threading.Event | None = None,
    ) -> tuple[Any, bytes]:
        """Run ``op`` in the engine's process; return its result and blob.

        The engine's own errors come back as the same :mod:`core.errors` class. The child
        dying is :class:`Crashed`; ``timeout_s`` passing is :class:`TimedOut`; ``cancel``
        set is :class:`OperationCancelled`. In all three the child is killed, and the next
        call starts a new one.
        """
        request = json.dumps({"op": op, "args": args or {}}).encode()
        with self._lock:
            proc = self._ensure_started()
            self._requests += 1
            deadline = time.monotonic() + timeout_s
            try:
                _write_frame(proc, request, b"")
                header, blob = _read_frame(proc, deadline, cancel)
            except _Cancelled:
                self._kill()
                raise OperationCancelled(f"{self.name} cancelled") from None
            except _Deadline:
                self._kill()
                raise TimedOut(f"{self.name} took longer than {timeout_s:.0f} s and was stopped") from None
            except (_ChildGone, OSError) as exc:
                how = self._kill()
                if cancel is not None and cancel.is_set():  # killed by a shutdown that cancels this request too
                    raise OperationCancelled(f"{self.name} cancelled") from None
                log.warning("%s worker (pid %d) died on a request (%s)", self.name, proc.pid, how)
                raise Crashed(f"{self.name} crashed ({how}) on this input; a new worker process takes the next call "
                              f"and the server is unaffected") from exc
            finally:
                self._last_used = time.monotonic()
                self._arm_reaper()
        if header.get("ok"):
            return header.get("result"), blob
        raise _error_from(header, self.name)

    def stop(self) -> None:
        """Kill the child now (the next call starts another)."""
        with self._lock:
            self._kill()

    # --- internals (hold self._lock) ---------------------------------------------------------

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            age = time.monotonic() - self._started
            if self._requests < self.max_requests and age < self.max_age_s:
                return proc
            log.info("%s worker retired after %d requests, %.0f s", self.name, self._requests, age)
            self._kill()
        elif proc is not None:  # died between requests
            self._kill()
        if self._started:
            self.restarts += 1
        code = _BOOTSTRAP.format(path=[p for p in sys.path if p], target=self.target)
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the server's log
            env={"LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
            start_new_session=True,
            close_fds=True,
        )
        children.register(proc)
        self._proc, self._started, self._requests = proc, time.monotonic(), 0
        log.debug("%s worker started (pid %d)", self.name, proc.pid)
        return proc

    def _kill(self) -> str:
        """Kill the child's group and reap it; say how it ended."""
        proc, self._proc = self._proc, None
        if proc is None:
            return "not running"
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "did not exit"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit status {rc}"

    def _arm_reaper(self, delay_s: float | None = None) -> None:
        """One timer per idle period, not one per request: it re-arms itself while requests come."""
        if self._proc is None or self.idle_s <= 0 or (self._reaper is not None and self._reaper.is_alive()):
            return
        self._reaper = threading.Timer(self.idle_s if delay_s is None else delay_s, self._reap_if_idle)
        self._reaper.daemon = True
        self._reaper.start()

    def _reap_if_idle(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # busy: the call in progress arms the timer again when it ends
        try:
            self._reaper = None
            idle = time.monotonic() - self._last_used
            if self._proc is None:
                return
            if idle >= self.idle_s:
                log.debug("%s worker stopped after %.0f s idle", self.name, idle)
                self._kill()
            else:
                self._arm_reaper(self.idle_s - idle)
        finally:
            self._lock.release()


def stop_all() -> None:
    """Kill every engine worker (the server's shutdown; also run at exit)."""
    with _WORKERS_LOCK:
        workers = list(_WORKERS)
    procs = []
    for worker in workers:
        # Never take the worker's lock (a request may be in flight): kill its child under it.
        proc = worker._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            procs.append(proc)
        if worker._reaper is not None:
            worker._reaper.cancel()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


atexit.register(stop_all)


# --- frames --------------------------------------------------------------------------------


class _ChildGone(Exception):
    pass


class _Cancelled(Exception):
    pass


class _Deadline(Exception):
    pass


def _write_frame(proc: subprocess.Popen[bytes], header: bytes, blob: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(_HEADER.pack(len(header)) + header + _HEADER.pack(len(blob)) + blob)
        proc.stdin.flush()
    except (BrokenPipeError, ValueError) as exc:
        raise _ChildGone("the worker's pipe is closed") from exc


def _read_frame(
    proc: subprocess.Popen[bytes], deadline: float, cancel: threading.Event | None
) -> tuple[dict[str, Any], bytes]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    header = json.loads(_read_exact(fd, _read_length(fd, deadline, cancel), deadline, cancel))
    blob = _read_exact(fd, _read_length(fd, deadline, cancel), deadline, cancel)
    if not isinstance(header, dict):
        raise _ChildGone("the worker sent a malformed reply")
    return header, blob


def _read_length(fd: int, deadline: float, cancel: threading.Event | None) -> int:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline, cancel))
    if n > _MAX_FRAME:
        raise _ChildGone(f"the worker sent a frame of {n} bytes")
    return n


def _read_exact(fd: int, n: int, deadline: float, cancel: threading.Event | None) -> bytes:
    chunks: list[bytes] = []
    left = n
    while left:
        if cancel is not None and cancel.is_set():
            raise _Cancelled
        if time.monotonic() > deadline:
            raise _Deadline
        ready, _, _ = select.select([fd], [], [], _POLL_S)
        if not ready:
            continue
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise _ChildGone("the worker's pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _error_from(header: dict[str, Any], name: str) -> YtapError:
    """The engine's error as the same core.errors class (InputError, NotConfigured, BadOutput…)."""
    message = str(header.get("message") or f"{name} failed")
    cls = getattr(errors, str(header.get("error")), None)
    if isinstance(cls, type) and issubclass(cls, (errors.InputError, ProviderError)) and cls is not Crashed:
        with contextlib.suppress(TypeError):
            return cls(message)
    return errors.BadOutput(message)


# --- the child -------------------------------------------------------------------------------


def _child_main(target: str) -> None:
    """The worker's loop: read a request, run it, write the reply, until the pipe closes."""
    channel_in = 0
    channel_out = os.dup(1)
    os.dup2(2, 1)  # stdout is the reply pipe only; whatever the engine prints goes to stderr
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when its workers stop
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {target} worker: %(message)s")
    module_name, _, func_name = target.partition(":")
    handle = getattr(importlib.import_module(module_name), func_name)
    out = os.fdopen(channel_out, "wb")
    inp = os.fdopen(channel_in, "rb", buffering=0)
    while True:
        raw = _child_read(inp)
        if raw is None:
            return
        try:
            request = json.loads(raw)
            result, blob = handle(str(request["op"]), dict(request.get("args") or {}))
            reply: dict[str, Any] = {"ok": True, "result": result}
        except YtapError as exc:
            reply, blob = {"ok": False, "error": type(exc).__name__, "message": exc.message}, b""
        except Exception as exc:  # the engine's bug: a failed request, not a dead worker
            logging.getLogger(__name__).exception("request failed")
            reply, blob = {"ok": False, "error": "BadOutput", "message": f"{type(exc).__name__}: {exc}"}, b""
        header = json.dumps(reply).encode()
        out.write(_HEADER.pack(len(header)) + header + _HEADER.pack(len(blob or b"")) + (blob or b""))
        out.flush()


def _child_read(inp: Any) -> bytes | None:
    def exact(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = inp.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exact(_HEADER.size)
    if head is None:
        return None
    header = exact(_HEADER.unpack(head)[0])
    blob_len = exact(_HEADER.size)
    if header is None or blob_len is None:
        return None
    if exact(_HEADER.unpack(blob_len)[0]) is None:
        return None
    return header
