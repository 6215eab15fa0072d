from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope, SceneRequest, SceneResult
from core.services.scenes import cached_scene
from core.services.scenes import generate_scene as generate_scene_service
from tools._common import (
    Fresh,
    ProgressSink,
    ProviderIds,
    VideoId,
    WaitSeconds,
    WorkspaceId,
    run_job,
    finished_job,
)


async def generate_scene(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    scene_index: Annotated[int, Field(description="Position of the scene in the video, 1-999.", ge=1, le=999)],
    prompt: Annotated[
        str, Field(description="What the scene shows: subject, action, setting, camera, mood.", min_length=1, max_length=4000)
    ],
    *,
    workspace_id: WorkspaceId = "default",
    duration_s: Annotated[float, Field(description="Length of the clip in seconds, 1-60.", ge=1, le=60)] = 8.0,
    aspect_ratio: Annotated[
        Literal["16:9", "9:16"], Field(description="16:9 for a regular video (1920x1080), 9:16 for a Short (1080x1920).")
    ] = "16:9",
    style: Annotated[str, Field(description="Visual style, e.g. 'cinematic, golden hour'. Empty: none.", max_length=500)] = "",
    negative_prompt: Annotated[str, Field(description="What the scene must not show. Empty: none.", max_length=2000)] = "",
    providers: ProviderIds = (),
    fresh: Fresh = False,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[SceneResult]:
    """Generate one scene clip (scenes/scene_NNN.mp4) with the best available video provider, falling back to a local animated title card. Returns a job envelope: if status is not yet 'succeeded', poll job_status with its job_id. Calling again with the same scene_index replaces that scene."""
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
    rt.catalog.chain_ids("video", req.providers)  # an unknown id is the caller's error, now
    if (hit := cached_scene(rt, req)) is not None:
        return finished_job(rt, "generate_scene", hit, workspace_id=workspace_id, video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="generate_scene",
        body=lambda handle: generate_scene_service(rt, req, handle),
        result_type=SceneResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
