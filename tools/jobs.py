from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope
from tools._common import ProgressSink

JobId = Annotated[str, Field(description="A job envelope's job_id.",
                             pattern=r"^job_[a-f0-9]{16,32}$")]


async def job_status(
    rt: Runtime,
    progress: ProgressSink | None,
    job_id: JobId,
    *,
    wait_seconds: Annotated[float, Field(description="Seconds to wait for the job to end.",
                                         ge=0, le=50)] = 0.0,
) -> JobEnvelope[dict[str, Any]]:
    """A job's envelope (status, progress, message; the result or error once ended). Poll while queued or running."""
    return await rt.jobs.wait(job_id, wait_seconds, progress)


async def cancel_job(rt: Runtime, progress: ProgressSink | None, job_id: JobId) -> JobEnvelope[dict[str, Any]]:
    """Cancel a queued or running job; its partial file is removed."""
    return rt.jobs.cancel(job_id)
