from __future__ import annotations

from core.runtime import Runtime
from core.schemas import (
    Fresh,
    JobEnvelope,
    Mood,
    MusicDuration,
    MusicRequest,
    MusicResult,
    ProviderIds,
    VideoId,
    WorkspaceId,
    default_of,
)
from core.services import music
from tools._common import ProgressSink, WaitSeconds, finished_job, run_job


async def generate_music(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    mood: Mood,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    duration_s: MusicDuration = default_of(MusicDuration),
    providers: ProviderIds = (),
    fresh: Fresh = default_of(Fresh),
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[MusicResult]:
    """Make audio/music.wav (48 kHz stereo, loops seamlessly, -20 LUFS); assemble_video uses it by default."""
    req = MusicRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        mood=mood,
        duration_s=duration_s,
        providers=list(providers) or None,
        fresh=fresh,
    )
    plan = music.prepare(rt, req)  # an unknown provider: refused here
    if plan.hit is not None:
        return finished_job(rt, "generate_music", music.from_cache(rt, plan), workspace_id=workspace_id,
                            video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="generate_music",
        body=lambda handle: music.generate_music(rt, plan, handle),
        result_type=MusicResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
