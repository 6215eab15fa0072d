"""Storage: archiving a finished video, and cleaning up what failed or cancelled work left behind.

Archiving keeps what a finished video is for (the final video and its sidecars, the
thumbnail, ``manifest.json``) and either packs the intermediates (scenes, narration,
music, anything else in the folder) into one zip under ``archive/`` or drops them. It
is safe to run against a live server:

- it refuses while a job of the video is queued or running (in any process on this
  ``YTAP_HOME``), or while a live writer's ``.part`` file is in the folder;
- the zip is written under a temporary name, read back and CRC-checked, then renamed
  into place; only then are the originals removed, and a file that changed while it was
  being packed (a generation replaced it) is kept, not deleted;
- every archived file is recorded with its size and SHA-256 in ``archive.json`` beside
  the manifest. The assets, attempts and costs stay on the record (provider_report still
  adds them up); the registered assets whose files went are marked ``archived``, with
  the zip that holds them (``AssetStore.mark_archived``), so the start-up check does not
  call them missing and the manifest and provider_report say where they went.

Cleanup: ``.part`` leftovers of writers that are gone (a crash, a killed job) are
removed here by the start-up sweeper (``core.assets.atomic.sweep_partials``); failed
and cancelled generations remove their own temporary files as they unwind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.assets import atomic_target, atomic_write_text, live_partials, sweep_partials, validate_id
from core.errors import AssetNotFound, InputError
from core.runtime import Runtime
from core.services.assembly import CHUNK_CACHE_DIR

__all__ = [
    "ArchiveKeep",
    "ArchivedFile",
    "ArchiveResult",
    "DEFAULT_KEEP",
    "archive_video",
]

log = logging.getLogger(__name__)

ArchiveKeep = Literal["final_video", "thumbnail", "narration", "scenes", "music"]
DEFAULT_KEEP: tuple[ArchiveKeep, ...] = ("final_video", "thumbnail")
ARCHIVE_DIR = "archive"
RECORD_NAME = "archive.json"
# Formats that are already compressed: stored as they are (deflate would only cost time).
_STORED_SUFFIXES = {".mp4", ".m4a", ".mp3", ".aac", ".webm", ".mov", ".mkv", ".jpg", ".jpeg", ".png", ".webp",
                    ".gif", ".opus", ".ogg", ".flac", ".zip"}
_CHUNK = 1 << 20


class ArchivedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="path inside the video's folder, as it was")
    bytes: int
    sha256: str


class ArchiveResult(BaseModel):
    """What archiving a video kept, packed or dropped, and the space it freed."""

    model_config = ConfigDict(extra="forbid")

    workspace_id: str
    video_id: str
    intermediates: Literal["zip", "drop"] = Field(description="packed into one zip, or deleted")
    kept: list[str] = Field(description="files left in place (paths inside the video's folder)")
    archived: list[ArchivedFile] = Field(description="files moved into the zip, or dropped")
    skipped: list[str] = Field(default_factory=list,
                               description="files left in place because they changed while being archived")
    archive_path: str | None = Field(None, description="absolute path of the zip (intermediates='zip')")
    archive_uri: str | None = None
    record_uri: str = Field(description="ytap:// uri of archive.json, the record of every archive of this video")
    partials_removed: int = Field(0, description="leftover .part files of crashed or killed writers removed")
    bytes_before: int
    bytes_after: int
    bytes_freed: int


_KIND_FILES: dict[str, tuple[str, ...]] = {
    # Patterns relative to the video's folder (fnmatch-style via Path.match on the relative path).
    "final_video": ("final_video.mp4", "final_video.srt", "final_video.webm"),
    "thumbnail": ("thumbnail.jpg",),
    "narration": ("audio/narration.wav", "audio/narration.srt"),
    "scenes": ("scenes/*",),
    "music": ("audio/music.*",),
}
_ALWAYS_KEPT = ("manifest.json", RECORD_NAME)


def _kept(rel: str, keep: tuple[str, ...]) -> bool:
    if rel in _ALWAYS_KEPT or rel.startswith(ARCHIVE_DIR + "/"):
        return True
    pure = Path(rel)
    return any(pure.match(pattern) and len(pure.parts) == len(Path(pattern).parts)
               for kind in keep for pattern in _KIND_FILES[kind])


def _folder_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def archive_video(
    rt: Runtime,
    workspace_id: str,
    video_id: str,
    *,
    keep: tuple[str, ...] | list[str] = DEFAULT_KEEP,
    intermediates: Literal["zip", "drop"] = "zip",
) -> ArchiveResult:
    """Keep the final video, thumbnail and manifest (plus ``keep``); zip or drop the rest of the video's folder."""
    validate_id("workspace_id", workspace_id)
    validate_id("video_id", video_id)
    keep_t = tuple(dict.fromkeys(keep))
    unknown = [k for k in keep_t if k not in _KIND_FILES]
    if unknown:
        raise InputError(f"keep: unknown kind(s) {unknown}; choose from {sorted(_KIND_FILES)}")
    if intermediates not in ("zip", "drop"):
        raise InputError("intermediates must be 'zip' (pack them into archive/) or 'drop' (delete them)")
    paths = rt.paths(workspace_id, video_id)
    paths.check_folders()
    if not paths.root.is_dir():
        raise AssetNotFound(f"video {workspace_id}/{video_id} has no folder: nothing to archive")
    if "final_video" in keep_t and not paths.final_video.is_file():
        raise InputError(
            f"video {workspace_id}/{video_id} has no final_video.mp4: assemble it first, or leave final_video out "
            "of keep to archive an unfinished video"
        )
    running = rt.registry.jobs.live(workspace_id, video_id)
    if running:
        raise InputError(f"video {workspace_id}/{video_id} has {len(running)} job(s) still running "
                         f"({', '.join(running[:5])}): wait for them (job_status) or cancel them first")
    removed = sweep_partials(paths.root)
    live = live_partials(paths.root)
    if live:
        raise InputError(f"a generation is writing in video {workspace_id}/{video_id} right now "
                         f"({len(live)} unfinished file(s)); archive it when that is done")
    # The render's chunk cache only speeds up the next assembly: an archived video drops it.
    shutil.rmtree(paths.real_root / CHUNK_CACHE_DIR, ignore_errors=True)

    bytes_before = _folder_bytes(paths.real_root)
    kept: list[str] = []
    todo: list[tuple[str, Path, os.stat_result]] = []
    for p in sorted(paths.real_root.rglob("*")):
        rel_parts = p.relative_to(paths.real_root).parts
        if any(part.startswith(".") for part in rel_parts) or p.is_dir():
            continue
        rel = "/".join(rel_parts)
        if p.is_symlink():  # never followed, never archived: a link is not an asset
            kept.append(rel)
            continue
        if _kept(rel, keep_t):
            kept.append(rel)
        else:
            todo.append((rel, p, p.stat()))

    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    archived: list[ArchivedFile] = []
    skipped: list[str] = []
    zip_final: Path | None = None
    if todo and intermediates == "zip":
        zip_final = paths.real_root / ARCHIVE_DIR / f"intermediates-{stamp}.zip"
        n = 1
        while zip_final.exists():
            n += 1
            zip_final = zip_final.with_name(f"intermediates-{stamp}-{n}.zip")
        with atomic_target(zip_final) as tmp:
            with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
                for rel, p, _st in todo:
                    method = zipfile.ZIP_STORED if p.suffix.lower() in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                    archived.append(_pack(zf, rel, p, method))
            with zipfile.ZipFile(tmp) as zf:  # read back before any original goes
                bad = zf.testzip()
                if bad is not None:
                    raise OSError(f"the archive failed its check at {bad}; nothing was removed")
    elif todo:
        archived = [ArchivedFile(path=rel, bytes=st.st_size, sha256=_sha256(p)) for rel, p, st in todo]

    for rel, p, st in todo:
        try:
            now_st = p.stat()
        except FileNotFoundError:
            continue
        if (now_st.st_ino, now_st.st_size, now_st.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            skipped.append(rel)  # replaced while we packed it: the new file is not the one in the zip
            continue
        p.unlink()
    archived = [a for a in archived if a.path not in skipped]

    record_path = paths.real_root / RECORD_NAME
    record = {"workspace_id": workspace_id, "video_id": video_id, "archives": []}
    if record_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            record = json.loads(record_path.read_text("utf-8"))
    record.setdefault("archives", []).append({
        "archived_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "intermediates": intermediates,
        "archive": paths.relative(zip_final) if zip_final else None,
        "kept": kept,
        "files": [a.model_dump() for a in archived],
        "skipped": skipped,
    })
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    # After the record: if this fails, archive.json still says where the files went.
    rt.registry.assets.mark_archived(paths, {a.path: a.sha256 for a in archived},
                              paths.relative(zip_final) if zip_final else None)
    bytes_after = _folder_bytes(paths.real_root)
    log.info("archived %s/%s: %d file(s) %s, %d bytes freed", workspace_id, video_id, len(archived),
             "zipped" if intermediates == "zip" else "dropped", bytes_before - bytes_after)
    return ArchiveResult(
        workspace_id=workspace_id,
        video_id=video_id,
        intermediates=intermediates,
        kept=sorted(set(kept) | {RECORD_NAME}),
        archived=archived,
        skipped=skipped,
        archive_path=str(zip_final) if zip_final else None,
        archive_uri=paths.uri(zip_final) if zip_final else None,
        record_uri=paths.uri(record_path),
        partials_removed=removed,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        bytes_freed=max(0, bytes_before - bytes_after),
    )


def _pack(zf: zipfile.ZipFile, rel: str, p: Path, method: int) -> ArchivedFile:
    """One file into the zip in a single read, hashing as it goes."""
    h = hashlib.sha256()
    size = 0
    info = zipfile.ZipInfo.from_file(p, arcname=rel)
    info.compress_type = method
    with p.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        while block := src.read(_CHUNK):
            h.update(block)
            dst.write(block)
            size += len(block)
    return ArchivedFile(path=rel, bytes=size, sha256=h.hexdigest())


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()
