"""Narration: speech from the speech chain as a 48 kHz stereo WAV master with timings and an .srt.

:func:`prepare` resolves a request once (texts, the workspace voice, chain ids, spec, cache
key, a cache hit) before any job starts; the job reads that plan. Speech providers return
their parts raw; :func:`finish_speech`, run by the chain inside each provider's attempt,
joins them into the master (core.media.audio.join_segments: 48 kHz stereo, the speed and
pitch the vendor could not apply) with absolute timings, and places the words of every part the
engine gave no word times for (OpenAI, Gemini, Kokoro) where the master speaks them
(core.media.align). Audio that does not decode fails that attempt and the next provider is tried.
The language (given, or detected from the text) is decided in the plan: it picks voices, the
aligner's reference voice and the caption line breaks, and is recorded on the asset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.assets import AssetRow, VideoPaths
from core.assets.atomic import staged
from core.errors import BadOutput, MediaError
from core.jobs import JobHandle
from core.media.align import align_untimed
from core.media.audio import join_segments
from core.media.language import detect
from core.media.probe import MediaInfo, probe
from core.media.srt import to_srt
from core.providers.base import CallContext, Finish, ProviderOutput, SpeechSpec
from core.runtime import Runtime
from core.assets.props import NarrationProps
from core.schemas import Attempt, NarrationRequest, NarrationResult, SegmentTiming
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure, register_output
from core.services.voices import SpeakingVoice, speaking_voice

__all__ = ["NarrationPlan", "prepare", "from_cache", "finish_speech", "synthesize_narration"]

@dataclass(frozen=True)
class NarrationPlan:
    """A narration request resolved once: its texts, the workspace voice it names, the chain, the cache."""

    request: NarrationRequest
    paths: VideoPaths
    texts: tuple[str, ...]
    voice: SpeakingVoice | None  # None: not a workspace voice (a provider's own voice name, or none)
    chain_ids: tuple[str, ...]  # a workspace voice narrows them to its vendor's providers
    spec: SpeechSpec
    key: str
    hit: cache.CacheHit | None  # None on a miss or with ``fresh``

    @property
    def override(self) -> list[str] | None:
        """The ids as the chain's per-call list (kept in order as given), or None for the configured chain."""
        return self.voice.chain_ids if self.voice else self.request.providers


def prepare(rt: Runtime, req: NarrationRequest) -> NarrationPlan:
    """Resolve ``req`` before any job starts. Raises what to fix: no text, an unknown provider, a deleted
    workspace voice, providers that cannot speak it."""
    paths = rt.paths(req.workspace_id, req.video_id)
    texts = tuple(req.texts())
    voice = speaking_voice(rt, req.workspace_id, req.voice, req.providers)
    ids = tuple(voice.chain_ids if voice else rt.catalog.chain_ids("speech", req.providers))
    spec = SpeechSpec(
        segments=texts,
        # A workspace voice travels as its vendor voice id: the cache key changes when the name is cloned anew.
        voice=voice.vendor_voice_id if voice else req.voice,
        speed=req.speed,
        pitch_semitones=req.pitch_semitones,
        instructions=req.instructions,
        language=req.language or detect(" ".join(texts)),
    )
    key = cache.request_key("speech", list(ids), spec)
    hit = None if req.fresh else cache.lookup(rt, key, kind="narration")
    return NarrationPlan(req, paths, texts, voice, ids, spec, key, hit)


def _result(paths: VideoPaths, row: AssetRow, attempts: list[Attempt], *, cached: bool = False) -> NarrationResult:
    return NarrationResult(
        **asset_fields(paths, row, attempts, cached=cached, into=NarrationResult),
        segments=list(row.props_of(NarrationProps).segments),
        srt_path=str(paths.narration_srt.resolve()),
        srt_uri=paths.uri(paths.narration_srt),
        voice=row.props_of(NarrationProps).voice,
        language=row.props_of(NarrationProps).language,
    )


