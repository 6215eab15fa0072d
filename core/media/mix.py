"""The assembly's audio: the mix graph and its levelling.

narration ─ level ─ asplit ─────────────────────────────────────────┐
music (looped) ─ trim ─ fades ─ level ─ sidechaincompress(narration) ┼ amix ─ gain ─ [true-peak limiter] ─ exact samples
scene i audio ─ trim ─ crossfade fades ─ level ─ adelay(start) ─────┘

:func:`level_audio` measures the audio (audio-only ffmpeg runs to ``-f null``, cheap: no
video is decoded) and returns the timeline with its :class:`AudioLevels`: each source
levelled against the narration, then one gain that puts the finished mix on the loudness
target, and a true-peak limiter only where the ceiling would otherwise force the loudness
down. :func:`measure_loudness` is EBU R128 (ebur128) on any file.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ffmpeg

from core.media.ffmpeg import requires, run_ffmpeg
from core.media.filtergraph import apply_steps, input_node, num
from core.media.formats import AUDIO_LAYOUT, AUDIO_SAMPLE_RATE, TRUE_PEAK_MAX_DBTP
from core.media.timeline import AudioLevels, Loudness, Timeline

__all__ = ["audio_graph", "level_audio", "plan_levels", "finish_levels", "measure_loudness", "LIMITER_CEILING_DBTP"]

log = logging.getLogger(__name__)

# What the audio graph below asks of ffmpeg (checked when the build is chosen).
requires({
    "anullsrc": ("r", "cl"), "aresample": (), "aformat": ("sample_fmts", "sample_rates", "channel_layouts"),
    "volume": (), "atrim": ("start", "duration", "end_sample"), "afade": ("t", "st", "d"), "asetpts": (),
    "apad": ("whole_len",), "asplit": (),
    "sidechaincompress": ("threshold", "ratio", "attack", "release", "makeup"),
    "adelay": ("delays", "all"), "amix": ("inputs", "normalize", "duration", "dropout_transition"),
    "alimiter": ("limit", "attack", "release", "level", "latency"),
    "ebur128": ("peak", "metadata"), "ametadata": ("mode", "file"),
})

# The limiter's ceiling sits 0.5 dB under YouTube's -1 dBTP: the AAC encoder's own
# overshoot (measured here: 0.1-0.4 dB) must not push the result over.
LIMITER_CEILING_DBTP = TRUE_PEAK_MAX_DBTP - 0.5

_MAX_BOOST_DB = 30.0

_LIMITER_PASSES = 3  # make-up passes after the limiter (audio only, each a fraction of a second)

_LIMITER_TOLERANCE_LU = 0.5  # whole-mix gain cap: a nearly silent mix is reported, not amplified into noise

_SCENE_MAX_BOOST_DB = 12.0  # a quiet ambience is not pulled up to dialogue level

_MUSIC_MAX_BOOST_DB = 20.0

# Ducking: the music drops by about (speech - threshold) * (1 - 1/ratio) ≈ 10 dB under the
# narration (levelled to the target first, so the threshold means the same for every voice).
_DUCK_BELOW_TARGET_DB = 12.0

_DUCK_RATIO = 8

_DUCK_ATTACK_MS = 20

_DUCK_RELEASE_MS = 400

_MUSIC_FADE_IN_S = 1.0

_MUSIC_FADE_OUT_S = 2.0

# --------------------------------------------------------------------------- graph: audio


def _to_master(a: Any) -> Any:
    """Any audio (22.05 kHz mono, 44.1 kHz, 5.1 ...) -> 48 kHz stereo float."""
    a = a.filter("aresample", AUDIO_SAMPLE_RATE)
    return a.filter("aformat", sample_fmts="fltp", sample_rates=AUDIO_SAMPLE_RATE, channel_layouts=AUDIO_LAYOUT)


def _gain(a: Any, db: float) -> Any:
    return a if abs(db) < 1e-3 else a.filter("volume", f"{db:.2f}dB")


def _silence() -> Any:
    return input_node(f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl={AUDIO_LAYOUT}", "silence", f="lavfi").audio


def _music_chain(tl: Timeline) -> Any:
    assert tl.music is not None
    n = tl.audio_samples
    total_s = tl.duration_s
    # -stream_loop -1: a short bed repeats; atrim ends it (and the input) at the video's end. A bed from
    # generate_music is whole loops cut on bar lines, so each repeat joins on a bar without a step.
    a = _to_master(input_node(tl.music.path, "music", stream_loop=-1)["a:0"])
    a = a.filter("atrim", end_sample=n)
    fade_in = min(_MUSIC_FADE_IN_S, total_s / 4)
    fade_out = min(_MUSIC_FADE_OUT_S, total_s / 3)
    a = a.filter("afade", t="in", st=0, d=num(fade_in))
    return a.filter("afade", t="out", st=num(total_s - fade_out), d=num(fade_out))


def _scene_audio_chain(tl: Timeline, i: int) -> Any:
    """Scene i's own sound for its slot, faded where it crossfades, not yet positioned."""
    s = tl.scenes[i]
    n = tl.samples_at(s.frames)
    a = input_node(s.path, f"a{s.index}")["a:0"].filter("asetpts", "PTS-STARTPTS")
    a = a.filter("atrim", start=num(s.in_ms / 1000), duration=num(s.frames / tl.fps))
    a = _to_master(a.filter("asetpts", "PTS-STARTPTS"))
    a = a.filter("apad", whole_len=n).filter("atrim", end_sample=n)
    if s.overlap_frames:
        a = a.filter("afade", t="in", st=0, d=num(s.overlap_frames / tl.fps))
    following = tl.scenes[i + 1].overlap_frames if i + 1 < len(tl.scenes) else 0
    if following:
        a = a.filter("afade", t="out", st=num((s.frames - following) / tl.fps), d=num(following / tl.fps))
    return a


