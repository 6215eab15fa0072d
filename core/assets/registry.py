"""The SQLite registry ``$YTAP_HOME/ytap.db``: assets, attempts (with cost), jobs.

One connection guarded by one lock (one writer at a time, from any thread), WAL so
readers in other processes are not blocked, a busy timeout for the moments another
process (a second server on the same home) holds the write lock. ``manifest.json`` in
each video's folder is a human-readable mirror written after every change to that video.

The invariant: a current asset's file holds the bytes that were registered, or the
asset's ``state`` says it does not (``damaged``: other bytes; ``missing``: no file;
``archived``: moved into the video's archive zip, or dropped, by ``archive_video``).

- A service writes the new bytes under a temporary name (``core.assets.atomic.staged``)
  and :meth:`Registry.add_asset` renames them onto the slot inside its write transaction
  (``BEGIN IMMEDIATE`` ... ``os.replace`` ... ``COMMIT``). Every such rename happens under
  the one write lock of the database, so two jobs or two processes writing one slot can
  never leave the row of one describing the file of the other.
- The file and the row still change in two steps: a kill after the rename and before the
  commit leaves the new file under the slot's name with the old row current. So each row
  records what it registered (size, SHA-256, and the file's inode and mtime, which a
  rename keeps), and opening the registry checks every current asset
  (:meth:`Registry.verify_assets`): a stat per file, a hash only when the stat disagrees.
  A file with other bytes marks its row ``damaged``, a file that is gone ``missing``; both
  are logged and shown in the manifest. Registering the slot anew makes it ``ok`` again.
  The same check rewrites any manifest that no longer mirrors the registry (the manifest
  is renamed into place inside the transaction, so a kill can leave one listing an asset
  that was never committed).
- Callers that rename a file into place themselves and register it afterwards (``path``
  without ``staged``) keep that window; the same check covers them (a row registered
  without a hash reads as damaged as soon as its file's size or mtime changes). Rows
  from before files were fingerprinted are fingerprinted at the first check if their
  size is right.
- ``archive_video`` removes intermediates on purpose and says so (:meth:`Registry.mark_archived`):
  their rows become ``archived``, with the zip's path (``archive_path``; none when dropped).
  The check passes over an archived asset while its slot is empty; a file put back in its
  place (unzipped) is checked like any other, and the asset is ``ok`` again if it holds
  the registered bytes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.assets.atomic import atomic_write_text, file_sha256, fsync_dir, fsync_file, pid_alive
from core.assets.paths import VideoPaths
from core.errors import AssetNotFound, InvalidIdentifier, JobNotFound, PathOutsideWorkspace, StorageError
from core.schemas import Attempt

__all__ = ["Registry", "AssetRow", "JobRow", "VoiceRow", "utc_now"]

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
    created_at    TEXT NOT NULL,
    sha256        TEXT,
    mtime_ns      INTEGER,
    inode         INTEGER,
    state         TEXT NOT NULL DEFAULT 'ok',
    archive_path  TEXT
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

-- Workspace voices (clone_voice): a name of the workspace -> a voice in a vendor account. A deleted
-- voice keeps its row (deleted_at set) so a narration asking for it is told it was deleted.
CREATE TABLE IF NOT EXISTS voices (
    workspace_id     TEXT NOT NULL,
    name             TEXT NOT NULL,
    provider         TEXT NOT NULL,
    vendor_voice_id  TEXT NOT NULL,
    description      TEXT,
    sample_uri       TEXT NOT NULL,
    sample_asset_id  TEXT,
    props_json       TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    deleted_at       TEXT,
    PRIMARY KEY (workspace_id, name)
);
"""


# Columns added to ``assets`` after databases already existed: (name, declaration).
_ADDED_ASSET_COLUMNS = (
    ("sha256", "TEXT"),
    ("mtime_ns", "INTEGER"),
    ("inode", "INTEGER"),
    ("state", "TEXT NOT NULL DEFAULT 'ok'"),
    ("archive_path", "TEXT"),
)

ASSET_STATES = ("ok", "damaged", "missing", "archived")

