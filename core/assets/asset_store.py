"""The asset store: the ``assets`` and ``attempts`` tables, ``manifest.json``, the start-up check.

``manifest.json`` in each video's folder is a human-readable mirror written after every
change to that video.

The invariant: a current asset's file holds the bytes that were registered, or the
asset's ``state`` says it does not (``damaged``: other bytes; ``missing``: no file;
``archived``: moved into the video's archive zip, or dropped, by ``archive_video``).

- A service writes the new bytes under a temporary name (``core.assets.atomic.staged``)
  and :meth:`AssetStore.add` renames them onto the slot inside its write transaction
  (``BEGIN IMMEDIATE`` ... ``os.replace`` ... ``COMMIT``). Every such rename happens under
  the one write lock of the database, so two jobs or two processes writing one slot can
  never leave the row of one describing the file of the other.
- The file and the row still change in two steps: a kill after the rename and before the
  commit leaves the new file under the slot's name with the old row current. So each row
  records what it registered (size, SHA-256, and the file's inode and mtime, which a
  rename keeps), and opening the registry checks every current asset
  (:meth:`AssetStore.verify`): a stat per file, a hash only when the stat disagrees.
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
- ``archive_video`` removes intermediates on purpose and says so (:meth:`AssetStore.mark_archived`):
  their rows become ``archived``, with the zip's path (``archive_path``; none when dropped).
  The check passes over an archived asset while its slot is empty; a file put back in its
  place (unzipped) is checked like any other, and the asset is ``ok`` again if it holds
  the registered bytes.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.assets.atomic import atomic_write_text, file_sha256, fsync_dir, fsync_file
from core.assets.db import Database, Row, Tx, utc_now
from core.assets.paths import VideoPaths
from core.assets.props import AssetProps, props_for_kind, props_from_json, props_record, props_to_json
from core.errors import AssetNotFound, InvalidIdentifier, PathOutsideWorkspace
from core.schemas import Attempt

__all__ = ["ASSET_STATES", "AssetRow", "AssetStore"]

ASSET_STATES = ("ok", "damaged", "missing", "archived")

log = logging.getLogger(__name__)

P = TypeVar("P", bound=AssetProps)


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
    props: AssetProps  # the model of the asset's kind (core.assets.props)
    job_id: str | None
    current: bool
    created_at: str
    sha256: str | None = None
    state: str = "ok"  # one of ASSET_STATES: does the file still hold the registered bytes
    archive_path: str | None = None  # archived: the zip holding the file (relative to the video's folder)

    def props_of(self, model: type[P]) -> P:
        """``props`` as ``model``, the model of the kind the caller expects (TypeError for another kind)."""
        if not isinstance(self.props, model):
            raise TypeError(f"asset {self.asset_id} is a {self.kind}, described by {type(self.props).__name__}")
        return self.props


class AssetStore:
    """Registered assets, the attempts behind them (with cost), and each video's manifest."""

    def __init__(self, db: Database, workspaces_root: Path) -> None:
        self._db = db
        self.workspaces_root = workspaces_root

    def add(
        self,
        paths: VideoPaths,
        *,
        kind: str,
        path: Path,
        provider: str,
        model: str | None,
        cost_usd: float,
        props: AssetProps,
        attempts: list[Attempt],
        capability: str,
        scene_index: int | None = None,
        job_id: str | None = None,
        staged: Path | None = None,
        sha256: str | None = None,
        sidecars: Mapping[Path, Path] | None = None,
    ) -> AssetRow:
        """Register ``path`` as the current asset of its kind/slot, described by ``props`` (the kind's model).

        ``staged``: the new bytes under a temporary name in ``path``'s folder; they are renamed
        onto ``path`` inside the write transaction that registers them, together with
        ``sidecars`` ({temporary: final}, files that go with the asset, such as narration's
        .srt). ``sha256``: the bytes' hash when the caller has it; computed for ``staged`` bytes.
        Blocking (fsync, hashing): call it off the event loop.

        Without ``staged`` the file is already in place, and without ``sha256`` the row keeps no
        hash (a caller registering a large file it just wrote would read it all again): the
        start-up check then calls the file damaged whenever its size or mtime changed.
        """
        model_of_kind = props_for_kind(kind)
        if not isinstance(props, model_of_kind):
            raise TypeError(f"a {kind} asset is described by {model_of_kind.__name__}, not {type(props).__name__}")
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
            with self._db.tx() as db:
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
                        props_to_json(props),
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
                    self.verify(paths)
                except Exception as exc:  # the first error is the one to report; this one goes to the log
                    log.warning("could not re-check %s/%s after a failed registration: %s",
                                paths.workspace_id, paths.video_id, exc)
            raise
        # The renames made durable after the commit, outside the lock the event loop's writers also wait on
        # (a power cut that loses one is what the start-up check reports).
        for folder in {final.parent for final in moves.values()}:
            fsync_dir(folder)
        return self.get(asset_id)

    def verify(self, paths: VideoPaths | None = None) -> list[AssetRow]:
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
        with self._db.tx() as db:
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
        return [self.get(a) for a in changed]

    def mark_archived(
        self, paths: VideoPaths, files: Mapping[str, str | None], archive_rel: str | None
    ) -> list[AssetRow]:
        """Mark the current assets whose files ``archive_video`` took away as ``archived``.

        ``files``: {path inside the video's folder: SHA-256 of the bytes archived (None: not known)};
        ``archive_rel``: the zip that holds them, relative to the video's folder (None: dropped).
        A row is marked only while its slot is empty and, when both hashes are known, the archived
        bytes are the registered ones: a registration that filled the slot after the file was
        archived, or a row that already described other bytes, is left to :meth:`verify`.
        Returns the rows marked; the manifest is rewritten in the same transaction.
        """
        if not files:
            return []
        marked: list[str] = []
        with self._db.tx() as db:
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
        return [self.get(a) for a in marked]

    def _manifest_mirrors_registry(self, paths: VideoPaths) -> bool:
        """Whether ``manifest.json`` lists the video's current assets, each in its current state."""
        try:
            listed = json.loads(paths.manifest.read_text("utf-8"))["assets"]
            shown = {a["asset_id"]: a.get("state") for a in listed}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return shown == {a.asset_id: a.state for a in self.current(paths.workspace_id, paths.video_id)}

    def record_attempts(
        self, paths: VideoPaths, *, capability: str, attempts: list[Attempt], job_id: str | None = None
    ) -> None:
        """Attempts of a generation that produced no asset (every provider failed)."""
        with self._db.tx() as db:
            self._insert_attempts(db, paths, capability, job_id, None, attempts)
        self.write_manifest(paths)

    @staticmethod
    def _insert_attempts(
        db: Tx,
        paths: VideoPaths,
        capability: str,
        job_id: str | None,
        asset_id: str | None,
        attempts: list[Attempt],
    ) -> None:
        now = utc_now()
        if job_id is not None:  # the real costs are recorded now: they take the place of what the job held
            db.execute("DELETE FROM budget_holds WHERE job_id=?", (job_id,))
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

    def get(self, asset_id: str) -> AssetRow:
        rows = self._db.query("SELECT * FROM assets WHERE asset_id=?", (asset_id,))
        if not rows:
            raise AssetNotFound(f"no asset {asset_id!r}")
        return _asset(rows[0])

    def current(self, workspace_id: str, video_id: str, kind: str | None = None) -> list[AssetRow]:
        sql = "SELECT * FROM assets WHERE workspace_id=? AND video_id=? AND current=1"
        args: tuple[Any, ...] = (workspace_id, video_id)
        if kind:
            sql += " AND kind=?"
            args += (kind,)
        return [_asset(r) for r in self._db.query(sql + " ORDER BY kind, COALESCE(scene_index, -1), created_at", args)]

    def by_path(self, paths: VideoPaths, path: Path) -> AssetRow | None:
        rows = self._db.query(
            "SELECT * FROM assets WHERE workspace_id=? AND video_id=? AND rel_path=? AND current=1",
            (paths.workspace_id, paths.video_id, paths.relative(path)),
        )
        return _asset(rows[0]) if rows else None

    def attempts_for(self, asset_id: str) -> list[Attempt]:
        rows = self._db.query("SELECT * FROM attempts WHERE asset_id=? ORDER BY attempt_id", (asset_id,))
        return [_attempt(r) for r in rows]

    def attempt_rows(self, workspace_id: str | None = None, video_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM attempts", ()
        if workspace_id:
            sql += " WHERE workspace_id=?"
            args = (workspace_id,)
            if video_id:
                sql += " AND video_id=?"
                args += (video_id,)
        return [dict(r) for r in self._db.query(sql + " ORDER BY attempt_id", args)]

    def hold_budget(self, job_id: str, workspace_id: str, video_id: str, provider: str, usd: float,
                    budget_usd: float) -> tuple[int | None, float]:
        """Hold ``usd`` of the video's budget for a paid call of ``job_id``, if it fits: ``(hold id, dollars
        left before it)``, or ``(None, dollars left)`` when it does not. One write transaction (serialised
        across processes and machines), so two jobs can never both take the last dollars. Holds count
        while their job is queued or running (or has no job row); recording the job's attempts drops them."""
        with self._db.tx() as db:
            spent = db.execute("SELECT COALESCE(SUM(cost_usd), 0) AS total FROM attempts WHERE workspace_id=? "
                               "AND video_id=?", (workspace_id, video_id)).fetchone()["total"]
            held = db.execute(
                "SELECT COALESCE(SUM(h.usd), 0) AS total FROM budget_holds h LEFT JOIN jobs j ON j.job_id=h.job_id"
                " WHERE h.workspace_id=? AND h.video_id=? AND (j.status IS NULL OR j.status IN ('queued','running'))",
                (workspace_id, video_id)).fetchone()["total"]
            left = budget_usd - float(spent) - float(held)
            if usd > left + 1e-9:
                return None, left
            cur = db.execute("INSERT INTO budget_holds (job_id, workspace_id, video_id, provider, usd, created_at) "
                             "VALUES (?,?,?,?,?,?) RETURNING hold_id",
                             (job_id, workspace_id, video_id, provider, usd, utc_now()))
            return int(cur.fetchone()["hold_id"]), left

    def settle_hold(self, hold_id: int, usd: float) -> None:
        """What the held call really cost (0 for a refusal before any work), held until it is recorded."""
        with self._db.tx() as db:
            db.execute("UPDATE budget_holds SET usd=? WHERE hold_id=?", (usd, hold_id))

    def drop_stale_holds(self) -> int:
        """Holds of jobs that ended without recording (a process killed mid-call): nothing spends them."""
        with self._db.tx() as db:
            return int(db.execute("DELETE FROM budget_holds WHERE job_id IN (SELECT job_id FROM jobs WHERE status "
                                  "NOT IN ('queued','running'))").rowcount or 0)

    def spent_usd(self, workspace_id: str, video_id: str) -> float:
        """What a video has cost so far: every recorded attempt, failed paid ones included."""
        rows = self._db.query(
            "SELECT COALESCE(SUM(cost_usd), 0) AS total FROM attempts WHERE workspace_id=? AND video_id=?",
            (workspace_id, video_id),
        )
        return float(rows[0]["total"])

    def videos(self, workspace_id: str) -> list[str]:
        rows = self._db.query("SELECT DISTINCT video_id FROM assets WHERE workspace_id=? ORDER BY video_id", (workspace_id,))
        return [r["video_id"] for r in rows]

    def write_manifest(self, paths: VideoPaths) -> None:
        # Read and renamed into place inside one write transaction (BEGIN IMMEDIATE serialises every
        # connection, other processes' included): a writer that read earlier can never rename an
        # older manifest over a newer one.
        with self._db.tx():
            self._write_manifest(paths)

    def _write_manifest(self, paths: VideoPaths) -> None:
        assets = self.current(paths.workspace_id, paths.video_id)
        failed = self._db.query(
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
                    "properties": props_record(a.props),
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


def _check_file(path: Path, r: Row) -> tuple[str, tuple[str | None, int, int] | None]:
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


def _asset(r: Row) -> AssetRow:
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
        props=props_from_json(r["kind"], r["props_json"]),
        job_id=r["job_id"],
        current=bool(r["current"]),
        created_at=r["created_at"],
        sha256=r["sha256"],
        state=r["state"] or "ok",
        archive_path=r["archive_path"],
    )


def _attempt(r: Row) -> Attempt:
    return Attempt(
        provider=r["provider"],
        outcome=r["outcome"],
        reason=r["reason"],
        error_code=r["error_code"],
        elapsed_s=r["elapsed_s"],
        cost_usd=r["cost_usd"],
        decision=r["decision"],
    )
