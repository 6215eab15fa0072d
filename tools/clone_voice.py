from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope, VoiceResult
from core.services import voices
from tools._common import ProgressSink, VideoId, VoiceName, WaitSeconds, WorkspaceId, run_job


async def clone_voice(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    name: VoiceName,
    sample: Annotated[str, Field(description="The recording of the speaker: a ytap:// uri or a path inside the "
                                 "video's folder of an audio asset, typically a voiceover imported with import_asset "
                                 "kind=narration (audio/narration.wav). One speaker, no music; a minute or two is "
                                 "best, the first 3 minutes are used.", min_length=1, max_length=1000)],
    consent: Annotated[bool, Field(description="True only when the person whose voice is in the sample has agreed "
                                   "to it being cloned (their own voice, or one the user has the rights to). False "
                                   "is refused.")],
    *,
    workspace_id: WorkspaceId = "default",
    description: Annotated[str, Field(description="A note kept with the voice (who it is, the tone). Empty: none.",
                                      max_length=500)] = "",
    remove_background_noise: Annotated[bool, Field(description="Let ElevenLabs remove background noise from the "
                                                   "sample first (can make a clean recording sound worse).")] = False,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[VoiceResult]:
    """Clone the voice of the speaker in a recording of the video (an ElevenLabs instant voice clone, needs ELEVENLABS_API_KEY on a plan with voice cloning) and keep it in the workspace under a name; synthesize_narration(voice=<name>) then speaks with it, provider_report lists it, delete_voice removes it. Consent: clone a voice only with the permission of the person it belongs to; set consent=true only once they have agreed. Returns a job envelope: poll job_status while it runs."""
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
