"""Jobs on Temporal: the replica side (:class:`TemporalJobs`) and the worker side (:class:`ActivityJobs`,
:func:`run_worker`).

A replica (``ytap-mcp serve``) runs a tool up to its job as usual (validation, the plan, the
cache); the job itself is started as a workflow whose id is the job id, carrying the tool
call (:func:`core.jobs.current_call`). A worker's activity calls the same tool again with
:class:`ActivityJobs` as its job backend, which runs the body right there under that job id:
the job row in the shared registry (PostgreSQL) is what every replica reads, so
``job_status`` answers the same everywhere. The activity heartbeats the job's progress;
a cancel of the workflow reaches it and sets the job's cancel event (the body kills its
ffmpeg and removes its partial files, as in one process).

Chunks fan out (:class:`TemporalChunks`): on a worker, an assembly renders each chunk of
its picture (core.media.chunks) as a workflow of its own on the task queue's ``.chunks``
companion, which every worker serves with one activity slot per core. Any worker takes a
chunk; the segments land in the video's folder on the shared media root, where the
assembling worker joins them. Which worker rendered which chunk is logged on both sides.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import secrets
import socket
import threading
from datetime import timedelta
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from core.assets.job_store import TEMPORAL_OWNER, JobStore
from core.assets.paths import validate_job_id
from core.errors import MediaError, OperationCancelled, YtapError
from core.jobs import JobBody, JobHandle, JobRunner, ProgressSink, _envelope_from_row, current_call
from core.media import chunks
from core.schemas import JobEnvelope
from core.scaleout.workflow import RENDER_CHUNK, RUN_JOB, ChunkWorkflow, JobWorkflow

__all__ = ["TemporalJobs", "ActivityJobs", "TemporalChunks", "run_worker", "chunk_queue"]

log = logging.getLogger(__name__)

_HEARTBEAT_EVERY_S = 2.0
_DRAIN = timedelta(minutes=30)
_ACTIVITY_JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar("ytap_activity_job", default=None)
# How a worker names itself in the logs (the Temporal client's default identity has the same shape).
IDENTITY = f"{os.getpid()}@{socket.gethostname()}"
# Chunks one assembly keeps in flight across the workers (each waits in a thread of the assembling worker).
CHUNKS_IN_FLIGHT = 8


def chunk_queue(task_queue: str) -> str:
    """The task queue render chunks go to: beside the jobs', so a chunk never waits behind a job for a slot."""
    return f"{task_queue}.chunks"


class _Loop:
    """A private event loop in a thread, for the Temporal client's calls from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ytap-temporal", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class TemporalJobs(JobRunner):
    """The job backend of a replica: jobs start as workflows; their state is read from the registry."""

    name = "temporal"

    def __init__(self, store: JobStore, secret_values: list[str], *, address: str, namespace: str,
                 task_queue: str) -> None:
        super().__init__(store, secret_values)
        self.address, self.namespace, self.task_queue = address, namespace, task_queue
        self._io = _Loop()
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = self._io.run(Client.connect(self.address, namespace=self.namespace))
        return self._client

    def submit(self, kind: str, body: JobBody, *, workspace_id: str | None = None, video_id: str | None = None) -> str:
        call = current_call()
        if call is None:
            raise YtapError(f"{kind} was not started by a tool call, so it cannot run on a Temporal worker")
        job_id = f"job_{secrets.token_hex(10)}"
        self.store.create(job_id, kind, workspace_id, video_id, owner_token=TEMPORAL_OWNER)
        spec = {"job_id": job_id, "kind": kind, **call}
        self._io.run(self.client().start_workflow(JobWorkflow.run, spec, id=job_id, task_queue=self.task_queue))
        return job_id

    def envelope(self, job_id: str) -> JobEnvelope[Any]:
        validate_job_id(job_id)
        return _envelope_from_row(self.store.get(job_id))

    def cancel(self, job_id: str, reason: str = "cancelled by the client") -> JobEnvelope[Any]:
        validate_job_id(job_id)
        row = self.store.get(job_id)
        if row.status in ("queued", "running") and row.owner_token == TEMPORAL_OWNER:
            self._io.run(self.client().get_workflow_handle(job_id).cancel())
            self.store.update(job_id, message=reason)
        return self.envelope(job_id)

    def shutdown(self, timeout_s: float = 10.0, reason: str = "the server is shutting down") -> None:
        """A replica holds no job: they run on the workers and outlive it."""
        self._closed = True
        self._io.stop()


class ActivityJobs(JobRunner):
    """The job backend of a worker: a tool's job runs at once, in the activity, under the workflow's job id."""

    name = "activity"

    def __init__(self, store: JobStore, secret_values: list[str]) -> None:
        super().__init__(store, secret_values)
        self._abandoned: set[str] = set()

    def submit(self, kind: str, body: JobBody, *, workspace_id: str | None = None, video_id: str | None = None) -> str:
        job_id = _ACTIVITY_JOB.get()
        if job_id is None:
            raise YtapError("a worker runs jobs only inside a Temporal activity")
        handle = JobHandle(job_id=job_id, kind=kind, _store=self.store,
                           checkpoints=dict(self.store.get(job_id).checkpoints or {}))
        self._handles[job_id] = handle
        self._tasks[job_id] = asyncio.get_running_loop().create_task(self._run(handle, body))
        return job_id

    def finished(self, kind: str, result: Any, *, workspace_id: str | None = None, video_id: str | None = None,
                 message: str = "done") -> JobEnvelope[Any]:
        """A cache hit on the worker (the same asset was made meanwhile): the workflow's job succeeds with it."""
        job_id = _ACTIVITY_JOB.get()
        if job_id is None:
            return super().finished(kind, result, workspace_id=workspace_id, video_id=video_id, message=message)
        self.store.update(job_id, status="succeeded", progress=1.0, message=message,
                          result=result.model_dump(mode="json"))
        return self.envelope(job_id)

    def abandon(self, job_id: str) -> None:
        """This attempt no longer owns the job's row: nothing it does from now on is written there."""
        self._abandoned.add(job_id)
        handle = self._handles.get(job_id)
        if handle is not None:
            handle._store = None

    def _owns(self, job_id: str) -> bool:
        return job_id not in self._abandoned

    async def wait(self, job_id: str, wait_seconds: float, on_progress: ProgressSink | None = None) -> JobEnvelope[Any]:
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return self.envelope(job_id)


