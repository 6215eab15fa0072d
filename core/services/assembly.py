"""Assembly: the video's scenes, narration, music and captions into final_video.mp4 in one encode pass.

Refs are resolved and confined to the video's folder before any job starts (``prepare``);
in the job, every input is probed once (in parallel, while the hardware encoders are
tried), the request becomes a frozen timeline (core.media.timeline) with its captions
(core.media.captions), the audio is measured and levelled (audio-only runs), the video is
rendered to a temporary name and renamed into place, then measured again: the result
reports what the file is (probe, GOP structure, EBU R128 loudness), not what ffmpeg was
asked for, and a YouTube readiness check lists every deviation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from core.assets import AssetRow, VideoPaths, atomic_target, atomic_write_text
from core.assets.props import FinalVideoProps, NarrationProps
from core.errors import AssetNotFound, InputError, MediaError, OperationCancelled
from core.jobs import JobHandle
from core.media import assembly as media_assembly
from core.media import captions as media_captions
from core.media import encoders as media_encoders
from core.media import timeline as media_timeline
from core.media.probe import MediaInfo, is_faststart, probe
from core.media.youtube import StreamStructure, readiness, stream_structure, video_properties
from core.runtime import Runtime
from core.schemas import AssemblyRequest, AssemblyResult, Attempt, SegmentTiming
from core.services.common import asset_fields
from core.services.credits import credits_note, video_credits
from core.services.fonts import ResolvedFont, resolve_font

__all__ = ["AssemblyPlan", "prepare", "assemble_video", "output_size", "MAX_VIDEO_DURATION_S"]

# The video's chunks from its last render, reused where nothing that shapes their frames changed
# (hidden: not an asset; archive_video drops it).
CHUNK_CACHE_DIR = ".chunks"

# A 4 h video is about 2.5 h of encoding on 2 cores at veryfast: longer jobs belong in parts.
MAX_VIDEO_DURATION_S = 4 * 3600

log = logging.getLogger(__name__)

T = TypeVar("T")


def output_size(aspect_ratio: str, height: int) -> tuple[int, int]:
    """(width, height) for the aspect ratio; ``height`` is the short side's pixel count (1080 = 1080p)."""
    short = height - height % 2
    long = (short * 16 // 9) + ((short * 16 // 9) % 2)
    return (long, short) if aspect_ratio == "16:9" else (short, long)


def _resolve(paths: VideoPaths, ref: str, what: str) -> Path:
    path = paths.resolve_ref(ref)
    if not path.is_file():
        raise AssetNotFound(f"{what} {ref!r} does not exist in video {paths.workspace_id}/{paths.video_id}")
    return path


@dataclass(frozen=True)
class AssemblyPlan:
    """A request whose refs are resolved and checked: what the job will render."""

    request: AssemblyRequest
    paths: VideoPaths
    scene_paths: tuple[Path, ...]
    narration_path: Path | None
    music_path: Path | None = None
    watermark_path: Path | None = None
    segments: tuple[SegmentTiming, ...] | None = None  # the narration's timings, when on record
    caption_font: ResolvedFont | None = None  # None: the bundled caption font


DEFAULT_CAPTION_FONT = "inter-bold"


def _caption_font(font: ResolvedFont | None) -> media_captions.CaptionFont:
    if font is None or font.name == DEFAULT_CAPTION_FONT:
        return media_captions.DEFAULT_CAPTION_FONT
    f = font.facts
    return media_captions.CaptionFont(font.path, f.family, f.weight, f.italic, f.cell_em)


def prepare(rt: Runtime, req: AssemblyRequest) -> AssemblyPlan:
    """Resolve and check everything the caller can get wrong, before any job starts."""
    paths = rt.paths(req.workspace_id, req.video_id)
    if req.scenes:
        scene_paths = [_resolve(paths, ref, "scene") for ref in req.scenes]
    else:
        rows = sorted(rt.registry.assets.current(req.workspace_id, req.video_id, "scene"), key=lambda r: r.scene_index or 0)
        if not rows:
            raise AssetNotFound(
                f"video {req.workspace_id}/{req.video_id} has no scenes yet: call generate_scene first, or pass scenes"
            )
        unusable = [r for r in rows if r.state != "ok"]
        if unusable:
            raise InputError(_unusable_scenes(req, unusable))
        # Registered paths are confined like any ref: a file swapped for a link out of the folder is refused.
        scene_paths = [paths.confine(paths.root / r.rel_path) for r in rows]

    presenters = set(req.presenter_scenes)
    for n in req.presenter_scenes:
        if n > len(scene_paths):
            raise InputError(f"presenter scene {n} does not exist: there are {len(scene_paths)} scenes")
        if n - 1 in presenters:
            raise InputError(f"presenter scene {n} would use presenter scene {n - 1} as its background; "
                             "put a background scene before each presenter clip")
    if len(presenters) == len(scene_paths):  # unreachable (position 1 is never a presenter); kept explicit
        raise InputError("every scene is a presenter clip: nothing is left to be a background")

    narration_path: Path | None = None
    if req.narration:
        narration_path = _resolve(paths, req.narration, "narration")
    elif paths.narration.is_file():
        narration_path = paths.confine(paths.narration)
    music_path = _resolve(paths, req.music, "music") if req.music else None
    if req.music is None:  # not given: the video's bed (generate_music or import_asset), when it is intact
        beds = [r for r in rt.registry.assets.current(req.workspace_id, req.video_id, "music") if r.state == "ok"]
        music_path = paths.confine(paths.root / beds[0].rel_path) if beds else None
    watermark_path = _resolve(paths, req.watermark, "watermark") if req.watermark else None

    caption_font = resolve_font(rt, paths, req.caption_font, what="caption_font") if req.caption_font else None

    segments = None
    if narration_path is not None:
        row = rt.registry.assets.by_path(paths, narration_path)
        if row is not None and isinstance(row.props, NarrationProps) and row.props.segments:
            segments = row.props.segments
    return AssemblyPlan(req, paths, tuple(scene_paths), narration_path, music_path, watermark_path, segments,
                        caption_font)


def _unusable_scenes(req: AssemblyRequest, rows: list[AssetRow]) -> str:
    """Why the video's registered scenes cannot be assembled, and what to do (scenes not ok at the last check)."""
    def why(r: AssetRow) -> str:
        if r.state == "archived":
            return f"archive_video packed it into {r.archive_path}" if r.archive_path else "archive_video dropped it"
        return {"damaged": "its file is not the one that was made", "missing": "its file is gone"}.get(r.state, "")

    listed = "; ".join(f"scene {r.scene_index} is {r.state} ({why(r)})" for r in rows)
    first = rows[0].scene_index
    return (f"video {req.workspace_id}/{req.video_id} cannot be assembled from its scenes: {listed}. Call "
            f"generate_scene again for each (e.g. scene_index={first}) or import_asset kind=scene, or pass scenes")


def _probe_all(paths: list[Path]) -> list[MediaInfo]:
    # ~0.1 s a file, mostly waiting on the demuxer: a few threads overlap them.
    with ThreadPoolExecutor(max_workers=min(6, max(1, len(paths))), thread_name_prefix="probe") as pool:
        return list(pool.map(probe, paths))


class _Clock:
    """Step timings in the log: where an assembly's wall time goes (BENCHMARKS.md overhead)."""

    def __init__(self) -> None:
        self.t = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        log.info("assembly step: %s %.2f s", what, now - self.t)
        self.t = now


def _chunk_runner(rt: Runtime) -> dict[str, Any]:
    """assemble()'s chunk options: in this process (none), or fanned out by a scale-out worker."""
    runner = rt.chunk_runner
    return {} if runner is None else {"run_chunk": runner, "workers": runner.parallel}


def _check_cancel(handle: JobHandle) -> None:
    """Between steps: a short ffmpeg run can finish before it notices a cancel."""
    if handle.cancel.is_set():
        raise OperationCancelled("assembly cancelled")


def _in_parallel(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="assembly") as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


async def assemble_video(rt: Runtime, plan: AssemblyPlan, handle: JobHandle) -> AssemblyResult:
    req, paths = plan.request, plan.paths
    notes: list[str] = []
    handle.progress(0.01, f"probing {len(plan.scene_paths)} scene(s)")
    clock = _Clock()

    extra = [p for p in (plan.narration_path, plan.music_path, plan.watermark_path) if p is not None]
    detect = (lambda: media_encoders.encoder_chain(True)) if req.hardware_encoder else (lambda: (media_encoders.LIBX264,))
    # The stream-copy check's packet walks ride along with the probes, unless the request
    # itself already rules copying out (something drawn, faded, keyed or exported).
    may_copy = not (req.watermark or req.overlays or req.transition == "crossfade" or req.presenter_scenes
                    or req.export_webm or (req.captions and plan.segments))
    walk = (lambda: _structures(plan.scene_paths)) if may_copy else (lambda: None)
    infos, encoders, structures, silent = await anyio.to_thread.run_sync(
        lambda: _in_parallel(lambda: _probe_all([*plan.scene_paths, *extra]), detect, walk,
                             lambda: _silent_tracks(plan.scene_paths))
    )
    clock.lap("probe + encoder detection")
    _check_cancel(handle)
    scene_infos = infos[: len(plan.scene_paths)]
    by_path = dict(zip(extra, infos[len(plan.scene_paths):], strict=True))

    scenes = _scene_inputs(plan, scene_infos, silent)
    narration = music = watermark = None
    if plan.narration_path is not None:
        n_info = by_path[plan.narration_path]
        if n_info.audio is None:
            raise InputError(f"{paths.uri(plan.narration_path)} has no audio stream")
        narration = media_timeline.NarrationInput(plan.narration_path, n_info.duration_s)
    if plan.music_path is not None:
        m_info = by_path[plan.music_path]
        if m_info.audio is None:
            raise InputError(f"music {paths.uri(plan.music_path)} has no audio stream")
        music = media_timeline.MusicInput(plan.music_path, m_info.duration_s)
    if plan.watermark_path is not None:
        if by_path[plan.watermark_path].video is None:
            raise InputError(f"watermark {paths.uri(plan.watermark_path)} is not an image")
        watermark = media_timeline.Watermark(plan.watermark_path, req.watermark_position, req.watermark_opacity)

    aspect = req.aspect_ratio or _majority_aspect(scenes)
    width, height = output_size(aspect, req.height)
    timeline = media_timeline.build_timeline(
        scenes,
        width=width,
        height=height,
        fps=req.fps,
        narration=narration,
        fit=req.fit,
        crossfade_s=req.crossfade_s if req.transition == "crossfade" else 0.0,
        music=music,
        watermark=watermark,
        mix=media_timeline.MixSettings(req.loudness_lufs, req.music_volume_db, req.scene_audio_volume_db),
    )
    if timeline.duration_s > MAX_VIDEO_DURATION_S:
        raise InputError(
            f"the video would run {timeline.duration_s / 60:,.1f} min; assemble_video makes videos up to "
            f"{MAX_VIDEO_DURATION_S / 3600:g} h (split it into parts, or use fewer or shorter scenes)"
        )

    # Captions and overlays: one ASS document, burned in by libass in the same pass.
    face = _caption_font(plan.caption_font)
    layout = media_captions.CaptionLayout.for_size(width, height, face)
    cues: list[media_captions.Cue] = []
    if req.captions:
        if narration is None:
            notes.append("no narration, so no captions")
        elif not plan.segments:
            notes.append("captions skipped: the narration has no timings on record (make it with synthesize_narration)")
        else:
            cues = media_captions.caption_cues(plan.segments, layout)
    overlays = [_overlay(o, timeline.duration_s, n) for n, o in enumerate(req.overlays, 1)]
    notes += media_captions.text_notes(plan.segments if cues else [], overlays, face)  # emoji removed
    font_used: dict[str, Any] | None = None
    if cues or overlays:
        font_used = plan.caption_font.record() if plan.caption_font else {"name": DEFAULT_CAPTION_FONT, "bundled": True}
        ass = media_captions.build_ass(cues, layout, overlays)
        timeline = replace(timeline, captions_ass=ass,
                           caption_fonts=() if face == media_captions.DEFAULT_CAPTION_FONT
                           else (face.path, *media_captions.fallback_faces_in(ass)))
    elif plan.caption_font is not None:
        notes.append("caption_font unused: no captions or overlays were drawn")

    if structures is not None and not req.presenter_scenes:
        timeline = _maybe_stream_copy(timeline, scenes, structures, notes)
    clock.lap("timeline, captions, stream-copy check")
    _check_cancel(handle)
    attempts: list[Attempt] = []

    def failed(f: media_assembly.EncoderFailure) -> None:
        attempts.append(Attempt(provider="local:ffmpeg", outcome="failed", error_code="media_error",
                                reason=f"{f.encoder}: {f.reason}", decision="hardware encoder (passed its trial encode)"))
        notes.append(f"{f.encoder} failed; re-encoded with the next encoder")

    def progress(fraction: float) -> None:
        handle.progress(0.05 + 0.9 * fraction)

    handle.progress(0.04, "encoding the final video" if not timeline.copy_video else "copying the scenes")
    paths.ensure()
    webm_final = paths.final_video.with_suffix(".webm")
    with ExitStack() as stack:
        tmp = stack.enter_context(atomic_target(paths.final_video))
        webm_tmp = stack.enter_context(atomic_target(webm_final)) if req.export_webm else None
        done = await anyio.to_thread.run_sync(
            lambda: media_assembly.assemble(
                timeline, tmp, encoders=encoders, on_failure=failed, on_progress=progress, cancel=handle.cancel,
                preset=rt.settings.x264_preset, webm_path=webm_tmp, cache_dir=paths.root / CHUNK_CACHE_DIR,
                **_chunk_runner(rt),
            )
        )
        _check_cancel(handle)  # still under the temporary names: a cancel now leaves nothing behind
    timeline = done.timeline
    srt_final = paths.final_video.with_suffix(".srt")
    if cues:
        atomic_write_text(srt_final, media_captions.cues_to_srt(cues))
    else:
        srt_final.unlink(missing_ok=True)  # a stale sidecar would describe another cut

    clock.lap("audio and video, mux")
    handle.progress(0.96, "checking the result")
    final = paths.final_video
    # The audio stream in the file is the AAC stream assemble() measured (muxed by copy).
    loudness = done.audio_loudness
    info, structure = await anyio.to_thread.run_sync(
        lambda: _in_parallel(lambda: probe(final), lambda: stream_structure(final))
    )
    props = video_properties(
        info,
        faststart=is_faststart(final),
        structure=structure,
        integrated_lufs=loudness.integrated_lufs,
        true_peak_dbtp=loudness.true_peak_dbtp if loudness.true_peak_dbtp > -200 else None,
    )
    clock.lap("checking the result")
    has_sound = timeline.levels is not None and timeline.levels.measured_lufs is not None
    check = readiness(props, expected_width=width, expected_height=height, expected_fps=req.fps,
                      loudness_lufs=req.loudness_lufs if has_sound else None)
    encode = {**media_assembly.describe_encode(timeline, done.encoder), "chunks_reused": done.segments_reused,
              "chunks_encoded": done.segments_encoded, "encodes": done.chunks}
    scene_uris = [paths.uri(p) for p in plan.scene_paths]
    attempts.append(Attempt(provider="local:ffmpeg", outcome="succeeded",
                            decision=f"assembly always runs locally ({encode['encoder']})"))
    levels = timeline.levels
    row = rt.registry.assets.add(
        paths,
        kind="final_video",
        path=final,
        provider="local:ffmpeg",
        model=encode["encoder"],
        cost_usd=0.0,
        props=FinalVideoProps(
            duration_s=info.duration_s,
            width=props.width,
            height=props.height,
            fps=props.fps,
            sample_rate=props.sample_rate,
            channels=props.channels,
            properties=props,
            youtube_readiness=check,
            scenes=tuple(scene_uris),
            encode=encode,
            audio_levels=None if levels is None else {
                "narration_db": levels.narration_db, "music_db": levels.music_db, "scene_db": list(levels.scene_db),
                "final_db": levels.final_db, "limiter": levels.limiter},
            srt=paths.relative(srt_final) if cues else None,
            caption_font=font_used,
            webm=paths.relative(webm_final) if req.export_webm else None,
        ),
        attempts=attempts,
        capability="assembly",
        job_id=handle.job_id,
    )
    credits = video_credits(rt, paths.workspace_id, paths.video_id, plan.scene_paths)
    notes += filter(None, [credits_note(paths, credits)])
    return AssemblyResult(
        **asset_fields(paths, row, attempts),
        scenes=scene_uris,
        narration=paths.uri(plan.narration_path) if plan.narration_path else None,
        music=paths.uri(plan.music_path) if plan.music_path else None,
        encoder=encode["encoder"],
        encode_passes=encode["passes"],
        stream_copy=encode["stream_copy"],
        properties=props,
        youtube_readiness=check,
        captions_burned=bool(cues),
        caption_font=font_used["name"] if font_used else None,
        srt_path=str(srt_final.resolve()) if cues else None,
        srt_uri=paths.uri(srt_final) if cues else None,
        webm_path=str(webm_final.resolve()) if req.export_webm else None,
        webm_uri=paths.uri(webm_final) if req.export_webm else None,
        hold_s=round(timeline.hold_frames / timeline.fps, 3),
        notes=notes,
        chunks_reused=done.segments_reused,
        chunks_encoded=done.segments_encoded,
    )


def _silent_tracks(scene_paths: tuple[Path, ...]) -> list[bool]:
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(scene_paths))), thread_name_prefix="silence") as pool:
        return list(pool.map(media_timeline.silent_aac_track, scene_paths))


