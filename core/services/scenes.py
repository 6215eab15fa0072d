"""Scenes: one clip per scene index, from the video chain, normalised, probed and registered.

:func:`prepare` resolves a request once (chain ids, spec, cache key, a cache hit) before
any job starts; the job reads that plan. The provider's raw clip is put in the contract
format (size, fps, exact duration) by :func:`finish_clip`, which the chain runs inside each
provider's attempt: a clip that cannot be normalised fails that attempt and the next
provider is tried.

Eight scene jobs share one event loop, so everything after the provider's answer that
blocks (normalising, probing, hashing, the registration's fsyncs) runs in a worker thread:
on the loop it would stall every other job's polling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from core.assets import VideoPaths
from core.assets.atomic import staged
from core.jobs import JobHandle
from core.media.fit import fit_clips
from core.media.normalize import normalize_clip
from core.media.probe import MediaInfo
from core.providers.base import CallContext, Finish, ProviderOutput, VideoSpec
from core.runtime import Runtime
from core.assets.props import SceneProps
from core.media.formats import SCENE_FPS
from core.schemas import SceneRequest, SceneResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure, register_output
from core.services.credits import video_credits

__all__ = ["ScenePlan", "prepare", "from_cache", "finish_clip", "generate_scene", "used_sources"]



@dataclass(frozen=True)
class ScenePlan:
    """A scene request resolved once: what the job asks the chain for, and an earlier identical result."""

    request: SceneRequest
    paths: VideoPaths
    chain_ids: tuple[str, ...]
    spec: VideoSpec
    key: str
    hit: cache.CacheHit | None  # None on a miss or with ``fresh``


def prepare(rt: Runtime, req: SceneRequest) -> ScenePlan:
    """Resolve ``req`` before any job starts; an unknown provider id is the caller's error, raised here."""
    paths = rt.paths(req.workspace_id, req.video_id)
    ids = tuple(rt.catalog.chain_ids("video", req.providers))
    width, height = req.size
    spec = VideoSpec(
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
    key = cache.request_key("video", list(ids), spec)
    return ScenePlan(req, paths, ids, spec, key, None if req.fresh else cache.lookup(rt, key, kind="scene"))


def from_cache(rt: Runtime, plan: ScenePlan, job_id: str | None = None) -> SceneResult:
    """The plan's cache hit, placed in this scene's slot (cost 0, no provider call)."""
    if plan.hit is None:
        raise ValueError("the plan holds no cache hit")
    req, paths = plan.request, plan.paths
    row, attempts = cache.place_copy(rt, plan.hit, paths, paths.scene(req.scene_index), capability="video",
                                     scene_index=req.scene_index, job_id=job_id)
    return SceneResult(**asset_fields(paths, row, attempts, cached=True), scene_index=req.scene_index,
                       prompt=req.prompt)


def finish_clip(spec: VideoSpec) -> Finish:
    """The scene format, whatever the provider delivered (a clip that already is it is renamed, not re-encoded;
    stock footage is cut to the scene's length from its clips: core.media.fit)."""

    def finish(output: ProviderOutput, out: Path, ctx: CallContext) -> MediaInfo:
        if output.footage is not None:
            info, cuts = fit_clips(output.footage.clips, out, width=spec.width, height=spec.height, fps=spec.fps,
                                   duration_s=spec.duration_s, cancel=ctx.cancel,
                                   on_progress=lambda f: ctx.progress(0.9 + 0.1 * f, "cutting the stock clips"))
            output.note = "; ".join(filter(None, [output.note, "cut: " + ", ".join(c.describe() for c in cuts)]))
            return info
        return normalize_clip(output.path, out, width=spec.width, height=spec.height, fps=spec.fps,
                              duration_s=spec.duration_s, cancel=ctx.cancel, keep_src=False,
                              on_progress=lambda f: ctx.progress(0.9 + 0.1 * f, "normalising the clip"))

    return finish


def used_sources(rt: Runtime, paths: VideoPaths) -> frozenset[str]:
    """The stock clips the video's current scenes are cut from (a scene being made again included: it is
    made again because that clip did not do)."""
    return frozenset(c.source_id for c in video_credits(rt, paths.workspace_id, paths.video_id))


# Stock clips held by scene jobs running in this process, per video: the registry knows a clip only once its
# scene is registered, so two scenes of one video made at the same time would otherwise pick the same clip.
_IN_FLIGHT: dict[tuple[str, str], set[str]] = {}
_IN_FLIGHT_LOCK = threading.Lock()


class _SourceClaims:
    """The stock clips one scene job has claimed (CallContext.claim), given back when the job ends."""

    def __init__(self, paths: VideoPaths) -> None:
        self.key = (paths.workspace_id, paths.video_id)
        self.mine: set[str] = set()

    def take(self, source_id: str) -> bool:
        with _IN_FLIGHT_LOCK:
            held = _IN_FLIGHT.setdefault(self.key, set())
            if source_id in held and source_id not in self.mine:
                return False
            held.add(source_id)
            self.mine.add(source_id)
            return True

    def release(self) -> None:
        with _IN_FLIGHT_LOCK:
            held = _IN_FLIGHT.get(self.key, set())
            held -= self.mine
            if not held:
                _IN_FLIGHT.pop(self.key, None)


async def generate_scene(rt: Runtime, plan: ScenePlan, handle: JobHandle) -> SceneResult:
    if plan.hit is not None:
        return from_cache(rt, plan, handle.job_id)
    claims = _SourceClaims(plan.paths)
    try:
        return await _generate_scene(rt, plan, handle, claims)
    finally:
        claims.release()  # after registration: the registry now knows the clips this scene uses


async def _generate_scene(rt: Runtime, plan: ScenePlan, handle: JobHandle, claims: _SourceClaims) -> SceneResult:
    req, paths, spec = plan.request, plan.paths, plan.spec
    chain = rt.catalog.chain("video", req.providers, resolved=plan.chain_ids)
    paths.ensure()
    final = paths.scene(req.scene_index)
    handle.progress(0.01, f"generating scene {req.scene_index}")
    with staged(final) as tmp:
        try:
            ctx = call_context(rt, handle, paths, span=0.95)
            ctx.used_sources = used_sources(rt, paths)
            ctx.searches = rt.registry.searches
            ctx.claim = claims.take
            output = await chain.generate_video(spec, tmp, ctx, finish=finish_clip(spec))
        except Exception as exc:
            record_failure(rt, paths, "video", exc, handle.job_id)
            raise
        info: MediaInfo = output.finished  # normalize_clip's probe of the clip: it has a video stream
        v = info.video
        props = SceneProps(
            duration_s=info.duration_s,
            width=v.width,
            height=v.height,
            fps=v.fps,
            frames=v.frames,
            video_codec=v.codec,
            has_audio=info.audio is not None,
            sample_rate=info.audio.sample_rate if info.audio else None,
            channels=info.audio.channels if info.audio else None,
            prompt=req.prompt,
            aspect_ratio=req.aspect_ratio,
            credits=tuple(output.footage.credits) if output.footage else (),
        )
        row = await register_output(rt, paths, output, handle, kind="scene", path=final, staged=tmp, props=props,
                                    capability="video", scene_index=req.scene_index)
    cache.remember(rt, plan.key, row, final)
    return SceneResult(**asset_fields(paths, row, output.attempts), scene_index=req.scene_index, prompt=req.prompt)
