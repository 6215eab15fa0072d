"""The job workflow: one activity that runs the job's tool call on a worker.

Kept free of ytap imports: Temporal replays workflow code in a sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

RUN_JOB = "ytap.run_job"
# A worker that dies stops heartbeating: after this long another worker takes the job over.
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
