"""The workflows: a job (one activity that runs the job's tool call on a worker), and a render
chunk (one activity that encodes a few segments of a video, on whichever worker takes it).

Kept free of ytap imports: Temporal replays workflow code in a sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

RUN_JOB = "ytap.run_job"
RENDER_CHUNK = "ytap.render_chunk"
CHUNK_WORKFLOW = "ytap.chunk"
# A worker that dies stops heartbeating: after this long another worker takes the job (or chunk) over.
HEARTBEAT_TIMEOUT = timedelta(seconds=20)


@workflow.defn(name="ytap.job")
class JobWorkflow:
    @workflow.run
    async def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        return await workflow.execute_activity(
            RUN_JOB, spec,
            start_to_close_timeout=timedelta(hours=6),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=5),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


@workflow.defn(name=CHUNK_WORKFLOW)
class ChunkWorkflow:
    """One chunk of a video's picture (core.media.chunks.ChunkJob as JSON), rendered into the shared
    media root. A worker that dies mid-chunk is replaced (the chunk is rendered again elsewhere);
    a chunk that fails in ffmpeg fails at once (the activity says it is not retryable)."""

    @workflow.run
    async def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        return await workflow.execute_activity(
            RENDER_CHUNK, spec,
            start_to_close_timeout=timedelta(seconds=float(spec.get("timeout_s", 3600.0)) + 60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
