"""Narration: speech from the speech chain as a 48 kHz stereo WAV master with timings and an .srt."""

from __future__ import annotations

from core.assets import AssetRow, VideoPaths, atomic_target, atomic_write_text
from core.errors import BadOutput
from core.jobs import JobHandle
from core.media.probe import probe
from core.media.srt import to_srt
from core.providers.base import SpeechSpec
from core.runtime import Runtime
from core.schemas import Attempt, NarrationRequest, NarrationResult, SegmentTiming
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure

__all__ = ["synthesize_narration", "cached_narration"]


def _spec(req: NarrationRequest) -> SpeechSpec:
    return SpeechSpec(
        segments=tuple(req.texts()),
        voice=req.voice,
        speed=req.speed,
        pitch_semitones=req.pitch_semitones,
        instructions=req.instructions,
    )


def _key(rt: Runtime, req: NarrationRequest) -> str:
    return cache.request_key("speech", rt.catalog.chain_ids("speech", req.providers), _spec(req))


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
    hit = cache.lookup(rt, _key(rt, req))
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
    chain = rt.catalog.chain("speech", req.providers)
    if (hit := cached_narration(rt, req, handle.job_id)) is not None:
        return hit
    paths.ensure()
    spec = _spec(req)
    handle.progress(0.01, f"synthesizing {len(texts)} segment(s)")
    try:
        with atomic_target(paths.narration) as tmp:
            output = await chain.synthesize(spec, tmp, call_context(rt, handle, paths, span=0.9))
            info = probe(tmp)
            if info.audio is None or not info.duration_s:
                raise BadOutput(f"{output.provider} returned no audio")
            if not output.segments or len(output.segments) != len(texts):
                raise BadOutput(f"{output.provider} returned timings for {len(output.segments or [])} of {len(texts)} segments")
    except Exception as exc:
        record_failure(rt, paths, "speech", exc, handle.job_id)
        raise
    segments = output.segments
    atomic_write_text(paths.narration_srt, to_srt(segments))
    a = info.audio
    props = {
        "duration_s": info.duration_s,
        "sample_rate": a.sample_rate,
        "channels": a.channels,
        "audio_codec": a.codec,
        "voice": output.voice or req.voice,
        "segments": [s.model_dump() for s in segments],
        "srt": paths.relative(paths.narration_srt),
    }
    row = rt.registry.add_asset(
        paths,
        kind="narration",
        path=paths.narration,
        provider=output.provider,
        model=output.model,
        cost_usd=output.cost_usd,
        props=props,
        attempts=output.attempts,
        capability="speech",
        job_id=handle.job_id,
    )
    cache.remember(rt, _key(rt, req), row, paths.narration)
    return _result(paths, row, output.attempts)
