"""The job runner: long work runs as a job so no tool call holds a connection past 50 s.

Jobs run on one background event loop in a daemon thread, independent of whichever
MCP session started them (a client may disconnect and poll later from another). A tool
submits a job, waits up to ``wait_seconds`` while relaying progress, and otherwise
returns the envelope; the agent polls ``job_status``. Every state change is persisted in
the registry, so a job interrupted by a restart is reported as failed, never forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel

from core.assets.paths import validate_job_id
from core.assets.job_store import JobRow, JobStore
from core.config import scrub_secrets
from core.errors import DiskFull, JobNotFound, OperationCancelled, YtapError, is_disk_full
from core.schemas import JobEnvelope, JobError

__all__ = ["JobHandle", "JobRunner", "ProgressSink", "MAX_WAIT_S", "HEARTBEAT_S", "JobCall", "job_call", "current_call"]

log = logging.getLogger(__name__)

MAX_WAIT_S = 50.0  # real clients cut a call at 60 s
HEARTBEAT_S = 5.0  # progress notifications at least this often while a tool waits (contract: <= 10 s)
_PERSIST_EVERY_S = 1.0
_CANCEL_GRACE_S = 5.0

ProgressSink = Callable[[float, str], Awaitable[None]]

# The tool call a job comes from ({"tool": name, "arguments": {...}}): what a job backend that runs
# jobs elsewhere (core.scaleout: Temporal workers) ships instead of the body, a closure no other
# process can run. The MCP face sets it around every tool call; the in-process runner ignores it.
JobCall = Mapping[str, Any]
_CALL: contextvars.ContextVar[JobCall | None] = contextvars.ContextVar("ytap_job_call", default=None)


@contextlib.contextmanager
def job_call(tool: str, arguments: Mapping[str, Any]) -> Iterator[None]:
    token = _CALL.set({"tool": tool, "arguments": dict(arguments)})
    try:
        yield
    finally:
        _CALL.reset(token)


def current_call() -> JobCall | None:
    return _CALL.get()


@dataclass
class JobHandle:
    """Given to the job's body: report progress, watch for cancellation."""

    job_id: str
    kind: str
    cancel: threading.Event = field(default_factory=threading.Event)
    status: str = "queued"
    progress_value: float = 0.0
    message: str = "queued"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # {key: value} the job's providers record as they go (a vendor's job id): persisted at once, read back
    # by a run of the same job after its worker died (core.scaleout), so the vendor is not asked twice.
    checkpoints: dict[str, Any] = field(default_factory=dict)
    _store: JobStore | None = None
    _persisted_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Thread-safe; progress never goes backwards within a job."""
        with self._lock:
            self.progress_value = max(self.progress_value, min(1.0, max(0.0, fraction)))
            changed_msg = message is not None and message != self.message
            if message is not None:
                self.message = message
            now = time.monotonic()
            persist = changed_msg or now - self._persisted_at >= _PERSIST_EVERY_S
            if persist:
                self._persisted_at = now
        if persist and self._store is not None:
            _persist(self._store, self.job_id, progress=self.progress_value, message=self.message)

    def checkpoint(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` (None forgets it) before anything that can fail after it."""
        with self._lock:
            if value is None:
                self.checkpoints.pop(key, None)
            else:
                self.checkpoints[key] = value
            saved = dict(self.checkpoints)
        if self._store is not None:
            self._store.update(self.job_id, checkpoints=saved)

    def envelope(self) -> JobEnvelope[Any]:
        with self._lock:
            return JobEnvelope[Any](
                job_id=self.job_id,
                kind=self.kind,
                status=self.status,  # type: ignore[arg-type]
                progress=round(self.progress_value, 4),
                message=self.message,
                result=self.result,
                error=JobError(**self.error) if self.error else None,
            )


