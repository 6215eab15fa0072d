from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.runtime import Runtime
from core.schemas import ImportResult, JobEnvelope, VideoId, WorkspaceId, default_of
from core.services import imports
from tools._common import ProgressSink, WaitSeconds, run_job


async def import_asset(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    source: Annotated[str, Field(description="A path: absolute, or relative to a folder of YTAP_IMPORT_ROOTS.",
                                 min_length=1, max_length=4096)],
    kind: Annotated[Literal["scene", "music", "narration", "image", "font"], Field(
        description="scene (a clip), music, narration (a voiceover), image (e.g. a watermark) or font.")],
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    scene_index: Annotated[int, Field(description="kind=scene: its position (replacing that scene).",
                                      ge=0, le=999)] = 0,
    transcript: Annotated[str, Field(description="kind=narration: its words, for captions.",
                                     max_length=20000)] = "",
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[ImportResult]:
    """Import the user's file (clip, music, voiceover, picture, font) from YTAP_IMPORT_ROOTS, converted to what the other tools expect."""
    plan = imports.prepare(rt, imports.ImportRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        source=source,
        kind=kind,
        scene_index=scene_index or None,
        transcript=transcript or None,
    ))
    return await run_job(
        rt,
        progress,
        kind="import_asset",
        body=lambda handle: imports.import_asset(rt, plan, handle),
        result_type=ImportResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
