"""Assembly: scenes + narration (+ music, captions, overlays, watermark) -> one MP4 in one encode pass.

Spec -> timeline -> filter graph -> argv -> run (HOUSE.md):

* :func:`build_timeline` (core.media.timeline) turns probed scenes into a frozen :class:`Timeline`: every scene
  snapped to the output frame grid (integer frames, integer-millisecond offsets),
  explicit per-boundary crossfade overlaps, the last-frame hold that keeps the narration
  from being cut off, the exact audio length, what is drawn (an ASS document of captions
  and overlays, a watermark) and the audio sources. Pure: no ffmpeg, no I/O.
* :func:`level_audio` (core.media.mix, with the audio graph) measures the audio (audio-only ffmpeg runs to ``-f null``, cheap:
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

This module holds the video graph, the argument lists and the runs; it re-exports the
timeline's and the mix's public names, so callers import everything assembly from here.

Output settings follow DESIGN.md §6 (YouTube's recommended upload settings): H.264 High
yuv420p, closed GOP of half the frame rate, 2 B-frames, CRF capped by the bitrate table's
maxrate, BT.709, AAC-LC 48 kHz stereo at 384 kb/s, ``+faststart``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ffmpeg

from core.errors import InputError, MediaError, OperationCancelled
from core.media.encoders import LIBX264, VideoEncoder
from core.media.ffmpeg import ProgressCallback, run_ffmpeg
from core.media.filtergraph import apply_steps, input_node, num
from core.media.fonts import FONT_DIR
from core.media.mix import (
    LIMITER_CEILING_DBTP,
    audio_graph,
    finish_levels,
    level_audio,
    measure_loudness,
    plan_levels,
)
from core.media.probe import MediaInfo, probe
from core.media.timeline import (
    AUDIO_SAMPLE_RATE,
    DEFAULT_TAIL_S,
    AudioLevels,
    Background,
    ChromaKey,
    FilterStep,
    Loudness,
    MixSettings,
    MusicInput,
    NarrationInput,
    SceneInput,
    Timeline,
    TimelineScene,
    Watermark,
    build_timeline,
    frames_for,
    silent_aac_track,
    stream_copy_blockers,
)
from core.media.youtube import max_bitrate_kbps

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

AUDIO_BITRATE = "384k"

ENCODER = LIBX264.name

# --------------------------------------------------------------------------- graph: video



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
    v = v.filter("trim", start=num(clip.in_ms / 1000), duration=num(frames / tl.fps))
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
    bg = _clip_chain(input_node(b.path, f"bg{scene.index}")["v:0"], bg_clip, scene.frames, tl)
    clip = _clip_of(scene)
    fg, fps_first = _trimmed(source, clip, scene.frames, tl)
    fg = _scale(fg, clip, tl.width, tl.height, fit="decrease")
    fg = fg.filter("format", "yuva420p")
    key = scene.chroma
    fg = fg.filter("chromakey", color=_hex(key.color), similarity=num(key.similarity), blend=num(key.blend))
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
                                duration=num(scene.overlap_frames / tl.fps), offset=num(scene.start_frame / tl.fps))
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
    img = input_node(wm.path, "watermark")["v:0"].filter("format", "rgba")
    img = img.filter("colorchannelmixer", aa=num(wm.opacity))
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
        source = input_node(s.path, s.index)["v:0"]
        chains.append(_presenter_chain(source, s, tl) if s.background else _clip_chain(source, _clip_of(s), s.frames, tl))
    video = _hold(_join(chains, tl), tl)
    video = _subtitles(_watermark(video, tl), tl, work_dir)
    video = _tag_bt709(apply_steps(video, tl.video_post))
    for name, kwargs in encoder.upload_filters():
        video = video.filter(name, **kwargs)
    return video


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
        lines += [f"file '{quoted}'", f"duration {num(s.frames / tl.fps)}"]
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
    audio = audio_graph(timeline)
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
    scenes = input_node(work / "scenes.ffconcat", "concat", f="concat", safe=0)["v:0"]
    opts: dict[str, Any] = {"c:v": "copy", "frames:v": tl.total_frames, **_audio_options()}
    out = ffmpeg.output(scenes, audio, str(out_path), **opts)
    args = [str(a) for a in out.get_args()]
    # BT.709 written into the SPS (metadata only, no re-encode): untagged sources get the
    # tags the copy path requires; tagged ones are rewritten with the same values.
    i = args.index("-c:v")
    args[i + 2:i + 2] = ["-bsf:v", "h264_metadata=video_full_range_flag=0:colour_primaries=1:"
                         "transfer_characteristics=1:matrix_coefficients=1"]
    return args


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
    audio = audio_graph(timeline)
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