def _scene_inputs(plan: AssemblyPlan, infos: list[MediaInfo], silent: list[bool]) -> list[media_timeline.SceneInput]:
    """Scenes in order; a presenter clip takes the scene before it as its background (one slot)."""
    req = plan.request
    presenters = set(req.presenter_scenes)
    key = media_timeline.ChromaKey(req.chroma_color, req.chroma_similarity, req.chroma_blend)
    out: list[media_timeline.SceneInput] = []
    for n, (path, info) in enumerate(zip(plan.scene_paths, infos, strict=True), 1):
        if n + 1 in presenters:
            continue  # the next scene's background
        if n in presenters:
            bg_path, bg_info = plan.scene_paths[n - 2], infos[n - 2]
            background = media_timeline.SceneInput(bg_path, bg_info)
            out.append(media_timeline.SceneInput(path, info, background=background, chroma=key,
                                                 silent_audio=silent[n - 1]))
        else:
            out.append(media_timeline.SceneInput(path, info, silent_audio=silent[n - 1]))
    return out


def _overlay(o: Any, duration_s: float, n: int) -> media_captions.OverlayText:
    if o.start_s >= duration_s:
        raise InputError(f"overlay {n} starts at {o.start_s} s, after the video ends ({duration_s:.2f} s)")
    return media_captions.OverlayText(o.text, o.start_s, min(o.end_s, duration_s), o.position)


