from __future__ import annotations

import anyio.to_thread

from core.runtime import Runtime
from core.schemas import Storyboard, VideoId, WorkspaceId, default_of
from core.services.storyboard import storyboard
from tools._common import ProgressSink


async def review_video(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
) -> Storyboard:
    """Scenes in order: frames, provider, cost, state, narration; thumbnail, music, final preview, credits."""
    if progress is not None:
        await progress(0.0, f"gathering the storyboard of {workspace_id}/{video_id}")
    return await anyio.to_thread.run_sync(lambda: storyboard(rt, workspace_id, video_id))
