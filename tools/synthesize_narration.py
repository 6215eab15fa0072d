from __future__ import annotations

from core.runtime import Runtime
from core.schemas import (
    Fresh,
    Instructions,
    JobEnvelope,
    Language,
    NarrationRequest,
    NarrationResult,
    NarrationSegments,
    NarrationText,
    PitchSemitones,
    ProviderIds,
    Speed,
    VideoId,
    Voice,
    WorkspaceId,
    default_of,
)
from core.services import narration
from tools._common import ProgressSink, WaitSeconds, finished_job, run_job


async def synthesize_narration(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    text: NarrationText = "",
    segments: NarrationSegments = (),
    voice: Voice = "",
    language: Language = "",
    speed: Speed = default_of(Speed),
    pitch_semitones: PitchSemitones = default_of(PitchSemitones),
    instructions: Instructions = "",
    providers: ProviderIds = (),
    fresh: Fresh = default_of(Fresh),
    wait_seconds: WaitSeconds = default_of(WaitSeconds),
) -> JobEnvelope[NarrationResult]:
    """Synthesize audio/narration.wav (48 kHz stereo) and its .srt, with per-segment and per-word timings; falls back to espeak-ng."""
    req = NarrationRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        text=text or None,
        segments=list(segments) or None,
        voice=voice or None,
        language=language or None,
        speed=speed,
        pitch_semitones=pitch_semitones,
        instructions=instructions or None,
        providers=list(providers) or None,
        fresh=fresh,
    )
    plan = narration.prepare(rt, req)  # no text, unknown providers, a deleted workspace voice: refused here
    if plan.hit is not None:
        return finished_job(rt, "synthesize_narration", narration.from_cache(rt, plan), workspace_id=workspace_id,
                            video_id=video_id)
    return await run_job(
        rt,
        progress,
        kind="synthesize_narration",
        body=lambda handle: narration.synthesize_narration(rt, plan, handle),
        result_type=NarrationResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