def _scene_audio_indices(tl: Timeline) -> list[int]:
    levels = tl.levels
    out = []
    for i, s in enumerate(tl.scenes):
        if not s.has_audio:
            continue
        if levels is not None and levels.scene_db and levels.scene_db[i] is None:
            continue  # measured silent: nothing to mix
        out.append(i)
    return out


def _audio_sources(tl: Timeline) -> dict[str, Any]:
    """Every source chain before levelling: 'narration', 'music', 'scene:<i>'."""
    out: dict[str, Any] = {}
    if tl.narration is not None:
        out["narration"] = _to_master(input_node(tl.narration.path, "narration")["a:0"])
    if tl.music is not None:
        out["music"] = _music_chain(tl)
    for i in _scene_audio_indices(tl):
        out[f"scene:{i}"] = _scene_audio_chain(tl, i)
    return out


def _mix(tl: Timeline) -> Any | None:
    """The levelled mix (before the final gain), or None when there is no sound at all."""
    levels = tl.levels or AudioLevels()
    sources = _audio_sources(tl)
    parts: list[Any] = []
    narration = sources.get("narration")
    sidechain = None
    if narration is not None:
        narration = _gain(narration, levels.narration_db)
        if "music" in sources:
            both = narration.filter_multi_output("asplit", 2)
            # sidechaincompress stops at the end of its shorter input: a sidechain padded with silence to
            # the video's length keeps the music playing after the last word.
            narration, sidechain = both[0], both[1].filter("apad", whole_len=tl.audio_samples)
        parts.append(narration)
    music = sources.get("music")
    if music is not None:
        music = _gain(music, levels.music_db)
        if sidechain is not None:
            threshold = 10 ** ((tl.mix.loudness_lufs - _DUCK_BELOW_TARGET_DB) / 20)
            music = ffmpeg.filter([music, sidechain], "sidechaincompress", threshold=f"{threshold:.4f}",
                                  ratio=_DUCK_RATIO, attack=_DUCK_ATTACK_MS, release=_DUCK_RELEASE_MS, makeup=1)
        parts.append(music)
    for key, chain in sources.items():
        if not key.startswith("scene:"):
            continue
        i = int(key.split(":")[1])
        db = levels.scene_db[i] if levels.scene_db else 0.0
        chain = _gain(chain, db or 0.0)
        start = tl.samples_at(tl.scenes[i].start_frame)
        if start:
            chain = chain.filter("adelay", delays=f"{start}S", all=1)
        parts.append(chain)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # normalize=0: a plain sum; amix's default divides every input by the input count.
    return ffmpeg.filter(parts, "amix", inputs=len(parts), normalize=0, duration="longest", dropout_transition=0)


def _limiter(a: Any) -> Any:
    # True peak is the peak between samples: limit at 4x the rate (what BS.1770's meter
    # looks at), then come back. level=0: alimiter otherwise normalises its output to 0 dBFS;
    # latency=1 removes its look-ahead delay so the audio stays in sync.
    limit = 10 ** (LIMITER_CEILING_DBTP / 20)
    a = a.filter("aresample", 4 * AUDIO_SAMPLE_RATE)
    a = a.filter("alimiter", limit=f"{limit:.4f}", attack=2, release=50, level=0, latency=1)
    return a.filter("aresample", AUDIO_SAMPLE_RATE)


