from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope, VideoId, VoiceResult, WorkspaceId, default_of
from core.services import voices
from tools._common import ProgressSink, VoiceName, WaitSeconds, run_job


async def clone_voice(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    name: VoiceName,
    sample: Annotated[str, Field(description="An audio file of the video (e.g. an imported voiceover): one speaker, no "
                                 "music, 1-3 minutes.", min_length=1, max_length=1000)],
    consent: Annotated[bool, Field(description="True only once the speaker has agreed to it.")],
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    description: Annotated[str, Field(description="A note kept with the voice.",
                                      max_length=500)] = "",
    remove_background_noise: Annotated[bool, Field(description="Denoise the sample first.")] = False,
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[VoiceResult]:
    """Clone a voice from a recording of the video (ElevenLabs instant clone) under a name synthesize_narration's voice takes. Only with the speaker's permission."""
    plan = voices.prepare_clone(rt, workspace_id, video_id, name, sample, consent, description or None,
                                remove_background_noise=remove_background_noise)
    return await run_job(
        rt,
        progress,
        kind="clone_voice",
        body=lambda handle: voices.clone_planned(rt, plan, handle),
        result_type=VoiceResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
