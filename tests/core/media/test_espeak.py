from __future__ import annotations

import operator
import statistics
import threading
import wave
from array import array
from pathlib import Path

import pytest

from core.errors import InputError, OperationCancelled
from core.media import espeak
from core.media.probe import probe
from core.schemas import SegmentTiming

TWO_SEGMENTS = ["Hello there, this is the first scene.", "And here comes the second one."]
SPECIAL = 'Hello, world! 3.5% of <things> & "quotes"'


# --- helpers ------------------------------------------------------------------------------


def _read_mono(path: Path) -> tuple[array, int]:
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = array("h", w.readframes(w.getnframes()))
    return data[::channels], rate


def _peak(samples: array, rate: int, start_s: float, end_s: float) -> int:
    chunk = samples[int(start_s * rate) : int(end_s * rate)]
    return max((abs(x) for x in chunk), default=0)


def _f0(path: Path) -> float:
    """Median fundamental frequency of the voiced frames (normalised autocorrelation, 8 kHz)."""
    mono, rate = _read_mono(path)
    step = rate // 8000
    x = [sum(mono[i : i + step]) / step for i in range(0, len(mono) - step, step)]
    rate = rate / step
    n, lo, hi = int(rate * 0.04), int(rate / 500), int(rate / 60)
    peak = max(abs(v) for v in x)
    f0s = []
    for s in range(0, len(x) - n - hi, n):
        frame = x[s : s + n]
        e0 = sum(map(operator.mul, frame, frame))
        if e0 < n * (0.1 * peak) ** 2:
            continue  # silence or a weak consonant
        best, best_lag = 0.0, 0
        for lag in range(lo, hi):
            other = x[s + lag : s + lag + n]
            r = sum(map(operator.mul, frame, other)) / (e0 * sum(map(operator.mul, other, other))) ** 0.5
            if r > best:
                best, best_lag = r, lag
        if best > 0.6:
            f0s.append(rate / best_lag)
    assert len(f0s) >= 5, "too few voiced frames to estimate a pitch"
    return statistics.median(f0s)


def _check_timings(timings: list[SegmentTiming], texts: list[str], duration: float) -> None:
    assert [t.index for t in timings] == list(range(1, len(texts) + 1))
    prev_end = 0.0
    for seg, text in zip(timings, texts):
        assert seg.text == text
        assert prev_end <= seg.start_s < seg.end_s <= duration + 0.001
        prev_end = seg.end_s
        assert [w.text for w in seg.words] == text.split()
        prev_word_start = seg.start_s
        for w in seg.words:
            assert seg.start_s <= w.start_s <= w.end_s <= seg.end_s
            assert w.start_s >= prev_word_start
            prev_word_start = w.start_s
    assert abs(duration - timings[-1].end_s) < 0.5


# --- output and timings ----------------------------------------------------------------------


def test_two_segments_make_a_48k_stereo_wav_with_consistent_timings(tmp_path: Path) -> None:
    out = tmp_path / "narration.wav.part"  # a .part name still gets a WAV
    timings = espeak.synthesize(TWO_SEGMENTS, out)

    info = probe(out)
    assert info.format_name == "wav"
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("pcm_s16le", 48000, 2)
    assert info.duration_s > 0
    _check_timings(timings, TWO_SEGMENTS, info.duration_s)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["narration.wav.part"]  # temp file gone

    # The timings are in the final file's time base: sound where words are, silence in the gap.
    mono, rate = _read_mono(out)
    first, second = timings
    assert second.start_s - first.end_s >= 0.35 - 0.01
    assert _peak(mono, rate, first.end_s + 0.02, second.start_s - 0.02) < 300
    for seg in timings:
        for w in seg.words:
            assert _peak(mono, rate, w.start_s, max(w.end_s, w.start_s + 0.03)) > 1000, w


def test_gap_is_configurable(tmp_path: Path) -> None:
    timings = espeak.synthesize(["One.", "Two."], tmp_path / "gap.wav", gap_s=1.5)
    assert timings[1].start_s - timings[0].end_s >= 1.5 - 0.01


def test_speed_changes_duration(tmp_path: Path) -> None:
    text = ["The quick brown fox jumps over the lazy dog."]
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    t_slow = espeak.synthesize(text, slow, speed=0.5)
    t_fast = espeak.synthesize(text, fast, speed=2.0)
    d_slow, d_fast = probe(slow).duration_s, probe(fast).duration_s
    assert d_fast * 2 < d_slow
    _check_timings(t_slow, text, d_slow)
    _check_timings(t_fast, text, d_fast)
    assert espeak.words_per_minute(1.0) == 175
    assert espeak.words_per_minute(2.0) == 350
    assert espeak.words_per_minute(0.1) == 80
    assert espeak.words_per_minute(5.0) == 450


def test_pitch_up_an_octave_doubles_f0_and_keeps_duration(tmp_path: Path) -> None:
    text = ["We are measuring the pitch of this voice now."]
    base, high = tmp_path / "base.wav", tmp_path / "high.wav"
    t_base = espeak.synthesize(text, base)
    t_high = espeak.synthesize(text, high, pitch_semitones=12)
    f_base, f_high = _f0(base), _f0(high)
    assert 1.8 < f_high / f_base < 2.2, (f_base, f_high)
    d_high = probe(high).duration_s
    # Same length as the engine rendered (timings untouched by the pitch shift).
    assert abs(d_high - probe(base).duration_s) < 0.1
    _check_timings(t_high, text, d_high)
    assert abs(t_high[0].end_s - t_base[0].end_s) < 0.1


