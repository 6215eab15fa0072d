"""Assembly: scenes + narration -> one MP4, in one ffmpeg run and one encode pass.

Spec -> timeline -> filter graph -> argv -> run (HOUSE.md):

* :func:`build_timeline` turns probed scenes into a frozen :class:`Timeline`: every scene
  snapped to the output frame grid (integer frames, integer-millisecond offsets), the
  last-frame hold that keeps the narration from being cut off, and the exact audio
  length. Pure: no ffmpeg, no I/O.
* :func:`build_argv` turns a timeline into one ffmpeg argument list holding a single
  ``-filter_complex`` graph, built as data with ffmpeg-python (which never runs anything
  here). The graph is a row of small stages so later ones slot in: per-scene video
  chains -> concat -> hold -> ``video_post`` (captions, overlays); narration -> mix ->
  ``audio_post`` (loudnorm) -> exact length.
* :func:`render` runs it through :func:`core.media.ffmpeg.run_ffmpeg` and probes the result.

Output settings follow DESIGN.md §6 (YouTube's recommended upload settings): H.264 High
yuv420p, closed GOP of half the frame rate, 2 B-frames, BT.709, AAC-LC 48 kHz stereo at
384 kb/s, ``+faststart``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg
from ffmpeg.nodes import InputNode

from core.errors import InputError, MediaError
from core.media.ffmpeg import ProgressCallback, run_ffmpeg
from core.media.probe import MediaInfo, probe

__all__ = [
    "SceneInput",
    "NarrationInput",
    "FilterStep",
    "TimelineScene",
    "Timeline",
    "build_timeline",
    "build_argv",
    "render",
    "describe_encode",
    "frames_for",
    "DEFAULT_PRESET",
    "DEFAULT_CRF",
    "DEFAULT_TAIL_S",
    "AUDIO_SAMPLE_RATE",
    "AUDIO_BITRATE",
    "ENCODER",
]

log = logging.getLogger(__name__)

# BENCHMARKS.md: veryfast is the knee (2.3-2.7x smaller files than ultrafast/superfast for
# 30-100 % more time; medium buys ~1.3 dB for 80 % more).
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 20
DEFAULT_TAIL_S = 0.5
AUDIO_SAMPLE_RATE = 48_000
AUDIO_BITRATE = "384k"
ENCODER = "libx264"

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


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SceneInput:
    """A scene clip and its probe result (probe once, at ~0.1 s a file, and keep it)."""

    path: Path
    info: MediaInfo


@dataclass(frozen=True)
class NarrationInput:
    """The narration track: any format, sample rate or channel count ffmpeg can read."""

    path: Path
    duration_s: float


@dataclass(frozen=True)
class FilterStep:
    """One filter of a post-processing hook, as data: ``FilterStep.of("loudnorm", I=-14)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, *args: Any, **kwargs: Any) -> FilterStep:
        return cls(name, tuple(args), tuple(kwargs.items()))


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class TimelineScene:
    """One scene placed on the output frame grid. ``frames`` is the truth; ms are derived."""

    path: Path
    index: int
    in_ms: int
    start_frame: int
    frames: int
    start_ms: int
    duration_ms: int
    source_duration_s: float
    source_fps: float
    source_width: int
    source_height: int
    color_matrix: str  # scale filter's in_color_matrix for this source
    has_audio: bool


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    fps: int
    scenes: tuple[TimelineScene, ...]
    scene_frames: int  # sum of the scenes' frames
    hold_frames: int  # the last scene's final frame repeated this many times
    total_frames: int
    hold_ms: int
    duration_ms: int
    narration: NarrationInput | None = None
    tail_s: float = DEFAULT_TAIL_S
    # Hooks for later stages; each runs inside the same graph (one encode pass).
    video_post: tuple[FilterStep, ...] = ()
    audio_post: tuple[FilterStep, ...] = ()

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
) -> Timeline:
    """Place ``scenes`` back to back on the ``fps`` grid and fit the narration to them.

    The video lasts the sum of the scenes; when the narration runs longer, the last
    scene's final frame is held until the narration has ended plus ``tail_s``
    (DESIGN.md §6: no sentence is ever cut off); when it is shorter, it is padded with
    silence.
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

    placed: list[TimelineScene] = []
    frame = 0
    for i, scene in enumerate(scenes):
        path = Path(scene.path)
        v = scene.info.video
        if v is None:
            raise InputError(f"scene {i + 1} ({path.name}) has no video stream")
        duration_s = _scene_duration_s(scene.info)
        n = frames_for(duration_s, fps)
        if n < 1:
            raise InputError(
                f"scene {i + 1} ({path.name}) lasts {duration_s:.3f} s, shorter than one frame at {fps} fps"
            )
        placed.append(
            TimelineScene(
                path=path,
                index=i,
                in_ms=0,
                start_frame=frame,
                frames=n,
                start_ms=_ms(frame, fps),
                duration_ms=_ms(frame + n, fps) - _ms(frame, fps),
                source_duration_s=duration_s,
                source_fps=v.fps or 0.0,
                source_width=v.width,
                source_height=v.height,
                color_matrix=_color_matrix(scene.info),
                has_audio=scene.info.audio is not None,
            )
        )
        frame += n
    scene_frames = frame

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
    )


# --------------------------------------------------------------------------- graph


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


def _video_chain(scene: TimelineScene, source: Any, tl: Timeline) -> Any:
    """One scene -> exactly ``scene.frames`` frames of W x H yuv420p at the output rate."""
    v = source.filter("trim", start=_num(scene.in_ms / 1000), duration=_num(scene.frames / tl.fps))
    # Timestamps from zero, or concat inherits the offset (BENCHMARKS.md: 901 frames for 900).
    v = v.filter("setpts", "PTS-STARTPTS")
    # Drop surplus frames before scaling them (BENCHMARKS.md); a slower source is scaled
    # first and its duplicates made after, as references, for free.
    fps_first = scene.source_fps <= 0 or scene.source_fps > tl.fps
    if fps_first:
        v = v.filter("fps", fps=tl.fps)
    v = v.filter(
        "scale",
        w=tl.width,
        h=tl.height,
        # contain: fit inside, keep the display aspect (reset_sar honours anamorphic
        # sources), even sizes for 4:2:0.
        force_original_aspect_ratio="decrease",
        force_divisible_by=2,
        reset_sar=1,
        # Convert (in the same pass) to the BT.709 the output is tagged with.
        in_color_matrix=scene.color_matrix,
        out_color_matrix="bt709",
        out_range="tv",
    )
    v = v.filter("pad", w=tl.width, h=tl.height, x="(ow-iw)/2", y="(oh-ih)/2", color="black")
    v = v.filter("setsar", "1")
    v = v.filter("format", "yuv420p")
    if not fps_first:
        v = v.filter("fps", fps=tl.fps)
    # fps ends where the last source frame kept ends, rounded to the grid: a frame long
    # when that frame reaches past the cut (24 fps cut at 29/30 s gives 30 frames), a frame
    # short when the stream ends before its declared duration. Clone the last frame, then
    # cut at the exact count; trim closes its input once done, so the clones cost nothing.
    v = v.filter("tpad", stop_mode="clone", stop=scene.frames)
    return v.filter("trim", end_frame=scene.frames)


def _concat(chains: Sequence[Any]) -> Any:
    if len(chains) == 1:
        return chains[0]
    return ffmpeg.concat(*chains, v=1, a=0)


def _hold(video: Any, tl: Timeline) -> Any:
    if not tl.hold_frames:
        return video
    # A frame count rather than stop_duration: a duration would be rounded back to frames.
    return video.filter("tpad", stop_mode="clone", stop=tl.hold_frames)


def _tag_bt709(video: Any) -> Any:
    # ffmpeg >= 7 takes an encoder's primaries and transfer from the frames, not from
    # -color_primaries/-color_trc: tag the frames (metadata only, the pixels were
    # converted to BT.709 by each scene's scale).
    return video.filter("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv")


def _narration_chain(source: Any) -> Any:
    """Any narration (22.05 kHz mono, 44.1 kHz, 5.1 ...) -> 48 kHz stereo float."""
    a = source.filter("aresample", AUDIO_SAMPLE_RATE)
    return a.filter("aformat", sample_fmts="fltp", sample_rates=AUDIO_SAMPLE_RATE, channel_layouts="stereo")


def _silence() -> Any:
    return _input(f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl=stereo", "silence", f="lavfi").audio


def _audio_mix(tl: Timeline, narration: Any | None) -> Any:
    """The soundtrack before post-processing. Scene audio and music join here later."""
    if narration is None:
        return _silence()
    return narration


def _fit_audio(audio: Any, tl: Timeline) -> Any:
    """Exactly as long as the video, to the sample: pad with silence, then cut."""
    n = tl.audio_samples
    return audio.filter("apad", whole_len=n).filter("atrim", end_sample=n)


def _graph(tl: Timeline) -> tuple[Any, Any]:
    chains = [_video_chain(s, _input(s.path, s.index)["v:0"], tl) for s in tl.scenes]
    video = _tag_bt709(_apply(_hold(_concat(chains), tl), tl.video_post))

    narration = None
    if tl.narration is not None:
        narration = _narration_chain(_input(tl.narration.path, "narration")["a:0"])
    audio = _fit_audio(_apply(_audio_mix(tl, narration), tl.audio_post), tl)
    return video, audio


def _output_options(tl: Timeline, *, preset: str, crf: int, threads: int | None) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "c:v": ENCODER,
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "preset": preset,
        "crf": crf,
        "g": tl.gop,
        "bf": 2,
        # Closed GOP for YouTube: +cgop is how libavcodec says it, open-gop=0 how x264 does.
        # x264 signals the lowest profile the stream needs and ultrafast turns the 8x8
        # transform off, which would make it Main; 8x8dct keeps every preset High.
        "flags:v": "+cgop",
        "x264-params": "open-gop=0:8x8dct=1",
        "colorspace": "bt709",
        "color_primaries": "bt709",
        "color_trc": "bt709",
        "color_range": "tv",
        "r": tl.fps,
        # The graph already yields exactly this many; the cap makes it a guarantee.
        "frames:v": tl.total_frames,
        "c:a": "aac",
        "b:a": AUDIO_BITRATE,
        "ar": AUDIO_SAMPLE_RATE,
        "ac": 2,
        "movflags": "+faststart",
        "map_metadata": -1,  # nothing of the sources' tags (phone GPS, encoder names)
        "f": "mp4",  # the caller writes to a temporary name such as final.mp4.part
    }
    if threads is not None:
        opts["threads"] = threads
    return opts


def build_argv(
    timeline: Timeline,
    out_path: Path | str,
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int | None = None,
) -> list[str]:
    """The ffmpeg arguments (without the executable) rendering ``timeline`` to ``out_path``.

    One invocation, one ``-filter_complex``, one video encode. ``threads=None`` leaves
    x264 and the filter graph to size themselves (BENCHMARKS.md: ``-threads 1`` was 1.5x
    slower); a number caps both, for jobs that share a machine.
    """
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, not {threads!r}")
    video, audio = _graph(timeline)
    out = ffmpeg.output(
        video, audio, str(out_path), **_output_options(timeline, preset=preset, crf=crf, threads=threads)
    )
    args = [str(a) for a in out.get_args()]
    if threads is not None:
        args = ["-filter_complex_threads", str(threads), *args]
    return args


# --------------------------------------------------------------------------- run


def describe_encode(timeline: Timeline) -> dict[str, Any]:
    """How the result is encoded, for the job record: always one libx264 pass here."""
    return {
        "encoder": ENCODER,
        "passes": 1,
        "stream_copy": False,
        "frames": timeline.total_frames,
        "duration_s": round(timeline.duration_s, 6),
        "width": timeline.width,
        "height": timeline.height,
        "fps": timeline.fps,
        "hold_s": round(timeline.hold_frames / timeline.fps, 6),
        "scenes": len(timeline.scenes),
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
) -> MediaInfo:
    """Render ``timeline`` to ``out_path`` and return the probe of what was written.

    On any failure or cancellation the (partial) ``out_path`` is removed before the error
    propagates: :class:`MediaError`, :class:`OperationCancelled`.
    """
    out = Path(out_path)
    argv = build_argv(timeline, out, preset=preset, crf=crf, threads=threads)
    log.info(
        "assembly: %d scene(s), %d frames (%d held) at %dx%d@%d -> %s",
        len(timeline.scenes),
        timeline.total_frames,
        timeline.hold_frames,
        timeline.width,
        timeline.height,
        timeline.fps,
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
        out.unlink(missing_ok=True)
        raise
    if info.video is None or info.audio is None:
        out.unlink(missing_ok=True)
        raise MediaError(f"assembly wrote {out.name} without a video and an audio stream")
    if info.video.frames is not None and info.video.frames != timeline.total_frames:
        log.warning("assembly: %s has %d frames, expected %d", out.name, info.video.frames, timeline.total_frames)
    return info
