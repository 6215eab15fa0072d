"""The assembly's timeline: probed scenes, narration, music and what is drawn -> a frozen :class:`Timeline`.

:func:`build_timeline` snaps every scene to the output frame grid (integer frames,
integer-millisecond offsets), makes crossfade overlaps explicit per boundary, holds the last
frame so the narration is not cut off, and fixes the exact audio length, what is drawn (an
ASS document of captions and overlays, a watermark) and the audio sources. Pure: no ffmpeg,
no I/O (except :func:`silent_aac_track`, which reads packet sizes). The graphs are built from
it in core.media.mix (audio) and core.media.videograph (video); core.media.assembly runs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import InputError
from core.media.formats import AUDIO_SAMPLE_RATE, B_FRAMES, gop_frames
from core.media.probe import MediaInfo
from core.media.youtube import StreamStructure
from core.schemas import LoudnessLufs, MusicVolume, SceneAudioVolume, default_of

__all__ = [
    "SceneInput",
    "NarrationInput",
    "MusicInput",
    "Watermark",
    "ChromaKey",
    "FilterStep",
    "MixSettings",
    "AudioLevels",
    "Loudness",
    "Background",
    "TimelineScene",
    "Timeline",
    "build_timeline",
    "stream_copy_blockers",
    "silent_aac_track",
    "frames_for",
    "DEFAULT_TAIL_S",
    "SILENT_LUFS",
]

DEFAULT_TAIL_S = 0.5

# ebur128 reports -70 LUFS (its absolute gate) for silence; normalize_clip gives every
# scene a silent track, which must not be "levelled" by +56 dB.
SILENT_LUFS = -60.0

# Probed colour-matrix names (PyAV) -> the scale filter's in_color_matrix names.
_SCALE_MATRIX = {
    "bt709": "bt709",
    "itu709": "bt709",
    "bt470bg": "bt470",
    "bt601": "bt601",
    "smpte170m": "smpte170m",
    "bt2020": "bt2020",
    "bt2020nc": "bt2020",
    "bt2020_ncl": "bt2020",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
}

Fit = Literal["contain", "cover", "blur"]

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ChromaKey:
    """Green-screen removal: ffmpeg's chromakey (YUV distance) settings."""

    color: str = "0x00FF00"
    similarity: float = 0.15
    blend: float = 0.05


@dataclass(frozen=True)
class SceneInput:
    """A scene clip and its probe result (probe once, at ~0.1 s a file, and keep it).

    A presenter clip carries its ``background`` scene and the ``chroma`` key to cut it out
    with: the pair fills one slot of the presenter clip's length.
    """

    path: Path
    info: MediaInfo
    background: SceneInput | None = None
    chroma: ChromaKey | None = None
    silent_audio: bool = False  # its audio track was measured to carry no sound (silent_aac_track)


@dataclass(frozen=True)
class NarrationInput:
    """The narration track: any format, sample rate or channel count ffmpeg can read."""

    path: Path
    duration_s: float


@dataclass(frozen=True)
class MusicInput:
    """A music bed: looped or trimmed to the video's length, faded in and out."""

    path: Path
    duration_s: float


@dataclass(frozen=True)
class Watermark:
    """An image in a corner, at an opacity, ``width_px`` wide."""

    path: Path
    position: Corner = "bottom-right"
    opacity: float = 0.6
    width_px: int = 0  # 0: 12 % of the frame's long side


