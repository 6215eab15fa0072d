from __future__ import annotations

from core.runtime import Runtime
from core.schemas import (
    Fresh,
    JobEnvelope,
    NegativePrompt,
    ProviderIds,
    SceneDuration,
    SceneIndex,
    ScenePrompt,
    SceneRequest,
    SceneResult,
    SceneShape,
    Style,
    VideoId,
    WorkspaceId,
    default_of,
)
from core.services import scenes
from tools._common import ProgressSink, WaitSeconds, finished_job, run_job


async def generate_scene(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    scene_index: SceneIndex,
    prompt: ScenePrompt,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    duration_s: SceneDuration = default_of(SceneDuration),
    aspect_ratio: SceneShape = default_of(SceneShape),
    style: Style = "",
    negative_prompt: NegativePrompt = "",
    providers: ProviderIds = (),
    fresh: Fresh = default_of(Fresh),
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[SceneResult]:
    """Generate scenes/scene_NNN.mp4 with the best available video provider, falling back to a local title card; the same scene_index replaces it. Tiers and prices in provider_report: AI video for hero shots, motion:* stills in motion for the rest."""
    req = SceneRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        scene_index=scene_index,
        prompt=prompt,
        duration_s=duration_s,
        aspect_ratio=aspect_ratio,
        style=style or None,
        negative_prompt=negative_prompt or None,
        providers=list(providers) or None,
        fresh=fresh,
    )
    plan = scenes.prepare(rt, req)  # an unknown provider id is the caller's error, raised here
    if plan.hit is not None:
        return finished_job(rt, "generate_scene", scenes.from_cache(rt, plan), workspace_id=workspace_id,
                            video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="generate_scene",
        body=lambda handle: scenes.generate_scene(rt, plan, handle),
        result_type=SceneResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
