"""Narration: speech from the speech chain as a 48 kHz stereo WAV master with timings and an .srt."""

from __future__ import annotations

import anyio.to_thread

from core.assets import AssetRow, VideoPaths
from core.assets.atomic import staged
from core.errors import BadOutput
from core.jobs import JobHandle
from core.media.probe import probe
from core.media.srt import to_srt
from core.providers.base import SpeechSpec
from core.runtime import Runtime
from core.schemas import Attempt, NarrationRequest, NarrationResult, SegmentTiming
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure
from core.services.voices import SpeakingVoice, speaking_voice

__all__ = ["synthesize_narration", "cached_narration", "speech_chain_ids"]


def _spec(req: NarrationRequest, voice: SpeakingVoice | None) -> SpeechSpec:
    return SpeechSpec(
        segments=tuple(req.texts()),
        # A workspace voice travels as its vendor voice id: the cache key changes when the name is cloned anew.
        voice=voice.vendor_voice_id if voice else req.voice,
        speed=req.speed,
        pitch_semitones=req.pitch_semitones,
        instructions=req.instructions,
    )


def _voice(rt: Runtime, req: NarrationRequest) -> SpeakingVoice | None:
    return speaking_voice(rt, req.workspace_id, req.voice, req.providers)


def speech_chain_ids(rt: Runtime, req: NarrationRequest) -> list[str]:
    """The provider ids the narration will try: a workspace voice narrows them to its vendor's.
    Raises what to fix (an unknown provider, a deleted voice, providers that cannot speak it)."""
    voice = _voice(rt, req)
    return voice.chain_ids if voice else rt.catalog.chain_ids("speech", req.providers)


def _key(rt: Runtime, req: NarrationRequest, voice: SpeakingVoice | None) -> str:
    ids = voice.chain_ids if voice else rt.catalog.chain_ids("speech", req.providers)
    return cache.request_key("speech", ids, _spec(req, voice))


def _result(paths: VideoPaths, row: AssetRow, attempts: list[Attempt], *, cached: bool = False) -> NarrationResult:
    return NarrationResult(
        **asset_fields(paths, row, attempts, cached=cached),
        segments=[SegmentTiming(**s) for s in row.props.get("segments", [])],
        srt_path=str(paths.narration_srt.resolve()),
        srt_uri=paths.uri(paths.narration_srt),
        voice=row.props.get("voice"),
    )


def cached_narration(rt: Runtime, req: NarrationRequest, job_id: str | None = None) -> NarrationResult | None:
    if req.fresh:
        return None
    hit = cache.lookup(rt, _key(rt, req, _voice(rt, req)))
    if hit is None or hit.row.kind != "narration":
        return None
    paths = rt.paths(req.workspace_id, req.video_id)
    srt = hit.path.parent / "narration.srt"
    row, attempts = cache.place_copy(rt, hit, paths, paths.narration, capability="speech", scene_index=None,
                                     job_id=job_id, extra_files={srt: paths.narration_srt} if srt.is_file() else None)
    return _result(paths, row, attempts, cached=True)


async def synthesize_narration(rt: Runtime, req: NarrationRequest, handle: JobHandle) -> NarrationResult:
    paths = rt.paths(req.workspace_id, req.video_id)
    texts = req.texts()
    voice = _voice(rt, req)
    chain = rt.catalog.chain("speech", voice.chain_ids if voice else req.providers)
    if (hit := cached_narration(rt, req, handle.job_id)) is not None:
        return hit
    paths.ensure()
    spec = _spec(req, voice)
    handle.progress(0.01, f"synthesizing {len(texts)} segment(s)")
    with staged(paths.narration) as tmp, staged(paths.narration_srt) as srt_tmp:
        try:
            output = await chain.synthesize(spec, tmp, call_context(rt, handle, paths, span=0.9))
            info = await anyio.to_thread.run_sync(lambda: probe(tmp))
            if info.audio is None or not info.duration_s:
                raise BadOutput(f"{output.provider} returned no audio")
            if not output.segments or len(output.segments) != len(texts):
                raise BadOutput(f"{output.provider} returned timings for {len(output.segments or [])} "
                                f"of {len(texts)} segments")
        except Exception as exc:
            record_failure(rt, paths, "speech", exc, handle.job_id)
            raise
        segments = output.segments
        srt_tmp.write_text(to_srt(segments), "utf-8")
        a = info.audio
        props = {
            "duration_s": info.duration_s,
            "sample_rate": a.sample_rate,
            "channels": a.channels,
            "audio_codec": a.codec,
            "voice": voice.name if voice else output.voice or req.voice,
            "segments": [s.model_dump() for s in segments],
            "srt": paths.relative(paths.narration_srt),
        }
        # The WAV and its .srt are renamed into place inside the registration's transaction (off the loop).
        row = await anyio.to_thread.run_sync(lambda: rt.registry.add_asset(
            paths,
            kind="narration",
            path=paths.narration,
            staged=tmp,
            sidecars={srt_tmp: paths.narration_srt},
            provider=output.provider,
            model=output.model,
            cost_usd=output.cost_usd,
            props=props,
            attempts=output.attempts,
            capability="speech",
            job_id=handle.job_id,
        ))
    cache.remember(rt, _key(rt, req, voice), row, paths.narration)
    return _result(paths, row, output.attempts)