def _structures(scene_paths: tuple[Path, ...]) -> list[StreamStructure | None]:
    def walk(p: Path) -> StreamStructure | None:
        try:
            return stream_structure(p)
        except MediaError:
            return None  # not copyable; the render reports what is wrong with it

    with ThreadPoolExecutor(max_workers=min(4, max(1, len(scene_paths))), thread_name_prefix="gop") as pool:
        return list(pool.map(walk, scene_paths))


def _maybe_stream_copy(
    timeline: media_timeline.Timeline,
    scenes: list[media_timeline.SceneInput],
    structures: list[StreamStructure | None],
    notes: list[str],
) -> media_timeline.Timeline:
    """The stream-copy fast path when every scene already is the target and nothing is drawn."""
    blockers = media_timeline.stream_copy_blockers(timeline, scenes, structures)
    if blockers:
        log.info("stream copy not possible: %s", "; ".join(blockers))
        return timeline
    notes.append("every scene already matched the output: video stream-copied, only the audio encoded")
    return replace(timeline, copy_video=True)


def _majority_aspect(scenes: list[media_timeline.SceneInput]) -> str:
    portrait = sum(1 for s in scenes if s.info.video and s.info.video.height > s.info.video.width)
    return "9:16" if portrait * 2 > len(scenes) else "16:9"
