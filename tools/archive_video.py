from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from pydantic import Field

from core.runtime import Runtime
from core.services.storage import DEFAULT_KEEP, ArchiveKeep, ArchiveResult
from core.services.storage import archive_video as archive_video_service
from tools._common import ProgressSink, VideoId, WorkspaceId


async def archive_video(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = "default",
    keep: Annotated[
        list[ArchiveKeep],
        Field(description="What stays in place besides manifest.json: final_video (with its .srt/.webm), thumbnail, "
              "narration, scenes, music. Everything else in the video's folder is archived.", max_length=5),
    ] = DEFAULT_KEEP,
    intermediates: Annotated[
        Literal["zip", "drop"],
        Field(description="zip: pack the archived files into archive/intermediates-<time>.zip (read back and checked "
              "before anything is removed); drop: delete them."),
    ] = "zip",
) -> ArchiveResult:
    """Archive a finished video to free space: keep the final video, thumbnail and manifest (and whatever keep lists), zip or drop the intermediates (scenes, narration, music), and record every archived file with its SHA-256 in archive.json. Refused while a job of the video is running. The cost and provenance record (provider_report) is kept; the archived assets show there as archived, with the zip that holds them."""
    if progress is not None:
        await progress(0.0, f"archiving {workspace_id}/{video_id}")
    return await anyio.to_thread.run_sync(
        lambda: archive_video_service(rt, workspace_id, video_id, keep=tuple(keep), intermediates=intermediates)
    )