log = logging.getLogger(__name__)


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
    sha256: str | None = None
    state: str = "ok"  # one of ASSET_STATES: does the file still hold the registered bytes
    archive_path: str | None = None  # archived: the zip holding the file (relative to the video's folder)


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
            self._add_columns()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the registry at {db_path}: {exc}") from exc
        try:
            self.verify_assets()
        except (sqlite3.Error, OSError) as exc:  # the registry still serves; the log says what went unchecked
            log.warning("could not check the registered assets' files at start-up: %s", exc)

    def _add_columns(self) -> None:
        """Bring an older database's tables up to this schema (once; under the write lock, so two
        processes opening it at the same moment do not both add a column)."""
        with self._tx() as db:
            have = {r["name"] for r in db.execute("PRAGMA table_info(assets)")}
            for name, declaration in _ADDED_ASSET_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE assets ADD COLUMN {name} {declaration}")

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
        staged: Path | None = None,
        sha256: str | None = None,
        sidecars: Mapping[Path, Path] | None = None,
    ) -> AssetRow:
        """Register ``path`` as the current asset of its kind/slot.

        ``staged``: the new bytes under a temporary name in ``path``'s folder; they are renamed
        onto ``path`` inside the write transaction that registers them, together with
        ``sidecars`` ({temporary: final}, files that go with the asset, such as narration's
        .srt). ``sha256``: the bytes' hash when the caller has it; computed for ``staged`` bytes.
        Blocking (fsync, hashing): call it off the event loop.

        Without ``staged`` the file is already in place, and without ``sha256`` the row keeps no
        hash (a caller registering a large file it just wrote would read it all again): the
        start-up check then calls the file damaged whenever its size or mtime changed.
        """
        asset_id = f"ast_{uuid.uuid4().hex[:16]}"
        rel = paths.relative(path)
        now = utc_now()
        src = staged if staged is not None else path
        # The asset first: a kill after its rename leaves a changed file the start-up check can see.
        moves = {**({staged: path} if staged is not None else {}), **(sidecars or {})}
        for tmp in moves:  # on disk before any of them gets its final name, and before the lock
            fsync_file(tmp)
        st = src.stat()
        digest = sha256 or (file_sha256(staged) if staged is not None else None)
        touched = False
        try:
            with self._tx() as db:
                db.execute(
                    "UPDATE assets SET current = 0 WHERE workspace_id=? AND video_id=? AND kind=? AND rel_path=?",
                    (paths.workspace_id, paths.video_id, kind, rel),
                )
                db.execute(
                    "INSERT INTO assets (asset_id, workspace_id, video_id, kind, scene_index, rel_path, provider,"
                    " model, cost_usd, bytes, props_json, job_id, current, created_at, sha256, mtime_ns, inode, state)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?,?,?,?,'ok')",
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
                        st.st_size,
                        json.dumps(props, sort_keys=True),
                        job_id,
                        now,
                        digest,
                        st.st_mtime_ns,  # a rename keeps both: they describe the file under its final name
                        st.st_ino,
                    ),
                )
                self._insert_attempts(db, paths, capability, job_id, asset_id, attempts)
                # The manifest in the same transaction, so no writer that read the registry earlier can put
                # an older one over it; before the renames, so nothing is left to wait for between the last
                # rename and the commit. A kill in between leaves what the start-up check repairs or reports.
                touched = True
                self._write_manifest(paths)
                for tmp, final in moves.items():
                    os.replace(tmp, final)
        except BaseException:
            if touched:  # the manifest (and maybe a file) already says what the rolled-back rows do not
                try:
                    self.verify_assets(paths)
                except Exception as exc:  # the first error is the one to report; this one goes to the log
                    log.warning("could not re-check %s/%s after a failed registration: %s",
                                paths.workspace_id, paths.video_id, exc)
            raise
        # The renames made durable after the commit, outside the lock the event loop's writers also wait on
        # (a power cut that loses one is what the start-up check reports).
        for folder in {final.parent for final in moves.values()}:
            fsync_dir(folder)
        return self.get_asset(asset_id)

    def verify_assets(self, paths: VideoPaths | None = None) -> list[AssetRow]:
        """Check current assets' files (of one video, or all) against what was registered.

        A stat per file; a file is hashed only when its size is right but its mtime or inode
        is not (and the row has a hash to compare with). Rows whose state changes are updated
        and returned; ``damaged`` and ``missing`` are logged. Every manifest that no longer
        mirrors the registry is rewritten: a kill between a registration's manifest and its
        commit leaves one listing an asset that was never committed. Runs under the write
        lock, so no registration is between its rename and its commit while it looks.
        """
        sql, args = "SELECT * FROM assets WHERE current=1", ()
        if paths is not None:
            sql, args = sql + " AND workspace_id=? AND video_id=?", (paths.workspace_id, paths.video_id)
        changed: list[str] = []
        with self._tx() as db:
            videos: dict[tuple[str, str], VideoPaths] = {}
            for r in db.execute(sql, args).fetchall():
                key = (r["workspace_id"], r["video_id"])
                if key not in videos:
                    videos[key] = _checkable(self.workspaces_root, *key)
                where = videos[key]
                if where is None:
                    continue
                file = where.root / r["rel_path"]
                if r["state"] == "archived" and not os.path.lexists(file):
                    continue  # archive_video took it away on purpose
                state, learned = _check_file(file, r)
                if learned is not None:  # a row from before files were fingerprinted, or a file copied back
                    db.execute("UPDATE assets SET sha256=?, mtime_ns=?, inode=? WHERE asset_id=?",
                               (*learned, r["asset_id"]))
                if state != r["state"]:
                    db.execute("UPDATE assets SET state=?, archive_path=NULL WHERE asset_id=?",
                               (state, r["asset_id"]))
                    changed.append(r["asset_id"])
                    if state == "ok":
                        log.info("asset %s (%s/%s/%s) holds its registered bytes again", r["asset_id"],
                                 r["workspace_id"], r["video_id"], r["rel_path"])
                    else:
                        log.warning("asset %s (%s/%s/%s) is %s: %s", r["asset_id"], r["workspace_id"],
                                    r["video_id"], r["rel_path"], state, _STATE_MEANING[state])
            if paths is not None:
                videos.setdefault((paths.workspace_id, paths.video_id), paths)
            else:
                for manifest in self.workspaces_root.glob("*/videos/*/manifest.json"):
                    key = (manifest.parts[-4], manifest.parts[-2])
                    if key not in videos:
                        videos[key] = _checkable(self.workspaces_root, *key)
            for where in videos.values():
                if where is not None and not self._manifest_mirrors_registry(where):
                    self._write_manifest(where)
        return [self.get_asset(a) for a in changed]

    def mark_archived(
        self, paths: VideoPaths, files: Mapping[str, str | None], archive_rel: str | None
    ) -> list[AssetRow]:
        """Mark the current assets whose files ``archive_video`` took away as ``archived``.

        ``files``: {path inside the video's folder: SHA-256 of the bytes archived (None: not known)};
        ``archive_rel``: the zip that holds them, relative to the video's folder (None: dropped).
        A row is marked only while its slot is empty and, when both hashes are known, the archived
        bytes are the registered ones: a registration that filled the slot after the file was
        archived, or a row that already described other bytes, is left to :meth:`verify_assets`.
        Returns the rows marked; the manifest is rewritten in the same transaction.
        """
        if not files:
            return []
        marked: list[str] = []
        with self._tx() as db:
            rows = db.execute("SELECT * FROM assets WHERE workspace_id=? AND video_id=? AND current=1",
                              (paths.workspace_id, paths.video_id)).fetchall()
            for r in rows:
                rel = r["rel_path"]
                if rel not in files or os.path.lexists(paths.root / rel):
                    continue
                digest = files[rel]
                if digest is not None and r["sha256"] is not None and digest != r["sha256"]:
                    continue
                db.execute("UPDATE assets SET state='archived', archive_path=? WHERE asset_id=?",
                           (archive_rel, r["asset_id"]))
                marked.append(r["asset_id"])
            if marked:
                self._write_manifest(paths)
        return [self.get_asset(a) for a in marked]

    def _manifest_mirrors_registry(self, paths: VideoPaths) -> bool:
        """Whether ``manifest.json`` lists the video's current assets, each in its current state."""
        try:
            listed = json.loads(paths.manifest.read_text("utf-8"))["assets"]
            shown = {a["asset_id"]: a.get("state") for a in listed}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return shown == {a.asset_id: a.state for a in self.current_assets(paths.workspace_id, paths.video_id)}

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
                    "sha256": a.sha256,
                    "state": a.state,
                    **({"archive": a.archive_path} if a.state == "archived" else {}),
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

    # --- workspace voices -----------------------------------------------------------------

    def add_voice(
        self,
        workspace_id: str,
        name: str,
        *,
        provider: str,
        vendor_voice_id: str,
        sample_uri: str,
        sample_asset_id: str | None,
        description: str | None,
        props: dict[str, Any],
    ) -> VoiceRow | None:
        """Register a cloned voice under ``name``; None (nothing written) when a live voice already has the
        name. A deleted voice of that name is replaced."""
        with self._tx() as db:
            taken = db.execute("SELECT 1 FROM voices WHERE workspace_id=? AND name=? AND deleted_at IS NULL",
                               (workspace_id, name)).fetchone()
            if taken:
                return None
            db.execute(
                "INSERT OR REPLACE INTO voices (workspace_id, name, provider, vendor_voice_id, description, sample_uri,"
                " sample_asset_id, props_json, created_at, deleted_at) VALUES (?,?,?,?,?,?,?,?,?,NULL)",
                (workspace_id, name, provider, vendor_voice_id, description, sample_uri, sample_asset_id,
                 json.dumps(props, sort_keys=True), utc_now()),
            )
        return self.get_voice(workspace_id, name)

    def get_voice(self, workspace_id: str, name: str, *, include_deleted: bool = False) -> VoiceRow | None:
        rows = self._query("SELECT * FROM voices WHERE workspace_id=? AND name=?"
                           + ("" if include_deleted else " AND deleted_at IS NULL"), (workspace_id, name))
        return _voice(rows[0]) if rows else None

    def voices(self, workspace_id: str, *, include_deleted: bool = False) -> list[VoiceRow]:
        rows = self._query("SELECT * FROM voices WHERE workspace_id=?"
                           + ("" if include_deleted else " AND deleted_at IS NULL") + " ORDER BY name", (workspace_id,))
        return [_voice(r) for r in rows]

    def mark_voice_deleted(self, workspace_id: str, name: str) -> VoiceRow | None:
        """Set ``deleted_at`` on the live voice ``name``; None when there is none."""
        with self._tx() as db:
            cur = db.execute("UPDATE voices SET deleted_at=? WHERE workspace_id=? AND name=? AND deleted_at IS NULL",
                             (utc_now(), workspace_id, name))
            if cur.rowcount == 0:
                return None
        return self.get_voice(workspace_id, name, include_deleted=True)


