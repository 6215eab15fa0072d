"""Assembly: scenes + narration (+ music, captions, overlays, watermark) -> one MP4 in one encode pass.

Spec -> timeline -> filter graphs -> argv -> runs (HOUSE.md):

* :func:`core.media.timeline.build_timeline` turns probed scenes into a frozen
  :class:`~core.media.timeline.Timeline`: every scene snapped to the output frame grid,
  explicit crossfade overlaps, the last-frame hold that keeps the narration from being cut
  off, the exact audio length, what is drawn and the audio sources. Pure: no ffmpeg, no I/O.
* :func:`core.media.mix.level_audio` measures the audio (audio-only runs) and returns the
  timeline with its levels; :func:`core.media.mix.audio_graph` is the mix as data.
* :func:`core.media.videograph.video_graph` is the picture as data.
* Here, the argument lists (:func:`build_video_argv`, :func:`build_audio_argv`,
  :func:`build_copy_video_argv`, :func:`build_mux_argv`) and :func:`assemble`, which runs
  them: the video encode beside the audio's measuring and encoding, then one stream-copy
  mux. When every scene already is the target format and nothing is drawn, the video is
  stream-copied (concat demuxer) and only the audio is encoded.

Output settings follow DESIGN.md §6 (core.media.formats; YouTube's recommended upload
settings): H.264 High yuv420p, closed GOP of half the frame rate, 2 B-frames, CRF capped by
the bitrate table's maxrate, BT.709, AAC-LC 48 kHz stereo at 384 kb/s, ``+faststart``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ffmpeg

from core.errors import InputError, MediaError, OperationCancelled
from core.media.encoders import LIBX264, VideoEncoder
from core.media.ffmpeg import ProgressCallback, requires, run_ffmpeg
from core.media.filtergraph import num
from core.media.formats import AUDIO_CHANNELS, AUDIO_SAMPLE_RATE, BT709_OUTPUT_OPTIONS, FINAL_AUDIO_BITRATE
from core.media import chunks
from core.media.mix import audio_graph, level_audio, measure_loudness
from core.media.timeline import Loudness, Timeline
from core.media.videograph import video_graph
from core.media.youtube import max_bitrate_kbps

__all__ = [
    "assemble",
    "Assembled",
    "EncoderFailure",
    "build_video_argv",
    "build_audio_argv",
    "build_copy_video_argv",
    "build_mux_argv",
    "concat_list_text",
    "describe_encode",
    "AUDIO_OPTIONS",
    "DEFAULT_PRESET",
    "DEFAULT_CRF",
]

log = logging.getLogger(__name__)

# BENCHMARKS.md: veryfast is the knee (2.3-2.7x smaller files than ultrafast/superfast for
# 30-100 % more time; medium buys ~1.3 dB for 80 % more).
DEFAULT_PRESET = "veryfast"

DEFAULT_CRF = 20

# BT.709 written into the SPS (metadata only, no re-encode): untagged sources of the
# stream-copy path get the tags; tagged ones are rewritten with the same values.
# What the argv below asks of ffmpeg (checked when the build is chosen; the graph's filters
# are declared in core.media.videograph, the mix's in core.media.mix).
requires(
    encoders=("libx264", "aac", "libvpx-vp9", "libopus", "pcm_f32le"),
    bsfs=("h264_metadata",),
    cli=("filter_complex_threads",),
)

_BT709_SPS = ("h264_metadata=video_full_range_flag=0:colour_primaries=1:transfer_characteristics=1:"
              "matrix_coefficients=1")

# --------------------------------------------------------------------------- options


def _aac_options() -> dict[str, Any]:
    return {
        "c:a": "aac",
        # The native encoder's defaults (twoloop search, mid/side decisions) spent 1.8 CPU-s
        # on 30 s at 384 kb/s; the fast coder without the M/S search took 0.26 CPU-s and came
        # out closer to the source (55 dB waveform SNR against 48.9) and to 384 kb/s: at
        # this rate the bit-saving searches only cost time.
        "aac_coder": "fast",
        "aac_ms": 0,
        "b:a": FINAL_AUDIO_BITRATE,
        "ar": AUDIO_SAMPLE_RATE,
        "ac": AUDIO_CHANNELS,
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
        **BT709_OUTPUT_OPTIONS,
        "r": tl.fps,
        "frames:v": tl.total_frames,
    }


_OPUS_OPTIONS = {"c:a": "libopus", "b:a": "192k", "ar": AUDIO_SAMPLE_RATE, "ac": AUDIO_CHANNELS}


def concat_list_text(tl: Timeline) -> str:
    """The concat demuxer's list for the stream-copy path (``duration`` keeps timestamps exact)."""
    lines = ["ffconcat version 1.0"]
    for s in tl.scenes:
        quoted = str(Path(s.path).resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {num(s.frames / tl.fps)}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- argv
#
# The job is cut in two and run side by side, because the audio needs measuring before it
# can be mixed, and measuring first would put ~2 s of audio-only runs in front of the
# encode while one of the two cores sat idle (the encode keeps ~1.4 of 2 busy: its filter
# graph is one thread). So:
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
    skip_frames: int = 0,
    offset_frames: int = 0,
) -> list[str]:
    """The video half: the whole video graph into one encode, no audio (and a VP9 copy of the graph's output).

    ``work_dir`` is where :func:`assemble` puts the files the graph reads (the ASS document
    and its fonts). ``threads=None`` leaves the encoder and the filter graph to size
    themselves (BENCHMARKS.md: ``-threads 1`` was 1.5x slower); a number caps both, for
    jobs that share a machine.
    """
    if timeline.copy_video:
        raise InputError("a stream-copied timeline has no video to encode: mux it (build_mux_argv)")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, not {threads!r}")
    work = Path(work_dir) if work_dir is not None else Path(out_path).parent
    video = video_graph(timeline, work, encoder, skip_frames=skip_frames, offset_frames=offset_frames)
    opts = encoder.output_options(gop=timeline.gop, crf=crf,
                                  maxrate_kbps=max_bitrate_kbps(timeline.width, timeline.height, timeline.fps),
                                  preset=preset)
    # The graph already yields exactly total_frames; -frames:v makes it a guarantee.
    opts.update({**BT709_OUTPUT_OPTIONS, "r": timeline.fps, "frames:v": timeline.total_frames, "f": "mp4"})
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
    """The audio half: the (levelled) audio graph into AAC, and into PCM for a WebM's Opus.

    A stream-copy timeline's sound still comes from each scene file separately (never
    concatenated AAC: BENCHMARKS.md, 34.7 ms of drift per boundary)."""
    audio = audio_graph(timeline)
    aac = {**_aac_options(), "f": "mp4"}
    if wav is None:
        out = ffmpeg.output(audio, str(m4a), **aac)
    else:
        parts = audio.filter_multi_output("asplit", 2)
        out = ffmpeg.merge_outputs(ffmpeg.output(parts[0], str(m4a), **aac),
                                   ffmpeg.output(parts[1], str(wav), **{"c:a": "pcm_f32le", "f": "wav"}))
    return [str(a) for a in out.get_args()]


