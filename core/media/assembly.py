"""Assembly: scenes + narration (+ music, captions, overlays, watermark) -> one MP4 in one encode pass.

Spec -> timeline -> filter graph -> argv -> run (HOUSE.md):

* :func:`build_timeline` turns probed scenes into a frozen :class:`Timeline`: every scene
  snapped to the output frame grid (integer frames, integer-millisecond offsets),
  explicit per-boundary crossfade overlaps, the last-frame hold that keeps the narration
  from being cut off, the exact audio length, what is drawn (an ASS document of captions
  and overlays, a watermark) and the audio sources. Pure: no ffmpeg, no I/O.
* :func:`level_audio` measures the audio (audio-only ffmpeg runs to ``-f null``, cheap:
  no video is decoded) and returns the timeline with its :class:`AudioLevels`: each
  source levelled against the narration, then one gain that puts the finished mix on the
  loudness target, and a true-peak limiter only where the ceiling would otherwise force
  the loudness down.
* :func:`build_argv` turns a timeline into one ffmpeg argument list holding a single
  ``-filter_complex`` graph, built as data with ffmpeg-python (which never runs anything
  here)::

      scene i ─ trim ─ fps ─ fit (contain | cover | blur) ─ exact frames ┐
      (presenter: chroma-keyed clip over its background scene)           ├ concat | xfade ─ hold ─ watermark ─ ass ─ video_post ─ BT.709 tags ─ encoder
      ...                                                                ┘
      narration ─ level ─ asplit ─────────────────────────────────────────┐
      music (looped) ─ trim ─ fades ─ level ─ sidechaincompress(narration) ┼ amix ─ gain ─ [true-peak limiter] ─ audio_post ─ exact samples ─ AAC
      scene i audio ─ trim ─ crossfade fades ─ level ─ adelay(start) ─────┘

  When every scene already is the target format and nothing is drawn, the video is
  stream-copied (concat demuxer) and only the audio is encoded.
* :func:`render` runs it through :func:`core.media.ffmpeg.run_ffmpeg`;
  :func:`render_with_fallback` tries a hardware encoder first and falls back to libx264
  when it fails.

Output settings follow DESIGN.md §6 (YouTube's recommended upload settings): H.264 High
yuv420p, closed GOP of half the frame rate, 2 B-frames, CRF capped by the bitrate table's
maxrate, BT.709, AAC-LC 48 kHz stereo at 384 kb/s, ``+faststart``.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import ffmpeg
from ffmpeg.nodes import InputNode

from core.errors import InputError, MediaError, OperationCancelled
from core.media.encoders import LIBX264, VideoEncoder
from core.media.ffmpeg import ProgressCallback, run_ffmpeg
from core.media.fonts import FONT_DIR
from core.media.probe import MediaInfo, probe
from core.media.youtube import StreamStructure, max_bitrate_kbps

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
    "build_argv",
    "concat_list_text",
    "level_audio",
    "plan_levels",
    "finish_levels",
    "measure_loudness",
    "render",
    "render_with_fallback",
    "EncoderFailure",
    "assemble",
    "Assembled",
    "build_video_argv",
    "build_audio_argv",
    "build_mux_argv",
    "build_copy_video_argv",
    "silent_aac_track",
    "AUDIO_OPTIONS",
    "describe_encode",
    "frames_for",
    "DEFAULT_PRESET",
    "DEFAULT_CRF",
    "DEFAULT_TAIL_S",
    "AUDIO_SAMPLE_RATE",
    "AUDIO_BITRATE",
    "ENCODER",
    "LIMITER_CEILING_DBTP",
]

log = logging.getLogger(__name__)

# BENCHMARKS.md: veryfast is the knee (2.3-2.7x smaller files than ultrafast/superfast for
# 30-100 % more time; medium buys ~1.3 dB for 80 % more).
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 20
DEFAULT_TAIL_S = 0.5
AUDIO_SAMPLE_RATE = 48_000
AUDIO_BITRATE = "384k"
ENCODER = LIBX264.name

# The limiter's ceiling sits 0.5 dB under YouTube's -1 dBTP: the AAC encoder's own
# overshoot (measured here: 0.1-0.4 dB) must not push the result over.
LIMITER_CEILING_DBTP = -1.5
# ebur128 reports -70 LUFS (its absolute gate) for silence; normalize_clip gives every
# scene a silent track, which must not be "levelled" by +56 dB.
SILENT_LUFS = -60.0
_MAX_BOOST_DB = 30.0
_LIMITER_PASSES = 3  # make-up passes after the limiter (audio only, each a fraction of a second)
_LIMITER_TOLERANCE_LU = 0.5  # whole-mix gain cap: a nearly silent mix is reported, not amplified into noise
_SCENE_MAX_BOOST_DB = 12.0  # a quiet ambience is not pulled up to dialogue level
_MUSIC_MAX_BOOST_DB = 20.0
# Ducking: the music drops by about (speech - threshold) * (1 - 1/ratio) ≈ 10 dB under the
# narration (levelled to the target first, so the threshold means the same for every voice).
_DUCK_BELOW_TARGET_DB = 12.0
_DUCK_RATIO = 8
_DUCK_ATTACK_MS = 20
_DUCK_RELEASE_MS = 400
_MUSIC_FADE_IN_S = 1.0
_MUSIC_FADE_OUT_S = 2.0

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

    loudness_lufs: float = -14.0
    music_volume_db: float = -12.0
    scene_audio_volume_db: float = -10.0


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
        return max(1, self.fps // 2)

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
        if st.gop_frames > half or st.closed_gop is not True or (st.max_b_frames or 0) > 2:
            reasons.append(f"{name} has a GOP of {st.gop_frames} frames (closed: {st.closed_gop}, "
                           f"B-frames: {st.max_b_frames}), not a closed GOP of at most {half} with 2 B-frames")
        if first_extradata is None:
            first_extradata = st.extradata_sha1
        elif st.extradata_sha1 != first_extradata:
            reasons.append(f"{name} was encoded with other codec headers than scene 1")
    return reasons


# --------------------------------------------------------------------------- graph: video


def _num(x: float) -> str:
    """A float for a filter argument, exact enough (µs) and without exponent notation."""
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def _input(path: Path | str, key: int | str, **options: Any) -> Any:
    """An ffmpeg-python input node that is never merged with another.

    ffmpeg-python identifies nodes by their content, so the same clip used twice would
    become one input feeding two chains (it then demands a ``split``, which would buffer
    the whole second copy while concat plays the first). ``args`` takes part in the node's
    identity but is not written to the command line, so ``key`` keeps inputs apart.
    """
    return InputNode("input", args=[key], kwargs={"filename": str(path), **options}).stream()


def _apply(stream: Any, steps: Sequence[FilterStep]) -> Any:
    for step in steps:
        stream = stream.filter(step.name, *step.args, **dict(step.kwargs))
    return stream


@dataclass(frozen=True)
class _Clip:
    """What the video chain needs to know of one source."""

    source_fps: float
    width: int
    height: int
    sar: float
    color_matrix: str
    in_ms: int = 0


def _scale(v: Any, clip: _Clip, w: int | str, h: int | str, *, fit: str | None, fast: bool = False) -> Any:
    kwargs: dict[str, Any] = {
        "w": w,
        "h": h,
        # reset_sar honours anamorphic sources; even sizes for 4:2:0.
        "force_divisible_by": 2,
        "reset_sar": 1,
        # Convert (in the same pass) to the BT.709 the output is tagged with.
        "in_color_matrix": clip.color_matrix,
        "out_color_matrix": "bt709",
        "out_range": "tv",
    }
    if fit is not None:
        kwargs["force_original_aspect_ratio"] = fit
    if fast:
        kwargs["flags"] = "bilinear"  # a picture about to be blurred needs no bicubic
    return v.filter("scale", **kwargs)


def _same_shape(clip: _Clip, tl: Timeline) -> bool:
    src = clip.width * clip.sar / max(1, clip.height)
    return abs(src / (tl.width / tl.height) - 1) < 0.01


def _fit(v: Any, clip: _Clip, tl: Timeline) -> Any:
    """Any shape into W x H: contain (bars), cover (crop) or blur (blurred copy behind)."""
    W, H = tl.width, tl.height
    if tl.fit == "cover":
        v = _scale(v, clip, W, H, fit="increase")
        return v.filter("crop", W, H)
    if tl.fit == "blur" and not _same_shape(clip, tl):
        parts = v.filter_multi_output("split", 2)
        fg, bg = parts[0], parts[1]
        # The blurred fill is made at an eighth of the size: cheap, and blurred anyway.
        sw, sh = max(16, (W // 8) & ~1), max(16, (H // 8) & ~1)
        bg = _scale(bg, clip, sw, sh, fit="increase", fast=True).filter("crop", sw, sh)
        bg = bg.filter("gblur", sigma=max(2.0, sw / 40))
        bg = bg.filter("scale", w=W, h=H, flags="bilinear")
        fg = _scale(fg, clip, W, H, fit="decrease")
        return ffmpeg.overlay(bg, fg, x="(W-w)/2", y="(H-h)/2", format="yuv420")
    v = _scale(v, clip, W, H, fit="decrease")
    return v.filter("pad", w=W, h=H, x="(ow-iw)/2", y="(oh-ih)/2", color="black")


def _exact(v: Any, frames: int) -> Any:
    # fps ends where the last source frame kept ends, rounded to the grid: a frame long
    # when that frame reaches past the cut (24 fps cut at 29/30 s gives 30 frames), a frame
    # short when the stream ends before its declared duration. Clone the last frame, then
    # cut at the exact count; trim closes its input once done, so the clones cost nothing.
    v = v.filter("tpad", stop_mode="clone", stop=frames)
    return v.filter("trim", end_frame=frames)


def _trimmed(source: Any, clip: _Clip, frames: int, tl: Timeline) -> tuple[Any, bool]:
    """Trim to the slot; drop surplus frames first when the source runs faster than the output."""
    # Timestamps from zero before and after the cut: a stream that starts late (MPEG-TS)
    # would otherwise lose its head, and concat would inherit the offset (BENCHMARKS.md:
    # 901 frames for 900).
    v = source.filter("setpts", "PTS-STARTPTS")
    v = v.filter("trim", start=_num(clip.in_ms / 1000), duration=_num(frames / tl.fps))
    v = v.filter("setpts", "PTS-STARTPTS")
    # Drop surplus frames before scaling them (BENCHMARKS.md); a slower source is scaled
    # first and its duplicates made after, as references, for free.
    fps_first = clip.source_fps <= 0 or clip.source_fps > tl.fps
    if fps_first:
        v = v.filter("fps", fps=tl.fps)
    return v, fps_first


def _clip_chain(source: Any, clip: _Clip, frames: int, tl: Timeline) -> Any:
    """One source -> exactly ``frames`` frames of W x H yuv420p at the output rate."""
    v, fps_first = _trimmed(source, clip, frames, tl)
    v = _fit(v, clip, tl)
    v = v.filter("setsar", "1")
    v = v.filter("format", "yuv420p")
    if not fps_first:
        v = v.filter("fps", fps=tl.fps)
    return _exact(v, frames)


def _presenter_chain(source: Any, scene: TimelineScene, tl: Timeline) -> Any:
    """A green-screen clip keyed over its background, bottom-centred, for the clip's length."""
    assert scene.background is not None and scene.chroma is not None
    b = scene.background
    bg_clip = _Clip(b.source_fps, b.source_width, b.source_height, b.source_sar, b.color_matrix)
    bg = _clip_chain(_input(b.path, f"bg{scene.index}")["v:0"], bg_clip, scene.frames, tl)
    clip = _clip_of(scene)
    fg, fps_first = _trimmed(source, clip, scene.frames, tl)
    fg = _scale(fg, clip, tl.width, tl.height, fit="decrease")
    fg = fg.filter("format", "yuva420p")
    key = scene.chroma
    fg = fg.filter("chromakey", color=_hex(key.color), similarity=_num(key.similarity), blend=_num(key.blend))
    if not fps_first:
        fg = fg.filter("fps", fps=tl.fps)
    fg = _exact(fg, scene.frames)
    v = ffmpeg.overlay(bg, fg, x="(W-w)/2", y="H-h", format="yuv420")
    v = v.filter("setsar", "1").filter("format", "yuv420p")
    return v.filter("trim", end_frame=scene.frames)