_STATE_MEANING = {
    "damaged": "the file under its name is not the one that was registered (a kill between a rename and its "
               "registration, or a change from outside); generate or import it again",
    "missing": "the file is gone (deleted or moved, not by archive_video); generate or import it again",
}


def _checkable(workspaces_root: Path, workspace_id: str, video_id: str) -> VideoPaths | None:
    """The video's folder, unless its ids no longer validate or a folder on the way is a symlink
    (nothing is read or written through one)."""
    try:
        paths = VideoPaths(workspaces_root, workspace_id, video_id)
        paths.check_folders()
    except (InvalidIdentifier, PathOutsideWorkspace):
        log.warning("not checking %s/%s: its ids or folders are not what the registry writes", workspace_id,
                    video_id)
        return None
    return paths


def _check_file(path: Path, r: sqlite3.Row) -> tuple[str, tuple[str | None, int, int] | None]:
    """The state of a row's file, and (sha256, mtime_ns, inode) to record when the row learns them."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "missing", None
    except OSError:
        return "damaged", None
    if not stat.S_ISREG(st.st_mode):  # a link or a folder where a file was registered
        return "damaged", None
    if st.st_size != r["bytes"]:
        return "damaged", None
    if r["mtime_ns"] is None:  # registered before files were fingerprinted: the size is all there is to go on
        return "ok", (r["sha256"], st.st_mtime_ns, st.st_ino)
    if (st.st_mtime_ns, st.st_ino) == (r["mtime_ns"], r["inode"]):
        return "ok", None
    if r["sha256"] is None:  # nothing to hash against: a new mtime says rewritten; a new inode alone, remounted
        if st.st_mtime_ns != r["mtime_ns"]:
            return "damaged", None
        return "ok", (None, st.st_mtime_ns, st.st_ino)
    if r["state"] == "damaged":  # already found to differ: not hashed again at every start
        return "damaged", None
    digest = file_sha256(path)
    if digest == r["sha256"]:  # the same bytes (copied back, touched): remember the file as it is now
        return "ok", (digest, st.st_mtime_ns, st.st_ino)
    return "damaged", None


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
        sha256=r["sha256"],
        state=r["state"] or "ok",
        archive_path=r["archive_path"],
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


@dataclass(frozen=True)
class VoiceRow:
    workspace_id: str
    name: str
    provider: str
    vendor_voice_id: str
    description: str | None
    sample_uri: str
    sample_asset_id: str | None
    props: dict[str, Any]
    created_at: str
    deleted_at: str | None


def _voice(r: sqlite3.Row) -> VoiceRow:
    return VoiceRow(
        workspace_id=r["workspace_id"],
        name=r["name"],
        provider=r["provider"],
        vendor_voice_id=r["vendor_voice_id"],
        description=r["description"],
        sample_uri=r["sample_uri"],
        sample_asset_id=r["sample_asset_id"],
        props=json.loads(r["props_json"] or "{}"),
        created_at=r["created_at"],
        deleted_at=r["deleted_at"],
    )