def build_webm_video_argv(timeline: Timeline, video: Path | str, webm_video: Path | str) -> list[str]:
    """The WebM export's VP9 made from the joined segments (a ``.ffconcat`` list): an export beside the master."""
    src = ["-f", "concat", "-safe", "0", "-i", str(video)] if Path(video).suffix == ".ffconcat" else ["-i", str(video)]
    args = [*src, "-map", "0:v:0"]
    for k, v in _webm_video_options(timeline).items():
        args += [f"-{k}", str(v)]
    return [*args, "-threads", "2", "-map_metadata", "-1", "-f", "webm", str(webm_video)]


def build_copy_video_argv(timeline: Timeline, out_path: Path | str, *, work_dir: Path | str | None = None) -> list[str]:
    """The stream-copy path's video half: the scenes' H.264 joined by the concat demuxer, untouched."""
    work = Path(work_dir) if work_dir is not None else Path(out_path).parent
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
    """Join the halves by stream copy: ``video`` (a file, or a ``.ffconcat`` list of segments; for a
    stream-copy timeline, the scenes through the concat demuxer) with ``audio_m4a``; and the WebM
    (VP9 copied, Opus encoded)."""
    args: list[str] = []
    if timeline.copy_video:
        work = Path(work_dir) if work_dir is not None else Path(out_path).parent
        args += ["-f", "concat", "-safe", "0", "-i", str(work / "scenes.ffconcat")]
    elif video is not None and Path(video).suffix == ".ffconcat":
        args += ["-f", "concat", "-safe", "0", "-i", str(video)]  # the segments, joined by copy (core.media.chunks)
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
        args += ["-bsf:v", _BT709_SPS]
    # -map_metadata -1: nothing of the sources' tags (phone GPS, encoder names).
    # Both halves already hold exactly the frames and samples: no -frames:v (ffmpeg 5.1 ends
    # every stream of the file with it, and would cut the audio short).
    args += ["-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", str(out_path)]
    if webm_path is not None:
        args += ["-map", "2:v:0", "-map", "3:a:0", "-c:v", "copy"]
        for k, v in _OPUS_OPTIONS.items():
            args += [f"-{k}", str(v)]
        args += ["-map_metadata", "-1", "-f", "webm", str(webm_path)]
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


