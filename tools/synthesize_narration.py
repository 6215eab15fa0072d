from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import JobEnvelope, NarrationRequest, NarrationResult
from core.services.narration import cached_narration, speech_chain_ids
from core.services.narration import synthesize_narration as synthesize_narration_service
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


async def synthesize_narration(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = "default",
    text: Annotated[str, Field(description="The whole narration as one text. Give this or segments.", max_length=20000)] = "",
    segments: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=5000)]],
        Field(description="The narration as one string per scene, in scene order (preferred: timings line up "
              "with scenes). Give this or text.", max_length=200),
    ] = (),
    voice: Annotated[str, Field(description="Provider voice name (e.g. 'alloy' for OpenAI, 'en-us' or 'en-gb' for "
                                "espeak-ng), or the name of a workspace voice made with clone_voice (spoken only by "
                                "the vendor that holds the clone). Empty: the provider's default.",
                                max_length=200)] = "",
    speed: Annotated[float, Field(description="Speaking rate, 0.5-2.0 (1.0 normal).", ge=0.5, le=2.0)] = 1.0,
    pitch_semitones: Annotated[float, Field(description="Pitch shift in semitones, -12..12.", ge=-12, le=12)] = 0.0,
    instructions: Annotated[str, Field(description="Tone of voice for providers that take it, e.g. 'warm, curious'.",
                                       max_length=2000)] = "",
    providers: ProviderIds = (),
    fresh: Fresh = False,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[NarrationResult]:
    """Synthesize the narration (audio/narration.wav, 48 kHz stereo, plus audio/narration.srt) with the best available speech provider, falling back to local espeak-ng. The result has per-segment and per-word timings. Returns a job envelope: poll job_status while it runs."""
    req = NarrationRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        text=text or None,
        segments=list(segments) or None,
        voice=voice or None,
        speed=speed,
        pitch_semitones=pitch_semitones,
        instructions=instructions or None,
        providers=list(providers) or None,
        fresh=fresh,
    )
    req.texts()  # raises when neither text nor segments was given
    speech_chain_ids(rt, req)  # unknown providers, a deleted workspace voice: refused before a job starts
    if (hit := cached_narration(rt, req)) is not None:
        return finished_job(rt, "synthesize_narration", hit, workspace_id=workspace_id, video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="synthesize_narration",
        body=lambda handle: synthesize_narration_service(rt, req, handle),
        result_type=NarrationResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
