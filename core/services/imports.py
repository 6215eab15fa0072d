"""Imports: the user's own files (a clip, a music bed, a voiceover, a picture, a font) into a video's folder.

A source is read only from the folders the user allows in ``YTAP_IMPORT_ROOTS`` (empty by
default: importing is off until the user opts in). The path is resolved (every symlink
followed) and the result must lie inside one of those folders; ``..`` is refused outright.
What is checked is what is stored: the file is opened once, the descriptor is re-checked
against the resolved path (same file, still inside a root, a regular file, under the size
limit), and it is copied through that descriptor to a hidden ``.part`` file in the video's
folder. Everything after (probing, normalising) works on that copy, so swapping the source
mid-import changes nothing.

Every import is probed and put in the contract format of its kind, then registered with
provider ``user:import`` (capability ``import``), like any generated asset:

========== ======================== ==========================================================
kind       stored as                format
========== ======================== ==========================================================
scene      scenes/scene_NNN.mp4     the scene contract (core.media.normalize): 1920x1080, or
                                    1080x1920 for a portrait clip, 30 fps, H.264 High, stereo
                                    48 kHz AAC, the clip's own length (copied when it already is)
narration  audio/narration.wav      48 kHz stereo master (core.media.audio.join_segments) with
           audio/narration.srt      one segment spanning it; the optional transcript is spread
                                    over it for captions (no transcript: an empty .srt)
music      audio/music.wav          48 kHz stereo 16-bit PCM, whatever came in (MP3, AAC, FLAC,
                                    ...): the master format of the narration, no second lossy
                                    generation, and it loops without a gap in the assembly
                                    (MP3 and AAC carry encoder padding that clicks at each loop)
image      images/<name>.jpg|.png   a user picture for later use (a watermark, a background),
                                    not the thumbnail: JPEG and PNG are kept byte for byte
                                    (re-encoded only to stand a camera's rotated JPEG upright);
                                    WebP, GIF, BMP and TIFF become PNG with transparency, else JPEG;
                                    a re-encoded picture larger than 4096 px on a side is
                                    reduced by a whole factor (8192 px -> 4096, 5000 -> 2500)
font       fonts/<name>.ttf|.otf    kept byte for byte, after Pillow has loaded it and drawn text
========== ======================== ==========================================================

``<name>`` is the source file's name, lower-cased, to letters, digits, ``-`` and ``_``;
importing the same name again replaces the file (and the asset on record), as a new scene
replaces the scene of its index.

Pictures are decoded in the server, so a small file must not cost gigabytes (a 108 KB GIF of
11999x11999 px took 2 GB): the side limit is the assembly's (``core.media.probe.MAX_SIDE_PX``)
and is read from the header before anything is decoded; a picture that is re-encoded is
made smaller while it is decoded (:func:`core.media.pictures.shrink`: JPEG draft, strips
of rows), so no full-size RGBA copy is ever made; and every import's decode reserves its
pixels from one budget (one picture at the side limit, or many small ones, at a time).
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread

from core.assets import VideoPaths, atomic_target, atomic_write_text
from core.assets.atomic import temp_path_for
from core.assets.props import AssetProps, FontProps, ImageProps, MusicProps, NarrationProps, SceneProps
from core.errors import AssetNotFound, ImportRefused, InputError, MediaError, OperationCancelled, PathOutsideWorkspace
from core.jobs import JobHandle
from core.media.formats import AUDIO_CHANNELS, AUDIO_SAMPLE_RATE, SCENE_FPS, scene_size
from core.media.pictures import decoding, shrink
from core.media.probe import MAX_SIDE_PX, MediaInfo, mp4_truncation, probe
from core.runtime import Runtime
from core.schemas import Attempt, ImportResult, SegmentTiming
from core.services.common import asset_fields

__all__ = [
    "ImportKind",
    "ImportRequest",
    "ImportPlan",
    "PROVIDER_ID",
    "MAX_BYTES",
    "MAX_VIDEO_SIDE_PX",
    "MAX_IMAGE_SIDE_PX",
    "MAX_SCENE_S",
    "MAX_AUDIO_S",
    "resolve_source",
    "prepare",
    "import_asset",
]

log = logging.getLogger(__name__)

ImportKind = Literal["scene", "music", "narration", "image", "font"]

PROVIDER_ID = "user:import"
CAPABILITY = "import"

# Limits per kind: generous for a YouTube production, low enough that a wrong pick (a
# whole disk image, a raw camera dump) is refused before it is copied.
MAX_BYTES: dict[str, int] = {
    "scene": 2 * 2**30,
    "music": 500 * 2**20,
    "narration": 500 * 2**20,
    "image": 50 * 2**20,
    "font": 20 * 2**20,
}
MAX_VIDEO_SIDE_PX = 4096
MAX_IMAGE_SIDE_PX = MAX_SIDE_PX  # the assembly's: a picture imported is a picture it can use
MAX_CONVERTED_SIDE_PX = 4096  # a re-encoded picture is stored at most this large: reduced by a whole factor
MAX_SCENE_S = 30 * 60  # a scene is a part of a video; normalising it takes about its own length on 2 cores
MAX_AUDIO_S = 3 * 3600  # a 48 kHz stereo WAV of 3 h is about 2 GB (a RIFF file cannot pass 4 GB)

_IMAGE_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": None, "GIF": None, "BMP": None, "TIFF": None}
_FONT_MAGIC = {b"\x00\x01\x00\x00": ".ttf", b"true": ".ttf", b"OTTO": ".otf"}
_COPY_CHUNK = 4 * 2**20
# ffmpeg reads any text file as ANSI art (the tty demuxer: .txt, .nfo, .asc...) and a few
# binary text-mode formats alike: a "video" of drawn characters is never what was meant.
_TEXT_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ImportRequest:
    workspace_id: str
    video_id: str
    source: str
    kind: ImportKind
    scene_index: int | None = None
    transcript: str | None = None


@dataclass(frozen=True)
class ImportPlan:
    """A request whose source is resolved and checked: what the job will copy and convert."""

    request: ImportRequest
    paths: VideoPaths
    source: Path
    roots: tuple[Path, ...]
    bytes: int


# --- where a source may come from -------------------------------------------------------------


def _roots_text(roots: tuple[Path, ...]) -> str:
    return os.pathsep.join(str(r) for r in roots)


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def resolve_source(roots: tuple[Path, ...], source: str) -> Path:
    """``source`` (absolute, or relative to one of ``roots``) resolved, refused unless it is a file inside a root.

    ``roots`` are resolved folders (Settings.import_roots). Symlinks are followed before the
    check, so a link inside a root that points elsewhere is refused. Nothing is said about
    a path outside the roots beyond that it is outside: not whether it exists.
    """
    if not roots:
        raise ImportRefused(
            "importing is off: the user must list the folders import_asset may read from in YTAP_IMPORT_ROOTS "
            f"(several separated by '{os.pathsep}') and restart the server"
        )
    where = f"the folders import_asset may read (YTAP_IMPORT_ROOTS={_roots_text(roots)})"
    if not isinstance(source, str) or not source.strip():
        raise ImportRefused(f"source is empty: give the path of a file inside {where}")
    if len(source) > 4096 or _CONTROL_RE.search(source):
        raise ImportRefused(f"source must be a plain path of at most 4096 characters inside {where}")
    if "://" in source or source.lower().startswith("file:"):
        raise ImportRefused(f"source is a path on the server's machine, not a URL: give a file inside {where}")
    given = Path(source.strip()).expanduser()
    if ".." in given.parts:
        raise ImportRefused(f"source must not contain '..': give the file's own path inside {where}")
    if given.is_absolute():
        candidate = given
    else:  # relative to the first root that has it
        candidate = next((r / given for r in roots if os.path.lexists(r / given)), roots[0] / given)
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a name the filesystem refuses
        raise ImportRefused(f"source cannot be used ({type(exc).__name__}): give a file inside {where}") from None
    if not _inside(resolved, roots):
        if _inside(Path(os.path.normpath(candidate)), roots):
            raise ImportRefused(f"{source[:200]!r} is, or passes through, a symbolic link that leads outside {where}; "
                                "copy the file itself into one of them")
        raise ImportRefused(f"{source[:200]!r} is outside {where}; move or copy it into one of them")
    try:
        st = resolved.stat()
    except FileNotFoundError:
        raise AssetNotFound(f"{source[:200]!r} does not exist inside {where}") from None
    except OSError as exc:
        raise ImportRefused(f"{source[:200]!r} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImportRefused(f"{source[:200]!r} is not a regular file (a folder, device or pipe): give a media file")
    return resolved


def _check_size(kind: str, name: str, size: int) -> None:
    limit = MAX_BYTES[kind]
    if size > limit:
        raise ImportRefused(f"{name} is {_mib(size)}; an imported {kind} is at most {_mib(limit)}")
    if size == 0:
        raise InputError(f"{name} is empty (0 bytes)")


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


# --- what a source must be -------------------------------------------------------------------


@dataclass(frozen=True)
class _Inspected:
    """Facts read from a file of some kind (media probe, image header, font names)."""

    media: MediaInfo | None = None
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int = 1
    orientation: int = 1
    has_alpha: bool = False
    font_suffix: str | None = None
    font_name: str | None = None


def _probe_media(path: Path, name: str, *, count_frames: bool = False) -> MediaInfo:
    try:
        info = probe(path, count_frames=count_frames)
    except MediaError:
        info = None
    if info is None or info.format_name in _TEXT_FORMATS:
        raise InputError(f"{name} is not a video or audio file ffmpeg can read; import media files only")
    return info


def _inspect_scene(path: Path, name: str, *, count_frames: bool = False) -> _Inspected:
    info = _probe_media(path, name, count_frames=count_frames)
    v = info.video
    if v is None:
        raise InputError(f"{name} has no video stream: a scene is a video clip (import sound with kind=music or "
                         "kind=narration)")
    if (v.frames or 0) <= 1 and (cut := mp4_truncation(path)):  # a cut-off clip keeps a frame or none
        raise InputError(f"{name} is truncated: {cut}; copy or download the whole file again")
    if info.format_name == "image2" or info.format_name.endswith("_pipe") or (v.frames or 0) <= 1:
        raise InputError(f"{name} is a still image, not a video clip: import it with kind=image")
    if max(v.width, v.height) > MAX_VIDEO_SIDE_PX:
        raise ImportRefused(f"{name} is {v.width}x{v.height} px; an imported clip is at most {MAX_VIDEO_SIDE_PX} px "
                            "on a side (scale it down first)")
    if _clip_duration(info) > MAX_SCENE_S:
        raise ImportRefused(f"{name} lasts {_clip_duration(info) / 60:.1f} min; an imported scene is at most "
                            f"{MAX_SCENE_S // 60} min (cut it into several scenes)")
    return _Inspected(media=info, width=v.width, height=v.height)


def _clip_duration(info: MediaInfo) -> float:
    v = info.video
    if v is not None and v.duration_s:
        return v.duration_s
    if v is not None and v.frames and v.fps:
        return v.frames / v.fps
    return info.duration_s


def _inspect_audio(path: Path, name: str, kind: str) -> _Inspected:
    info = _probe_media(path, name)
    if info.audio is None:
        raise InputError(f"{name} has no audio stream: {kind} is sound (import a clip with kind=scene)")
    duration = info.audio.duration_s or info.duration_s
    if not duration or duration <= 0:
        raise InputError(f"{name} holds no audio (its duration is 0)")
    if duration > MAX_AUDIO_S:
        raise ImportRefused(f"{name} lasts {duration / 3600:.1f} h; imported audio is at most {MAX_AUDIO_S // 3600} h")
    return _Inspected(media=info)


def _inspect_image(path: Path, name: str, *, thorough: bool = False, cancel: Any = None) -> _Inspected:
    """Header, format and side limit; ``thorough`` also reads the frames, orientation and alpha,
    and decodes a picture that is kept byte for byte (a truncated file fails here, not later;
    one that is converted is decoded by the conversion, which fails the same way)."""
    from PIL import Image, UnidentifiedImageError

    frames, orientation, has_alpha = 1, 1, False
    try:
        with warnings.catch_warnings():
            # Our own side limit below is the guard; Pillow's pixel-count warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, (width, height) = im.format or "?", im.size
                if max(width, height) > MAX_IMAGE_SIDE_PX:
                    raise ImportRefused(f"{name} is {width}x{height} px; an imported image is at most "
                                        f"{MAX_IMAGE_SIDE_PX} px on a side, as in the assembly (scale it down first)")
                if fmt not in _IMAGE_FORMATS:
                    raise InputError(f"{name} is a {fmt} image; import JPEG, PNG, WebP, GIF, BMP or TIFF")
                im.verify()
            if thorough:
                with decoding(path, cancel) as im:  # verify() leaves the image unusable; open it again
                    frames = getattr(im, "n_frames", 1)
                    orientation = int(im.getexif().get(0x0112, 1) or 1)
                    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
                    if _IMAGE_FORMATS[fmt] is not None and orientation == 1:  # kept as is: decode it once now
                        im.seek(0)
                        if fmt in ("JPEG", "MPO"):
                            im.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # reads every byte, decodes small
                        im.load()
    except Image.DecompressionBombError:  # far past the side limit: refused by Pillow before we could look
        raise ImportRefused(f"{name} is far larger than {MAX_IMAGE_SIDE_PX} px on a side; scale it down "
                            "first") from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image Pillow can read; import JPEG, PNG, WebP, GIF, BMP or TIFF") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"{name} is a damaged or truncated image ({type(exc).__name__})") from None
    return _Inspected(image_format=fmt, width=width, height=height, frames=frames, orientation=orientation,
                      has_alpha=has_alpha)


# EXIF orientation -> the transpose that stands the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
            7: "TRANSVERSE", 8: "ROTATE_90"}


def _decode_small(src: Any, mode: str, orientation: int) -> Any:
    """The first frame of ``src`` in ``mode``, upright, at most MAX_CONVERTED_SIDE_PX on a side."""
    from PIL import Image

    out = shrink(src, mode, MAX_CONVERTED_SIDE_PX)
    if orientation in _UPRIGHT:
        out = out.transpose(getattr(Image.Transpose, _UPRIGHT[orientation]))
    return out


def _inspect_font(path: Path, name: str) -> _Inspected:
    from PIL import Image, ImageDraw, ImageFont

    data = path.read_bytes()
    magic = data[:4]
    if magic == b"ttcf":
        raise InputError(f"{name} is a font collection (.ttc); import one of its fonts as a .ttf or .otf file")
    if magic in (b"wOFF", b"wOF2"):
        raise InputError(f"{name} is a web font (WOFF); import the .ttf or .otf it was made from")
    suffix = _FONT_MAGIC.get(magic)
    if suffix is None:
        raise InputError(f"{name} is not a font: import a TrueType (.ttf) or OpenType (.otf) file")
    try:
        font = ImageFont.truetype(io.BytesIO(data), 48)
        family, style = font.getname()
        canvas = Image.new("L", (640, 96))
        ImageDraw.Draw(canvas).text((8, 8), "Hamburgefonstiv 0123", font=font, fill=255)
        drawn = canvas.getbbox() is not None
    except (OSError, ValueError) as exc:
        raise InputError(f"{name} is not a font Pillow can load ({exc})") from None
    if not drawn:
        raise InputError(f"{name} loads as a font but draws no Latin letters or digits")
    return _Inspected(font_suffix=suffix, font_name=" ".join(p for p in (family, style) if p) or None)


def _inspect(kind: str, path: Path, name: str, *, thorough: bool = False, cancel: Any = None) -> _Inspected:
    if kind == "scene":
        return _inspect_scene(path, name, count_frames=thorough)
    if kind in ("music", "narration"):
        return _inspect_audio(path, name, kind)
    if kind == "image":
        return _inspect_image(path, name, thorough=thorough, cancel=cancel)
    return _inspect_font(path, name)


# --- the plan (before any job) ---------------------------------------------------------------


def prepare(rt: Runtime, req: ImportRequest) -> ImportPlan:
    """Check everything the caller can get wrong, before any job starts: ids, kind, source, size, type."""
    paths = rt.paths(req.workspace_id, req.video_id)
    if req.kind == "scene" and not req.scene_index:
        raise InputError("kind=scene needs a scene_index (1-999): the scene's position in the video")
    if req.kind != "scene" and req.scene_index:
        raise InputError(f"scene_index is only for kind=scene (this is kind={req.kind}); leave it out")
    if req.transcript and req.kind != "narration":
        raise InputError(f"transcript is only for kind=narration (this is kind={req.kind}); leave it out")
    if req.scene_index is not None and not 0 <= req.scene_index <= 999:
        raise InputError("scene_index must be within 1-999")
    roots = rt.settings.import_roots
    source = resolve_source(roots, req.source)
    size = source.stat().st_size
    _check_size(req.kind, source.name, size)
    _inspect(req.kind, source, source.name)  # a wrong type is the caller's to fix: say so now, not in a job
    paths.check_folders()
    return ImportPlan(req, paths, source, roots, size)


# --- the job ---------------------------------------------------------------------------------


def _copy_in(plan: ImportPlan, staging: Path, cancel: Any, progress: Callable[[float], None]) -> int:
    """Copy the source through one descriptor, re-checked against the resolved path; return the bytes copied."""
    limit = MAX_BYTES[plan.request.kind]
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(plan.source, flags)
    except OSError as exc:
        raise ImportRefused(f"{plan.source.name} cannot be opened ({exc.strerror or type(exc).__name__})") from None
    copied = 0
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        try:
            now = plan.source.resolve(strict=True)
            same = now == plan.source and _inside(now, plan.roots) and os.path.samestat(st, now.stat())
        except OSError:
            same = False
        if not same or not stat.S_ISREG(st.st_mode):
            raise ImportRefused(f"{plan.source.name} changed while it was being imported (moved, replaced or linked "
                                "elsewhere); try again")
        _check_size(plan.request.kind, plan.source.name, st.st_size)
        total = max(1, st.st_size)
        with staging.open("wb") as dst:
            while block := src.read(_COPY_CHUNK):
                if cancel.is_set():
                    raise OperationCancelled("import cancelled")
                copied += len(block)
                if copied > limit:  # the file grew while being read
                    raise ImportRefused(f"{plan.source.name} is over {_mib(limit)}; an imported "
                                        f"{plan.request.kind} is at most that")
                dst.write(block)
                progress(min(1.0, copied / total))
    return copied


def _name_stem(source: Path, fallback: str) -> str:
    stem = re.sub(r"[^a-z0-9_-]+", "-", source.stem.lower()).strip("-_")[:64]
    return stem or fallback


def _subfolder(paths: VideoPaths, name: str) -> Path:
    """``images/`` or ``fonts/`` of the video, refused if it is a link or leads out of the video's folder."""
    paths.ensure()
    folder, expected = paths.root / name, paths.real_root / name
    for _ in range(2):  # before making it, and after (never write through a link made meanwhile)
        if os.path.lexists(folder) and (folder.is_symlink() or folder.resolve() != expected):
            raise PathOutsideWorkspace(f"the folder {paths.workspace_id}/{paths.video_id}/{name} is a symlink or leads "
                                       "outside the workspace root; nothing is written through it")
        folder.mkdir(exist_ok=True)
    return folder


