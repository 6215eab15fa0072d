"""Assembly: the video's scenes and narration into final_video.mp4 in one encode pass.

Refs are resolved and confined to the video's folder, every input is probed once, the
request becomes a frozen timeline (core.media.assembly), rendered to a temporary name and
renamed into place, then probed again: the result reports what the file is, not what we
asked ffmpeg for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from core.assets import VideoPaths, atomic_target
from core.errors import AssetNotFound, InputError
from core.jobs import JobHandle
from core.media import assembly as media_assembly
from core.media.probe import is_faststart, probe
from core.media.youtube import readiness, video_properties
from core.runtime import Runtime
from core.schemas import AssemblyRequest, AssemblyResult, Attempt
from core.services.common import asset_fields

__all__ = ["AssemblyPlan", "prepare", "assemble_video", "output_size"]

_NOT_YET = ("music", "watermark")


def output_size(aspect_ratio: str, height: int) -> tuple[int, int]:
    """(width, height) for the aspect ratio; ``height`` is the short side's pixel count (1080p = 1080)."""
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


def prepare(rt: Runtime, req: AssemblyRequest) -> AssemblyPlan:
    """Resolve and check everything the caller can get wrong, before any job starts."""
    paths = rt.paths(req.workspace_id, req.video_id)
    for name in _NOT_YET:
        if getattr(req, name):
            raise InputError(f"{name} is not supported by this version of assemble_video yet; leave it empty")
    if req.overlays or req.transition != "cut":
        raise InputError("overlays and crossfades are not supported by this version of assemble_video yet")

    if req.scenes:
        scene_paths = [_resolve(paths, ref, "scene") for ref in req.scenes]
    else:
        rows = sorted(rt.registry.current_assets(req.workspace_id, req.video_id, "scene"), key=lambda r: r.scene_index or 0)
        if not rows:
            raise AssetNotFound(
                f"video {req.workspace_id}/{req.video_id} has no scenes yet: call generate_scene first, or pass scenes"
            )
        scene_paths = [paths.root / r.rel_path for r in rows]

    narration_path: Path | None = None
    if req.narration:
        narration_path = _resolve(paths, req.narration, "narration")
    elif paths.narration.is_file():
        narration_path = paths.narration
    return AssemblyPlan(req, paths, tuple(scene_paths), narration_path)


async def assemble_video(rt: Runtime, plan: AssemblyPlan, handle: JobHandle) -> AssemblyResult:
    req, paths, scene_paths, narration_path = plan.request, plan.paths, plan.scene_paths, plan.narration_path
    handle.progress(0.02, f"probing {len(scene_paths)} scene(s)")
    scenes = await anyio.to_thread.run_sync(lambda: [media_assembly.SceneInput(p, probe(p)) for p in scene_paths])
    narration = None
    if narration_path is not None:
        n_info = await anyio.to_thread.run_sync(probe, narration_path)
        if n_info.audio is None:
            raise InputError(f"{paths.uri(narration_path)} has no audio stream")
        narration = media_assembly.NarrationInput(narration_path, n_info.duration_s)

    aspect = req.aspect_ratio or _majority_aspect(scenes)
    width, height = output_size(aspect, req.height)
    timeline = media_assembly.build_timeline(scenes, width=width, height=height, fps=req.fps, narration=narration)

    def progress(fraction: float) -> None:
        handle.progress(0.05 + 0.9 * fraction, "encoding the final video")

    paths.ensure()
    with atomic_target(paths.final_video) as tmp:
        await anyio.to_thread.run_sync(
            lambda: media_assembly.render(
                timeline, tmp, on_progress=progress, cancel=handle.cancel, preset=rt.settings.x264_preset
            )
        )
    handle.progress(0.97, "checking the result")
    info = await anyio.to_thread.run_sync(lambda: probe(paths.final_video, count_frames=True))
    props = video_properties(info, faststart=is_faststart(paths.final_video))
    check = readiness(props, expected_width=width, expected_height=height, expected_fps=req.fps)
    encode = media_assembly.describe_encode(timeline)
    scene_uris = [paths.uri(p) for p in scene_paths]
    attempts = [Attempt(provider="local:ffmpeg", outcome="succeeded", decision="assembly always runs locally")]
    row = rt.registry.add_asset(
        paths,
        kind="final_video",
        path=paths.final_video,
        provider="local:ffmpeg",
        model=encode["encoder"],
        cost_usd=0.0,
        props={
            "duration_s": info.duration_s,
            "width": props.width,
            "height": props.height,
            "fps": props.fps,
            "sample_rate": props.sample_rate,
            "channels": props.channels,
            "properties": props.model_dump(),
            "youtube_readiness": check.model_dump(),
            "scenes": scene_uris,
        },
        attempts=attempts,
        capability="assembly",
        job_id=handle.job_id,
    )
    return AssemblyResult(
        **asset_fields(paths, row, attempts),
        scenes=scene_uris,
        narration=paths.uri(narration_path) if narration_path else None,
        encoder=encode["encoder"],
        encode_passes=encode["passes"],
        properties=props,
        youtube_readiness=check,
    )


def _majority_aspect(scenes: list[media_assembly.SceneInput]) -> str:
    portrait = sum(1 for s in scenes if s.info.video and s.info.video.height > s.info.video.width)
    return "9:16" if portrait * 2 > len(scenes) else "16:9"
