from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.runtime import Runtime
from core.schemas import AssemblyRequest, AssemblyResult, JobEnvelope, Overlay
from core.services import assembly
from tools._common import ProgressSink, VideoId, WaitSeconds, WorkspaceId, run_job

AssetRef = Annotated[str, Field(description="A ytap:// uri of this video's file, or a path inside its folder.",
                                max_length=1000)]


async def assemble_video(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = "default",
    scenes: Annotated[list[AssetRef], Field(description="Scene clips in order. Empty: the video's scenes by "
                                            "scene_index.", max_length=200)] = (),
    narration: Annotated[str, Field(description="Narration audio ref. Empty: the video's narration if it has one.",
                                    max_length=1000)] = "",
    music: Annotated[str, Field(description="Background music ref (not supported yet: leave empty).",
                                max_length=1000)] = "",
    aspect_ratio: Annotated[Literal["auto", "16:9", "9:16"], Field(description="Output shape. auto: the shape of "
                                                                   "most scenes.")] = "auto",
    fps: Annotated[Literal[30, 60], Field(description="Output frame rate.")] = 30,
    height: Annotated[int, Field(description="Short side in pixels (1080 = 1080p), 720-2160.", ge=720, le=2160)] = 1080,
    captions: Annotated[bool, Field(description="Caption sidecar from the narration timings (audio/narration.srt; "
                                    "burned-in captions come in a later version).")] = True,
    transition: Annotated[Literal["cut", "crossfade"], Field(description="Between scenes (crossfade: not yet).")] = "cut",
    overlays: Annotated[list[Overlay], Field(description="Text overlays (not supported yet: leave empty).",
                                             max_length=50)] = (),
    watermark: Annotated[str, Field(description="Watermark image ref (not supported yet: leave empty).",
                                    max_length=1000)] = "",
    loudness_lufs: Annotated[float, Field(description="Target integrated loudness, LUFS (-14 for YouTube).", ge=-30,
                                          le=-8)] = -14.0,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[AssemblyResult]:
    """Assemble the final video (final_video.mp4: H.264 High + AAC, YouTube's recommended settings) from the scenes and the narration in one encode pass; the last frame holds if the narration runs longer. The result carries the probed properties and a YouTube readiness check. Returns a job envelope: poll job_status while it runs."""
    req = AssemblyRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        scenes=list(scenes) or None,
        narration=narration or None,
        music=music or None,
        aspect_ratio=None if aspect_ratio == "auto" else aspect_ratio,
        fps=fps,
        height=height,
        captions=captions,
        transition=transition,
        overlays=list(overlays),
        watermark=watermark or None,
        loudness_lufs=loudness_lufs,
    )
    plan = assembly.prepare(rt, req)
    return await run_job(
        rt,
        progress,
        kind="assemble_video",
        body=lambda handle: assembly.assemble_video(rt, plan, handle),
        result_type=AssemblyResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