@dataclass(frozen=True)
class FilterStep:
    """One filter of a post-processing hook, as data: ``FilterStep.of("loudnorm", I=-14)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, *args: Any, **kwargs: Any) -> FilterStep:
        return cls(name, tuple(args), tuple(kwargs.items()))


@dataclass(frozen=True)
class MixSettings:
    """What the soundtrack should sound like; levels are relative to the narration."""

    loudness_lufs: float = default_of(LoudnessLufs)
    music_volume_db: float = default_of(MusicVolume)
    scene_audio_volume_db: float = default_of(SceneAudioVolume)


@dataclass(frozen=True)
class AudioLevels:
    """Gains found by measuring (dB); ``None`` for a scene means its track is silent and left out."""

    narration_db: float = 0.0
    music_db: float = 0.0
    scene_db: tuple[float | None, ...] = ()
    final_db: float = 0.0
    limiter: bool = False
    measured_lufs: float | None = None  # the mix before the final gain
    measured_true_peak_dbtp: float | None = None


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float  # -70 (ebur128's absolute gate) for silence
    true_peak_dbtp: float  # -inf for digital silence

    @property
    def silent(self) -> bool:
        return not self.integrated_lufs > SILENT_LUFS


_SILENT_AAC_FRAME_BYTES = 32


def silent_aac_track(path: Path | str) -> bool:
    """True when the file's first audio track is AAC whose every frame is too small to carry sound.

    Scenes made by normalize_clip (and many camera and vendor files) carry a track of
    digital silence; its AAC frames are ~6 bytes where any audible signal needs hundreds.
    Walking the packets (no decoding) costs a few milliseconds and keeps these tracks out
    of the loudness measurements and the mix.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return False
            stream = container.streams.audio[0]
            if stream.codec_context.name != "aac":
                return False
            seen = False
            for pkt in container.demux(stream):
                if pkt.size > _SILENT_AAC_FRAME_BYTES:
                    return False
                seen = seen or pkt.size > 0
            return seen
    except (av.error.FFmpegError, OSError):
        return False


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Background:
    """The background scene of a presenter slot, trimmed or held to the slot's length."""

    path: Path
    source_duration_s: float
    source_fps: float
    source_width: int
    source_height: int
    source_sar: float
    color_matrix: str


@dataclass(frozen=True)
class TimelineScene:
    """One scene placed on the output frame grid. ``frames`` is the truth; ms are derived."""

    path: Path
    index: int
    in_ms: int
    start_frame: int  # where it starts in the output (a crossfade starts it inside the previous scene)
    frames: int
    start_ms: int
    duration_ms: int
    source_duration_s: float
    source_fps: float
    source_width: int
    source_height: int
    color_matrix: str  # scale filter's in_color_matrix for this source
    has_audio: bool
    source_sar: float = 1.0
    overlap_frames: int = 0  # frames shared with the previous scene (crossfade)
    background: Background | None = None
    chroma: ChromaKey | None = None

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.frames


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    fps: int
    scenes: tuple[TimelineScene, ...]
    scene_frames: int  # frames the scenes cover (their sum minus crossfade overlaps)
    hold_frames: int  # the last scene's final frame repeated this many times
    total_frames: int
    hold_ms: int
    duration_ms: int
    narration: NarrationInput | None = None
    tail_s: float = DEFAULT_TAIL_S
    # Hooks for later stages; each runs inside the same graph (one encode pass).
    video_post: tuple[FilterStep, ...] = ()
    audio_post: tuple[FilterStep, ...] = ()
    fit: Fit = "contain"
    music: MusicInput | None = None
    watermark: Watermark | None = None
    captions_ass: str | None = None  # an ASS document (captions and overlays) burned in by libass
    # The font files the ASS names, when not the bundled ones: copied into the render's own
    # fonts folder, so libass sees exactly these (and the bundled set is not in the way).
    caption_fonts: tuple[Path, ...] = ()
    mix: MixSettings = field(default_factory=MixSettings)
    levels: AudioLevels | None = None  # None until measured: every gain 0 dB
    copy_video: bool = False  # stream-copy the scenes (see stream_copy_blockers)

    @property
    def duration_s(self) -> float:
        return self.total_frames / self.fps

    @property
    def audio_samples(self) -> int:
        """Exact audio length: the video's length at 48 kHz (integral for 24/25/30/50/60 fps)."""
        return round(self.total_frames * AUDIO_SAMPLE_RATE / self.fps)

    @property
    def gop(self) -> int:
        """YouTube: closed GOP of half the frame rate."""
        return gop_frames(self.fps)

    @property
    def overlap_frames(self) -> int:
        return sum(s.overlap_frames for s in self.scenes)

    def samples_at(self, frame: int) -> int:
        return round(frame * AUDIO_SAMPLE_RATE / self.fps)


def frames_for(duration_s: float, fps: int) -> int:
    """Frames a duration covers on the output grid, rounding half up (1.99 s @ 30 -> 60)."""
    return math.floor(duration_s * fps + 0.5)


def _ms(frame: int, fps: int) -> int:
    return round(frame * 1000 / fps)


def _scene_duration_s(info: MediaInfo) -> float:
    """The scene's video length: the stream's duration, else frames/rate, else the container's.

    The video stream, not the container: a clip whose audio runs longer would otherwise
    end in frozen frames.
    """
    v = info.video
    assert v is not None
    if v.duration_s and v.duration_s > 0:
        return v.duration_s
    if v.frames and v.fps:
        return v.frames / v.fps
    return info.duration_s