def _clip_of(scene: TimelineScene) -> _Clip:
    return _Clip(scene.source_fps, scene.source_width, scene.source_height, scene.source_sar, scene.color_matrix,
                 scene.in_ms)


def _hex(color: str) -> str:
    c = color.strip().lower().removeprefix("#").removeprefix("0x")
    return f"0x{c.upper()}"


def _join(chains: Sequence[Any], tl: Timeline) -> Any:
    """Cut (concat) or crossfade (xfade at each scene's start on the output grid)."""
    if len(chains) == 1:
        return chains[0]
    if not tl.overlap_frames:
        return ffmpeg.concat(*chains, v=1, a=0)
    out = chains[0]
    for scene, chain in zip(tl.scenes[1:], chains[1:], strict=True):
        if scene.overlap_frames:
            out = ffmpeg.filter([out, chain], "xfade", transition="fade",
                                duration=_num(scene.overlap_frames / tl.fps), offset=_num(scene.start_frame / tl.fps))
        else:
            out = ffmpeg.concat(out, chain, v=1, a=0)
    return out


def _hold(video: Any, tl: Timeline) -> Any:
    if not tl.hold_frames:
        return video
    # A frame count rather than stop_duration: a duration would be rounded back to frames.
    return video.filter("tpad", stop_mode="clone", stop=tl.hold_frames)


