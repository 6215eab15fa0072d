from __future__ import annotations

from core.runtime import Runtime
from core.schemas import (
    Fresh,
    ImagePrompt,
    JobEnvelope,
    NegativePrompt,
    ProviderIds,
    Seed,
    Style,
    Subtitle,
    ThumbnailRequest,
    ThumbnailResult,
    Title,
    TitleFont,
    VideoId,
    WorkspaceId,
    default_of,
)
from core.services import thumbnails
from tools._common import ProgressSink, WaitSeconds, finished_job, run_job


async def make_thumbnail(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    title: Title,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    subtitle: Subtitle = "",
    prompt: ImagePrompt = "",
    style: Style = "",
    negative_prompt: NegativePrompt = "",
    seed: Seed = -1,
    font: TitleFont = "",
    providers: ProviderIds = (),
    fresh: Fresh = default_of(Fresh),
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[ThumbnailResult]:
    """Make thumbnail.jpg (1280x720, under 2 MB) with the best available image provider, falling back to a designed local title card."""
    req = ThumbnailRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        title=title,
        subtitle=subtitle or None,
        prompt=prompt or None,
        style=style or None,
        negative_prompt=negative_prompt or None,
        seed=seed if seed >= 0 else None,
        font=font or None,
        providers=list(providers) or None,
        fresh=fresh,
    )
    plan = thumbnails.prepare(rt, req)  # an unusable font, an unknown provider: refused here
    if plan.hit is not None:
        return finished_job(rt, "make_thumbnail", thumbnails.from_cache(rt, plan), workspace_id=workspace_id,
                            video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="make_thumbnail",
        body=lambda handle: thumbnails.make_thumbnail(rt, plan, handle),
        result_type=ThumbnailResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
