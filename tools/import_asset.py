from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.runtime import Runtime
from core.schemas import ImportResult, JobEnvelope
from core.services import imports
from tools._common import ProgressSink, VideoId, WaitSeconds, WorkspaceId, run_job


async def import_asset(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    source: Annotated[str, Field(description="Path of the file on the server's machine: absolute, or relative to a "
                                 "folder the user listed in YTAP_IMPORT_ROOTS (nothing outside those folders is read).",
                                 min_length=1, max_length=4096)],
    kind: Annotated[Literal["scene", "music", "narration", "image", "font"], Field(
        description="What the file becomes: scene (a video clip -> scenes/scene_NNN.mp4, 1920x1080 or 1080x1920 "
                    "at 30 fps), music (-> audio/music.wav, for assemble_video's music), narration (a voiceover -> "
                    "audio/narration.wav 48 kHz stereo + .srt), image (-> images/<name>.jpg or .png, e.g. a "
                    "watermark), font (-> fonts/<name>.ttf or .otf).")],
    *,
    workspace_id: WorkspaceId = "default",
    scene_index: Annotated[int, Field(description="Position of the scene, 1-999: required for kind=scene (replaces "
                                      "that scene). 0: not given.", ge=0, le=999)] = 0,
    transcript: Annotated[str, Field(description="kind=narration: what the voiceover says; its words are spread over "
                                     "the audio for captions and the .srt. Empty: no captions.",
                                     max_length=20000)] = "",
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[ImportResult]:
    """Import the user's own file (a video clip, a music bed, a recorded voiceover, a picture or a font) into the video's folder, probed and converted to the format the other tools expect, and registered with provider user:import. Only files inside the folders listed in YTAP_IMPORT_ROOTS can be imported (importing is off when it is empty). Returns a job envelope: poll job_status while a long clip is normalised."""
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