async def import_asset(rt: Runtime, plan: ImportPlan, handle: JobHandle) -> ImportResult:
    req, paths = plan.request, plan.paths
    started = time.monotonic()
    paths.ensure()
    handle.progress(0.01, f"copying {plan.source.name}")
    suffix = re.sub(r"[^a-z0-9]", "", plan.source.suffix.lower())[:8]
    part = temp_path_for(paths.root / "import.src")
    # ".import.<pid>-<hex>.src.part.<ext>": swept after a crash like any .part file, and the
    # extension still tells ffmpeg what a headerless format (raw AAC, MP3 without ID3) is.
    staging = part.with_name(part.name + (f".{suffix}" if suffix else ""))
    try:
        await anyio.to_thread.run_sync(
            lambda: _copy_in(plan, staging, handle.cancel, lambda f: handle.progress(0.01 + 0.24 * f)))
        facts = await anyio.to_thread.run_sync(
            lambda: _inspect(req.kind, staging, plan.source.name, thorough=True, cancel=handle.cancel))
        handle.progress(0.25, f"importing {plan.source.name} as {req.kind}")
        convert = {"scene": _scene, "narration": _narration, "music": _music, "image": _image, "font": _font}[req.kind]
        final, props, extra = await convert(plan, staging, facts, handle)
    finally:
        staging.unlink(missing_ok=True)
    props = props.model_copy(update={"source": str(plan.source), "source_bytes": plan.bytes, "imported": True})
    attempts = [Attempt(provider=PROVIDER_ID, outcome="succeeded", elapsed_s=round(time.monotonic() - started, 3),
                        decision="import_asset: a file from YTAP_IMPORT_ROOTS")]
    row = rt.registry.assets.add(paths, kind=req.kind, path=final, provider=PROVIDER_ID, model=None, cost_usd=0.0,
                                props=props, attempts=attempts, capability=CAPABILITY, scene_index=req.scene_index,
                                job_id=handle.job_id)
    log.info("imported %s as %s (%s)", plan.source.name, paths.relative(final), req.kind)
    return ImportResult(**asset_fields(paths, row, attempts), source=str(plan.source), scene_index=req.scene_index,
                        **extra)


