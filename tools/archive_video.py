from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from pydantic import Field

from core.runtime import Runtime
from core.services.storage import DEFAULT_KEEP, ArchiveKeep, ArchiveResult
from core.services.storage import archive_video as archive_video_service
from core.schemas import VideoId, WorkspaceId, default_of
from tools._common import ProgressSink


async def archive_video(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    keep: Annotated[
        list[ArchiveKeep],
        Field(description="What stays in place (final_video with its .srt and .webm).", max_length=5),
    ] = DEFAULT_KEEP,
    intermediates: Annotated[
        Literal["zip", "drop"],
        Field(description="zip: into archive/, checked before anything is removed; drop: delete."),
    ] = "zip",
) -> ArchiveResult:
    """Free a finished video's space: keep the final video, thumbnail, manifest and `keep`; zip or drop the rest. Refused while a job of the video runs."""
    if progress is not None:
        await progress(0.0, f"archiving {workspace_id}/{video_id}")
    return await anyio.to_thread.run_sync(
        lambda: archive_video_service(rt, workspace_id, video_id, keep=tuple(keep), intermediates=intermediates)
    )