@dataclass(frozen=True)
class EncoderFailure:
    """A hardware encoder that failed (at start or mid-way) and was replaced by the next one."""

    encoder: str
    reason: str  # the tail of ffmpeg's own words


def _first_working(encoders: Sequence[VideoEncoder], encode: Callable[[VideoEncoder], None],
                   on_failure: Callable[[EncoderFailure], None], stop: threading.Event) -> VideoEncoder:
    """Run ``encode`` with each encoder in turn until one succeeds (libx264 when none is given).

    A failure of the last one is raised; cancellation is never a failure to fall back from.
    """
    chain = list(encoders) or [LIBX264]
    for n, enc in enumerate(chain):
        if stop.is_set():
            # run_ffmpeg notices a cancel while ffmpeg runs; one that came between runs is seen here.
            raise OperationCancelled("assembly cancelled")
        try:
            encode(enc)
            return enc
        except OperationCancelled:
            raise
        except MediaError as exc:
            if n == len(chain) - 1:
                raise
            log.warning("assembly: %s failed, falling back to %s: %s", enc.name, chain[n + 1].name, exc.message)
            on_failure(EncoderFailure(enc.name, exc.message[-600:]))
    raise AssertionError("unreachable")  # pragma: no cover


# More audio sources than this and the audio runs take a video encode's place while they run
# (120 one-second scenes, 30 with sound: the measuring run held 117 MiB beside two encodes).
AUDIO_INPUTS_BESIDE_ENCODES = 8


def _audio_inputs(tl: Timeline) -> int:
    return sum(s.has_audio for s in tl.scenes) + (tl.narration is not None) + (tl.music is not None)