ToolCaller = Callable[[Any, str, Mapping[str, Any]], Awaitable[Any]]


def _activity(rt: Any, call_tool: ToolCaller) -> Callable[..., Awaitable[dict[str, Any]]]:
    jobs: ActivityJobs = rt.jobs

    @activity.defn(name=RUN_JOB)
    async def run_job(spec: dict[str, Any]) -> dict[str, Any]:
        job_id = spec["job_id"]
        token = _ACTIVITY_JOB.set(job_id)
        info = activity.info()
        log.info("job %s (%s): attempt %d on this worker", job_id, spec["kind"], info.attempt)
        call = asyncio.get_running_loop().create_task(_call(rt, call_tool, spec))
        try:
            while not call.done():
                handle = jobs._handles.get(job_id)
                activity.heartbeat({"progress": handle.progress_value if handle else 0.0,
                                    "message": handle.message if handle else "starting"})
                await asyncio.wait({call}, timeout=_HEARTBEAT_EVERY_S)
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            handle = jobs._handles.get(job_id)
            if details is not None and not details.cancel_requested:
                # Not the client's cancel (this attempt timed out, the worker stops): another attempt has or
                # will have the job, so this one stops without writing the job's state.
                log.warning("job %s: this attempt was given up (%s); another attempt runs it", job_id, details)
                jobs.abandon(job_id)
            if handle is not None:  # the body cleans up (vendor call cut, ffmpeg killed, partial files removed)
                jobs.cancel(job_id)
            else:
                call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise
        finally:
            _ACTIVITY_JOB.reset(token)
        await call
        jobs._handles.pop(job_id, None)
        return jobs.envelope(job_id).model_dump(mode="json")

    return run_job


async def _call(rt: Any, call_tool: ToolCaller, spec: dict[str, Any]) -> None:
    try:
        await call_tool(rt, spec["tool"], spec["arguments"])
    except YtapError:
        pass  # a failed job: its row says so (code, message, attempts), as the runner recorded it


