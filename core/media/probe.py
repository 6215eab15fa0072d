"""Probing media files with PyAV (no ffprobe needed).

Results are facts read from the file, never what the writer meant to write. Probing
costs ~0.1 s a file, so callers probe once and keep the :class:`MediaInfo`.
"""

from __future__ import annotations

import stat
import struct
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from core.errors import InputError, MediaError

__all__ = [
    "MediaInfo",
    "VideoStreamInfo",
    "AudioStreamInfo",
    "probe",
    "mp4_top_level_atoms",
    "mp4_truncation",
    "is_faststart",
    "MAX_MEDIA_BYTES",
    "MAX_SIDE_PX",
    "MAX_MEDIA_DURATION_S",
]

# Limits on any file probed (every input of an assembly, every provider output): far above
# what a YouTube production needs, low enough that a hostile or corrupt file (a 100k-pixel
# "image", a header claiming a year of audio) is refused before ffmpeg allocates for it.
MAX_MEDIA_BYTES = 4 * 2**30
MAX_SIDE_PX = 8192
MAX_MEDIA_DURATION_S = 12 * 3600


@dataclass(frozen=True)
class VideoStreamInfo:
    codec: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    frames: int | None
    duration_s: float | None
    sar: str | None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None


@dataclass(frozen=True)
class AudioStreamInfo:
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    duration_s: float | None
    bit_rate: int | None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format_name: str
    duration_s: float
    bytes: int
    video: VideoStreamInfo | None = None
    audio: AudioStreamInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stream_duration(stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def probe(path: str | Path, *, count_frames: bool = False) -> MediaInfo:
    """Read container and stream facts from ``path``.

    ``count_frames``: the video frame count must be exact, not what a header claims. An
    MP4/MOV whose top-level boxes are whole (each ends inside the file, the last at its
    end) is taken at its sample table; any other file is demuxed and its packets counted
    (no decoding, but it reads the whole file). A file truncated inside ``mdat`` keeps a
    sample table that promises frames it no longer has: that one is counted. Without
    ``count_frames`` packets are counted only when the container gives no count at all.
    """
    import av  # imported here: PyAV costs ~0.2 s at import and most calls never probe

    p = Path(path)
    size = _check_file(p)
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        # The reason without the absolute path PyAV appends (the agent knows which file it named).
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MediaError(f"{p.name} is not a readable audio, video or image file ({reason})") from exc
    with container:
        video = audio = None
        vs = container.streams.video[0] if container.streams.video else None
        as_ = container.streams.audio[0] if container.streams.audio else None
        if vs is not None:
            cc = vs.codec_context
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            frames = vs.frames or None
            if frames is None or (count_frames and not _sample_table_exact(container.format.name, p, size)):
                frames = sum(1 for pkt in container.demux(vs) if pkt.size)
                container.seek(0)
            sar = cc.sample_aspect_ratio
            video = VideoStreamInfo(
                codec=cc.name,
                profile=cc.profile,
                pix_fmt=cc.pix_fmt,
                width=cc.width,
                height=cc.height,
                fps=round(float(rate), 3) if rate else 0.0,
                frames=frames,
                duration_s=_stream_duration(vs),
                sar=f"{sar.numerator}:{sar.denominator}" if isinstance(sar, Fraction) else None,
                color_primaries=_enum_name(getattr(cc, "color_primaries", None)),
                color_transfer=_enum_name(getattr(cc, "color_trc", None)),
                color_space=_enum_name(getattr(cc, "colorspace", None)),
            )
        if as_ is not None:
            cc = as_.codec_context
            audio = AudioStreamInfo(
                codec=cc.name,
                profile=cc.profile,
                sample_rate=cc.sample_rate,
                channels=cc.channels,
                duration_s=_stream_duration(as_),
                bit_rate=cc.bit_rate or as_.bit_rate or None,
            )
        duration = float(container.duration / 1_000_000) if container.duration else 0.0
        if not duration:
            duration = max((d for d in (video and video.duration_s, audio and audio.duration_s) if d), default=0.0)
        info = MediaInfo(
            path=str(p),
            format_name=container.format.name,
            duration_s=round(duration, 4),
            bytes=size,
            video=video,
            audio=audio,
        )
    _check_limits(info)
    return info


def _check_file(p: Path) -> int:
    """Size of a regular file that may be probed; refuse links, folders and files over the limit."""
    if p.is_symlink():
        raise InputError(f"{p.name} is a symbolic link: media files must be regular files inside the video's folder")
    try:
        st = p.stat()
    except OSError as exc:
        raise MediaError(f"{p.name} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p.name} is not a regular file")
    if st.st_size == 0:
        raise MediaError(f"{p.name} is empty (0 bytes)")
    if st.st_size > MAX_MEDIA_BYTES:
        raise InputError(f"{p.name} is {st.st_size / 1e6:,.1f} MB; media files are at most "
                         f"{MAX_MEDIA_BYTES / 1e6:,.0f} MB")
    return st.st_size


def _check_limits(info: MediaInfo) -> None:
    name = Path(info.path).name
    v = info.video
    if v is not None and (v.width > MAX_SIDE_PX or v.height > MAX_SIDE_PX):
        raise InputError(f"{name} is {v.width}x{v.height} px; pictures are at most {MAX_SIDE_PX} px on a side "
                         "(scale it down first)")
    if info.duration_s > MAX_MEDIA_DURATION_S:
        raise InputError(f"{name} lasts {info.duration_s:,.0f} s; media files are at most "
                         f"{MAX_MEDIA_DURATION_S:,.0f} s ({MAX_MEDIA_DURATION_S / 3600:g} h) long")


# ISO/IEC 23091-4 code points as PyAV reports them (plain ints); 2 means "unspecified".
_COLOR_NAMES = {1: "bt709", 2: None, 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 0: None}


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None)
    if name is not None:
        return str(name).lower()
    try:
        return _COLOR_NAMES.get(int(value), str(value))
    except (TypeError, ValueError):
        return str(value)


