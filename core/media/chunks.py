"""Chunked rendering: the frozen timeline cut at scene boundaries, each piece encoded once, joined by copy.

    timeline ─ plan_segments ─ segment 0 | segment 1 | ... (one per scene: [end of the fade-in, end of the next fade-in))
                   │ each keyed by everything that shapes its frames (segment_keys)
                   ├ cached?  -> reused as it is (its bytes, so its frames are bit-identical)
                   └ missing  -> ChunkJob (a few neighbouring segments, one ffmpeg) -> render_chunk
    segments ─ concat demuxer, stream copy ─ the video stream

A **segment** is what is cached and joined: the frames from the end of one scene's
crossfade-in to the end of the next one's (plain cuts: exactly one scene; the last segment
carries the held frame). Its frames depend only on what its key holds (the scenes that show
in it by content hash and placement, the captions that show in it, the watermark, the
picture settings, the encoder and its settings, the ffmpeg build), so a segment whose key is
unchanged is reused from the last render of the video, byte for byte.

A **chunk** is one encode: :class:`ChunkJob`, a serialisable description of a few
neighouring segments still to make (its own small timeline: at most a few inputs open at
once, so memory does not grow with the video). :func:`render_chunk` runs it: one filter
graph, one encoder, its output split into segment files by the segment muxer at forced IDR
frames. Every segment therefore starts with an IDR of a closed GOP, and every one carries the
same SPS/PPS (same encoder, same settings: checked before the join), so the concat demuxer
joins them by stream copy into a valid stream: exactly one encode of every output frame.

:func:`render_segments` is the whole video half: plan, reuse, render the missing chunks in a
bounded pool of threads (each ffmpeg capped so the total stays about one pass's CPU), check.
:func:`render_chunk` is the seam for rendering on other machines (one activity per chunk).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from core.assets.atomic import atomic_write_text, file_sha256, temp_path_for
from core.errors import MediaError, OperationCancelled
from core.media.encoders import LIBX264, HARDWARE_ENCODERS, VideoEncoder
from core.media.ffmpeg import ProgressCallback, locate_ffmpeg, requires, run_ffmpeg
from core.media.filtergraph import num
from core.media.fonts import FONT_DIR
from core.media.timeline import Background, ChromaKey, FilterStep, Timeline, TimelineScene, Watermark

__all__ = [
    "Segment",
    "ChunkJob",
    "SegmentsRendered",
    "plan_segments",
    "plan_chunks",
    "segment_keys",
    "slice_ass",
    "render_chunk",
    "render_segments",
    "segments_concat_text",
    "keep_segments",
    "chunk_workers",
    "EncodeSettings",
    "stat_identity",
    "ContentHashes",
    "CHUNK_SCENES",
    "DEFAULT_WORKERS",
]

log = logging.getLogger(__name__)

# The segment muxer and the concat demuxer are in every build; the option by name is checked.
requires(cli=("force_key_frames",))

# A chunk holds at most this many scenes (inputs open at once): memory stays flat however
# long the video. Measured (1080p, one x264 thread, ffmpeg 5.1): one chunk's ffmpeg holds
# ~250 MiB with one scene open, ~267 with two, ~308 with four; x264's frames in flight are
# most of it (~200 MiB at 1080p veryfast), so what bounds memory is how many encode at once.
CHUNK_SCENES = 3
# The encodes that run at once: the cores, as far as memory allows (see chunk_workers).
DEFAULT_WORKERS = max(1, os.cpu_count() or 1)
# Encoders at once are held to this much (the 900 MiB target for the whole process tree,
# less the server's ~140 MiB and the audio mix's ~100).
ENCODERS_MIB = 600
# One chunk's ffmpeg: a fixed part, and what scales with the frame's pixels (270 at 1080p).
ENCODER_MIB_BASE, ENCODER_MIB_1080P = 50, 220
# Bumped when the way a segment is rendered changes, so no older segment is reused.
_FORMAT = 2  # 2: the held frames after a crossfade (ffmpeg 5.1 lost some)
_KEY_FILE = re.compile(r"^[0-9a-f]{32}\.mp4$")  # a cached segment: its key


# --------------------------------------------------------------------------- planning (pure)


@dataclass(frozen=True)
class Segment:
    """Output frames [start_frame, start_frame + frames): the unit that is cached and joined."""

    index: int
    start_frame: int
    frames: int
    first_scene: int  # the scenes that show in it: first_scene..last_scene (a crossfade shows two)
    last_scene: int

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.frames


def plan_segments(tl: Timeline) -> tuple[Segment, ...]:
    """One segment per scene, cut where the scene before has faded out (at the scene's start for a cut).

    Cutting at the end of each crossfade keeps a fade's two scenes in one segment; the last
    segment runs to the end of the video (the held frame included).
    """
    cuts = [0] + [tl.scenes[k - 1].end_frame for k in range(1, len(tl.scenes))] + [tl.total_frames]
    out = []
    for k in range(len(tl.scenes)):
        start, end = cuts[k], cuts[k + 1]
        shown = [i for i, s in enumerate(tl.scenes) if s.start_frame < end and s.end_frame > start]
        if k == len(tl.scenes) - 1:
            shown = shown or [k]  # the held frame is the last scene's
        out.append(Segment(k, start, end - start, min(shown), max(shown)))
    return tuple(out)


def plan_chunks(segments: Sequence[Segment], todo: Sequence[int], *, max_scenes: int = CHUNK_SCENES,
                workers: int = DEFAULT_WORKERS) -> list[list[int]]:
    """The segments still to make, grouped into chunks: runs of neighbours, at most ``max_scenes`` scenes each.

    A short run is split further so every worker has a chunk (six scenes on two cores: two
    chunks of three), each about the same number of frames.
    """
    runs: list[list[int]] = []
    for i in sorted(todo):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    total = sum(segments[i].frames for i in todo)
    want = max(len(runs), min(len(todo), workers))
    per_chunk_frames = total / want if want else 0
    chunks: list[list[int]] = []
    for run in runs:
        n = max(math.ceil(len(run) / max_scenes), round(sum(segments[i].frames for i in run) / per_chunk_frames)
                if per_chunk_frames else 1, 1)
        n = min(n, len(run))
        size = len(run) / n
        for c in range(n):
            part = run[round(c * size): round((c + 1) * size)]
            if part:
                chunks.append(part)
    return chunks


def slice_ass(ass: str | None, start_s: float, end_s: float) -> str | None:
    """The ASS document with only the events that show in [start_s, end_s) (times unchanged); None if none does.

    A frame shows an event when start <= t < end (libass); a frame's margin either side
    keeps a rounding at the edge from dropping one. Events that do not show cannot change
    the picture (libass places only what it draws), so leaving them out changes no pixel.
    """
    if not ass:
        return None
    lines = ass.splitlines()
    kept, shown = [], False
    for line in lines:
        if line.startswith("Dialogue:"):
            fields = line.split(",", 3)
            t0, t1 = _ass_time(fields[1]), _ass_time(fields[2])
            if t1 > start_s and t0 < end_s:
                kept.append(line)
                shown = True
        else:
            kept.append(line)
    return "\n".join(kept) + "\n" if shown else None


def _ass_time(text: str) -> float:
    h, m, s = text.strip().split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


# --------------------------------------------------------------------------- keys


@cache
def _bundled_fonts_id() -> str:
    h = hashlib.sha256()
    for p in sorted(FONT_DIR.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(FONT_DIR)}:{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _build_id() -> str:
    loc = locate_ffmpeg()
    return f"{loc.path} {loc.version}"


def stat_identity(path: Path) -> str:
    """A file's identity without reading it (path, size, mtime): enough where nothing is reused across runs."""
    st = Path(path).stat()
    return f"stat:{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}"


class ContentHashes:
    """Inputs named by their SHA-256 in the keys, remembered in the cache between renders.

    A remembered hash is used while the file's size, inode, mtime and ctime are the ones it
    was read with (any rewrite changes ctime, which no tool can set back), so an edit hashes
    the one file that changed. :meth:`save` after a render that succeeded (keep_segments).
    """

    FILE = "inputs.json"

    def __init__(self, cache_dir: Path) -> None:
        self._file = cache_dir / self.FILE
        self._lock = threading.Lock()
        self._used: dict[str, list[Any]] = {}
        try:
            self._known: dict[str, list[Any]] = json.loads(self._file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._known = {}

    def __call__(self, path: Path) -> str:
        p = Path(path).resolve()
        st = p.stat()
        stamp = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
        with self._lock:
            entry = self._used.get(str(p)) or self._known.get(str(p))
            if not (isinstance(entry, list) and entry[:4] == stamp):
                entry = [*stamp, file_sha256(p)]
            self._used[str(p)] = entry
            return f"sha256:{entry[4]}"

    def save(self) -> None:
        """Remember what this render read (only that: the memo stays one video's size)."""
        with self._lock:
            atomic_write_text(self._file, json.dumps(self._used))


@dataclass(frozen=True)
class EncodeSettings:
    """How every segment of one video is encoded: identical for all of them, so they join by copy."""

    encoder: str = LIBX264.name
    preset: str = "veryfast"
    crf: int = 20
    maxrate_kbps: int = 8000


def _scene_facts(s: TimelineScene, base: int, hash_of: Callable[[Path], str]) -> dict[str, Any]:
    d = asdict(s)
    d.pop("path"), d.pop("index"), d.pop("start_ms"), d.pop("duration_ms")
    d["content"] = hash_of(s.path)
    d["start_frame"] = s.start_frame - base
    if s.background is not None:
        d["background"] = {**asdict(s.background), "path": hash_of(s.background.path)}
    return d


def segment_keys(tl: Timeline, segments: Sequence[Segment], settings: EncodeSettings,
                 hash_of: Callable[[Path], str]) -> list[str]:
    """Each segment's key: a hash of everything that shapes its frames, and nothing else.

    Not in it: the audio (mixed apart and muxed at the end), where the segment sits in the
    video (unless captions show in it: they run on the video's clock), the other scenes.
    """
    common = {
        "format": _FORMAT,
        "ffmpeg": _build_id(),
        "encode": asdict(settings),
        "size": [tl.width, tl.height, tl.fps],
        "fit": tl.fit,
        "post": [asdict(step) for step in tl.video_post],
        "watermark": None if tl.watermark is None else {**asdict(tl.watermark), "path": hash_of(tl.watermark.path)},
    }
    keys = []
    for seg in segments:
        first = tl.scenes[seg.first_scene]
        captions = slice_ass(tl.captions_ass, (seg.start_frame - 1) / tl.fps, (seg.end_frame + 1) / tl.fps)
        last = seg.index == len(segments) - 1
        facts = {
            **common,
            "scenes": [_scene_facts(tl.scenes[i], first.start_frame, hash_of)
                       for i in range(seg.first_scene, seg.last_scene + 1)],
            "skip": seg.start_frame - first.start_frame,
            "frames": seg.frames,
            "hold": tl.hold_frames if last else 0,
            "captions": captions,
            "caption_start": seg.start_frame if captions else None,
            "fonts": ([hash_of(f) for f in tl.caption_fonts] or _bundled_fonts_id()) if captions else None,
        }
        blob = json.dumps(facts, sort_keys=True, default=str).encode()
        keys.append(hashlib.sha256(blob).hexdigest()[:32])
    return keys


# --------------------------------------------------------------------------- a chunk (the seam)


@dataclass(frozen=True)
class ChunkJob:
    """One encode: a few neighbouring segments, as data that crosses a process or a machine (:meth:`to_dict`).

    ``timeline`` is the chunk's own: its scenes placed from frame 0, its captions only, the
    held frame only when the chunk ends the video. Its join's first ``skip_frames`` are
    dropped (the part of its first scene that the chunk before shows in a crossfade); its
    captions run ``offset_frames`` into the video's clock. ``segment_frames`` cuts its frames
    into the segment files, named by ``keys``.
    """

    timeline: Timeline
    skip_frames: int
    offset_frames: int
    segment_frames: tuple[int, ...]
    keys: tuple[str, ...]
    settings: EncodeSettings = field(default_factory=EncodeSettings)
    threads: int = 2

    @property
    def frames(self) -> int:
        return sum(self.segment_frames)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings (on a shared ``YTAP_HOME`` they mean the same on every node)."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkJob:
        return cls(
            timeline=_timeline_from_dict(d["timeline"]),
            skip_frames=int(d["skip_frames"]),
            offset_frames=int(d["offset_frames"]),
            segment_frames=tuple(d["segment_frames"]),
            keys=tuple(d["keys"]),
            settings=EncodeSettings(**d["settings"]),
            threads=int(d["threads"]),
        )


def _timeline_from_dict(d: dict[str, Any]) -> Timeline:
    def scene(s: dict[str, Any]) -> TimelineScene:
        bg = s.get("background")
        chroma = s.get("chroma")
        return TimelineScene(**{**s, "path": Path(s["path"]),
                                "background": Background(**{**bg, "path": Path(bg["path"])}) if bg else None,
                                "chroma": ChromaKey(**chroma) if chroma else None})

    wm = d.get("watermark")
    return Timeline(
        width=d["width"], height=d["height"], fps=d["fps"], scenes=tuple(scene(s) for s in d["scenes"]),
        scene_frames=d["scene_frames"], hold_frames=d["hold_frames"], total_frames=d["total_frames"],
        hold_ms=d["hold_ms"], duration_ms=d["duration_ms"], fit=d["fit"],
        video_post=tuple(FilterStep(p["name"], tuple(p["args"]), tuple(tuple(kv) for kv in p["kwargs"]))
                         for p in d["video_post"]),
        watermark=Watermark(**{**wm, "path": Path(wm["path"])}) if wm else None,
        captions_ass=d.get("captions_ass"), caption_fonts=tuple(Path(p) for p in d.get("caption_fonts", ())),
    )


def chunk_job(tl: Timeline, segments: Sequence[Segment], part: Sequence[int], keys: Sequence[str],
              settings: EncodeSettings, threads: int) -> ChunkJob:
    """The chunk that makes segments ``part`` (neighbours) of ``tl``."""
    segs = [segments[i] for i in part]
    start, end = segs[0].start_frame, segs[-1].end_frame
    first, last = min(s.first_scene for s in segs), max(s.last_scene for s in segs)
    base = tl.scenes[first].start_frame
    scenes = tuple(replace(s, start_frame=s.start_frame - base, start_ms=0, duration_ms=0,
                           overlap_frames=0 if i == first else s.overlap_frames)
                   for i, s in enumerate(tl.scenes) if first <= i <= last)
    ends_video = segs[-1].index == len(segments) - 1
    scene_frames = max(s.end_frame for s in scenes)
    hold = tl.hold_frames if ends_video else 0
    sub = Timeline(
        width=tl.width, height=tl.height, fps=tl.fps, scenes=scenes, scene_frames=scene_frames, hold_frames=hold,
        total_frames=end - start, hold_ms=0, duration_ms=0, fit=tl.fit, video_post=tl.video_post,
        watermark=tl.watermark, captions_ass=slice_ass(tl.captions_ass, (start - 1) / tl.fps, (end + 1) / tl.fps),
        caption_fonts=tl.caption_fonts,
    )
    return ChunkJob(sub, skip_frames=start - base, offset_frames=start, segment_frames=tuple(s.frames for s in segs),
                    keys=tuple(keys[i] for i in part), settings=settings, threads=threads)


def _encoder(name: str) -> VideoEncoder:
    for enc in (LIBX264, *HARDWARE_ENCODERS):
        if enc.name == name:
            return enc
    raise MediaError(f"unknown encoder {name!r}")


def build_chunk_argv(job: ChunkJob, out_pattern: Path, work_dir: Path) -> list[str]:
    """One graph, one encode, split into segment files at forced IDR frames (``out_pattern`` has ``%d``)."""
    from core.media.assembly import build_video_argv  # the same argv as a single pass: one way to encode

    argv = build_video_argv(job.timeline, out_pattern, preset=job.settings.preset, crf=job.settings.crf,
                            threads=job.threads, encoder=_encoder(job.settings.encoder), work_dir=work_dir,
                            skip_frames=job.skip_frames, offset_frames=job.offset_frames)
    # One decoding thread per input: a frame-threaded decoder holds a frame per thread, for
    # every input the chunk opens; the chunks running side by side keep the cores busy.
    argv = [x for a in argv for x in ((["-threads", "1", a]) if a == "-i" else [a])]
    cuts = [sum(job.segment_frames[:i]) for i in range(1, len(job.segment_frames))]
    if not cuts:  # one segment: a plain MP4 (the segment muxer would cut it every 2 s)
        return [*argv[:-1], str(out_pattern).replace("%d", "0")]
    i = next(n for n in range(len(argv) - 1) if argv[n: n + 2] == ["-f", "mp4"])
    # An IDR at every segment's first frame (libx264, closed GOP), where the segment muxer cuts.
    return [*argv[:i], "-force_key_frames", "expr:" + "+".join(f"eq(n,{c})" for c in cuts),
            "-f", "segment", "-segment_format", "mp4", "-reset_timestamps", "1",
            "-segment_frames", ",".join(str(c) for c in cuts), *argv[i + 2:]]


def render_chunk(job: ChunkJob | dict[str, Any], out_dir: Path | str, *, cancel: threading.Event | None = None,
                 timeout_s: float = 3600.0, on_progress: ProgressCallback | None = None) -> list[Path]:
    """Render one chunk into ``out_dir``: one ``<key>.mp4`` per segment, each renamed into place when whole.

    The seam for rendering elsewhere: ``job`` may be :meth:`ChunkJob.to_dict`'s JSON; the
    files it reads (scenes, watermark, fonts) must be at the same paths on that machine.
    Nothing half-written is ever left under a segment's name.
    """
    if isinstance(job, dict):
        job = ChunkJob.from_dict(job)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from core.media.videograph import write_captions

    tag = f".chunk-{os.getpid()}-{threading.get_ident()}-{job.keys[0][:8]}"
    work = out / tag
    work.mkdir()
    try:
        write_captions(job.timeline, work)
        argv = build_chunk_argv(job, work / "seg%d.mp4", work)
        run_ffmpeg(argv, timeout_s=timeout_s, duration_s=job.frames / job.timeline.fps, on_progress=on_progress,
                   cancel=cancel, what="assembly (video chunk)")
        if (work / f"seg{len(job.keys)}.mp4").exists():
            raise MediaError(f"the chunk was cut into more than its {len(job.keys)} segment(s)")
        made = []
        for n, key in enumerate(job.keys):
            part = work / f"seg{n}.mp4"
            if not part.is_file():
                raise MediaError(f"the chunk's segment {n + 1} of {len(job.keys)} was not written")
            final = out / f"{key}.mp4"
            os.replace(part, final)
            made.append(final)
        return made
    finally:
        for p in work.glob("**/*"):
            if p.is_file():
                p.unlink(missing_ok=True)
        for p in sorted(work.glob("**/*"), reverse=True):
            if p.is_dir():
                p.rmdir()
        work.rmdir()


# --------------------------------------------------------------------------- the whole video half


@dataclass(frozen=True)
class SegmentsRendered:
    """The video half's result: every segment's file in order, and what was reused or encoded."""

    files: tuple[Path, ...]
    frames: tuple[int, ...]
    reused: int
    encoded: int
    chunks: int  # encodes run
    keys: tuple[str, ...] = ()


def segments_concat_text(files: Sequence[Path], frames: Sequence[int], fps: int) -> str:
    """The concat demuxer's list (``duration`` keeps every join on the frame grid)."""
    lines = ["ffconcat version 1.0"]
    for f, n in zip(files, frames, strict=True):
        quoted = str(Path(f).resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {num(n / fps)}"]
    return "\n".join(lines) + "\n"


def _extradata(path: Path) -> bytes:
    import av

    with av.open(str(path)) as c:
        return bytes(c.streams.video[0].codec_context.extradata or b"")


def _link(src: Path, dst: Path) -> None:
    """``dst`` names the same bytes as ``src`` (a hard link; a copy where links are not possible)."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        import shutil

        shutil.copyfile(src, dst)


def render_segments(
    tl: Timeline,
    work_dir: Path,
    *,
    settings: EncodeSettings,
    cache_dir: Path | None = None,
    hash_of: Callable[[Path], str] = stat_identity,
    workers: int = DEFAULT_WORKERS,
    max_scenes: int = CHUNK_SCENES,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    timeout_s: float = 3600.0,
    threads: int | None = None,
    run_chunk: Callable[..., list[Path]] = render_chunk,
    slots: threading.Semaphore | None = None,
) -> SegmentsRendered:
    """The video of ``tl`` as segment files in ``work_dir``: reused from ``cache_dir`` where the key matches.

    Missing segments are rendered in chunks, ``workers`` at a time, each holding one of
    ``slots`` while it runs (when given: a caller that runs something as big beside the
    encodes holds a slot too); each new segment is linked into ``cache_dir`` (when given)
    for the next render. ``run_chunk`` has :func:`render_chunk`'s signature (a scale-out
    engine passes its own).
    """
    segments = plan_segments(tl)
    keys = segment_keys(tl, segments, settings, hash_of)
    files = [work_dir / f"segment_{seg.index:05d}.mp4" for seg in segments]
    todo: list[int] = []  # one segment per missing key (a scene used twice, nothing drawn: one encode)
    for seg, key, f in zip(segments, keys, files, strict=True):
        cached = cache_dir / f"{key}.mp4" if cache_dir is not None else None
        if cached is not None and cached.is_file():
            _link(cached, f)
            os.utime(cached)  # in use: the newest render's segments are the ones kept
        elif key not in (keys[i] for i in todo):
            todo.append(seg.index)
    missing = {keys[i] for i in todo}
    reused = sum(1 for k in keys if k not in missing)
    chunks = plan_chunks(segments, todo, max_scenes=max_scenes, workers=workers)
    n_workers = max(1, min(workers, len(chunks)))
    # Threads per encode: the pool fills the cores, no more (two x264 threads each in two
    # encodes at once held more memory and ran no faster than one each: the encodes side by
    # side already keep both cores busy, and each one's filter graph is a thread of its own).
    per_encode = max(1, min(2, DEFAULT_WORKERS // n_workers))
    threads = per_encode if threads is None else max(1, min(threads, per_encode))
    jobs = [chunk_job(tl, segments, part, keys, settings, threads) for part in chunks]
    log.info("assembly: %d segment(s), %d reused, %d to encode in %d chunk(s), %d at a time, %d thread(s) each",
             len(segments), reused, len(todo), len(jobs), n_workers, threads)

    total = sum(s.frames for s in segments) or 1
    done_frames = [0.0] * len(jobs)
    base = sum(seg.frames for seg, k in zip(segments, keys, strict=True) if k not in missing)
    lock = threading.Lock()

    def progress(n: int, job: ChunkJob) -> ProgressCallback | None:
        if on_progress is None:
            return None

        def report(fraction: float) -> None:
            with lock:
                done_frames[n] = fraction * job.frames
                value = (base + sum(done_frames)) / total
            on_progress(min(1.0, value))

        return report

    out_dir = work_dir / "chunks"
    stop = threading.Event()

    def one(n: int, job: ChunkJob) -> None:
        while True:
            if stop.is_set() or (cancel is not None and cancel.is_set()):
                raise OperationCancelled("assembly cancelled")
            if slots is None or slots.acquire(timeout=0.1):
                break
        try:
            made = run_chunk(job, out_dir, cancel=_either(cancel, stop), timeout_s=timeout_s,
                             on_progress=progress(n, job))
        finally:
            if slots is not None:
                slots.release()
        for key, path in zip(job.keys, made, strict=True):
            for f, k in zip(files, keys, strict=True):
                if k == key:
                    _link(path, f)
            path.unlink(missing_ok=True)

    if jobs:
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="chunk") as pool:
            futures = [pool.submit(one, n, job) for n, job in enumerate(jobs)]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                if (cancel is not None and cancel.is_set()) or any(f.exception() for f in done):
                    stop.set()
        errors = [f.exception() for f in futures if f.exception() is not None]
        real = [e for e in errors if not isinstance(e, OperationCancelled)]
        if real:
            raise real[0]  # type: ignore[misc]
        if errors:
            raise errors[0]  # type: ignore[misc]
    _check_headers(files, reused, cache_dir, keys)
    return SegmentsRendered(tuple(files), tuple(s.frames for s in segments), reused, len(segments) - reused, len(jobs),
                            tuple(keys))


def chunk_workers(tl: Timeline) -> int:
    """Encodes at once for ``tl``: one a core, as many as :data:`ENCODERS_MIB` holds at its frame size.

    1080p on 2 cores: 2; 2160p: 1 (an encoder of four times the pixels).
    """
    per = ENCODER_MIB_BASE + ENCODER_MIB_1080P * tl.width * tl.height / (1920 * 1080)
    return max(1, min(DEFAULT_WORKERS, int(ENCODERS_MIB // per)))


class _Either:
    """Set when either event is (run_ffmpeg polls ``is_set``)."""

    def __init__(self, a: threading.Event | None, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.b.is_set() or (self.a is not None and self.a.is_set())


def _either(a: threading.Event | None, b: threading.Event) -> Any:
    return _Either(a, b)


def keep_segments(done: SegmentsRendered, cache_dir: Path, hashes: ContentHashes | None = None) -> int:
    """After a render that succeeded: its segments become the cache (linked in), every other entry goes.

    Only then: a failed or cancelled render leaves nothing behind. The cache so holds one
    video's worth of segments, the last render's, which is what the next one can reuse
    (with ``hashes``, the inputs' hashes it was keyed by).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    if hashes is not None:
        try:
            hashes.save()
        except OSError as exc:
            log.warning("assembly: input hashes not kept: %s", exc)
    for f, key in zip(done.files, done.keys, strict=True):
        final = cache_dir / f"{key}.mp4"
        if final.exists():
            continue
        tmp = temp_path_for(final)  # a crash between the two steps leaves a .part the sweeper removes
        try:
            _link(f, tmp)
            os.replace(tmp, final)
        except OSError as exc:  # a cache that cannot be written costs the next render its reuse, nothing more
            log.warning("assembly: segment not kept for reuse: %s", exc)
            tmp.unlink(missing_ok=True)
    wanted = {f"{k}.mp4" for k in done.keys}
    removed = 0
    for p in cache_dir.iterdir():
        if _KEY_FILE.match(p.name) and p.name not in wanted:
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _check_headers(files: Sequence[Path], reused: int, cache_dir: Path | None, keys: Sequence[str]) -> None:
    """Every segment must carry the same SPS/PPS, or the stream-copied join would not decode."""
    if len(files) < 2:
        return
    first = _extradata(files[0])
    odd = [i for i, f in enumerate(files[1:], 1) if _extradata(f) != first]
    if odd:
        if cache_dir is not None:  # never reuse them again
            for i in odd:
                (cache_dir / f"{keys[i]}.mp4").unlink(missing_ok=True)
        raise MediaError(f"{len(odd)} video segment(s) were encoded with other codec headers than the first "
                         f"({reused} reused); assemble again to re-encode them")

