"""The job store: the ``jobs`` table, so a job outlives the process that ran it.

Every state change of a job is a row update; a restart reads a job left ``queued`` or
``running`` by a process that is gone as failed (``interrupted``), never forgets it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.assets.atomic import HOST_TAG, PROCESS_MARK, writer_alive
from core.assets.db import Database, Row, utc_now
from core.errors import JobNotFound

__all__ = ["JobRow", "JobStore", "INTERRUPTED", "TEMPORAL_OWNER"]

# The owner of a job run as a Temporal workflow: no process of ours, so never judged by a pid.
TEMPORAL_OWNER = "temporal"

# The error a job interrupted by a stop reads with after the restart.
INTERRUPTED = {
    "code": "interrupted",
    "message": "the server stopped while this job was running (restart or crash); start it again",
    "attempts": [],
}
_UNFINISHED = "status IN ('queued', 'running')"
_FIELDS = ("status", "progress", "message", "result", "error", "checkpoints")


@dataclass(frozen=True)
class JobRow:
    job_id: str
    kind: str
    workspace_id: str | None
    video_id: str | None
    status: str
    progress: float
    message: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    owner_pid: int
    created_at: str
    updated_at: str
    owner_token: str | None = None  # the owner's PROCESS_MARK~HOST_TAG: with the pid, whether the owner still runs
    # What the job's providers recorded as they went (a vendor's job id once submitted): a job run again
    # after its worker died resumes from them instead of paying the vendor twice.
    checkpoints: dict[str, Any] | None = None

    @property
    def owner_alive(self) -> bool:
        if self.owner_token == TEMPORAL_OWNER:  # Temporal keeps it alive (another worker takes over)
            return True
        return writer_alive(self.owner_pid, self.owner_token)


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db_path(self) -> Path:
        """The registry's file (its folder is YTAP_HOME): what a full disk is named by."""
        return self._db.path

    def create(self, job_id: str, kind: str, workspace_id: str | None, video_id: str | None,
               *, result: dict[str, Any] | None = None, message: str = "queued",
               owner_token: str | None = None) -> JobRow:
        """A new job row owned by this process; with ``result`` it is born succeeded (a cache hit needs no work)."""
        now = utc_now()
        status, progress = ("succeeded", 1.0) if result is not None else ("queued", 0.0)
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO jobs (job_id, kind, workspace_id, video_id, status, progress, message, result_json,"
                " owner_pid, owner_token, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, workspace_id, video_id, status, progress, message,
                 json.dumps(result) if result is not None else None, os.getpid(), owner_token or f"{PROCESS_MARK}~{HOST_TAG}", now, now),
            )
        return self.get(job_id)

    def update(self, job_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown job fields {unknown}")
        cols, args = [], []
        for key, value in fields.items():
            if key in ("result", "error", "checkpoints"):
                cols.append(f"{key}_json=?")
                args.append(None if value is None else json.dumps(value))
            else:
                cols.append(f"{key}=?")
                args.append(value)
        cols.append("updated_at=?")
        args.append(utc_now())
        with self._db.tx() as db:
            db.execute(f"UPDATE jobs SET {', '.join(cols)} WHERE job_id=?", (*args, job_id))

    def get(self, job_id: str) -> JobRow:
        rows = self._db.query("SELECT * FROM jobs WHERE job_id=?", (job_id,))
        if not rows:
            raise JobNotFound(f"no job {job_id!r}: it was never started on this server's YTAP_HOME")
        return _job(rows[0])

    def live(self, workspace_id: str, video_id: str) -> list[str]:
        """Jobs of the video queued or running in a live process (this one or another on the same home)."""
        rows = self._db.query(f"SELECT * FROM jobs WHERE workspace_id=? AND video_id=? AND {_UNFINISHED}",
                              (workspace_id, video_id))
        return [r.job_id for r in map(_job, rows) if r.owner_alive]

    def mark_interrupted(self) -> int:
        """Jobs left queued/running by a process that no longer runs are failed, with the reason."""
        rows = self._db.query(f"SELECT * FROM jobs WHERE {_UNFINISHED}")
        dead = [r.job_id for r in map(_job, rows) if not r.owner_alive]
        for job_id in dead:
            self.update(job_id, status="failed", message="interrupted by a server restart", error=INTERRUPTED)
        return len(dead)


def _job(r: Row) -> JobRow:
    return JobRow(
        job_id=r["job_id"],
        kind=r["kind"],
        workspace_id=r["workspace_id"],
        video_id=r["video_id"],
        status=r["status"],
        progress=r["progress"],
        message=r["message"],
        result=json.loads(r["result_json"]) if r["result_json"] else None,
        error=json.loads(r["error_json"]) if r["error_json"] else None,
        owner_pid=r["owner_pid"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        owner_token=r["owner_token"],
        checkpoints=json.loads(r["checkpoints_json"]) if r["checkpoints_json"] else None,
    )