def _sample_table_exact(format_name: str, path: Path, size: int) -> bool:
    """An MP4/MOV whose top-level boxes tile the file exactly: none was cut short, so its sample table
    counts the frames the file has (counting packets would read the whole file for the same number)."""
    if not format_name.startswith("mov,mp4"):
        return False
    offset = 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return False
            box, _kind = struct.unpack(">I4s", header[:8])
            if box == 1:
                if len(header) < 16:
                    return False
                box = struct.unpack(">Q", header[8:16])[0]
            elif box == 0:  # "to the end of the file"
                return True
            if box < 8:
                return False
            offset += box
    return offset == size


def mp4_truncation(path: str | Path) -> str | None:
    """How an MP4/MOV was cut short (its last top-level box runs past the end), or None: whole, or not an MP4."""
    p = Path(path)
    size = p.stat().st_size
    offset = 0
    with open(p, "rb") as fh:
        header = fh.read(8)
        if len(header) < 8 or header[4:8] != b"ftyp":
            return None
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return f"it ends inside a box header at byte {offset:,}"
            box, kind = struct.unpack(">I4s", header[:8])
            if box == 1 and len(header) == 16:
                box = struct.unpack(">Q", header[8:16])[0]
            elif box == 0:  # "to the end of the file"
                return None
            if box < 8:
                return f"its '{kind.decode('latin-1')}' box is malformed"
            if offset + box > size:
                return (f"it ends inside its '{kind.decode('latin-1')}' box ({size:,} of the "
                        f"{offset + box:,} bytes it declares)")
            offset += box
    return None


def mp4_top_level_atoms(path: str | Path) -> list[str]:
    """The top-level box types of an MP4 in file order (``moov`` before ``mdat`` = faststart)."""
    atoms: list[str] = []
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
                body = size - 16
            elif size == 0:
                atoms.append(kind.decode("latin-1"))
                break
            else:
                body = size - 8
            atoms.append(kind.decode("latin-1"))
            if body < 0:
                break
            fh.seek(body, 1)
    return atoms


def is_faststart(path: str | Path) -> bool:
    atoms = mp4_top_level_atoms(path)
    return "moov" in atoms and "mdat" in atoms and atoms.index("moov") < atoms.index("mdat")