JobBody = Callable[[JobHandle], Awaitable[BaseModel]]


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` (str, or dicts and lists of them) with every secret and credential-shaped token masked."""
    if isinstance(value, str):
        return scrub_secrets(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


class JobRunner:
    """The job backend: this one runs jobs in this process (the default); core.scaleout's run them on
    Temporal workers behind the same methods (submit, finished, envelope, cancel, wait, shutdown)."""

    name = "in-process"

    def __init__(self, store: JobStore, secret_values: Sequence[str] = ()) -> None:
        self.store = store
        self._secrets = [s for s in secret_values if s]  # scrubbed from every failure before it is kept or shown
        self._handles: dict[str, JobHandle] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self._closed = False
        self._finishers: dict[str, Callable[[BaseModel], None]] = {}
        self.interrupted_at_start = store.mark_interrupted()

    def add_finisher(self, name: str, fn: Callable[[BaseModel], None]) -> None:
        """Run ``fn(result)`` (one per ``name``: adding it again replaces it) in a worker thread after a job's body succeeds, before it reads as succeeded.

        For work every caller of a finished job would otherwise do on its own, serially (the MCP
        face's inline previews): done here, it runs in parallel with other jobs. A finisher that
        raises is logged and ignored; it never fails the job.
        """
        self._finishers[name] = fn

    # --- the background loop ------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._started:
            if self._loop is None:
                ready = threading.Event()

                def run() -> None:
                    loop = asyncio.new_event_loop()
                    self._loop = loop
                    ready.set()
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=run, name="ytap-jobs", daemon=True)
                self._thread.start()
                ready.wait()
            assert self._loop is not None
            return self._loop

    def shutdown(self, timeout_s: float = 10.0, reason: str = "the server is shutting down") -> None:
        """Cancel running jobs (each records ``reason``) and stop the loop."""
        self._closed = True
        for job_id, handle in list(self._handles.items()):
            if handle.status in ("queued", "running"):
                self.cancel(job_id, reason=reason)
        if self._loop is not None:
            deadline = time.monotonic() + timeout_s
            while any(h.status in ("queued", "running") for h in self._handles.values()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=timeout_s)

    # --- API --------------------------------------------------------------------------

    def submit(self, kind: str, body: JobBody, *, workspace_id: str | None = None, video_id: str | None = None) -> str:
        if self._closed:
            raise YtapError("the server is shutting down; try again after it restarts")
        job_id = f"job_{secrets.token_hex(10)}"
        self.store.create(job_id, kind, workspace_id, video_id)
        handle = JobHandle(job_id=job_id, kind=kind, _store=self.store)
        self._handles[job_id] = handle
        loop = self._ensure_loop()
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self._start(handle, body), loop)
        fut.result()  # the task exists (and is registered) before submit returns
        return job_id

    def finished(self, kind: str, result: BaseModel, *, workspace_id: str | None = None, video_id: str | None = None,
                 message: str = "done") -> JobEnvelope[Any]:
        """A job that needed no work (a cache hit): recorded as succeeded, so job_status knows it too."""
        job_id = f"job_{secrets.token_hex(10)}"
        row = self.store.create(job_id, kind, workspace_id, video_id, result=result.model_dump(mode="json"),
                                message=message)
        return _envelope_from_row(row)

    async def _start(self, handle: JobHandle, body: JobBody) -> None:
        self._tasks[handle.job_id] = asyncio.get_running_loop().create_task(self._run(handle, body))

    async def _run(self, handle: JobHandle, body: JobBody) -> None:
        self._set(handle, status="running", message="running")
        try:
            result = await body(handle)
            with anyio.CancelScope(shield=True):  # the asset exists: a late cancel must not say otherwise
                for finish in list(self._finishers.values()):
                    try:
                        await anyio.to_thread.run_sync(finish, result)
                    except Exception:
                        log.warning("job %s: a finisher failed", handle.job_id, exc_info=True)
        except (asyncio.CancelledError, OperationCancelled):
            self._set(handle, status="cancelled", message=handle.message if handle.cancel.is_set() else "cancelled",
                      error={"code": "cancelled", "message": handle.message or "cancelled", "attempts": []})
        except YtapError as exc:
            err = exc.to_dict()
            err.setdefault("attempts", [a.model_dump(mode="json") for a in getattr(exc, "attempts", [])])
            # Providers scrub their own messages; this is the last line, for every other error's text.
            err = _scrub(err, self._secrets)
            self._set(handle, status="failed", message=err["message"][:300], error=err)
        except Exception as exc:
            if is_disk_full(exc):  # no bug: the agent is told which disk, and how much is left
                log.warning("job %s (%s): %s: %s", handle.job_id, handle.kind, type(exc).__name__, exc)
                full = DiskFull(Path(getattr(exc, "filename", None) or self.store.db_path).parent)
                self._set(handle, status="failed", message=full.message[:300], error={**full.to_dict(), "attempts": []})
                return
            # a bug: log it for the operator, tell the agent only that it happened
            log.exception("job %s (%s) crashed", handle.job_id, handle.kind)
            self._set(
                handle,
                status="failed",
                message="internal error",
                error={"code": "internal_error", "message": f"internal error ({type(exc).__name__}); see the server log",
                       "attempts": []},
            )
        else:
            self._set(handle, status="succeeded", progress=1.0, message="done", result=result.model_dump(mode="json"))
        finally:
            self._tasks.pop(handle.job_id, None)

    def _set(self, handle: JobHandle, **fields: Any) -> None:
        with handle._lock:
            for key, value in fields.items():
                setattr(handle, "progress_value" if key == "progress" else key, value)
        if self._owns(handle.job_id):
            _persist(self.store, handle.job_id, **fields)

    def _owns(self, job_id: str) -> bool:
        """Whether this backend still writes the job's row (a Temporal attempt given up does not)."""
        return True

    def envelope(self, job_id: str) -> JobEnvelope[Any]:
        validate_job_id(job_id)
        handle = self._handles.get(job_id)
        if handle is not None:
            return handle.envelope()
        return _envelope_from_row(self.store.get(job_id))

    def cancel(self, job_id: str, reason: str = "cancelled by the client") -> JobEnvelope[Any]:
        validate_job_id(job_id)
        handle = self._handles.get(job_id)
        if handle is None:
            row = self.store.get(job_id)
            if row.status in ("queued", "running"):
                raise JobNotFound(f"{job_id} is running in another ytap-mcp process (pid {row.owner_pid}); cancel it there")
            return _envelope_from_row(row)
        if handle.status in ("queued", "running"):
            handle.message = reason
            handle.cancel.set()
            task = self._tasks.get(job_id)
            if task is not None and self._loop is not None:
                # The body sees the event first and cleans up (kills ffmpeg, removes partial files)
                # before it raises; a hard cancel of the task would end the job while a worker
                # thread is still writing. Only a body that ignores the event is cancelled outright.
                loop = self._loop
                loop.call_soon_threadsafe(lambda: loop.call_later(_CANCEL_GRACE_S, task.cancel))
        return handle.envelope()

    async def wait(self, job_id: str, wait_seconds: float, on_progress: ProgressSink | None = None) -> JobEnvelope[Any]:
        """Wait up to ``wait_seconds`` (capped at 50) for the job to end, relaying progress."""
        validate_job_id(job_id)
        wait_seconds = max(0.0, min(MAX_WAIT_S, wait_seconds))
        deadline = time.monotonic() + wait_seconds
        last_sent: tuple[float, str] | None = None
        last_sent_at = 0.0
        naps = 0
        while True:
            env = self.envelope(job_id)
            if env.status not in ("queued", "running") or time.monotonic() >= deadline:
                return env
            now = time.monotonic()
            if on_progress is not None and ((env.progress, env.message) != last_sent or now - last_sent_at >= HEARTBEAT_S):
                await on_progress(env.progress, env.message)
                last_sent, last_sent_at = (env.progress, env.message), now
            # Short naps first so a quick job answers at once; then the pace of progress updates.
            naps += 1
            await anyio.sleep(min(0.02 if naps < 25 else 0.2, max(0.0, deadline - time.monotonic())))


def _persist(store: JobStore, job_id: str, **fields: Any) -> None:
    """Write a job's state; on a full disk it stays in memory (what job_status reads here) and one line is logged."""
    try:
        store.update(job_id, **fields)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.warning("job %s: state not saved, the disk is full: %s", job_id, exc)


def _envelope_from_row(row: JobRow) -> JobEnvelope[Any]:
    return JobEnvelope[Any](
        job_id=row.job_id,
        kind=row.kind,
        status=row.status,  # type: ignore[arg-type]
        progress=round(row.progress, 4),
        message=row.message,
        result=row.result,
        error=JobError(**row.error) if row.error else None,
    )
