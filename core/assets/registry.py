"""The SQLite registry ``$YTAP_HOME/ytap.db``: assets, attempts (with cost), jobs.

One connection guarded by one lock (one writer at a time, from any thread), WAL so
readers in other processes are not blocked, a busy timeout for the moments another
process (a second server on the same home) holds the write lock. ``manifest.json`` in
each video's folder is a human-readable mirror written after every change to that video.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.assets.atomic import atomic_write_text, pid_alive
from core.assets.paths import VideoPaths
from core.errors import AssetNotFound, JobNotFound, StorageError
from core.schemas import Attempt

__all__ = ["Registry", "AssetRow", "JobRow", "utc_now"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id      TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    video_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    scene_index   INTEGER,
    rel_path      TEXT NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT,
    cost_usd      REAL NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL,
    props_json    TEXT NOT NULL DEFAULT '{}',
    job_id        TEXT,
    current       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_video ON assets (workspace_id, video_id, kind, current);

CREATE TABLE IF NOT EXISTS attempts (
    attempt_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL,
    video_id      TEXT NOT NULL,
    capability    TEXT NOT NULL,
    job_id        TEXT,
    asset_id      TEXT,
    provider      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT,
    error_code    TEXT,
    elapsed_s     REAL NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    decision      TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_video ON attempts (workspace_id, video_id);
CREATE INDEX IF NOT EXISTS attempts_asset ON attempts (asset_id);

CREATE TABLE IF NOT EXISTS cache (
    request_key   TEXT PRIMARY KEY,
    asset_id      TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    hits          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    workspace_id  TEXT,
    video_id      TEXT,
    status        TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT NOT NULL DEFAULT '',
    result_json   TEXT,
    error_json    TEXT,
    owner_pid     INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AssetRow:
    asset_id: str
    workspace_id: str
    video_id: str
    kind: str
    scene_index: int | None
    rel_path: str
    provider: str
    model: str | None
    cost_usd: float
    bytes: int
    props: dict[str, Any]
    job_id: str | None
    current: bool
    created_at: str


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


class Registry:
    def __init__(self, db_path: Path, workspaces_root: Path) -> None:
        self.db_path = db_path
        self.workspaces_root = workspaces_root
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(db_path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the registry at {db_path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- assets ---------------------------------------------------------------------

    def add_asset(
        self,
        paths: VideoPaths,
        *,
        kind: str,
        path: Path,
        provider: str,
        model: str | None,
        cost_usd: float,
        props: dict[str, Any],
        attempts: list[Attempt],
        capability: str,
        scene_index: int | None = None,
        job_id: str | None = None,
    ) -> AssetRow:
        """Register a file (already in place) as the current asset of its kind/slot."""
        asset_id = f"ast_{uuid.uuid4().hex[:16]}"
        rel = paths.relative(path)
        now = utc_now()
        size = path.stat().st_size
        with self._tx() as db:
            db.execute(
                "UPDATE assets SET current = 0 WHERE workspace_id=? AND video_id=? AND kind=? AND rel_path=?",
                (paths.workspace_id, paths.video_id, kind, rel),
            )
            db.execute(
                "INSERT INTO assets (asset_id, workspace_id, video_id, kind, scene_index, rel_path, provider, model,"
                " cost_usd, bytes, props_json, job_id, current, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?)",
                (
                    asset_id,
                    paths.workspace_id,
                    paths.video_id,
                    kind,
                    scene_index,
                    rel,
                    provider,
                    model,
                    cost_usd,
                    size,
                    json.dumps(props, sort_keys=True),
                    job_id,
                    now,
                ),
            )
            self._insert_attempts(db, paths, capability, job_id, asset_id, attempts)
        self.write_manifest(paths)
        return self.get_asset(asset_id)

    def record_attempts(
        self, paths: VideoPaths, *, capability: str, attempts: list[Attempt], job_id: str | None = None
    ) -> None:
        """Attempts of a generation that produced no asset (every provider failed)."""
        with self._tx() as db:
            self._insert_attempts(db, paths, capability, job_id, None, attempts)
        self.write_manifest(paths)

    @staticmethod
    def _insert_attempts(
        db: sqlite3.Connection,
        paths: VideoPaths,
        capability: str,
        job_id: str | None,
        asset_id: str | None,
        attempts: list[Attempt],
    ) -> None:
        now = utc_now()
        db.executemany(
            "INSERT INTO attempts (workspace_id, video_id, capability, job_id, asset_id, provider, outcome, reason,"
            " error_code, elapsed_s, cost_usd, decision, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    paths.workspace_id,
                    paths.video_id,
                    capability,
                    job_id,
                    asset_id,
                    a.provider,
                    a.outcome,
                    a.reason,
                    a.error_code,
                    a.elapsed_s,
                    a.cost_usd,
                    a.decision,
                    now,
                )
                for a in attempts
            ],
        )

    def get_asset(self, asset_id: str) -> AssetRow:
        rows = self._query("SELECT * FROM assets WHERE asset_id=?", (asset_id,))
        if not rows:
            raise AssetNotFound(f"no asset {asset_id!r}")
        return _asset(rows[0])

    def current_assets(self, workspace_id: str, video_id: str, kind: str | None = None) -> list[AssetRow]:
        sql = "SELECT * FROM assets WHERE workspace_id=? AND video_id=? AND current=1"
        args: tuple[Any, ...] = (workspace_id, video_id)
        if kind:
            sql += " AND kind=?"
            args += (kind,)
        return [_asset(r) for r in self._query(sql + " ORDER BY kind, scene_index, created_at", args)]

    def asset_by_path(self, paths: VideoPaths, path: Path) -> AssetRow | None:
        rows = self._query(
            "SELECT * FROM assets WHERE workspace_id=? AND video_id=? AND rel_path=? AND current=1",
            (paths.workspace_id, paths.video_id, paths.relative(path)),
        )
        return _asset(rows[0]) if rows else None

    def attempts_for(self, asset_id: str) -> list[Attempt]:
        rows = self._query("SELECT * FROM attempts WHERE asset_id=? ORDER BY attempt_id", (asset_id,))
        return [_attempt(r) for r in rows]

    def attempt_rows(self, workspace_id: str | None = None, video_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM attempts", ()
        if workspace_id:
            sql += " WHERE workspace_id=?"
            args = (workspace_id,)
            if video_id:
                sql += " AND video_id=?"
                args += (video_id,)
        return [dict(r) for r in self._query(sql + " ORDER BY attempt_id", args)]

    def spent_usd(self, workspace_id: str, video_id: str) -> float:
        """What a video has cost so far: every recorded attempt, failed paid ones included."""
        rows = self._query(
            "SELECT COALESCE(SUM(cost_usd), 0) AS total FROM attempts WHERE workspace_id=? AND video_id=?",
            (workspace_id, video_id),
        )
        return float(rows[0]["total"])

    def videos(self, workspace_id: str) -> list[str]:
        rows = self._query("SELECT DISTINCT video_id FROM assets WHERE workspace_id=? ORDER BY video_id", (workspace_id,))
        return [r["video_id"] for r in rows]

    def write_manifest(self, paths: VideoPaths) -> None:
        # Read and renamed into place inside one write transaction (BEGIN IMMEDIATE serialises every
        # connection, other processes' included): a writer that read earlier can never rename an
        # older manifest over a newer one.
        with self._tx():
            self._write_manifest(paths)

    def _write_manifest(self, paths: VideoPaths) -> None:
        assets = self.current_assets(paths.workspace_id, paths.video_id)
        failed = self._query(
            "SELECT * FROM attempts WHERE workspace_id=? AND video_id=? AND asset_id IS NULL ORDER BY attempt_id",
            (paths.workspace_id, paths.video_id),
        )
        manifest = {
            "workspace_id": paths.workspace_id,
            "video_id": paths.video_id,
            "updated_at": utc_now(),
            "assets": [
                {
                    "asset_id": a.asset_id,
                    "kind": a.kind,
                    "scene_index": a.scene_index,
                    "path": a.rel_path,
                    "uri": f"ytap://{a.workspace_id}/{a.video_id}/{a.rel_path}",
                    "provider": a.provider,
                    "model": a.model,
                    "cost_usd": a.cost_usd,
                    "bytes": a.bytes,
                    "created_at": a.created_at,
                    "properties": a.props,
                    "attempts": [x.model_dump() for x in self.attempts_for(a.asset_id)],
                }
                for a in assets
            ],
            "failed_generations": [
                {k: r[k] for k in ("capability", "job_id", "provider", "outcome", "reason", "error_code", "created_at")}
                for r in failed
            ],
            "total_cost_usd": round(
                sum(r["cost_usd"] for r in self.attempt_rows(paths.workspace_id, paths.video_id)), 6
            ),
        }
        paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")

    # --- request cache ----------------------------------------------------------------

    def cache_get(self, request_key: str) -> tuple[AssetRow, str] | None:
        rows = self._query("SELECT asset_id, sha256 FROM cache WHERE request_key=?", (request_key,))
        if not rows:
            return None
        try:
            return self.get_asset(rows[0]["asset_id"]), rows[0]["sha256"]
        except AssetNotFound:
            return None

    def cache_put(self, request_key: str, asset_id: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO cache (request_key, asset_id, sha256, hits, created_at) VALUES (?,?,?,0,?) "
                "ON CONFLICT(request_key) DO UPDATE SET asset_id=excluded.asset_id, sha256=excluded.sha256",
                (request_key, asset_id, sha256, utc_now()),
            )

    def cache_hit(self, request_key: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE cache SET hits = hits + 1 WHERE request_key=?", (request_key,))

    def cache_forget(self, request_key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cache WHERE request_key=?", (request_key,))

    def cache_stats(self) -> tuple[int, int]:
        row = self._query("SELECT COUNT(*) AS n, COALESCE(SUM(hits), 0) AS hits FROM cache")[0]
        return int(row["n"]), int(row["hits"])

    # --- jobs -------------------------------------------------------------------------

    def create_job(self, job_id: str, kind: str, workspace_id: str | None, video_id: str | None,
                   *, result: dict[str, Any] | None = None, message: str = "queued") -> JobRow:
        """A new job row; with ``result`` it is born succeeded (a cache hit needs no work)."""
        now = utc_now()
        status, progress = ("succeeded", 1.0) if result is not None else ("queued", 0.0)
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (job_id, kind, workspace_id, video_id, status, progress, message, result_json,"
                " owner_pid, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, workspace_id, video_id, status, progress, message,
                 json.dumps(result) if result is not None else None, os.getpid(), now, now),
            )
        return self.get_job(job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"status", "progress", "message", "result", "error"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown job fields {unknown}")
        cols, args = [], []
        for key, value in fields.items():
            if key in ("result", "error"):
                cols.append(f"{key}_json=?")
                args.append(None if value is None else json.dumps(value))
            else:
                cols.append(f"{key}=?")
                args.append(value)
        cols.append("updated_at=?")
        args.append(utc_now())
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {', '.join(cols)} WHERE job_id=?", (*args, job_id))

    def get_job(self, job_id: str) -> JobRow:
        rows = self._query("SELECT * FROM jobs WHERE job_id=?", (job_id,))
        if not rows:
            raise JobNotFound(f"no job {job_id!r}: it was never started on this server's YTAP_HOME")
        return _job(rows[0])

    def mark_interrupted_jobs(self) -> int:
        """Jobs left queued/running by a process that no longer exists are failed, with the reason."""
        rows = self._query("SELECT job_id, owner_pid FROM jobs WHERE status IN ('queued', 'running')")
        dead = [r["job_id"] for r in rows if r["owner_pid"] == os.getpid() or not pid_alive(r["owner_pid"])]
        error = {
            "code": "interrupted",
            "message": "the server stopped while this job was running (restart or crash); start it again",
            "attempts": [],
        }
        for job_id in dead:
            self.update_job(job_id, status="failed", message="interrupted by a server restart", error=error)
        return len(dead)


def _asset(r: sqlite3.Row) -> AssetRow:
    return AssetRow(
        asset_id=r["asset_id"],
        workspace_id=r["workspace_id"],
        video_id=r["video_id"],
        kind=r["kind"],
        scene_index=r["scene_index"],
        rel_path=r["rel_path"],
        provider=r["provider"],
        model=r["model"],
        cost_usd=r["cost_usd"],
        bytes=r["bytes"],
        props=json.loads(r["props_json"] or "{}"),
        job_id=r["job_id"],
        current=bool(r["current"]),
        created_at=r["created_at"],
    )


def _attempt(r: sqlite3.Row) -> Attempt:
    return Attempt(
        provider=r["provider"],
        outcome=r["outcome"],
        reason=r["reason"],
        error_code=r["error_code"],
        elapsed_s=r["elapsed_s"],
        cost_usd=r["cost_usd"],
        decision=r["decision"],
    )


def _job(r: sqlite3.Row) -> JobRow:
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
    )

