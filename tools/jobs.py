from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope
from tools._common import ProgressSink

JobId = Annotated[str, Field(description="The job_id from a job envelope, e.g. 'job_3f2a...'.",
                             pattern=r"^job_[a-f0-9]{16,32}$")]


async def job_status(
    rt: Runtime,
    progress: ProgressSink | None,
    job_id: JobId,
    *,
    wait_seconds: Annotated[float, Field(description="Wait up to this long (0-50 s) for the job to finish.",
                                         ge=0, le=50)] = 0.0,
) -> JobEnvelope[dict[str, Any]]:
    """The current envelope of a job (status, progress, message, and the result or error once it has ended); optionally wait for it to finish."""
    return await rt.jobs.wait(job_id, wait_seconds, progress)


async def cancel_job(rt: Runtime, progress: ProgressSink | None, job_id: JobId) -> JobEnvelope[dict[str, Any]]:
    """Cancel a queued or running job; the partial file is removed. Returns the job's envelope (already-ended jobs are left as they are)."""
    return rt.jobs.cancel(job_id)
