"""Scenes: one clip per scene index, from the video chain, probed and registered.

Eight scene jobs share one event loop, so everything after the provider's answer that
blocks (probing, normalising, hashing, the registration's fsyncs) runs in a worker thread:
on the loop it would stall every other job's polling. The clip is probed once; it is
normalised only when it is not the contract format already.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from core.assets import atomic_target
from core.assets.atomic import staged
from core.errors import BadOutput
from core.jobs import JobHandle
from core.media.normalize import matches_contract, normalize_clip
from core.media.probe import MediaInfo, probe
from core.providers.base import VideoSpec
from core.runtime import Runtime
from core.schemas import SceneRequest, SceneResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure

__all__ = ["generate_scene", "cached_scene", "SCENE_FPS"]

SCENE_FPS = 30


def _spec(req: SceneRequest) -> VideoSpec:
    width, height = req.size
    return VideoSpec(
        prompt=req.prompt,
        scene_index=req.scene_index,
        duration_s=req.duration_s,
        width=width,
        height=height,
        fps=SCENE_FPS,
        aspect_ratio=req.aspect_ratio,
        style=req.style,
        negative_prompt=req.negative_prompt,
    )


def _key(rt: Runtime, req: SceneRequest) -> str:
    return cache.request_key("video", rt.catalog.chain_ids("video", req.providers), _spec(req))


def cached_scene(rt: Runtime, req: SceneRequest, job_id: str | None = None) -> SceneResult | None:
    """The result of an identical earlier request, placed in this scene's slot; None on a miss or ``fresh``."""
    if req.fresh:
        return None
    hit = cache.lookup(rt, _key(rt, req))
    if hit is None or hit.row.kind != "scene":
        return None
    paths = rt.paths(req.workspace_id, req.video_id)
    row, attempts = cache.place_copy(rt, hit, paths, paths.scene(req.scene_index), capability="video",
                                     scene_index=req.scene_index, job_id=job_id)
    return SceneResult(**asset_fields(paths, row, attempts, cached=True), scene_index=req.scene_index,
                       prompt=req.prompt)


async def generate_scene(rt: Runtime, req: SceneRequest, handle: JobHandle) -> SceneResult:
    paths = rt.paths(req.workspace_id, req.video_id)
    chain = rt.catalog.chain("video", req.providers)  # unknown ids fail here, before any work
    if (hit := cached_scene(rt, req, handle.job_id)) is not None:
        return hit
    paths.ensure()
    width, height = req.size
    spec = _spec(req)
    final = paths.scene(req.scene_index)
    handle.progress(0.01, f"generating scene {req.scene_index}")
    with staged(final) as tmp:
        try:
            output = await chain.generate_video(spec, tmp, call_context(rt, handle, paths, span=0.95))
            info = await anyio.to_thread.run_sync(lambda: probe(tmp, count_frames=True))
            if info.video is None:
                raise BadOutput(f"{output.provider} returned a file without a video stream")
            if not matches_contract(info, width=width, height=height, fps=SCENE_FPS, duration_s=req.duration_s):
                # Whatever a provider delivers, the scene on disk is the contract format.
                handle.progress(0.96, "normalising the clip to the scene format")
                info = await anyio.to_thread.run_sync(lambda: _normalise_in_place(tmp, info, req, handle))
        except Exception as exc:
            record_failure(rt, paths, "video", exc, handle.job_id)
            raise
        v = info.video
        props = {
            "duration_s": info.duration_s,
            "width": v.width,
            "height": v.height,
            "fps": v.fps,
            "frames": v.frames,
            "video_codec": v.codec,
            "has_audio": info.audio is not None,
            "sample_rate": info.audio.sample_rate if info.audio else None,
            "channels": info.audio.channels if info.audio else None,
            "prompt": req.prompt,
            "aspect_ratio": req.aspect_ratio,
        }
        # Renamed onto the slot inside the registration's transaction (hashing and fsync: off the loop).
        row = await anyio.to_thread.run_sync(lambda: rt.registry.add_asset(
            paths,
            kind="scene",
            path=final,
            staged=tmp,
            provider=output.provider,
            model=output.model,
            cost_usd=output.cost_usd,
            props=props,
            attempts=output.attempts,
            capability="video",
            scene_index=req.scene_index,
            job_id=handle.job_id,
        ))
    cache.remember(rt, _key(rt, req), row, final)
    return SceneResult(**asset_fields(paths, row, output.attempts), scene_index=req.scene_index, prompt=req.prompt)


def _normalise_in_place(clip: Path, info: MediaInfo, req: SceneRequest, handle: JobHandle) -> MediaInfo:
    """Re-encode ``clip`` (probed as ``info``) into the contract format under the same name."""
    width, height = req.size
    with atomic_target(clip) as normalised:
        return normalize_clip(clip, normalised, width=width, height=height, fps=SCENE_FPS,
                              duration_s=req.duration_s, cancel=handle.cancel, info=info)