def _color_matrix(info: MediaInfo) -> str:
    v = info.video
    assert v is not None
    named = _SCALE_MATRIX.get((v.color_space or "").lower())
    if named:
        return named
    # Untagged: the usual convention, HD is BT.709 and SD is BT.601. Converting an untagged
    # HD clip as if it were BT.601 would shift its colours.
    return "bt709" if v.height >= 720 or v.width >= 1280 else "bt601"


def _sar(info: MediaInfo) -> float:
    sar = (info.video.sar if info.video else None) or "1:1"
    num, _, den = sar.partition(":")
    try:
        value = int(num) / int(den or 1)
    except (ValueError, ZeroDivisionError):
        return 1.0
    return value if value > 0 else 1.0


def build_timeline(
    scenes: Sequence[SceneInput],
    *,
    width: int,
    height: int,
    fps: int,
    narration: NarrationInput | None = None,
    tail_s: float = DEFAULT_TAIL_S,
    video_post: Sequence[FilterStep] = (),
    audio_post: Sequence[FilterStep] = (),
    fit: Fit = "contain",
    crossfade_s: float = 0.0,
    music: MusicInput | None = None,
    watermark: Watermark | None = None,
    captions_ass: str | None = None,
    mix: MixSettings | None = None,
) -> Timeline:
    """Place ``scenes`` on the ``fps`` grid, overlapping by ``crossfade_s``, and fit the narration.

    The video lasts the sum of the scenes minus the crossfade overlaps; when the
    narration runs longer, the last scene's final frame is held until the narration has
    ended plus ``tail_s`` (DESIGN.md §6: no sentence is ever cut off); when it is shorter,
    it is padded with silence. A crossfade never takes more than half of either scene it
    joins (so two fades of one scene never meet); where that leaves no frame, it is a cut.
    """
    if not scenes:
        raise InputError("assembly needs at least one scene")
    if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
        raise InputError(f"fps must be a positive whole number, not {fps!r}")
    for name, px in (("width", width), ("height", height)):
        if not isinstance(px, int) or px <= 0 or px % 2:
            # yuv420p halves the chroma planes: odd sizes cannot be encoded.
            raise InputError(f"output {name} must be a positive even number of pixels, not {px!r}")
    if not (tail_s >= 0 and math.isfinite(tail_s)):
        raise InputError(f"tail_s must be a finite number >= 0, not {tail_s!r}")
    if not (crossfade_s >= 0 and math.isfinite(crossfade_s)):
        raise InputError(f"crossfade_s must be a finite number >= 0, not {crossfade_s!r}")
    if fit not in ("contain", "cover", "blur"):
        raise InputError(f"fit must be contain, cover or blur, not {fit!r}")

    lengths: list[int] = []
    for i, scene in enumerate(scenes):
        path = Path(scene.path)
        if scene.info.video is None:
            raise InputError(f"scene {i + 1} ({path.name}) has no video stream")
        if scene.background is not None and scene.background.info.video is None:
            raise InputError(f"the background of scene {i + 1} ({scene.background.path.name}) has no video stream")
        duration_s = _scene_duration_s(scene.info)
        n = frames_for(duration_s, fps)
        if n < 1:
            raise InputError(
                f"scene {i + 1} ({path.name}) lasts {duration_s:.3f} s, shorter than one frame at {fps} fps"
            )
        lengths.append(n)

    wanted = round(crossfade_s * fps)
    placed: list[TimelineScene] = []
    end = 0
    for i, scene in enumerate(scenes):
        path = Path(scene.path)
        v = scene.info.video
        assert v is not None
        n = lengths[i]
        overlap = min(wanted, lengths[i - 1] // 2, n // 2) if i else 0
        start = end - overlap
        bg = None
        if scene.background is not None:
            b = scene.background
            assert b.info.video is not None
            bg = Background(
                path=Path(b.path),
                source_duration_s=_scene_duration_s(b.info),
                source_fps=b.info.video.fps or 0.0,
                source_width=b.info.video.width,
                source_height=b.info.video.height,
                source_sar=_sar(b.info),
                color_matrix=_color_matrix(b.info),
            )
        placed.append(
            TimelineScene(
                path=path,
                index=i,
                in_ms=0,
                start_frame=start,
                frames=n,
                start_ms=_ms(start, fps),
                duration_ms=_ms(start + n, fps) - _ms(start, fps),
                source_duration_s=_scene_duration_s(scene.info),
                source_fps=v.fps or 0.0,
                source_width=v.width,
                source_height=v.height,
                color_matrix=_color_matrix(scene.info),
                has_audio=scene.info.audio is not None and not scene.silent_audio,
                source_sar=_sar(scene.info),
                overlap_frames=overlap,
                background=bg,
                chroma=(scene.chroma or ChromaKey()) if bg is not None else None,
            )
        )
        end = start + n
    scene_frames = end

    hold_frames = 0
    if narration is not None:
        if not (narration.duration_s >= 0 and math.isfinite(narration.duration_s)):
            raise InputError(f"narration duration must be a finite number >= 0, not {narration.duration_s!r}")
        if narration.duration_s > scene_frames / fps:
            # ceil, not round: the narration's last sample must fall inside the video.
            needed = math.ceil((narration.duration_s + tail_s) * fps - 1e-9)
            hold_frames = max(0, needed - scene_frames)
    total = scene_frames + hold_frames
    return Timeline(
        width=width,
        height=height,
        fps=fps,
        scenes=tuple(placed),
        scene_frames=scene_frames,
        hold_frames=hold_frames,
        total_frames=total,
        hold_ms=_ms(total, fps) - _ms(scene_frames, fps),
        duration_ms=_ms(total, fps),
        narration=narration,
        tail_s=tail_s,
        video_post=tuple(video_post),
        audio_post=tuple(audio_post),
        fit=fit,
        music=music,
        watermark=watermark,
        captions_ass=captions_ass,
        mix=mix or MixSettings(),
    )


def stream_copy_blockers(
    tl: Timeline, scenes: Sequence[SceneInput], structures: Sequence[StreamStructure | None]
) -> list[str]:
    """Why the scenes cannot be stream-copied into the result (empty: they can).

    Copying is only honest when every scene already is what the encoder would have made:
    H.264 High yuv420p at the output size and rate, square pixels, BT.709 (or untagged,
    then tagged in the bitstream), a closed GOP of at most half the frame rate with at
    most 2 B-frames (measured, not assumed), identical codec headers, exact frame counts,
    and nothing to draw, fade or hold.
    """
    reasons: list[str] = []
    if tl.captions_ass:
        reasons.append("captions or text overlays are drawn")
    if tl.watermark is not None:
        reasons.append("a watermark is drawn")
    if tl.overlap_frames:
        reasons.append("scenes crossfade")
    if tl.hold_frames:
        reasons.append("the narration runs past the scenes, so the last frame is held")
    if tl.video_post:
        reasons.append("video filters are applied")
    half = max(1, math.ceil(tl.fps / 2 - 1e-6))
    first_extradata = None
    for i, (ts, scene, st) in enumerate(zip(tl.scenes, scenes, structures, strict=True)):
        v = scene.info.video
        name = f"scene {i + 1} ({ts.path.name})"
        if ts.background is not None:
            reasons.append(f"{name} is a presenter clip to key out")
            continue
        if v is None:
            continue
        if (v.codec, (v.profile or "").lower(), v.pix_fmt) != ("h264", "high", "yuv420p"):
            reasons.append(f"{name} is {v.codec} {v.profile} {v.pix_fmt}, not H.264 High yuv420p")
        if (v.width, v.height) != (tl.width, tl.height) or abs(ts.source_sar - 1.0) > 1e-3:
            reasons.append(f"{name} is {v.width}x{v.height} (SAR {v.sar}), not {tl.width}x{tl.height}")
        if abs(v.fps - tl.fps) > 0.01:
            reasons.append(f"{name} runs at {v.fps} fps, not {tl.fps}")
        if v.frames != ts.frames:
            reasons.append(f"{name} has {v.frames} frames where the timeline places {ts.frames}")
        if (v.color_space or "bt709") != "bt709" or (v.color_primaries or "bt709") != "bt709":
            reasons.append(f"{name} is not BT.709")
        if st is None:
            reasons.append(f"{name}: its GOP structure is unknown")
            continue
        if st.gop_frames > half or st.closed_gop is not True or (st.max_b_frames or 0) > B_FRAMES:
            reasons.append(f"{name} has a GOP of {st.gop_frames} frames (closed: {st.closed_gop}, "
                           f"B-frames: {st.max_b_frames}), not a closed GOP of at most {half} with 2 B-frames")
        if first_extradata is None:
            first_extradata = st.extradata_sha1
        elif st.extradata_sha1 != first_extradata:
            reasons.append(f"{name} was encoded with other codec headers than scene 1")
    return reasons
