"""Music: a bed from the music chain as ``audio/music.wav``, 48 kHz stereo, looping seamlessly.

:func:`prepare` resolves a request once (chain ids, spec, cache key, a cache hit) before any
job starts. Music providers return their track raw (a vendor's MP3 of the length it could
make, local:ambient's loop); :func:`finish_music`, run by the chain inside each provider's
attempt, makes it the contract's bed (core.media.musicbed): 48 kHz stereo 16-bit PCM, one
loop cut on a bar line and crossfaded into its start unless it already loops, repeated to
the requested duration, mastered to -20 LUFS, its loudness and its seam measured on the
written file. Audio that does not decode, or is too short to loop, fails that attempt and
the next provider is tried.

The asset's props record the loop (tempo, bars, loop length, loops, chords when known):
assembly repeats the file for a longer video, and because the file is whole loops each
repeat joins on a bar line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.assets import AssetRow, VideoPaths
from core.assets.atomic import staged
from core.assets.props import MusicProps
from core.errors import BadOutput, MediaError
from core.jobs import JobHandle
from core.media.formats import AUDIO_CHANNELS, AUDIO_SAMPLE_RATE
from core.media.musicbed import Loop, Mastered, decode, estimate_bpm, make_loop, master
from core.media.probe import MediaInfo, probe
from core.providers.base import CallContext, Finish, MusicFacts, MusicSpec, ProviderOutput
from core.runtime import Runtime
from core.schemas import Attempt, MusicRequest, MusicResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure, register_output

__all__ = ["MusicPlan", "MusicFinished", "prepare", "from_cache", "finish_music", "generate_music", "music_path"]


def music_path(paths: VideoPaths) -> Path:
    """Where a video's bed lives (DESIGN §5 ``audio/music.*``; import_asset writes the same file)."""
    return paths.audio_dir / "music.wav"


@dataclass(frozen=True)
class MusicPlan:
    """A music request resolved once: the chain, the spec, the cache."""

    request: MusicRequest
    paths: VideoPaths
    chain_ids: tuple[str, ...]
    spec: MusicSpec
    key: str
    hit: cache.CacheHit | None  # None on a miss or with ``fresh``


@dataclass(frozen=True)
class MusicFinished:
    """What the finishing step made and measured."""

    info: MediaInfo
    loop: Loop
    mastered: Mastered


def prepare(rt: Runtime, req: MusicRequest) -> MusicPlan:
    """Resolve ``req`` before any job starts. Raises what to fix: an unknown provider."""
    paths = rt.paths(req.workspace_id, req.video_id)
    ids = tuple(rt.catalog.chain_ids("music", req.providers))
    spec = MusicSpec(mood=req.mood.strip(), duration_s=req.duration_s)
    key = cache.request_key("music", list(ids), spec)
    hit = None if req.fresh else cache.lookup(rt, key, kind="music")
    return MusicPlan(req, paths, ids, spec, key, hit)


def finish_music(spec: MusicSpec) -> Finish:
    """The provider's track as the contract's bed (see the module docstring); checked by probing the file."""

    def finish(output: ProviderOutput, out: Path, ctx: CallContext) -> MusicFinished:
        facts = output.music or MusicFacts()
        ctx.progress(0.8, "looping and mastering the music")
        samples = decode(output.path, cancel=ctx.cancel)
        got_s = len(samples) / AUDIO_SAMPLE_RATE
        if facts.length_s and got_s < 0.9 * facts.length_s:
            raise BadOutput(f"{output.provider} sent {got_s:.1f} s of the {facts.length_s:g} s of music asked for "
                            "(cut off)")
        bpm = facts.bpm if facts.bpm else estimate_bpm(samples)
        loop = make_loop(samples, seamless=facts.seamless, bpm=bpm, beats_per_bar=facts.beats_per_bar,
                         bars=facts.bars)
        del samples
        mastered = master(loop, out, duration_s=spec.duration_s, cancel=ctx.cancel)
        info = probe(out)
        a = info.audio
        if a is None or a.sample_rate != AUDIO_SAMPLE_RATE or a.channels != AUDIO_CHANNELS:
            raise MediaError("the finished music is not 48 kHz stereo audio")
        return MusicFinished(info, loop, mastered)

    return finish


def _result(paths: VideoPaths, row: AssetRow, attempts: list[Attempt], *, cached: bool = False) -> MusicResult:
    p = row.props_of(MusicProps)
    return MusicResult(**asset_fields(paths, row, attempts, cached=cached, into=MusicResult), loops_seamlessly=bool(p.seamless),
                       integrated_lufs=p.integrated_lufs if p.integrated_lufs is not None else -70.0,
                       true_peak_dbtp=p.true_peak_dbtp if p.true_peak_dbtp is not None else -70.0,
                       loop_s=p.loop_s or p.duration_s or 0.0, bpm=p.bpm)


def from_cache(rt: Runtime, plan: MusicPlan, job_id: str | None = None) -> MusicResult:
    """The plan's cache hit, placed as this video's music (cost 0, no provider call)."""
    if plan.hit is None:
        raise ValueError("the plan holds no cache hit")
    row, attempts = cache.place_copy(rt, plan.hit, plan.paths, music_path(plan.paths), capability="music",
                                     scene_index=None, job_id=job_id)
    return _result(plan.paths, row, attempts, cached=True)


async def generate_music(rt: Runtime, plan: MusicPlan, handle: JobHandle) -> MusicResult:
    if plan.hit is not None:
        return from_cache(rt, plan, handle.job_id)
    req, paths, spec = plan.request, plan.paths, plan.spec
    chain = rt.catalog.chain("music", req.providers, resolved=plan.chain_ids)
    paths.ensure()
    final = music_path(paths)
    handle.progress(0.01, "composing the music")
    with staged(final) as tmp:
        try:
            output = await chain.compose_music(spec, tmp, call_context(rt, handle, paths, span=0.95),
                                               finish=finish_music(spec))
        except Exception as exc:
            record_failure(rt, paths, "music", exc, handle.job_id)
            raise
        done: MusicFinished = output.finished
        facts = output.music or MusicFacts()
        a, loop, m = done.info.audio, done.loop, done.mastered
        if a is None:  # finish_music checked it; kept for the type
            raise MediaError("the finished music holds no audio")
        props = MusicProps(
            duration_s=done.info.duration_s,
            sample_rate=a.sample_rate,
            channels=a.channels,
            audio_codec=a.codec,
            mood=spec.mood,
            profile=facts.profile,
            key=facts.key,
            chords=facts.chords,
            bpm=loop.bpm,
            beats_per_bar=loop.beats_per_bar,
            bars=loop.bars,
            loop_s=round(loop.duration_s, 4),
            loops=m.loops,
            seamless=m.seam.seamless,
            seam_step_ratio=m.seam.step_ratio,
            integrated_lufs=m.integrated_lufs,
            true_peak_dbtp=m.true_peak_dbtp,
        )
        row = await register_output(rt, paths, output, handle, kind="music", path=final, staged=tmp, props=props,
                                    capability="music")
    cache.remember(rt, plan.key, row, final)
    return _result(paths, row, output.attempts)