def _fit_audio(audio: Any, tl: Timeline) -> Any:
    """Exactly as long as the video, to the sample: pad with silence, then cut."""
    n = tl.audio_samples
    return audio.filter("apad", whole_len=n).filter("atrim", end_sample=n)


def audio_graph(tl: Timeline) -> Any:
    levels = tl.levels or AudioLevels()
    mixed = _mix(tl)
    if mixed is None:
        audio = _silence()
    else:
        audio = _gain(mixed, levels.final_db)
        if levels.limiter:
            audio = _limiter(audio)
    return _fit_audio(apply_steps(audio, tl.audio_post), tl)


# --------------------------------------------------------------------------- loudness


_R128_I = re.compile(r"^lavfi\.r128\.I=(-?[\d.]+|-?inf|nan)", re.M)
_R128_TP = re.compile(r"^lavfi\.r128\.true_peak=(-?[\d.]+|inf|nan)", re.M)


def _measured(stream: Any, file: Path, *, true_peak: bool = True) -> Any:
    # ebur128 writes its running values as frame metadata; ametadata prints them to a file.
    # (Its end-of-stream summary goes to the log, which run_ffmpeg keeps only the tail of.)
    # True peak means 4x oversampling: only asked for where it is used.
    stream = stream.filter("ebur128", peak="true" if true_peak else "none", metadata=1)
    return stream.filter("ametadata", mode="print", file=str(file))


def _read_loudness(file: Path) -> Loudness:
    try:
        text = file.read_text()
    except FileNotFoundError:
        text = ""
    i_values = _R128_I.findall(text)
    tp_values = _R128_TP.findall(text)
    integrated = float(i_values[-1]) if i_values else -70.0
    peak = float(tp_values[-1]) if tp_values else 0.0
    if not math.isfinite(integrated):
        integrated = -70.0
    tp_db = 20 * math.log10(peak) if peak > 0 and math.isfinite(peak) else -math.inf
    return Loudness(integrated_lufs=integrated, true_peak_dbtp=tp_db)


def _run_null(outputs: Sequence[Any], *, cancel: threading.Event | None, what: str, timeout_s: float) -> None:
    out = ffmpeg.output(*outputs, "-", f="null")
    run_ffmpeg([str(a) for a in out.get_args()], timeout_s=timeout_s, cancel=cancel, what=what)


def measure_loudness(
    path: Path | str, *, cancel: threading.Event | None = None, timeout_s: float = 600.0, scratch: Path | None = None
) -> Loudness:
    """EBU R128 integrated loudness and true peak of a file's first audio stream.

    ``scratch``: where the measurement's small text file goes (the system temp dir if None).
    """
    with tempfile.TemporaryDirectory(prefix="ytap-r128-", dir=scratch) as tmp:
        file = Path(tmp) / "r128.txt"
        _run_null([_measured(input_node(path, "m")["a:0"], file)], cancel=cancel, what="measuring loudness",
                  timeout_s=timeout_s)
        return _read_loudness(file)


def plan_levels(tl: Timeline, sources: dict[str, Loudness]) -> AudioLevels:
    """Gains that put every source where the mix settings say, relative to the narration.

    The narration is levelled to the loudness target (so the ducking threshold means the
    same thing for every voice), the music to ``music_volume_db`` under it and each
    scene's own sound to ``scene_audio_volume_db`` under it. Silent scene tracks are left
    out; quiet ones are not pulled up by more than 12 dB (room tone is not dialogue).
    """
    target = tl.mix.loudness_lufs
    narration_db = 0.0
    n = sources.get("narration")
    if n is not None and not n.silent:
        narration_db = _clamp(target - n.integrated_lufs, -_MAX_BOOST_DB, _MAX_BOOST_DB)
    music_db = 0.0
    m = sources.get("music")
    if m is not None and not m.silent:
        music_db = min(_MUSIC_MAX_BOOST_DB, target + tl.mix.music_volume_db - m.integrated_lufs)
    scene_db: list[float | None] = []
    for i, s in enumerate(tl.scenes):
        loud = sources.get(f"scene:{i}")
        if not s.has_audio or loud is None or loud.silent:
            scene_db.append(None)
        else:
            scene_db.append(min(_SCENE_MAX_BOOST_DB, target + tl.mix.scene_audio_volume_db - loud.integrated_lufs))
    return AudioLevels(narration_db=round(narration_db, 2), music_db=round(music_db, 2),
                       scene_db=tuple(None if d is None else round(d, 2) for d in scene_db))