def test_special_characters(tmp_path: Path) -> None:
    out = tmp_path / "special.wav"
    timings = espeak.synthesize([SPECIAL], out)
    _check_timings(timings, [SPECIAL], probe(out).duration_s)
    words = {w.text: w for w in timings[0].words}
    assert words["<things>"].end_s > words["<things>"].start_s  # spoken, not taken for markup


def test_non_english_voice(tmp_path: Path) -> None:
    text = ["Grüße aus München, die Straße ist schön."]
    out = tmp_path / "de.wav"
    timings = espeak.synthesize(text, out, voice="de")
    _check_timings(timings, text, probe(out).duration_s)


@pytest.mark.parametrize("voice", ["en", "en-GB", "fr", "es", "gmw/en-US", "English (America)", "en-us+f3"])
def test_voice_spellings(tmp_path: Path, voice: str) -> None:
    timings = espeak.synthesize(["Bonjour, hello."], tmp_path / "v.wav", voice=voice)
    assert len(timings[0].words) == 2


def test_list_voices_and_engine_info() -> None:
    voices = espeak.list_voices()
    assert {"en", "en-us", "en-gb", "de", "fr", "es"} <= set(voices)
    assert voices == sorted(voices)
    info = espeak.engine_info()
    assert info["version"].startswith("1.")
    assert Path(info["library_path"]).is_file()
    assert Path(info["data_path"]).name == "espeak-ng-data"
    assert info["sample_rate"] > 0 and info["voices"] > 50


# --- errors and cancellation -----------------------------------------------------------------


def test_unknown_voice_is_an_input_error(tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    with pytest.raises(InputError) as exc_info:
        espeak.synthesize(["Hello."], out, voice="xx-notavoice")
    assert "en-us" in str(exc_info.value)
    with pytest.raises(InputError):
        espeak.synthesize(["Hello."], out, voice="en-us+nosuchvariant")
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"speed": 0}, {"speed": float("nan")}, {"pitch_semitones": 30}, {"gap_s": -1}],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(InputError):
        espeak.synthesize(["Hello."], tmp_path / "x.wav", **kwargs)


@pytest.mark.parametrize("segments", [[], ["ok", "   "], "not a list"])
def test_bad_segments(tmp_path: Path, segments: list[str]) -> None:
    with pytest.raises(InputError):
        espeak.synthesize(segments, tmp_path / "x.wav")


def test_cancel_before_start(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    out = tmp_path / "c.wav"
    with pytest.raises(OperationCancelled):
        espeak.synthesize(TWO_SEGMENTS, out, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


class _SetAfter(threading.Event):
    """An event that reads as set from its n-th check on: lands inside the synth callback."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.checks = n, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n


def test_cancel_during_synthesis_stops_the_engine(tmp_path: Path) -> None:
    cancel = _SetAfter(3)  # check 1: before the segment; 2, 3...: in the callback
    out = tmp_path / "c.wav"
    with pytest.raises(OperationCancelled):
        espeak.synthesize(["This sentence is long enough to need several audio buffers. " * 4], out, cancel=cancel)
    assert cancel.checks == 3
    assert list(tmp_path.iterdir()) == []
    # The engine is fine afterwards.
    timings = espeak.synthesize(["Still working."], out)
    assert [w.text for w in timings[0].words] == ["Still", "working."]


def test_nothing_written_to_stdout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    espeak.synthesize([SPECIAL], tmp_path / "quiet.wav", voice="fr")
    assert capfd.readouterr().out == ""


# --- concurrency -----------------------------------------------------------------------------


def test_two_threads_at_once(tmp_path: Path) -> None:
    jobs = {
        "a": (["One small step for a man.", "A giant leap for mankind.", "We choose to go."], "en-us", 0.7),
        "b": (["Ich bin ein Berliner.", "Das ist gut so.", "Alles klar."], "de", 1.6),
    }
    # Reference lengths, one at a time.
    alone = {}
    for key, (texts, voice, speed) in jobs.items():
        espeak.synthesize(texts, tmp_path / f"{key}-alone.wav", voice=voice, speed=speed)
        alone[key] = probe(tmp_path / f"{key}-alone.wav").duration_s

    barrier = threading.Barrier(len(jobs))
    results: dict[str, list[SegmentTiming]] = {}
    errors: list[BaseException] = []

    def run(key: str) -> None:
        texts, voice, speed = jobs[key]
        try:
            barrier.wait(timeout=10)
            results[key] = espeak.synthesize(texts, tmp_path / f"{key}.wav", voice=voice, speed=speed)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(key,)) for key in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for key, (texts, _, _) in jobs.items():
        duration = probe(tmp_path / f"{key}.wav").duration_s
        _check_timings(results[key], texts, duration)
        # Voice and rate did not leak between the threads: same length as alone.
        assert abs(duration - alone[key]) < 0.05 * alone[key], (key, duration, alone[key])
