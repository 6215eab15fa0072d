"""local:ambient's synthesis and the music bed's finishing, measured on the samples and on written files.

Chords are checked by their pitch classes (a chroma of each chord's span), the loop by the
largest sample step across the wrap against the largest anywhere else, loudness by ffmpeg's
ebur128 on the written WAV.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from core.errors import MediaError
from core.media.ambient import MOODS, SYNTH_RATE, _QUALITIES, chroma, mood_profile, render_ambient
from core.media.mix import measure_loudness
from core.media.musicbed import MASTER_LUFS, decode, estimate_bpm, make_loop, master, seam_of, write_wav
from core.media.probe import probe

_PCS = {n: i for i, n in enumerate(("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"))}


def _chord_pcs(name: str) -> set[int]:
    root = name[:2] if len(name) > 1 and name[1] in "#b" else name[:1]
    rest = name[len(root):]
    quality = {"": "maj", "m": "min", "m7": "min7", "m9": "min9"}.get(rest, rest)
    return {(_PCS[root] + i) % 12 for i in _QUALITIES[quality]}


def _wrap_step_ratio(x: np.ndarray) -> float:
    near = 480
    wrap = np.concatenate([x[-near:], x[:near]])
    return float(np.abs(np.diff(wrap, axis=0)).max() / np.abs(np.diff(x, axis=0)).max())


@pytest.mark.parametrize(("mood", "profile"), [
    ("calm piano, relaxing", "calm"), ("upbeat and happy", "upbeat"), ("hopeful, inspiring", "inspiring"),
    ("tense crime mystery", "tense"), ("dark, sad night", "dark"), ("lighthouses", "calm"),
])
def test_ambient_mood_words_choose_the_profile(mood: str, profile: str) -> None:
    assert mood_profile(mood).name == profile


@pytest.mark.parametrize("mood", ["calm, warm", "upbeat, energetic"])
def test_ambient_bed_is_exact_long_seamless_and_its_chords_move(mood: str) -> None:
    bed = render_ambient(mood, 24.0)
    x = bed.samples
    assert x.shape == (24 * 48000, 2) and x.dtype == np.float32
    assert bed.bars * 4 * 60 / bed.bpm == pytest.approx(24.0, abs=1e-6)  # whole bars fill it exactly
    assert abs(bed.bpm / MOODS[bed.profile].bpm - 1) <= 0.12

    # The wrap is no different from any other point of the music: no click, no step in level.
    assert _wrap_step_ratio(x) < 0.8
    rms = lambda a: 10 * np.log10(np.mean(a.astype(np.float64) ** 2))  # noqa: E731
    assert abs(rms(x[:4800]) - rms(x[-4800:])) < 1.5

    # The chords move: each chord's span holds that chord's pitch classes, and neighbours differ.
    profiles = chroma(x, 48000, bed.chord_starts_s, bed.duration_s)
    for i, prof in enumerate(profiles):
        name = bed.chords[i % len(bed.chords)]
        want = _chord_pcs(name)
        top = set(np.argsort(prof)[-len(want):])
        assert len(top & want) >= len(want) - 1, (name, sorted(top), sorted(want))
    sims = [float(a @ b) for a, b in zip(profiles, profiles[1:], strict=False)]
    assert max(sims) < 0.97, sims

    # Stereo: the two channels are related but not the same (detuned voices, two rooms).
    corr = float(np.corrcoef(x[:, 0], x[:, 1])[0, 1])
    assert 0.3 < corr < 0.98
    # Nothing above 7 kHz (synthesised at 16 kHz and interpolated exactly).
    spec = np.abs(np.fft.rfft(x[:48000 * 4, 0]))
    freqs = np.fft.rfftfreq(48000 * 4, 1 / 48000)
    assert spec[freqs > 8000].max() < 1e-3 * spec.max()


def test_ambient_is_deterministic_and_moods_differ() -> None:
    a, b = render_ambient("calm", 8.0), render_ambient("calm", 8.0)
    assert np.array_equal(a.samples, b.samples)
    c = render_ambient("dark", 8.0)
    assert a.chords != c.chords


def test_ambient_short_beds_bend_to_whole_bars() -> None:
    bed = render_ambient("upbeat", 5.0)
    assert len(bed.samples) == 5 * 48000 and bed.bars >= 1
    assert len(bed.samples) % (48000 // SYNTH_RATE) == 0


def test_musicbed_a_cut_track_is_looped_on_a_bar_line_and_mastered(tmp_path: Path) -> None:
    # A track that does not loop: 17.3 s cut out of a longer upbeat bed (its tempo is known: 4 beats a bar).
    bed = render_ambient("upbeat, happy", 24.0)
    track = bed.samples[: int(17.3 * 48000)] * 0.3
    raw = tmp_path / "raw.wav"
    write_wav(raw, track)
    samples = decode(raw)
    bpm = estimate_bpm(samples)
    assert bpm is not None
    # The pulse plays eighths: the estimate is the tempo, or its double.
    assert min(abs(bpm / bed.bpm - 1), abs(bpm / (2 * bed.bpm) - 1)) < 0.03, (bpm, bed.bpm)
    loop = make_loop(samples, seamless=False, bpm=bed.bpm)
    bar_s = 4 * 60 / bed.bpm
    assert loop.bars == int((17.3 - min(2.0, bar_s)) // bar_s)
    assert loop.duration_s == pytest.approx(loop.bars * bar_s, abs=1 / 48000)
    assert _wrap_step_ratio(loop.samples) < 1.0

    out = tmp_path / "music.wav"
    done = master(loop, out, duration_s=40.0)
    assert done.loops == round(40.0 / loop.duration_s)
    info = probe(out)
    assert info.audio is not None and (info.audio.sample_rate, info.audio.channels, info.audio.codec) == (
        48000, 2, "pcm_s16le")
    assert info.duration_s == pytest.approx(done.loops * loop.duration_s, abs=0.01)
    measured = measure_loudness(out)  # an independent measurement of the written file
    assert measured.integrated_lufs == pytest.approx(MASTER_LUFS, abs=0.5)
    assert done.integrated_lufs == pytest.approx(measured.integrated_lufs, abs=0.05)
    assert measured.true_peak_dbtp <= -1.0
    assert done.seam.seamless and seam_of(out).step_ratio < 1.0


def test_musicbed_a_bare_cut_is_a_click_the_seam_check_sees(tmp_path: Path) -> None:
    """The check is not blind: the same track cut without a crossfade, off the bar, steps at the wrap."""
    bed = render_ambient("upbeat, happy", 12.0)
    cut = bed.samples[: int(7.77 * 48000)]
    path = tmp_path / "cut.wav"
    write_wav(path, cut)
    seam = seam_of(path)
    assert not seam.seamless
    assert seam.step_ratio > 1.5  # measured 6.1 here; a seamless bed's wrap is under 0.8


def test_musicbed_refuses_what_cannot_be_a_loop(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="shorter than a bar"):
        make_loop(np.zeros((48000 * 3, 2), np.float32), seamless=False, bpm=60.0)
    short = tmp_path / "short.wav"
    with wave.open(str(short), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\0" * 4 * 1000)
    with pytest.raises(MediaError, match="under one second"):
        decode(short)