class TemporalChunks:
    """``run_chunk`` for :func:`core.media.chunks.render_segments` on a worker: each chunk is a
    :class:`~core.scaleout.workflow.ChunkWorkflow` that any worker may take.

    Called from the assembly's threads; the Temporal client lives on the worker's event loop.
    A cancel of the assembly cancels the chunk's workflow (its activity kills its ffmpeg and
    removes its partial files); a chunk that failed raises MediaError with the worker's reason.
    """

    parallel = CHUNKS_IN_FLIGHT

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop, task_queue: str) -> None:
        self.client, self.loop, self.task_queue = client, loop, task_queue

    def _run(self, coro: Awaitable[Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def __call__(self, job: chunks.ChunkJob, out_dir: Path, *, cancel: threading.Event | None = None,
                 timeout_s: float = 3600.0, on_progress: Callable[[float], None] | None = None) -> list[Path]:
        spec = {"job": job.to_dict(), "out_dir": str(out_dir), "timeout_s": timeout_s}
        workflow_id = f"chunk-{secrets.token_hex(8)}"
        what = f"chunk {workflow_id} ({len(job.keys)} segment(s), {job.frames} frames)"
        done = self._run(self.client.execute_workflow(
            ChunkWorkflow.run, spec, id=workflow_id, task_queue=chunk_queue(self.task_queue)))
        while True:
            try:
                out = done.result(timeout=0.2)
                break
            except concurrent.futures.TimeoutError:
                if cancel is not None and cancel.is_set():
                    self._run(self.client.get_workflow_handle(workflow_id).cancel()).result(30)
                    concurrent.futures.wait([done], timeout=60)
                    raise OperationCancelled("assembly cancelled") from None
            except WorkflowFailureError as exc:
                cause = exc.cause
                while getattr(cause, "cause", None) is not None:
                    cause = cause.cause
                raise MediaError(f"{what} failed on a worker: {cause}") from None
        log.info("%s rendered by worker %s", what, out["worker"])
        if on_progress is not None:
            on_progress(1.0)
        return [Path(p) for p in out["files"]]


@activity.defn(name=RENDER_CHUNK)
async def render_chunk_activity(spec: dict[str, Any]) -> dict[str, Any]:
    """Render one chunk here (core.media.chunks.render_chunk), heartbeating its progress."""
    cancel, progress = threading.Event(), [0.0]
    job = chunks.ChunkJob.from_dict(spec["job"])

    def render() -> list[Path]:
        return chunks.render_chunk(job, Path(spec["out_dir"]), cancel=cancel, timeout_s=float(spec["timeout_s"]),
                                   on_progress=lambda f: progress.__setitem__(0, f))

    work = asyncio.ensure_future(asyncio.to_thread(render))
    try:
        while not work.done():
            activity.heartbeat({"progress": progress[0]})
            await asyncio.wait({work}, timeout=_HEARTBEAT_EVERY_S)
        files = work.result()
    except asyncio.CancelledError:
        cancel.set()  # render_chunk kills its ffmpeg and removes what it wrote
        await asyncio.gather(work, return_exceptions=True)
        raise
    except (MediaError, OperationCancelled) as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
    log.info("rendered chunk %s here (%d segment(s), %d frames)", activity.info().workflow_id, len(files),
             job.frames)
    return {"files": [str(p) for p in files], "worker": IDENTITY}


async def run_worker(rt: Any, call_tool: ToolCaller, *, stop: asyncio.Event | None = None, max_jobs: int = 16) -> None:
    """Run workflows and activities for ``rt.settings``'s task queue until ``stop`` is set, at most
    ``max_jobs`` jobs at once (more wait in the queue for this or another worker), and render chunks
    for any worker's assembly, one a core."""
    s = rt.settings
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace, identity=IDENTITY)
    rt.chunk_runner = TemporalChunks(client, asyncio.get_running_loop(), s.temporal_task_queue)
    # Draining (SIGTERM): no new task is taken and running jobs finish; a worker killed meanwhile stops
    # heartbeating and its jobs go to another worker.
    # Heartbeats leave at most every 2 s (the SDK's default throttle is 80% of the timeout): a cancel
    # reaches the activity within about that.
    worker = Worker(client, task_queue=s.temporal_task_queue, workflows=[JobWorkflow],
                    activities=[_activity(rt, call_tool)], graceful_shutdown_timeout=_DRAIN,
                    max_concurrent_activities=max_jobs,
                    max_heartbeat_throttle_interval=timedelta(seconds=_HEARTBEAT_EVERY_S))
    chunk_worker = Worker(client, task_queue=chunk_queue(s.temporal_task_queue), workflows=[ChunkWorkflow],
                          activities=[render_chunk_activity], graceful_shutdown_timeout=_DRAIN,
                          max_concurrent_activities=chunks.DEFAULT_WORKERS,
                          max_heartbeat_throttle_interval=timedelta(seconds=_HEARTBEAT_EVERY_S))
    async with worker, chunk_worker:
        log.info("worker %s on %s (namespace %s, task queue %s; chunks on %s)", IDENTITY, s.temporal_address,
                 s.temporal_namespace, s.temporal_task_queue, chunk_queue(s.temporal_task_queue))
        await (stop or asyncio.Event()).wait()
