"""What every tool module shares: parameter types, tool metadata, the job protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field

from core.errors import YtapError
from core.jobs import JobHandle, ProgressSink
from core.runtime import Runtime
from core.schemas import ID_PATTERN, JobEnvelope

__all__ = [
    "ToolInfo",
    "WaitSeconds",
    "VoiceName",
    "run_job",
    "finished_job",
    "ProgressSink",
]

# The job protocol's one parameter; the request-backed parameters are declared in core.schemas.
WaitSeconds = Annotated[float, Field(20.0, description="Seconds to wait before returning the job envelope.",
                                     ge=0, le=50)]
VoiceName = Annotated[str, Field(description="A workspace voice, e.g. 'host'.", pattern=ID_PATTERN)]


@dataclass(frozen=True)
class ToolInfo:
    """A tool function plus the hints a client shows (MCP tool annotations)."""

    fn: Callable[..., Awaitable[Any]]
    title: str
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False

    @property
    def name(self) -> str:
        return self.fn.__name__


R = TypeVar("R", bound=BaseModel)


def finished_job(rt: Runtime, kind: str, result: R, *, workspace_id: str, video_id: str) -> JobEnvelope[R]:
    """The envelope of work that was already done (a cache hit): no job runs, but job_status knows it."""
    env = rt.jobs.finished(kind, result, workspace_id=workspace_id, video_id=video_id, message="done (cached)")
    return JobEnvelope[type(result)].model_validate(env.model_dump())  # type: ignore[misc]


async def run_job(
    rt: Runtime,
    progress: ProgressSink | None,
    *,
    kind: str,
    body: Callable[[JobHandle], Awaitable[R]],
    result_type: type[R],
    wait_seconds: float,
    workspace_id: str | None = None,
    video_id: str | None = None,
) -> JobEnvelope[R]:
    """Start ``body`` as a job and wait up to ``wait_seconds`` for it, relaying progress.

    A job that fails while the caller waits is raised as the tool's error (with the
    job id and every attempt), never returned as a success.
    """
    job_id = rt.jobs.submit(kind, body, workspace_id=workspace_id, video_id=video_id)
    env = await rt.jobs.wait(job_id, wait_seconds, progress)
    if env.status == "failed" and env.error is not None:
        tried = "; ".join(f"{a.provider}: {a.outcome}{' (' + a.reason + ')' if a.reason else ''}" for a in env.error.attempts)
        raise YtapError(f"{kind} job {job_id} failed [{env.error.code}]: {env.error.message}"
                        + (f" — attempts: {tried}" if tried else ""))
    return JobEnvelope[result_type].model_validate(env.model_dump())  # type: ignore[valid-type]
