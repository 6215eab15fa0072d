from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from core.assets import Registry
from core.errors import BadOutput, InvalidIdentifier, JobNotFound, OperationCancelled
from core.jobs import JobHandle, JobRunner


class Out(BaseModel):
    value: int


@pytest.fixture
def runner(tmp_path: Path):
    r = JobRunner(Registry(tmp_path / "ytap.db", tmp_path / "ws").jobs)
    yield r
    r.shutdown()


def test_jobs_quick_job_finishes_within_the_wait(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        h.progress(0.5, "half")
        return Out(value=7)

    job_id = runner.submit("t", body)
    env = anyio.run(runner.wait, job_id, 5.0)
    assert env.status == "succeeded" and env.result == {"value": 7} and env.progress == 1.0
    assert job_id.startswith("job_") and not job_id[4:].isdigit()


def test_jobs_wait_is_bounded_and_relays_progress(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        for i in range(30):
            h.progress(i / 30, f"step {i}")
            await anyio.sleep(0.1)
        return Out(value=1)

    seen: list[tuple[float, str]] = []

    async def sink(p: float, m: str) -> None:
        seen.append((p, m))

    job_id = runner.submit("t", body)
    t0 = time.monotonic()
    env = anyio.run(runner.wait, job_id, 1.0, sink)
    assert time.monotonic() - t0 < 2.0
    assert env.status == "running" and 0 < env.progress < 1
    assert seen and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
    assert anyio.run(runner.wait, job_id, 10.0).status == "succeeded"


def test_jobs_wait_is_capped_at_50_seconds(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        return Out(value=1)

    job_id = runner.submit("t", body)
    assert anyio.run(runner.wait, job_id, 10_000.0).status == "succeeded"


def test_jobs_cancel_lets_the_body_clean_up_first(runner: JobRunner) -> None:
    cleaned: list[bool] = []

    async def body(h: JobHandle) -> Out:
        try:
            while not h.cancel.is_set():
                await anyio.sleep(0.05)
            raise OperationCancelled("stopped")
        finally:
            cleaned.append(True)

    job_id = runner.submit("t", body)
    time.sleep(0.2)
    runner.cancel(job_id)
    t0 = time.monotonic()
    env = anyio.run(runner.wait, job_id, 5.0)
    assert env.status == "cancelled" and time.monotonic() - t0 < 2.0 and cleaned == [True]
    assert runner.store.get(job_id).status == "cancelled"


def test_jobs_cancel_stops_a_body_that_ignores_the_event(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        await anyio.sleep(60)
        return Out(value=1)

    job_id = runner.submit("t", body)
    time.sleep(0.2)
    runner.cancel(job_id)
    assert anyio.run(runner.wait, job_id, 15.0).status == "cancelled"


def test_jobs_failure_carries_code_and_message(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        raise BadOutput("truncated download")

    env = anyio.run(runner.wait, runner.submit("t", body), 5.0)
    assert env.status == "failed" and env.error and env.error.code == "bad_output"
    assert "truncated download" in env.error.message


def test_jobs_failure_text_is_scrubbed_of_secrets(tmp_path: Path) -> None:
    key = "FAKE-openai-JOBS-9f8e7d6c5b4a-DISTINCT"
    reg = Registry(tmp_path / "ytap.db", tmp_path / "ws")
    runner = JobRunner(reg.jobs, [key])
    try:
        async def body(h: JobHandle) -> Out:
            raise BadOutput(f"vendor said: bad key {key} (Authorization: Bearer {key})")

        job_id = runner.submit("t", body)
        env = anyio.run(runner.wait, job_id, 5.0)
    finally:
        runner.shutdown()
    assert env.status == "failed" and env.error is not None
    assert key not in env.error.message and key not in env.message and "vendor said" in env.error.message
    assert key not in repr(reg.jobs.get(job_id))  # the row as stored
    assert key.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("ytap.db*"))


def test_jobs_unexpected_exception_hides_internals(runner: JobRunner) -> None:
    async def body(h: JobHandle) -> Out:
        raise KeyError("/home/user/secret/path")

    env = anyio.run(runner.wait, runner.submit("t", body), 5.0)
    assert env.status == "failed" and env.error and env.error.code == "internal_error"
    assert "/home/user" not in env.error.message


def test_jobs_state_is_persisted_and_readable_from_another_runner(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "ytap.db", tmp_path / "ws")
    r1 = JobRunner(reg.jobs)

    async def body(h: JobHandle) -> Out:
        return Out(value=3)

    job_id = r1.submit("t", body)
    anyio.run(r1.wait, job_id, 5.0)
    r1.shutdown()
    r2 = JobRunner(Registry(tmp_path / "ytap.db", tmp_path / "ws").jobs)
    env = r2.envelope(job_id)
    assert env.status == "succeeded" and env.result == {"value": 3}
    r2.shutdown()


def test_jobs_unknown_and_malformed_ids(runner: JobRunner) -> None:
    with pytest.raises(JobNotFound):
        runner.envelope("job_ffffffffffffffffffff")
    with pytest.raises(InvalidIdentifier):
        runner.envelope("../../etc/passwd")


def test_jobs_finishers_run_before_success_and_never_fail_the_job(runner: JobRunner) -> None:
    seen: list[tuple[int, str]] = []

    def record(result: BaseModel) -> None:
        seen.append((result.value, runner.envelope(job_id).status))  # type: ignore[attr-defined]

    def broken(result: BaseModel) -> None:
        raise RuntimeError("a finisher bug")

    runner.add_finisher("record", record)
    runner.add_finisher("broken", broken)
    runner.add_finisher("record", record)  # the same name again replaces it: it runs once

    async def body(h: JobHandle) -> Out:
        await anyio.sleep(0.05)  # job_id is bound before the finisher can read it
        return Out(value=7)

    job_id = runner.submit("t", body)
    env = anyio.run(runner.wait, job_id, 5.0)
    assert env.status == "succeeded" and env.result == {"value": 7}
    assert seen == [(7, "running")]  # done inside the job, before anyone can read it as succeeded