Converted = tuple[Path, AssetProps, dict[str, Any]]  # final path, registry props, extra result fields


def _source_props(info: MediaInfo) -> dict[str, Any]:
    v, a = info.video, info.audio
    return {"source_format": info.format_name, "source_duration_s": info.duration_s,
            "source_video": f"{v.codec} {v.width}x{v.height} {v.fps:g} fps" if v else None,
            "source_audio": f"{a.codec} {a.sample_rate} Hz {a.channels} ch" if a else None}


async def _scene(plan: ImportPlan, staging: Path, facts: _Inspected, handle: JobHandle) -> Converted:
    from core.media.normalize import normalize_clip

    info = facts.media
    assert info is not None and info.video is not None
    v = info.video
    width, height = scene_size("16:9" if v.width >= v.height else "9:16")
    duration_s = _clip_duration(info)
    final = plan.paths.scene(plan.request.scene_index or 0)
    with atomic_target(final) as tmp:
        out = await anyio.to_thread.run_sync(lambda: normalize_clip(
            staging, tmp, width=width, height=height, fps=SCENE_FPS, duration_s=duration_s, cancel=handle.cancel,
            on_progress=lambda f: handle.progress(0.25 + 0.7 * f, "normalising the clip to the scene format"),
            timeout_s=max(600.0, 6 * duration_s)))
    ov, oa = out.video, out.audio
    assert ov is not None
    notes = []
    if (v.width, v.height) != (width, height):
        notes.append(f"scaled from {v.width}x{v.height} to {width}x{height}"
                     + (" (padded to keep its shape)" if v.width * height != v.height * width else ""))
    if abs(v.fps - SCENE_FPS) >= 0.01:
        notes.append(f"frame rate converted from {v.fps:g} to {SCENE_FPS} fps")
    if info.audio is None:
        notes.append("a silent stereo track was added (the clip had no sound)")
    props = SceneProps(duration_s=out.duration_s, width=ov.width, height=ov.height, fps=ov.fps, frames=ov.frames,
                       video_codec=ov.codec, has_audio=oa is not None, sample_rate=oa.sample_rate if oa else None,
                       channels=oa.channels if oa else None, aspect_ratio="16:9" if width > height else "9:16",
                       **_source_props(info))
    return final, props, {"notes": notes}