def finish_levels(levels: AudioLevels, mix: Loudness, target_lufs: float) -> AudioLevels:
    """The final gain onto the target, and a limiter only where the true peak would pass the ceiling."""
    if mix.silent:
        return replace(levels, final_db=0.0, limiter=False, measured_lufs=mix.integrated_lufs,
                       measured_true_peak_dbtp=None)
    final_db = _clamp(target_lufs - mix.integrated_lufs, -_MAX_BOOST_DB, _MAX_BOOST_DB)
    peak_after = mix.true_peak_dbtp + final_db
    return replace(levels, final_db=round(final_db, 2), limiter=peak_after > LIMITER_CEILING_DBTP,
                   measured_lufs=mix.integrated_lufs,
                   measured_true_peak_dbtp=mix.true_peak_dbtp if math.isfinite(mix.true_peak_dbtp) else None)


# Sources measured by one ffmpeg run: each ebur128 (and its decoder) holds ~6 MiB, so with every
# source in one run that run grew with the number of sounding scenes; a run more costs ~0.1 s.
SOURCES_PER_MEASURE = 8


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def level_audio(
    tl: Timeline, *, cancel: threading.Event | None = None, timeout_s: float = 600.0, scratch: Path | None = None
) -> Timeline:
    """Measure and return ``tl`` with its :class:`AudioLevels` (one or two audio-only runs).

    1. When the mix has more than one source, each source's loudness (one ebur128 per
       source, at most :data:`SOURCES_PER_MEASURE` to a run: each holds ~6 MiB) sets its gain
       relative to the narration (:func:`plan_levels`).
    2. The levelled mix is measured (one run) and the final gain and limiter decided
       (:func:`finish_levels`). The render then applies exactly that linear gain.
    3. Only when the limiter is needed: the limited mix is measured and the gain made up
       for what the limiter took (at most three short runs).
    """
    sources = _audio_sources(replace(tl, levels=None))
    if not sources:
        return replace(tl, levels=AudioLevels(scene_db=tuple(None for _ in tl.scenes)))
    with tempfile.TemporaryDirectory(prefix="ytap-levels-", dir=scratch) as tmp:
        work = Path(tmp)
        if len(sources) > 1:
            files = {key: work / f"src{n}.txt" for n, key in enumerate(sources)}
            items = list(sources.items())
            for at in range(0, len(items), SOURCES_PER_MEASURE):  # memory stays flat however many sources
                _run_null([_measured(chain, files[key], true_peak=False)
                           for key, chain in items[at:at + SOURCES_PER_MEASURE]],
                          cancel=cancel, what="measuring the audio sources", timeout_s=timeout_s)
            levels = plan_levels(tl, {key: _read_loudness(f) for key, f in files.items()})
        else:
            only = next(iter(sources))
            levels = AudioLevels(scene_db=tuple(0.0 if only == f"scene:{i}" else None for i in range(len(tl.scenes))))
        levelled = replace(tl, levels=levels)
        mixed = _mix(levelled)
        if mixed is None:  # every scene track was silent
            return levelled
        file = work / "mix.txt"
        _run_null([_measured(mixed, file)], cancel=cancel, what="measuring the audio mix", timeout_s=timeout_s)
        final = finish_levels(levels, _read_loudness(file), tl.mix.loudness_lufs)
        # The limiter takes some loudness with the peaks (little for speech and music, a lot
        # when the peaks carry the energy): measure what it leaves and make up the difference.
        for attempt in range(_LIMITER_PASSES):
            if not final.limiter:
                break
            file = work / f"limited{attempt}.txt"
            _run_null([_measured(_limiter(_gain(mixed, final.final_db)), file)], cancel=cancel,
                      what="measuring the limited mix", timeout_s=timeout_s)
            short_lu = tl.mix.loudness_lufs - _read_loudness(file).integrated_lufs
            if abs(short_lu) <= _LIMITER_TOLERANCE_LU:
                break
            final = replace(final, final_db=round(min(_MAX_BOOST_DB, final.final_db + short_lu), 2))
    log.info("audio levels: narration %+.1f dB, music %+.1f dB, scenes %s, mix %s LUFS -> %+.1f dB%s",
             final.narration_db, final.music_db, list(final.scene_db), final.measured_lufs, final.final_db,
             ", limiter" if final.limiter else "")
    return replace(tl, levels=final)