def _watermark(video: Any, tl: Timeline) -> Any:
    wm = tl.watermark
    if wm is None:
        return video
    width = wm.width_px or max(16, round(max(tl.width, tl.height) * 0.12))
    width -= width % 2
    margin = round(min(tl.width, tl.height) * 0.03)
    # Colours converted to BT.709 here, not by overlay's automatic (BT.601) conversion.
    img = _input(wm.path, "watermark")["v:0"].filter("format", "rgba")
    img = img.filter("colorchannelmixer", aa=_num(wm.opacity))
    img = img.filter("scale", w=width, h=-2, out_color_matrix="bt709", out_range="tv").filter("format", "yuva420p")
    x = f"{margin}" if wm.position.endswith("left") else f"W-w-{margin}"
    if wm.position.startswith("top"):
        y = f"{margin}"
    elif tl.height > tl.width:
        # Shorts: the bottom quarter is under the player's interface.
        from core.media.captions import SHORTS_UI_BOTTOM_FRACTION

        y = f"H*{1 - SHORTS_UI_BOTTOM_FRACTION:.2f}-h-{margin}"
    else:
        y = f"H-h-{margin}"
    # A still image is one frame: overlay repeats it to the end (eof_action=repeat).
    return ffmpeg.overlay(video, img, x=x, y=y, format="yuv420", eof_action="repeat")


def _subtitles(video: Any, tl: Timeline, work_dir: Path) -> Any:
    if not tl.captions_ass:
        return video
    # fontsdir: libass loads the fonts there as memory fonts and matches them first.
    fonts = work_dir / "fonts" if tl.caption_fonts else FONT_DIR
    return video.filter("ass", filename=str(work_dir / "captions.ass"), fontsdir=str(fonts))


def _write_captions(tl: Timeline, work_dir: Path) -> None:
    """The ASS document and its fonts, where :func:`_subtitles` points libass."""
    if not tl.captions_ass:
        return
    (work_dir / "captions.ass").write_text(tl.captions_ass, encoding="utf-8")
    if tl.caption_fonts:
        fonts = work_dir / "fonts"
        fonts.mkdir(exist_ok=True)
        for font in tl.caption_fonts:
            try:
                shutil.copyfile(font, fonts / font.name)
            except OSError as exc:
                raise MediaError(f"cannot read the caption font {font.name}: {exc.strerror or exc}") from exc


def _tag_bt709(video: Any) -> Any:
    # ffmpeg >= 7 takes an encoder's primaries and transfer from the frames, not from
    # -color_primaries/-color_trc: tag the frames (metadata only, the pixels were
    # converted to BT.709 by each scene's scale).
    return video.filter("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv")


def _video_graph(tl: Timeline, work_dir: Path, encoder: VideoEncoder) -> Any:
    chains = []
    for s in tl.scenes:
        source = _input(s.path, s.index)["v:0"]
        chains.append(_presenter_chain(source, s, tl) if s.background else _clip_chain(source, _clip_of(s), s.frames, tl))
    video = _hold(_join(chains, tl), tl)
    video = _subtitles(_watermark(video, tl), tl, work_dir)
    video = _tag_bt709(_apply(video, tl.video_post))
    for name, kwargs in encoder.upload_filters():
        video = video.filter(name, **kwargs)
    return video


# --------------------------------------------------------------------------- graph: audio


def _to_master(a: Any) -> Any:
    """Any audio (22.05 kHz mono, 44.1 kHz, 5.1 ...) -> 48 kHz stereo float."""
    a = a.filter("aresample", AUDIO_SAMPLE_RATE)
    return a.filter("aformat", sample_fmts="fltp", sample_rates=AUDIO_SAMPLE_RATE, channel_layouts="stereo")


_narration_chain = _to_master  # v1 name


def _gain(a: Any, db: float) -> Any:
    return a if abs(db) < 1e-3 else a.filter("volume", f"{db:.2f}dB")