async def _narration(plan: ImportPlan, staging: Path, facts: _Inspected, handle: JobHandle) -> Converted:
    from core.media.align import align_untimed
    from core.media.audio import SegmentAudio, join_segments
    from core.media.language import detect
    from core.media.srt import to_srt

    paths, transcript = plan.paths, (plan.request.transcript or "").strip()
    with atomic_target(paths.narration) as tmp:
        handle.progress(0.3, "making the 48 kHz stereo narration master")
        segments: list[SegmentTiming] = await anyio.to_thread.run_sync(
            lambda: join_segments([SegmentAudio(staging, transcript)], tmp, cancel=handle.cancel))
        language = detect(transcript) if transcript else None
        if transcript:  # the words where the recording speaks them (core.media.align), not spread evenly
            handle.progress(0.6, "aligning the transcript's words to the recording")
            segments = await anyio.to_thread.run_sync(
                lambda: align_untimed(tmp, segments, [0], language, cancel=handle.cancel))
        out = probe(tmp)
    atomic_write_text(paths.narration_srt, to_srt(segments, language=language))
    a = out.audio
    assert a is not None
    props = NarrationProps(duration_s=out.duration_s, sample_rate=a.sample_rate, channels=a.channels,
                           audio_codec=a.codec, voice=None, language=language, segments=tuple(segments),
                           srt=paths.relative(paths.narration_srt), **_source_props(facts.media))  # type: ignore[arg-type]
    notes = [] if transcript else ["no transcript: the narration has no words on record, so no captions"]
    return paths.narration, props, {"segments": segments, "srt_path": str(paths.narration_srt.resolve()),
                                    "srt_uri": paths.uri(paths.narration_srt), "notes": notes}