@dataclass(frozen=True)
class Assembled:
    """What :func:`assemble` did: the levels it measured, the encoder that made the video, the chunks."""

    timeline: Timeline  # with its AudioLevels
    encoder: VideoEncoder | None  # None: the scenes were stream-copied
    audio_loudness: Loudness  # EBU R128 of the AAC stream now in the result
    failures: tuple[EncoderFailure, ...] = ()
    segments_reused: int = 0  # video segments taken unchanged from the last render (core.media.chunks)
    segments_encoded: int = 0
    chunks: int = 0  # encodes run (each a few segments)


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
    cache_dir: Path | None = None,
    hash_of: Callable[[Path], str] | None = None,
    workers: int | None = None,
    chunk_scenes: int = chunks.CHUNK_SCENES,
    run_chunk: Callable[..., list[Path]] = chunks.render_chunk,
) -> Assembled:
    """Measure and level the audio while the video renders in chunks, then mux: the service's path.

    ``timeline`` need not be levelled (its levels are measured here). The video is rendered
    as segments (core.media.chunks): those whose key is in ``cache_dir`` are reused, the rest
    encoded in chunks of at most ``chunk_scenes`` scenes, ``workers`` at a time (default:
    :func:`chunk_workers`), and joined by stream copy. ``hash_of`` names an input's content
    in the keys (default: its SHA-256 remembered in ``cache_dir``, see
    :class:`~core.media.chunks.ContentHashes`; without a cache, size and mtime). ``run_chunk``
    renders one chunk (default: here; a scale-out worker passes one that fans chunks out). A hardware encoder
    that fails is reported to ``on_failure`` and the next one (finally libx264) takes over.
    On any failure or cancellation nothing is left at ``out_path``/``webm_path``.
    """
    out = Path(out_path)
    outputs = [out] + ([Path(webm_path)] if webm_path is not None else [])
    stop = threading.Event()  # set on the outer cancel, or when one half fails: the other stops too
    report = _monotonic(on_progress)
    failures: list[EncoderFailure] = []
    rendered: list[chunks.SegmentsRendered] = []
    hashes = chunks.ContentHashes(cache_dir) if cache_dir is not None and hash_of is None else None
    hash_of = hash_of or hashes or chunks.stat_identity
    with _work_dir(out) as work:
        if timeline.copy_video:
            (work / "scenes.ffconcat").write_text(concat_list_text(timeline), encoding="utf-8")
        video_list, m4a = work / "video.ffconcat", work / "audio.m4a"
        webm_video = work / "video.webm" if webm_path is not None else None
        wav = work / "mix.wav" if webm_path is not None else None

        n_workers = workers or chunks.chunk_workers(timeline)
        # The audio runs open every source at once (~2.5 MiB each): with many, they take the
        # place of one video encode while they run, so the process tree's memory stays flat
        # however many scenes have sound (and the cores stay as busy: the audio uses one).
        slots = threading.Semaphore(n_workers)
        audio_slot = (n_workers > 1 and not timeline.copy_video
                      and _audio_inputs(timeline) > AUDIO_INPUTS_BESIDE_ENCODES and slots.acquire(blocking=False))

        def audio_half() -> Timeline:
            try:
                levelled = level_audio(timeline, cancel=stop, timeout_s=timeout_s, scratch=work)
                run_ffmpeg(build_audio_argv(levelled, m4a, wav=wav), timeout_s=timeout_s, cancel=stop,
                           what="assembly (audio)")
            finally:
                if audio_slot:
                    slots.release()
            return levelled

        def video_half() -> VideoEncoder | None:
            if timeline.copy_video:
                run_ffmpeg(build_copy_video_argv(timeline, work / "video.mp4", work_dir=work), timeout_s=timeout_s,
                           cancel=stop, what="assembly (video copy)")
                return None

            def encode(enc: VideoEncoder) -> None:
                settings = chunks.EncodeSettings(
                    enc.name, preset, crf, max_bitrate_kbps(timeline.width, timeline.height, timeline.fps))
                done = chunks.render_segments(
                    timeline, work, settings=settings, cache_dir=cache_dir, hash_of=hash_of,
                    workers=n_workers, max_scenes=chunk_scenes, cancel=stop, slots=slots, run_chunk=run_chunk,
                    on_progress=(lambda f: report(0.95 * f)) if report else None, timeout_s=timeout_s,
                    threads=threads)
                rendered.append(done)
                video_list.write_text(chunks.segments_concat_text(done.files, done.frames, timeline.fps),
                                      encoding="utf-8")
                if webm_video is not None:
                    run_ffmpeg(build_webm_video_argv(timeline, video_list, webm_video), timeout_s=timeout_s,
                               cancel=stop, what="assembly (WebM video)")

            def failed(failure: EncoderFailure) -> None:
                failures.append(failure)
                if on_failure is not None:
                    on_failure(failure)

            return _first_working(encoders, encode, failed, stop)

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
            mux = build_mux_argv(replace(levelled, copy_video=False), out, audio_m4a=m4a,
                                 video=work / "video.mp4" if timeline.copy_video else video_list,
                                 webm_path=webm_path, webm_video=webm_video, wav=wav)
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="assembly") as pool:
                fm = pool.submit(run_ffmpeg, mux, timeout_s=timeout_s, cancel=cancel, what="assembly (mux)")
                fl = pool.submit(measure_loudness, m4a, cancel=cancel, timeout_s=timeout_s, scratch=work)
                fm.result()
                loudness = fl.result()
            if cancel is not None and cancel.is_set():
                raise OperationCancelled("assembly cancelled")
            if cache_dir is not None and rendered:
                chunks.keep_segments(rendered[-1], cache_dir, hashes)
        except BaseException:
            for p in outputs:
                p.unlink(missing_ok=True)
            raise
    if report:
        report(1.0)
    last = rendered[-1] if rendered else None
    return Assembled(timeline=replace(levelled, copy_video=timeline.copy_video), encoder=used,
                     audio_loudness=loudness, failures=tuple(failures),
                     segments_reused=last.reused if last else 0, segments_encoded=last.encoded if last else 0,
                     chunks=sum(r.chunks for r in rendered))
