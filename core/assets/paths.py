"""Identifiers, the folder layout of DESIGN §5, refs, and path confinement.

Every path the server reads or writes is built here from validated identifiers and
checked to resolve inside the workspace root; refs from the agent (``ytap://`` uris or
paths inside the video's folder) are resolved and re-checked after symlinks.

Confinement is measured against the video's *real* folder: the resolved workspaces
root joined with the validated ids. Resolving the video folder itself would follow a
symlinked ``videos/<id>`` (or ``scenes/``) out of the root and then call everything
under its target "inside"; :meth:`VideoPaths.check_folders` refuses such a folder
before anything is written through it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from core.errors import InvalidIdentifier, PathOutsideWorkspace

__all__ = [
    "ID_RE",
    "JOB_ID_RE",
    "REF_HELP",
    "validate_id",
    "validate_job_id",
    "VideoPaths",
    "confine",
    "parse_uri",
    "ParsedUri",
]

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
JOB_ID_RE = re.compile(r"^job_[a-f0-9]{16,32}$")
URI_SCHEME = "ytap://"
# Any "scheme:" prefix (file:, FILE:, http:, data:, ...): only ytap:// uris are refs.
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# C0 controls, DEL and C1 controls: no file name the server makes contains one.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_REF_CHARS = 1000
REF_HELP = ("refs are this video's ytap:// uris (ytap://{workspace}/{video}/scenes/scene_001.mp4) or paths inside "
            "the video's folder (scenes/scene_001.mp4)")


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


def confine(root: Path, path: Path, *, root_is_real: bool = False) -> Path:
    """``path`` resolved (symlinks followed); refuse it unless it lies inside ``root``.

    ``root`` is resolved too unless ``root_is_real`` says it already names the real place
    (resolving a symlinked root would move the fence to wherever the link points).
    """
    root_r = root if root_is_real else root.resolve()
    try:
        resolved = path.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, symlink loops, names too long
        raise PathOutsideWorkspace(f"that path cannot be used ({type(exc).__name__}): {REF_HELP}") from None
    if resolved != root_r and root_r not in resolved.parents:
        raise PathOutsideWorkspace(f"that path is outside the video's folder: {REF_HELP}")
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
    def real_root(self) -> Path:
        """Where the video's folder must really be: the resolved root of all workspaces plus the ids."""
        return self.workspaces_root.resolve() / self.workspace_id / "videos" / self.video_id

    def confine(self, path: Path) -> Path:
        """``path`` resolved; refused unless it is inside this video's real folder."""
        return confine(self.real_root, path, root_is_real=True)

    def check_folders(self) -> None:
        """Refuse a video folder (or its scenes/ or audio/) that is a symlink or leads out of the root.

        Writes go through these folders by name; a symlinked one would put them outside the
        workspace root. Folders that do not exist yet are fine (they will be made here).
        """
        real = self.real_root
        folders = ((self.root, real), (self.scenes_dir, real / "scenes"), (self.audio_dir, real / "audio"))
        for lexical, expected in folders:
            if not os.path.lexists(lexical):
                continue
            if lexical.is_symlink() or lexical.resolve() != expected:
                raise PathOutsideWorkspace(
                    f"the folder {self.workspace_id}/{self.video_id}/{expected.relative_to(real).as_posix() or '.'} "
                    "is a symlink or leads outside the workspace root; nothing is read or written through it "
                    "(use another video_id, or replace the link with a real folder)"
                )

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
        self.check_folders()  # before mkdir: never create folders through a link that leaves the root
        for d in (self.scenes_dir, self.audio_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.check_folders()

    def relative(self, path: Path) -> str:
        return self.confine(path).relative_to(self.real_root).as_posix()

    def uri(self, path: Path) -> str:
        return f"{URI_SCHEME}{self.workspace_id}/{self.video_id}/{self.relative(path)}"

    @property
    def manifest_uri(self) -> str:
        return f"{URI_SCHEME}{self.workspace_id}/{self.video_id}/manifest"

    def resolve_ref(self, ref: str) -> Path:
        """A ``ytap://`` uri of this video, or a path inside this video's folder, resolved and confined.

        Refused, with a message saying what a ref may be: other schemes (``file:``, ``http:``),
        control characters, ``..`` or symlinks that leave the folder, hidden and unfinished
        (``.part``) files, and a video folder that is itself a link out of the root.
        """
        if not isinstance(ref, str) or not ref.strip():
            raise PathOutsideWorkspace(f"an asset ref must not be empty: {REF_HELP}")
        if len(ref) > MAX_REF_CHARS:
            raise PathOutsideWorkspace(f"an asset ref is at most {MAX_REF_CHARS} characters: {REF_HELP}")
        if _CONTROL_RE.search(ref):
            raise PathOutsideWorkspace(f"an asset ref must not contain control characters: {REF_HELP}")
        ref = ref.strip()
        if ref.startswith(URI_SCHEME):
            parsed = parse_uri(ref)
            if parsed.job_id or parsed.workspace_id != self.workspace_id or parsed.video_id != self.video_id:
                raise PathOutsideWorkspace(
                    f"{ref[:200]} does not belong to video {self.workspace_id}/{self.video_id}; {REF_HELP}"
                )
            candidate = self.root / parsed.relative
        else:
            if _SCHEME_RE.match(ref) or "://" in ref:
                raise PathOutsideWorkspace(f"{ref[:100]!r} is not a ref this server reads: {REF_HELP}")
            p = Path(ref)
            candidate = p if p.is_absolute() else self.root / p
        self.check_folders()
        resolved = self.confine(candidate)
        if any(part.startswith(".") for part in resolved.relative_to(self.real_root).parts):
            raise PathOutsideWorkspace(f"hidden and unfinished (.part) files are not assets: {REF_HELP}")
        return resolved


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
    if len(uri) > MAX_REF_CHARS * 3:  # percent-encoding triples a name at most
        raise PathOutsideWorkspace(f"a ytap:// uri is at most {MAX_REF_CHARS} characters")
    try:
        rest = unquote(uri[len(URI_SCHEME) :], errors="strict")
    except UnicodeDecodeError:
        raise PathOutsideWorkspace(f"{uri[:100]!r} percent-encodes bytes that are not UTF-8") from None
    if _CONTROL_RE.search(rest):
        raise PathOutsideWorkspace(f"{uri[:100]!r} contains a control character (perhaps percent-encoded); "
                                   "uris name files like ytap://{workspace}/{video}/scenes/scene_001.mp4")
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