async def _music(plan: ImportPlan, staging: Path, facts: _Inspected, handle: JobHandle) -> Converted:
    from core.media.ffmpeg import run_ffmpeg

    info = facts.media
    assert info is not None and info.audio is not None
    final = plan.paths.audio_dir / "music.wav"
    duration_s = info.audio.duration_s or info.duration_s
    with atomic_target(final) as tmp:
        # Only the first audio stream: an MP3's cover art or a clip's picture is not music.
        await anyio.to_thread.run_sync(lambda: run_ffmpeg(
            ["-i", str(staging), "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "pcm_s16le",
             "-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS), "-map_metadata", "-1", "-f", "wav", str(tmp)],
            duration_s=duration_s, cancel=handle.cancel, what="converting the music", timeout_s=600.0 + duration_s,
            on_progress=lambda f: handle.progress(0.25 + 0.7 * f, "converting the music to 48 kHz stereo")))
        out = probe(tmp)
    a = out.audio
    assert a is not None
    props = MusicProps(duration_s=out.duration_s, sample_rate=a.sample_rate, channels=a.channels,
                       audio_codec=a.codec, **_source_props(info))
    src = info.audio
    notes = [] if (src.codec, src.sample_rate, src.channels) == ("pcm_s16le", AUDIO_SAMPLE_RATE, AUDIO_CHANNELS) else [
        f"converted from {src.codec} {src.sample_rate} Hz {src.channels} ch to 16-bit PCM 48 kHz stereo"]
    return final, props, {"notes": notes}


async def _image(plan: ImportPlan, staging: Path, facts: _Inspected, handle: JobHandle) -> Converted:
    folder = _subfolder(plan.paths, "images")
    stem = _name_stem(plan.source, "image")
    keep = _IMAGE_FORMATS.get(facts.image_format or "")
    notes: list[str] = []

    def work() -> tuple[Path, int, int]:
        if keep is not None and facts.orientation == 1:
            final = folder / f"{stem}{keep}"
            with atomic_target(final) as tmp:
                tmp.write_bytes(staging.read_bytes())
            return final, facts.width or 0, facts.height or 0
        alpha = facts.has_alpha and facts.image_format not in ("JPEG", "MPO")
        try:
            with decoding(staging, handle.cancel) as src:
                src.seek(0)
                icc = src.info.get("icc_profile")
                im = _decode_small(src, "RGBA" if alpha else "RGB", facts.orientation)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InputError(f"{plan.source.name} is a damaged or truncated image ({type(exc).__name__})") from None
        final = folder / f"{stem}{'.png' if alpha else '.jpg'}"
        with atomic_target(final) as tmp:
            if alpha:
                im.save(tmp, "PNG", optimize=False, icc_profile=icc)
            else:
                im.save(tmp, "JPEG", quality=92, subsampling=0, icc_profile=icc)
        if max(facts.width or 0, facts.height or 0) > MAX_CONVERTED_SIDE_PX:
            notes.append(f"scaled down from {facts.width}x{facts.height} to {im.width}x{im.height} px "
                         f"(a re-encoded picture is at most {MAX_CONVERTED_SIDE_PX} px on a side)")
        if facts.orientation != 1:
            notes.append("turned upright (the camera stored it rotated)")
        if keep is None:
            notes.append(f"converted from {facts.image_format} to {'PNG' if alpha else 'JPEG'}")
        if facts.frames > 1:
            notes.append(f"the first of its {facts.frames} frames")
        return final, im.width, im.height

    final, width, height = await anyio.to_thread.run_sync(work)
    handle.progress(0.95)
    props = ImageProps(width=width, height=height, format=final.suffix.lstrip(".").replace("jpg", "jpeg"),
                       source_format=facts.image_format)
    return final, props, {"notes": notes}


async def _font(plan: ImportPlan, staging: Path, facts: _Inspected, handle: JobHandle) -> Converted:
    folder = _subfolder(plan.paths, "fonts")
    final = folder / f"{_name_stem(plan.source, 'font')}{facts.font_suffix}"

    def work() -> None:
        with atomic_target(final) as tmp:
            tmp.write_bytes(staging.read_bytes())

    await anyio.to_thread.run_sync(work)
    props = FontProps(format=(facts.font_suffix or "").lstrip("."), font_name=facts.font_name)
    return final, props, {"font_name": facts.font_name, "notes": []}