def _silence() -> Any:
    return _input(f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl=stereo", "silence", f="lavfi").audio


def _music_chain(tl: Timeline) -> Any:
    assert tl.music is not None
    n = tl.audio_samples
    total_s = tl.duration_s
    # -stream_loop -1: a short bed repeats; atrim ends it (and the input) at the video's end.
    a = _to_master(_input(tl.music.path, "music", stream_loop=-1)["a:0"])
    a = a.filter("atrim", end_sample=n)
    fade_in = min(_MUSIC_FADE_IN_S, total_s / 4)
    fade_out = min(_MUSIC_FADE_OUT_S, total_s / 3)
    a = a.filter("afade", t="in", st=0, d=_num(fade_in))
    return a.filter("afade", t="out", st=_num(total_s - fade_out), d=_num(fade_out))


def _scene_audio_chain(tl: Timeline, i: int) -> Any:
    """Scene i's own sound for its slot, faded where it crossfades, not yet positioned."""
    s = tl.scenes[i]
    n = tl.samples_at(s.frames)
    a = _input(s.path, f"a{s.index}")["a:0"].filter("asetpts", "PTS-STARTPTS")
    a = a.filter("atrim", start=_num(s.in_ms / 1000), duration=_num(s.frames / tl.fps))
    a = _to_master(a.filter("asetpts", "PTS-STARTPTS"))
    a = a.filter("apad", whole_len=n).filter("atrim", end_sample=n)
    if s.overlap_frames:
        a = a.filter("afade", t="in", st=0, d=_num(s.overlap_frames / tl.fps))
    following = tl.scenes[i + 1].overlap_frames if i + 1 < len(tl.scenes) else 0
    if following:
        a = a.filter("afade", t="out", st=_num((s.frames - following) / tl.fps), d=_num(following / tl.fps))
    return a


def _scene_audio_indices(tl: Timeline) -> list[int]:
    levels = tl.levels
    out = []
    for i, s in enumerate(tl.scenes):
        if not s.has_audio:
            continue
        if levels is not None and levels.scene_db and levels.scene_db[i] is None:
            continue  # measured silent: nothing to mix
        out.append(i)
    return out


def _audio_sources(tl: Timeline) -> dict[str, Any]:
    """Every source chain before levelling: 'narration', 'music', 'scene:<i>'."""
    out: dict[str, Any] = {}
    if tl.narration is not None:
        out["narration"] = _to_master(_input(tl.narration.path, "narration")["a:0"])
    if tl.music is not None:
        out["music"] = _music_chain(tl)
    for i in _scene_audio_indices(tl):
        out[f"scene:{i}"] = _scene_audio_chain(tl, i)
    return out


def _mix(tl: Timeline) -> Any | None:
    """The levelled mix (before the final gain), or None when there is no sound at all."""
    levels = tl.levels or AudioLevels()
    sources = _audio_sources(tl)
    parts: list[Any] = []
    narration = sources.get("narration")
    sidechain = None
    if narration is not None:
        narration = _gain(narration, levels.narration_db)
        if "music" in sources:
            both = narration.filter_multi_output("asplit", 2)
            narration, sidechain = both[0], both[1]
        parts.append(narration)
    music = sources.get("music")
    if music is not None:
        music = _gain(music, levels.music_db)
        if sidechain is not None:
            threshold = 10 ** ((tl.mix.loudness_lufs - _DUCK_BELOW_TARGET_DB) / 20)
            music = ffmpeg.filter([music, sidechain], "sidechaincompress", threshold=f"{threshold:.4f}",
                                  ratio=_DUCK_RATIO, attack=_DUCK_ATTACK_MS, release=_DUCK_RELEASE_MS, makeup=1)
        parts.append(music)
    for key, chain in sources.items():
        if not key.startswith("scene:"):
            continue
        i = int(key.split(":")[1])
        db = levels.scene_db[i] if levels.scene_db else 0.0
        chain = _gain(chain, db or 0.0)
        start = tl.samples_at(tl.scenes[i].start_frame)
        if start:
            chain = chain.filter("adelay", delays=f"{start}S", all=1)
        parts.append(chain)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # normalize=0: a plain sum; amix's default divides every input by the input count.
    return ffmpeg.filter(parts, "amix", inputs=len(parts), normalize=0, duration="longest", dropout_transition=0)


def _limiter(a: Any) -> Any:
    # True peak is the peak between samples: limit at 4x the rate (what BS.1770's meter
    # looks at), then come back. level=0: alimiter otherwise normalises its output to 0 dBFS;
    # latency=1 removes its look-ahead delay so the audio stays in sync.
    limit = 10 ** (LIMITER_CEILING_DBTP / 20)
    a = a.filter("aresample", 4 * AUDIO_SAMPLE_RATE)
    a = a.filter("alimiter", limit=f"{limit:.4f}", attack=2, release=50, level=0, latency=1)
    return a.filter("aresample", AUDIO_SAMPLE_RATE)


def _fit_audio(audio: Any, tl: Timeline) -> Any:
    """Exactly as long as the video, to the sample: pad with silence, then cut."""
    n = tl.audio_samples
    return audio.filter("apad", whole_len=n).filter("atrim", end_sample=n)


def _audio_graph(tl: Timeline) -> Any:
    levels = tl.levels or AudioLevels()
    mixed = _mix(tl)
    if mixed is None:
        audio = _silence()
    else:
        audio = _gain(mixed, levels.final_db)
        if levels.limiter:
            audio = _limiter(audio)
    return _fit_audio(_apply(audio, tl.audio_post), tl)


# --------------------------------------------------------------------------- argv


def _output_options(tl: Timeline, *, encoder: VideoEncoder, preset: str, crf: int,
                    threads: int | None) -> dict[str, Any]:
    opts: dict[str, Any] = encoder.output_options(
        gop=tl.gop, crf=crf, maxrate_kbps=max_bitrate_kbps(tl.width, tl.height, tl.fps), preset=preset
    )
    opts.update({
        "colorspace": "bt709",
        "color_primaries": "bt709",
        "color_trc": "bt709",
        "color_range": "tv",
        "r": tl.fps,
        # The graph already yields exactly this many; the cap makes it a guarantee.
        "frames:v": tl.total_frames,
    })
    opts.update(_audio_options())
    if threads is not None:
        opts["threads"] = threads
    return opts


def _aac_options() -> dict[str, Any]:
    return {
        "c:a": "aac",
        # The native encoder's defaults (twoloop search, mid/side decisions) spent 1.8 CPU-s
        # on 30 s at 384 kb/s; the fast coder without the M/S search took 0.26 CPU-s and came
        # out closer to the source (55 dB waveform SNR against 48.9) and to 384 kb/s: at
        # this rate the bit-saving searches only cost time.
        "aac_coder": "fast",
        "aac_ms": 0,
        "b:a": AUDIO_BITRATE,
        "ar": AUDIO_SAMPLE_RATE,
        "ac": 2,
    }


def _audio_options() -> dict[str, Any]:
    return {
        **_aac_options(),
        "movflags": "+faststart",
        "map_metadata": -1,  # nothing of the sources' tags (phone GPS, encoder names)
        "f": "mp4",  # the caller writes to a temporary name such as final.mp4.part
    }


AUDIO_OPTIONS = _aac_options()  # for benchmarks and callers that must match the settings exactly


def _webm_video_options(tl: Timeline) -> dict[str, Any]:
    return {
        "c:v": "libvpx-vp9",
        # Constant quality, realtime speed: an export beside the master, not a second master.
        "b:v": 0,
        "crf": 32,
        "deadline": "realtime",
        "cpu-used": 8,
        "row-mt": 1,
        "pix_fmt": "yuv420p",
        "g": 2 * tl.fps,
        "colorspace": "bt709",
        "color_primaries": "bt709",
        "color_trc": "bt709",
        "color_range": "tv",
        "r": tl.fps,
        "frames:v": tl.total_frames,
    }


_OPUS_OPTIONS = {"c:a": "libopus", "b:a": "192k", "ar": AUDIO_SAMPLE_RATE, "ac": 2}


def _webm_options(tl: Timeline) -> dict[str, Any]:
    return {**_webm_video_options(tl), **_OPUS_OPTIONS, "map_metadata": -1, "f": "webm"}


def concat_list_text(tl: Timeline) -> str:
    """The concat demuxer's list for the stream-copy path (``duration`` keeps timestamps exact)."""
    lines = ["ffconcat version 1.0"]
    for s in tl.scenes:
        quoted = str(Path(s.path).resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {_num(s.frames / tl.fps)}"]
    return "\n".join(lines) + "\n"


def build_argv(
    timeline: Timeline,
    out_path: Path | str,
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int | None = None,
    encoder: VideoEncoder = LIBX264,
    webm_path: Path | str | None = None,
    work_dir: Path | str | None = None,
) -> list[str]:
    """The ffmpeg arguments (without the executable) rendering ``timeline`` to ``out_path``.

    One invocation, one ``-filter_complex``, one video encode (two with ``webm_path``:
    the same graph split into the MP4 and a VP9/Opus WebM). ``work_dir`` is where
    :func:`render` puts the files the graph reads (the ASS document, the concat list).
    ``threads=None`` leaves x264 and the filter graph to size themselves (BENCHMARKS.md:
    ``-threads 1`` was 1.5x slower); a number caps both, for jobs that share a machine.
    """
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, not {threads!r}")
    work = Path(work_dir) if work_dir is not None else Path(out_path).parent
    audio = _audio_graph(timeline)
    if timeline.copy_video:
        return _copy_argv(timeline, out_path, audio, work)
    video = _video_graph(timeline, work, encoder)
    opts = _output_options(timeline, encoder=encoder, preset=preset, crf=crf, threads=threads)
    if webm_path is None:
        out = ffmpeg.output(video, audio, str(out_path), **opts)
    else:
        vs = video.filter_multi_output("split", 2)
        as_ = audio.filter_multi_output("asplit", 2)
        v1, v2, a1, a2 = vs[0], vs[1], as_[0], as_[1]
        out = ffmpeg.merge_outputs(
            ffmpeg.output(v1, a1, str(out_path), **opts),
            ffmpeg.output(v2, a2, str(webm_path), **_webm_options(timeline)),
        )
    args = [*encoder.input_args(), *(str(a) for a in out.get_args())]
    if threads is not None:
        args = ["-filter_complex_threads", str(threads), *args]
    return args


def _copy_argv(tl: Timeline, out_path: Path | str, audio: Any, work: Path) -> list[str]:
    # The concat demuxer joins the scenes' H.264 packets untouched; the audio comes from
    # each scene file separately (never concatenated AAC: BENCHMARKS.md, 34.7 ms of drift
    # per boundary), mixed and encoded as usual.
    scenes = _input(work / "scenes.ffconcat", "concat", f="concat", safe=0)["v:0"]
    opts: dict[str, Any] = {"c:v": "copy", "frames:v": tl.total_frames, **_audio_options()}
    out = ffmpeg.output(scenes, audio, str(out_path), **opts)
    args = [str(a) for a in out.get_args()]
    # BT.709 written into the SPS (metadata only, no re-encode): untagged sources get the
    # tags the copy path requires; tagged ones are rewritten with the same values.
    i = args.index("-c:v")
    args[i + 2:i + 2] = ["-bsf:v", "h264_metadata=video_full_range_flag=0:colour_primaries=1:"
                         "transfer_characteristics=1:matrix_coefficients=1"]
    return args


# --------------------------------------------------------------------------- loudness


_R128_I = re.compile(r"^lavfi\.r128\.I=(-?[\d.]+|-?inf|nan)", re.M)
_R128_TP = re.compile(r"^lavfi\.r128\.true_peak=(-?[\d.]+|inf|nan)", re.M)


def _measured(stream: Any, file: Path, *, true_peak: bool = True) -> Any:
    # ebur128 writes its running values as frame metadata; ametadata prints them to a file.
    # (Its end-of-stream summary goes to the log, which run_ffmpeg keeps only the tail of.)
    # True peak means 4x oversampling: only asked for where it is used.
    stream = stream.filter("ebur128", peak="true" if true_peak else "none", metadata=1)
    return stream.filter("ametadata", mode="print", file=str(file))


def _read_loudness(file: Path) -> Loudness:
    try:
        text = file.read_text()
    except FileNotFoundError:
        text = ""
    i_values = _R128_I.findall(text)
    tp_values = _R128_TP.findall(text)
    integrated = float(i_values[-1]) if i_values else -70.0
    peak = float(tp_values[-1]) if tp_values else 0.0
    if not math.isfinite(integrated):
        integrated = -70.0
    tp_db = 20 * math.log10(peak) if peak > 0 and math.isfinite(peak) else -math.inf
    return Loudness(integrated_lufs=integrated, true_peak_dbtp=tp_db)


def _run_null(outputs: Sequence[Any], *, cancel: threading.Event | None, what: str, timeout_s: float) -> None:
    out = ffmpeg.output(*outputs, "-", f="null")
    run_ffmpeg([str(a) for a in out.get_args()], timeout_s=timeout_s, cancel=cancel, what=what)


def measure_loudness(
    path: Path | str, *, cancel: threading.Event | None = None, timeout_s: float = 600.0, scratch: Path | None = None
) -> Loudness:
    """EBU R128 integrated loudness and true peak of a file's first audio stream.

    ``scratch``: where the measurement's small text file goes (the system temp dir if None).
    """
    with tempfile.TemporaryDirectory(prefix="ytap-r128-", dir=scratch) as tmp:
        file = Path(tmp) / "r128.txt"
        _run_null([_measured(_input(path, "m")["a:0"], file)], cancel=cancel, what="measuring loudness",
                  timeout_s=timeout_s)
        return _read_loudness(file)


def plan_levels(tl: Timeline, sources: dict[str, Loudness]) -> AudioLevels:
    """Gains that put every source where the mix settings say, relative to the narration.

    The narration is levelled to the loudness target (so the ducking threshold means the
    same thing for every voice), the music to ``music_volume_db`` under it and each
    scene's own sound to ``scene_audio_volume_db`` under it. Silent scene tracks are left
    out; quiet ones are not pulled up by more than 12 dB (room tone is not dialogue).
    """
    target = tl.mix.loudness_lufs
    narration_db = 0.0
    n = sources.get("narration")
    if n is not None and not n.silent:
        narration_db = _clamp(target - n.integrated_lufs, -_MAX_BOOST_DB, _MAX_BOOST_DB)
    music_db = 0.0
    m = sources.get("music")
    if m is not None and not m.silent:
        music_db = min(_MUSIC_MAX_BOOST_DB, target + tl.mix.music_volume_db - m.integrated_lufs)
    scene_db: list[float | None] = []
    for i, s in enumerate(tl.scenes):
        loud = sources.get(f"scene:{i}")
        if not s.has_audio or loud is None or loud.silent:
            scene_db.append(None)
        else:
            scene_db.append(min(_SCENE_MAX_BOOST_DB, target + tl.mix.scene_audio_volume_db - loud.integrated_lufs))
    return AudioLevels(narration_db=round(narration_db, 2), music_db=round(music_db, 2),
                       scene_db=tuple(None if d is None else round(d, 2) for d in scene_db))


def finish_levels(levels: AudioLevels, mix: Loudness, target_lufs: float) -> AudioLevels:
    """The final gain onto the target, and a limiter only where the true peak would pass the ceiling."""
    if mix.silent:
        return replace(levels, final_db=0.0, limiter=False, measured_lufs=mix.integrated_lufs,
                       measured_true_peak_dbtp=None)
    final_db = _clamp(target_lufs - mix.integrated_lufs, -_MAX_BOOST_DB, _MAX_BOOST_DB)
    peak_after = mix.true_peak_dbtp + final_db
    return replace(levels, final_db=round(final_db, 2), limiter=peak_after > LIMITER_CEILING_DBTP,
                   measured_lufs=mix.integrated_lufs,
                   measured_true_peak_dbtp=mix.true_peak_dbtp if math.isfinite(mix.true_peak_dbtp) else None)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def level_audio(
    tl: Timeline, *, cancel: threading.Event | None = None, timeout_s: float = 600.0, scratch: Path | None = None
) -> Timeline:
    """Measure and return ``tl`` with its :class:`AudioLevels` (one or two audio-only runs).

    1. When the mix has more than one source, each source's loudness (one run, one
       ebur128 per source) sets its gain relative to the narration (:func:`plan_levels`).
    2. The levelled mix is measured (one run) and the final gain and limiter decided
       (:func:`finish_levels`). The render then applies exactly that linear gain.
    3. Only when the limiter is needed: the limited mix is measured and the gain made up
       for what the limiter took (at most three short runs).
    """
    sources = _audio_sources(replace(tl, levels=None))
    if not sources:
        return replace(tl, levels=AudioLevels(scene_db=tuple(None for _ in tl.scenes)))
    with tempfile.TemporaryDirectory(prefix="ytap-levels-", dir=scratch) as tmp:
        work = Path(tmp)
        if len(sources) > 1:
            files = {key: work / f"src{n}.txt" for n, key in enumerate(sources)}
            _run_null([_measured(chain, files[key], true_peak=False) for key, chain in sources.items()], cancel=cancel,
                      what="measuring the audio sources", timeout_s=timeout_s)
            levels = plan_levels(tl, {key: _read_loudness(f) for key, f in files.items()})
        else:
            only = next(iter(sources))
            levels = AudioLevels(scene_db=tuple(0.0 if only == f"scene:{i}" else None for i in range(len(tl.scenes))))
        levelled = replace(tl, levels=levels)
        mixed = _mix(levelled)
        if mixed is None:  # every scene track was silent
            return levelled
        file = work / "mix.txt"
        _run_null([_measured(mixed, file)], cancel=cancel, what="measuring the audio mix", timeout_s=timeout_s)
        final = finish_levels(levels, _read_loudness(file), tl.mix.loudness_lufs)
        # The limiter takes some loudness with the peaks (little for speech and music, a lot
        # when the peaks carry the energy): measure what it leaves and make up the difference.
        for attempt in range(_LIMITER_PASSES):
            if not final.limiter:
                break
            file = work / f"limited{attempt}.txt"
            _run_null([_measured(_limiter(_gain(mixed, final.final_db)), file)], cancel=cancel,
                      what="measuring the limited mix", timeout_s=timeout_s)
            short_lu = tl.mix.loudness_lufs - _read_loudness(file).integrated_lufs
            if abs(short_lu) <= _LIMITER_TOLERANCE_LU:
                break
            final = replace(final, final_db=round(min(_MAX_BOOST_DB, final.final_db + short_lu), 2))
    log.info("audio levels: narration %+.1f dB, music %+.1f dB, scenes %s, mix %s LUFS -> %+.1f dB%s",
             final.narration_db, final.music_db, list(final.scene_db), final.measured_lufs, final.final_db,
             ", limiter" if final.limiter else "")
    return replace(tl, levels=final)


# --------------------------------------------------------------------------- run


def describe_encode(timeline: Timeline, encoder: VideoEncoder | None = None) -> dict[str, Any]:
    """How the result is encoded, for the job record."""
    enc = encoder or LIBX264
    return {
        "encoder": "copy" if timeline.copy_video else enc.name,
        "passes": 0 if timeline.copy_video else 1,
        "stream_copy": timeline.copy_video,
        "frames": timeline.total_frames,
        "duration_s": round(timeline.duration_s, 6),
        "width": timeline.width,
        "height": timeline.height,
        "fps": timeline.fps,
        "hold_s": round(timeline.hold_frames / timeline.fps, 6),
        "scenes": len(timeline.scenes),
        "overlap_frames": timeline.overlap_frames,
    }


def _monotonic(cb: ProgressCallback | None) -> ProgressCallback | None:
    """Progress that never goes back (out_time can wobble between audio and video)."""
    if cb is None:
        return None
    lock = threading.Lock()
    best = -1.0

    def report(fraction: float) -> None:
        nonlocal best
        with lock:
            if fraction <= best:
                return
            best = fraction
        cb(fraction)

    return report


@contextmanager
def _work_dir(out: Path) -> Iterator[Path]:
    """The render's intermediates, in a folder beside ``out`` named after it.

    ``out`` is a ``.part`` temporary name (core.assets.atomic), so a kill -9 that skips the
    removal leaves a folder the next start's sweep of partial files deletes: nothing is
    stranded in the system temp dir, and intermediates stay on the output's filesystem.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".work", dir=out.parent) as tmp:
        yield Path(tmp)


def render(
    timeline: Timeline,
    out_path: Path | str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    timeout_s: float = 3600.0,
    threads: int | None = None,
    encoder: VideoEncoder = LIBX264,
    webm_path: Path | str | None = None,
) -> MediaInfo:
    """Render ``timeline`` to ``out_path`` and return the probe of what was written.

    On any failure or cancellation the (partial) outputs are removed before the error
    propagates: :class:`MediaError` (carrying the tail of ffmpeg's stderr),
    :class:`OperationCancelled`.
    """
    out = Path(out_path)
    outputs = [out] + ([Path(webm_path)] if webm_path is not None else [])
    with _work_dir(out) as work:
        _write_captions(timeline, work)
        if timeline.copy_video:
            (work / "scenes.ffconcat").write_text(concat_list_text(timeline), encoding="utf-8")
        argv = build_argv(timeline, out, preset=preset, crf=crf, threads=threads, encoder=encoder,
                          webm_path=webm_path, work_dir=work)
        log.info(
            "assembly: %d scene(s), %d frames (%d held, %d overlapped) at %dx%d@%d with %s -> %s",
            len(timeline.scenes),
            timeline.total_frames,
            timeline.hold_frames,
            timeline.overlap_frames,
            timeline.width,
            timeline.height,
            timeline.fps,
            "stream copy" if timeline.copy_video else encoder.name,
            out.name,
        )
        log.debug("assembly argv: %s", argv)
        try:
            run_ffmpeg(
                argv,
                timeout_s=timeout_s,
                duration_s=timeline.duration_s,
                on_progress=_monotonic(on_progress),
                cancel=cancel,
                what="assembly",
            )
            info = probe(out)
        except BaseException:
            for p in outputs:
                p.unlink(missing_ok=True)
            raise
    if info.video is None or info.audio is None:
        for p in outputs:
            p.unlink(missing_ok=True)
        raise MediaError(f"assembly wrote {out.name} without a video and an audio stream")
    if info.video.frames is not None and info.video.frames != timeline.total_frames:
        log.warning("assembly: %s has %d frames, expected %d", out.name, info.video.frames, timeline.total_frames)
    return info


@dataclass(frozen=True)
class EncoderFailure:
    encoder: str
    reason: str


def render_with_fallback(
    timeline: Timeline,
    out_path: Path | str,
    encoders: Sequence[VideoEncoder],
    *,
    on_failure: Callable[[EncoderFailure], None] | None = None,
    **kwargs: Any,
) -> tuple[MediaInfo, VideoEncoder]:
    """:func:`render` with the first encoder that works: a hardware encoder failing (at start or
    mid-way) is reported to ``on_failure`` and the next one, finally libx264, takes over.
    Cancellation is never a failure to fall back from."""
    chain = list(encoders) or [LIBX264]
    if timeline.copy_video:
        chain = [LIBX264]  # nothing is encoded; the name is not used
    cancel: threading.Event | None = kwargs.get("cancel")
    for n, enc in enumerate(chain):
        if cancel is not None and cancel.is_set():
            # run_ffmpeg notices a cancel while ffmpeg runs; one that came between runs is seen here.
            raise OperationCancelled("assembly cancelled")
        try:
            return render(timeline, out_path, encoder=enc, **kwargs), enc
        except OperationCancelled:
            raise
        except MediaError as exc:
            if n == len(chain) - 1:
                raise
            log.warning("assembly: %s failed, falling back to %s: %s", enc.name, chain[n + 1].name, exc.message)
            if on_failure is not None:
                on_failure(EncoderFailure(enc.name, exc.message[-600:]))
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- the split pipeline
#
# render() is the whole job as one ffmpeg run. assemble() is the same graph cut in two
# and run side by side, because the audio needs measuring before it can be mixed, and
# measuring first would put ~2 s of audio-only runs in front of the encode while one of
# the two cores sat idle (the encode keeps ~1.4 of 2 busy: its filter graph is one
# thread). So:
#
#   thread 1: the video graph -> one video encode -> video.mp4 (no audio)
#   thread 2: level_audio (audio-only runs) -> the audio graph -> audio.m4a (AAC), then
#             its EBU R128 loudness (that AAC stream is copied into the result unchanged)
#   then:     one mux by stream copy -> out (+faststart)
#
# Still one video encode and one audio encode; the intermediates are elementary streams
# in their own containers, never concatenated (BENCHMARKS.md's AAC trap does not apply).


def build_video_argv(
    timeline: Timeline,
    out_path: Path | str,
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int | None = None,
    encoder: VideoEncoder = LIBX264,
    webm_video: Path | str | None = None,
    work_dir: Path | str | None = None,
) -> list[str]:
    """The video half: the whole video graph into one encode, no audio (and a VP9 copy of the graph's output)."""
    if timeline.copy_video:
        raise InputError("a stream-copied timeline has no video to encode: mux it (build_mux_argv)")
    work = Path(work_dir) if work_dir is not None else Path(out_path).parent
    video = _video_graph(timeline, work, encoder)
    opts = encoder.output_options(gop=timeline.gop, crf=crf,
                                  maxrate_kbps=max_bitrate_kbps(timeline.width, timeline.height, timeline.fps),
                                  preset=preset)
    opts.update({"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709", "color_range": "tv",
                 "r": timeline.fps, "frames:v": timeline.total_frames, "f": "mp4"})
    if threads is not None:
        opts["threads"] = threads
    if webm_video is None:
        out = ffmpeg.output(video, str(out_path), **opts)
    else:
        vs = video.filter_multi_output("split", 2)
        out = ffmpeg.merge_outputs(
            ffmpeg.output(vs[0], str(out_path), **opts),
            ffmpeg.output(vs[1], str(webm_video), **_webm_video_options(timeline), f="webm"),
        )
    args = [*encoder.input_args(), *(str(a) for a in out.get_args())]
    if threads is not None:
        args = ["-filter_complex_threads", str(threads), *args]
    return args


def build_audio_argv(timeline: Timeline, m4a: Path | str, *, wav: Path | str | None = None) -> list[str]:
    """The audio half: the (levelled) audio graph into AAC, and into PCM for a WebM's Opus."""
    audio = _audio_graph(timeline)
    aac = {**_aac_options(), "f": "mp4"}
    if wav is None:
        out = ffmpeg.output(audio, str(m4a), **aac)
    else:
        parts = audio.filter_multi_output("asplit", 2)
        out = ffmpeg.merge_outputs(ffmpeg.output(parts[0], str(m4a), **aac),
                                   ffmpeg.output(parts[1], str(wav), **{"c:a": "pcm_f32le", "f": "wav"}))
    return [str(a) for a in out.get_args()]


_BT709_SPS = ("h264_metadata=video_full_range_flag=0:colour_primaries=1:transfer_characteristics=1:"
              "matrix_coefficients=1")


def build_copy_video_argv(timeline: Timeline, out_path: Path | str, *, work_dir: Path | str | None = None) -> list[str]:
    """The stream-copy path's video half: the scenes' H.264 joined by the concat demuxer, untouched."""
    work = Path(work_dir) if work_dir is not None else Path(out_path).parent
    # BT.709 written into the SPS (metadata only): untagged sources get the tags.
    return ["-f", "concat", "-safe", "0", "-i", str(work / "scenes.ffconcat"), "-map", "0:v:0", "-c:v", "copy",
            "-bsf:v", _BT709_SPS, "-frames:v", str(timeline.total_frames), "-map_metadata", "-1", "-f", "mp4",
            str(out_path)]


def build_mux_argv(
    timeline: Timeline,
    out_path: Path | str,
    *,
    audio_m4a: Path | str,
    video: Path | str | None = None,
    work_dir: Path | str | None = None,
    webm_path: Path | str | None = None,
    webm_video: Path | str | None = None,
    wav: Path | str | None = None,
) -> list[str]:
    """Join the halves by stream copy: ``video`` (or, for a stream-copy timeline, the scenes
    through the concat demuxer) with ``audio_m4a``; and the WebM (VP9 copied, Opus encoded)."""
    args: list[str] = []
    if timeline.copy_video:
        work = Path(work_dir) if work_dir is not None else Path(out_path).parent
        args += ["-f", "concat", "-safe", "0", "-i", str(work / "scenes.ffconcat")]
    elif video is not None:
        args += ["-i", str(video)]
    else:
        raise InputError("build_mux_argv needs the encoded video (or a stream-copy timeline)")
    args += ["-i", str(audio_m4a)]
    if webm_path is not None:
        if webm_video is None or wav is None:
            raise InputError("a WebM needs its VP9 video and the PCM mix")
        args += ["-i", str(webm_video), "-i", str(wav)]
    args += ["-map", "0:v:0", "-map", "1:a:0", "-c", "copy"]
    if timeline.copy_video:
        # BT.709 written into the SPS (metadata only): untagged sources get the tags.
        args += ["-bsf:v", _BT709_SPS]
    args += ["-frames:v", str(timeline.total_frames), "-map_metadata", "-1", "-movflags", "+faststart",
             "-f", "mp4", str(out_path)]
    if webm_path is not None:
        args += ["-map", "2:v:0", "-map", "3:a:0", "-c:v", "copy"]
        for k, v in _OPUS_OPTIONS.items():
            args += [f"-{k}", str(v)]
        args += ["-map_metadata", "-1", "-f", "webm", str(webm_path)]
    return args


@dataclass(frozen=True)
class Assembled:
    """What :func:`assemble` did: the levels it measured, the encoder that made the video."""

    timeline: Timeline  # with its AudioLevels
    encoder: VideoEncoder | None  # None: the scenes were stream-copied
    audio_loudness: Loudness  # EBU R128 of the AAC stream now in the result
    failures: tuple[EncoderFailure, ...] = ()


def assemble(
    timeline: Timeline,
    out_path: Path | str,
    *,
    encoders: Sequence[VideoEncoder] = (LIBX264,),
    on_progress: ProgressCallback | None = None,
    on_failure: Callable[[EncoderFailure], None] | None = None,
    cancel: threading.Event | None = None,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int | None = None,
    webm_path: Path | str | None = None,
    timeout_s: float = 3600.0,
) -> Assembled:
    """Measure and level the audio while the video encodes, then mux: the service's path.

    ``timeline`` need not be levelled (its levels are measured here). A hardware encoder
    that fails is reported to ``on_failure`` and the next one (finally libx264) takes
    over. On any failure or cancellation nothing is left at ``out_path``/``webm_path``.
    """
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    out = Path(out_path)
    outputs = [out] + ([Path(webm_path)] if webm_path is not None else [])
    stop = threading.Event()  # set on the outer cancel, or when one half fails: the other stops too
    report = _monotonic(on_progress)
    failures: list[EncoderFailure] = []
    with _work_dir(out) as work:
        _write_captions(timeline, work)
        if timeline.copy_video:
            (work / "scenes.ffconcat").write_text(concat_list_text(timeline), encoding="utf-8")
        video_mp4, m4a = work / "video.mp4", work / "audio.m4a"
        webm_video = work / "video.webm" if webm_path is not None else None
        wav = work / "mix.wav" if webm_path is not None else None

        def audio_half() -> Timeline:
            levelled = level_audio(timeline, cancel=stop, timeout_s=timeout_s, scratch=work)
            run_ffmpeg(build_audio_argv(levelled, m4a, wav=wav), timeout_s=timeout_s, cancel=stop,
                       what="assembly (audio)")
            return levelled

        def video_half() -> VideoEncoder | None:
            if timeline.copy_video:
                run_ffmpeg(build_copy_video_argv(timeline, video_mp4, work_dir=work), timeout_s=timeout_s,
                           cancel=stop, what="assembly (video copy)")
                return None
            chain = list(encoders) or [LIBX264]
            for n, enc in enumerate(chain):
                if stop.is_set():
                    raise OperationCancelled("assembly cancelled")
                argv = build_video_argv(timeline, video_mp4, preset=preset, crf=crf, threads=threads, encoder=enc,
                                        webm_video=webm_video, work_dir=work)
                log.debug("assembly video argv: %s", argv)
                try:
                    run_ffmpeg(argv, timeout_s=timeout_s, duration_s=timeline.duration_s,
                               on_progress=(lambda f: report(0.95 * f)) if report else None, cancel=stop,
                               what="assembly (video)")
                    return enc
                except OperationCancelled:
                    raise
                except MediaError as exc:
                    if n == len(chain) - 1:
                        raise
                    log.warning("assembly: %s failed, falling back to %s: %s", enc.name, chain[n + 1].name,
                                exc.message)
                    failure = EncoderFailure(enc.name, exc.message[-600:])
                    failures.append(failure)
                    if on_failure is not None:
                        on_failure(failure)
            raise AssertionError("unreachable")  # pragma: no cover

        log.info(
            "assembly: %d scene(s), %d frames (%d held, %d overlapped) at %dx%d@%d, %s",
            len(timeline.scenes), timeline.total_frames, timeline.hold_frames, timeline.overlap_frames,
            timeline.width, timeline.height, timeline.fps,
            "stream copy" if timeline.copy_video else f"encoders {[e.name for e in encoders]}",
        )
        try:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="assembly") as pool:
                fa, fv = pool.submit(audio_half), pool.submit(video_half)
                pending = {fa, fv}
                while pending:
                    done, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                    if (cancel is not None and cancel.is_set()) or any(f.exception() for f in done):
                        stop.set()
            if cancel is not None and cancel.is_set():
                raise OperationCancelled("assembly cancelled")
            for f in (fv, fa):  # the real failure, not the other half's cancellation
                exc = f.exception()
                if exc is not None and not isinstance(exc, OperationCancelled):
                    raise exc
            for f in (fv, fa):
                if f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]
            levelled = fa.result()
            used = fv.result()
            mux = build_mux_argv(replace(levelled, copy_video=False), out, audio_m4a=m4a, video=video_mp4,
                                 webm_path=webm_path, webm_video=webm_video, wav=wav)
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="assembly") as pool:
                fm = pool.submit(run_ffmpeg, mux, timeout_s=timeout_s, cancel=cancel, what="assembly (mux)")
                fl = pool.submit(measure_loudness, m4a, cancel=cancel, timeout_s=timeout_s, scratch=work)
                fm.result()
                loudness = fl.result()
            if cancel is not None and cancel.is_set():
                raise OperationCancelled("assembly cancelled")
        except BaseException:
            for p in outputs:
                p.unlink(missing_ok=True)
            raise
    if report:
        report(1.0)
    return Assembled(timeline=replace(levelled, copy_video=timeline.copy_video), encoder=used,
                     audio_loudness=loudness, failures=tuple(failures))
