from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope, ThumbnailRequest, ThumbnailResult
from core.services.thumbnails import cached_thumbnail
from core.services.thumbnails import make_thumbnail as make_thumbnail_service
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


async def make_thumbnail(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    title: Annotated[str, Field(description="The thumbnail's headline: 2-6 punchy words read best.", min_length=1,
                                max_length=100)],
    *,
    workspace_id: WorkspaceId = "default",
    subtitle: Annotated[str, Field(description="A smaller second line. Empty: none.", max_length=120)] = "",
    prompt: Annotated[str, Field(description="Image prompt for AI providers (the background picture). Empty: "
                                 "derived from the title.", max_length=4000)] = "",
    style: Annotated[str, Field(description="Look and palette, e.g. 'dark tech' or 'warm bright'.", max_length=500)] = "",
    negative_prompt: Annotated[str, Field(description="What the background picture must not show, for providers "
                                          "that take it (Stable Diffusion). Empty: none.", max_length=2000)] = "",
    seed: Annotated[int, Field(description="A fixed seed for a reproducible picture, for providers that take it "
                               "(Stable Diffusion). -1: random.", ge=-1, le=2**32 - 1)] = -1,
    font: Annotated[str, Field(description="The title's font: a bundled font (inter-display-black, inter-bold) or a "
                               "font imported into this video with import_asset kind=font, by its ref "
                               "(fonts/<file>.ttf, a ytap:// uri) or file stem. The title is still fitted as large "
                               "as it fits. Empty: inter-display-black.", max_length=1000)] = "",
    providers: ProviderIds = (),
    fresh: Fresh = False,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[ThumbnailResult]:
    """Make the video's thumbnail (thumbnail.jpg, 1280x720 JPEG under 2 MB) with the best available image provider, falling back to a designed local title card. Returns a job envelope: poll job_status while it runs."""
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
    rt.catalog.chain_ids("image", req.providers)
    if (hit := cached_thumbnail(rt, req)) is not None:
        return finished_job(rt, "make_thumbnail", hit, workspace_id=workspace_id, video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="make_thumbnail",
        body=lambda handle: make_thumbnail_service(rt, req, handle),
        result_type=ThumbnailResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
