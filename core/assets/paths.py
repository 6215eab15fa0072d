"""Identifiers, the folder layout of DESIGN §5, refs, and path confinement.

Every path the server reads or writes is built here from validated identifiers and
checked to resolve inside the workspace root; refs from the agent (``ytap://`` uris or
paths inside the video's folder) are resolved and re-checked after symlinks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from core.errors import InvalidIdentifier, PathOutsideWorkspace

__all__ = ["ID_RE", "JOB_ID_RE", "validate_id", "validate_job_id", "VideoPaths", "confine", "parse_uri", "ParsedUri"]

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
JOB_ID_RE = re.compile(r"^job_[a-f0-9]{16,32}$")
URI_SCHEME = "ytap://"


def validate_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidIdentifier(
            f"{kind} {shown} is not allowed: use 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )
    return value


def validate_job_id(value: object) -> str:
    if not isinstance(value, str) or not JOB_ID_RE.fullmatch(value):
        raise InvalidIdentifier(f"job_id {repr(value)[:80]} is not a job id (they look like 'job_' + 16-32 hex digits)")
    return value


def confine(root: Path, path: Path) -> Path:
    """``path`` resolved (symlinks followed); refuse it unless it lies inside ``root``."""
    root_r = root.resolve()
    resolved = path.resolve()
    if resolved != root_r and root_r not in resolved.parents:
        raise PathOutsideWorkspace("that path is outside the workspace: refer to assets by their ytap:// uri")
    return resolved


@dataclass(frozen=True)
class VideoPaths:
    """The contract layout of one video's folder."""

    workspaces_root: Path
    workspace_id: str
    video_id: str

    def __post_init__(self) -> None:
        validate_id("workspace_id", self.workspace_id)
        validate_id("video_id", self.video_id)

    @property
    def root(self) -> Path:
        return self.workspaces_root / self.workspace_id / "videos" / self.video_id

    @property
    def scenes_dir(self) -> Path:
        return self.root / "scenes"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    def scene(self, index: int) -> Path:
        return self.scenes_dir / f"scene_{index:03d}.mp4"

    @property
    def narration(self) -> Path:
        return self.audio_dir / "narration.wav"

    @property
    def narration_srt(self) -> Path:
        return self.audio_dir / "narration.srt"

    @property
    def thumbnail(self) -> Path:
        return self.root / "thumbnail.jpg"

    @property
    def final_video(self) -> Path:
        return self.root / "final_video.mp4"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def ensure(self) -> None:
        for d in (self.scenes_dir, self.audio_dir):
            d.mkdir(parents=True, exist_ok=True)

    def relative(self, path: Path) -> str:
        return confine(self.root, path).relative_to(self.root.resolve()).as_posix()

    def uri(self, path: Path) -> str:
        return f"{URI_SCHEME}{self.workspace_id}/{self.video_id}/{self.relative(path)}"

    @property
    def manifest_uri(self) -> str:
        return f"{URI_SCHEME}{self.workspace_id}/{self.video_id}/manifest"

    def resolve_ref(self, ref: str) -> Path:
        """A ``ytap://`` uri of this video, or a path inside this video's folder, as an existing file."""
        if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
            raise PathOutsideWorkspace("an asset ref must be a ytap:// uri or a path inside the video's folder")
        ref = ref.strip()
        if ref.startswith(URI_SCHEME):
            parsed = parse_uri(ref)
            if parsed.job_id or parsed.workspace_id != self.workspace_id or parsed.video_id != self.video_id:
                raise PathOutsideWorkspace(
                    f"{ref} does not belong to video {self.workspace_id}/{self.video_id}; refs must name this video's files"
                )
            candidate = self.root / parsed.relative
        else:
            if ref.startswith("file:") or "://" in ref:
                raise PathOutsideWorkspace("only ytap:// uris or paths inside the video's folder are accepted as refs")
            p = Path(ref)
            candidate = p if p.is_absolute() else self.root / p
        return confine(self.root, candidate)


@dataclass(frozen=True)
class ParsedUri:
    workspace_id: str | None = None
    video_id: str | None = None
    relative: str = ""
    job_id: str | None = None


def parse_uri(uri: str) -> ParsedUri:
    """Parse ``ytap://jobs/{job_id}``, ``ytap://{ws}/{video}/manifest`` or ``ytap://{ws}/{video}/{path}``."""
    if not uri.startswith(URI_SCHEME):
        raise PathOutsideWorkspace(f"not a ytap:// uri: {uri[:100]!r}")
    rest = unquote(uri[len(URI_SCHEME) :])
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] == "jobs":
        return ParsedUri(job_id=validate_job_id(parts[1]))
    if len(parts) < 3:
        raise PathOutsideWorkspace(f"{uri[:100]!r} is not ytap://<workspace>/<video>/<file>")
    ws, vid, *tail = parts
    validate_id("workspace_id", ws)
    validate_id("video_id", vid)
    rel = PurePosixPath(*tail) if tail else PurePosixPath()
    if any(part in ("..", "") for part in tail) or rel.is_absolute() or "\\" in rest:
        raise PathOutsideWorkspace(f"{uri[:100]!r} leaves the video's folder")
    return ParsedUri(workspace_id=ws, video_id=vid, relative=rel.as_posix())