def finish_speech(spec: SpeechSpec) -> Finish:
    """The provider's parts joined into the 48 kHz stereo master, checked: audio, and one timing per segment
    (``output.segments`` then holds the master's timings)."""

    def finish(output: ProviderOutput, out: Path, ctx: CallContext) -> MediaInfo:
        raw = output.speech
        if raw is None:  # a provider that writes the master itself (local:espeak-ng, core/media/espeak.py)
            os.replace(output.path, out)
            timings = list(output.segments or [])
        else:
            ctx.progress(0.9, "joining the narration")
            timings = join_segments(raw.parts, out, speed=raw.speed, pitch_semitones=raw.pitch_semitones,
                                    cancel=ctx.cancel)
            untimed = [i for i, part in enumerate(raw.parts) if not part.words]
            if untimed:
                ctx.progress(0.95, "aligning the words to the audio")
                timings = align_untimed(out, timings, untimed, spec.language, cancel=ctx.cancel)
            if raw.segment_of:
                timings = _regroup(timings, raw.segment_of)
        info = probe(out)
        if info.audio is None or not info.duration_s:
            raise MediaError("the narration holds no audio")
        if len(timings) != len(spec.segments):
            raise BadOutput(f"timings for {len(timings)} of {len(spec.segments)} segments")
        output.segments = timings  # the output now describes the master
        return info

    return finish


def _regroup(timings: list[SegmentTiming], segment_of: list[int]) -> list[SegmentTiming]:
    """One timing per segment again, when long segments were spoken in several parts."""
    merged: list[SegmentTiming] = []
    for timing, owner in zip(timings, segment_of, strict=True):
        if merged and len(merged) == owner + 1:
            last = merged[-1]
            merged[-1] = last.model_copy(update={"end_s": timing.end_s, "text": f"{last.text} {timing.text}",
                                                 "words": [*last.words, *timing.words]})
        else:
            merged.append(timing.model_copy(update={"index": owner + 1}))
    return merged


def from_cache(rt: Runtime, plan: NarrationPlan, job_id: str | None = None) -> NarrationResult:
    """The plan's cache hit, with its .srt, placed as this video's narration (cost 0, no provider call)."""
    if plan.hit is None:
        raise ValueError("the plan holds no cache hit")
    paths = plan.paths
    srt = plan.hit.path.parent / "narration.srt"
    row, attempts = cache.place_copy(rt, plan.hit, paths, paths.narration, capability="speech", scene_index=None,
                                     job_id=job_id,
                                     extra_files={srt: paths.narration_srt} if srt.is_file() else None)
    return _result(paths, row, attempts, cached=True)


async def synthesize_narration(rt: Runtime, plan: NarrationPlan, handle: JobHandle) -> NarrationResult:
    if plan.hit is not None:
        return from_cache(rt, plan, handle.job_id)
    req, paths, texts, voice, spec = plan.request, plan.paths, plan.texts, plan.voice, plan.spec
    chain = rt.catalog.chain("speech", plan.override, resolved=plan.chain_ids)
    paths.ensure()
    handle.progress(0.01, f"synthesizing {len(texts)} segment(s)")
    with staged(paths.narration) as tmp, staged(paths.narration_srt) as srt_tmp:
        try:
            output = await chain.synthesize(spec, tmp, call_context(rt, handle, paths, span=0.9),
                                            finish=finish_speech(spec))
        except Exception as exc:
            record_failure(rt, paths, "speech", exc, handle.job_id)
            raise
        segments, info = output.segments or [], output.finished
        srt_tmp.write_text(to_srt(segments, language=spec.language), "utf-8")
        a = info.audio
        props = NarrationProps(
            duration_s=info.duration_s,
            sample_rate=a.sample_rate,
            channels=a.channels,
            audio_codec=a.codec,
            voice=voice.name if voice else output.voice or req.voice,
            language=spec.language,
            segments=tuple(segments),
            srt=paths.relative(paths.narration_srt),
        )
        row = await register_output(rt, paths, output, handle, kind="narration", path=paths.narration, staged=tmp,
                                    props=props, capability="speech", sidecars={srt_tmp: paths.narration_srt})
    cache.remember(rt, plan.key, row, paths.narration)
    return _result(paths, row, output.attempts)
