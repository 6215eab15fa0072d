"""A music bed finished to the contract: 48 kHz stereo 16-bit WAV, whole seamless loops, mastered.

Whatever a music provider returns (a vendor's MP3, local:ambient's WAV) goes through here:

1. :func:`decode` — the first audio stream as 48 kHz stereo float samples.
2. :func:`make_loop` — a track that already loops (local:ambient's, made on a circle) is kept
   whole. Any other is cut to a whole number of bars (the provider's tempo, else
   :func:`estimate_bpm` from the audio) and the music just past the cut is crossfaded
   (equal power, at most one bar) into its first bar: the loop's end then runs into its
   start as the track itself ran on, and the crossfade sits on a bar line.
3. :func:`master` — one loop measured (EBU R128, ffmpeg's ebur128), one linear gain to
   :data:`MASTER_LUFS` (capped so the true peak stays under -1 dBTP), written as that many
   loops as fill the requested duration; the written file measured again, and its seam
   checked (:func:`seam_of`): the largest sample step across the wrap against the largest
   anywhere else, and the level either side.

-20 LUFS leaves the assembly's ducking room under a narration levelled to -14.
"""

from __future__ import annotations

import math
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import MediaError, OperationCancelled
from core.media.ffmpeg import run_ffmpeg
from core.media.formats import AUDIO_CHANNELS, AUDIO_SAMPLE_RATE, TRUE_PEAK_MAX_DBTP
from core.media.mix import measure_loudness

__all__ = ["MASTER_LUFS", "MAX_CROSSFADE_S", "Loop", "Mastered", "Seam", "decode", "estimate_bpm", "make_loop",
           "master", "seam_of", "write_wav"]

MASTER_LUFS = -20.0
MAX_CROSSFADE_S = 2.0
_PEAK_CEILING_DBTP = TRUE_PEAK_MAX_DBTP - 0.5
_SEAM_WINDOW_S = 0.1


@dataclass(frozen=True)
class Loop:
    samples: np.ndarray  # (n, 2) float32 at 48 kHz
    bpm: float | None
    beats_per_bar: int
    bars: int | None
    crossfade_s: float  # 0: the track looped as it came

    @property
    def duration_s(self) -> float:
        return len(self.samples) / AUDIO_SAMPLE_RATE


@dataclass(frozen=True)
class Seam:
    step_ratio: float  # largest |first difference| within 10 ms of the wrap / largest elsewhere
    level_step_db: float  # RMS of the first 100 ms minus that of the last 100 ms

    @property
    def seamless(self) -> bool:
        # A click at the wrap is a step larger than any the music makes itself; a jump in level
        # is more than the music's own 100 ms to 100 ms change under a pad (a few dB).
        return self.step_ratio <= 1.0 and abs(self.level_step_db) <= 3.0


@dataclass(frozen=True)
class Mastered:
    duration_s: float
    loops: int
    gain_db: float
    integrated_lufs: float
    true_peak_dbtp: float
    seam: Seam


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise OperationCancelled("music generation cancelled")


def decode(path: Path, *, cancel: threading.Event | None = None, scratch: Path | None = None) -> np.ndarray:
    """The first audio stream of ``path`` as (n, 2) float32 at 48 kHz. MediaError when it holds no audio."""
    with tempfile.TemporaryDirectory(prefix="ytap-bed-", dir=scratch) as tmp:
        raw = Path(tmp) / "bed.f32"
        run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-ac", str(AUDIO_CHANNELS), "-ar", str(AUDIO_SAMPLE_RATE),
                    "-f", "f32le", "-threads", "2", str(raw)], cancel=cancel, what="decoding the music", timeout_s=300)
        data = np.fromfile(raw, dtype="<f4")
    samples = data[: len(data) - len(data) % AUDIO_CHANNELS].reshape(-1, AUDIO_CHANNELS)
    if len(samples) < AUDIO_SAMPLE_RATE:
        raise MediaError(f"the music holds {len(samples) / AUDIO_SAMPLE_RATE:.2f} s of audio, under one second")
    return samples


def estimate_bpm(samples: np.ndarray, *, lo_bpm: float = 60.0, hi_bpm: float = 180.0) -> float | None:
    """The tempo from the autocorrelation of the onset strength (spectral flux, 100 frames a second);
    None when no period stands out (a drone, a pad without attacks)."""
    hop = AUDIO_SAMPLE_RATE // 100
    frame = 2048
    mono = samples.mean(axis=1)
    count = (len(mono) - frame) // hop
    if count < 400:  # under about 4 s: too little to tell a tempo
        return None
    idx = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    mags = np.abs(np.fft.rfft(mono[idx] * np.hanning(frame), axis=1))
    flux = np.maximum(0.0, np.diff(np.log1p(mags * 10), axis=0)).sum(axis=1)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, mode="full")[len(flux) - 1:]
    lags = np.arange(len(ac))
    lo, hi = int(100 * 60 / hi_bpm), int(100 * 60 / lo_bpm)
    window = ac[lo:hi + 1]
    if len(window) == 0 or ac[0] <= 0:
        return None
    best = lo + int(np.argmax(window))
    if window.max() < 0.2 * ac[0]:
        return None
    # Refine to a fraction of a frame (parabola through the peak and its neighbours).
    a, b, c = ac[best - 1], ac[best], ac[min(best + 1, len(ac) - 1)]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    period_s = (lags[best] + shift) / 100
    return round(60.0 / period_s, 2)


def make_loop(samples: np.ndarray, *, seamless: bool, bpm: float | None, beats_per_bar: int = 4,
              bars: int | None = None) -> Loop:
    """One loop of the track (see the module's docstring)."""
    if seamless:
        return Loop(samples, bpm, beats_per_bar, bars, 0.0)
    n = len(samples)
    # Without a tempo, 2 s "bars": the cut still lands on whole units and the crossfade hides it.
    bar = (beats_per_bar * 60.0 / bpm if bpm else 2.0) * AUDIO_SAMPLE_RATE
    fade = int(min(MAX_CROSSFADE_S * AUDIO_SAMPLE_RATE, bar))
    whole_bars = int((n - fade) // bar)
    if whole_bars < 1:
        raise MediaError(f"the music ({n / AUDIO_SAMPLE_RATE:.1f} s) is shorter than a bar and its crossfade")
    length = round(whole_bars * bar)
    loop = samples[:length].copy()
    t = (np.arange(fade) + 0.5) / fade
    fade_in = np.sin(0.5 * np.pi * t)[:, None]
    fade_out = np.cos(0.5 * np.pi * t)[:, None]
    loop[:fade] = samples[:fade] * fade_in + samples[length:length + fade] * fade_out
    return Loop(loop.astype(np.float32), bpm, beats_per_bar, whole_bars if bpm else None, fade / AUDIO_SAMPLE_RATE)


def _int16(samples: np.ndarray, gain: float) -> bytes:
    return np.clip(np.round(samples * (gain * 32767.0)), -32768, 32767).astype("<i2").tobytes()


def write_wav(path: Path, samples: np.ndarray, *, copies: int = 1, gain_db: float = 0.0) -> None:
    """``samples`` ``copies`` times over as 48 kHz stereo 16-bit PCM (one loop in memory, however long)."""
    frames = _int16(samples, 10 ** (gain_db / 20))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(AUDIO_CHANNELS)
        w.setsampwidth(2)
        w.setframerate(AUDIO_SAMPLE_RATE)
        for _ in range(copies):
            w.writeframes(frames)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise MediaError(f"{path.name} is not 16-bit PCM")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels = w.getnchannels()
    return data.reshape(-1, channels).astype(np.float32) / 32768.0


def seam_of(path: Path) -> Seam:
    """How the file's end runs into its start, measured on the file (see :class:`Seam`)."""
    x = _read_wav(path)
    win = int(_SEAM_WINDOW_S * AUDIO_SAMPLE_RATE)
    near = int(0.01 * AUDIO_SAMPLE_RATE)
    wrap = np.concatenate([x[-near:], x[:near]])
    step_wrap = float(np.abs(np.diff(wrap, axis=0)).max())
    step_all = float(np.abs(np.diff(x, axis=0)).max()) or 1e-9

    def rms_db(part: np.ndarray) -> float:
        return 10 * math.log10(float(np.mean(part.astype(np.float64) ** 2)) + 1e-12)

    return Seam(round(step_wrap / step_all, 4), round(rms_db(x[:win]) - rms_db(x[-win:]), 2))


def master(loop: Loop, out: Path, *, duration_s: float, cancel: threading.Event | None = None,
           scratch: Path | None = None) -> Mastered:
    """``out``: the loop repeated to the nearest whole number filling ``duration_s``, at MASTER_LUFS."""
    copies = max(1, round(duration_s / loop.duration_s))
    with tempfile.TemporaryDirectory(prefix="ytap-bed-", dir=scratch) as tmp:
        probe_wav = Path(tmp) / "loop.wav"
        write_wav(probe_wav, loop.samples, copies=2 if loop.duration_s < 10 else 1)  # gating needs a few seconds
        measured = measure_loudness(probe_wav, cancel=cancel, scratch=Path(tmp))
    _check(cancel)
    if measured.silent:
        raise MediaError("the music is silent")
    gain_db = MASTER_LUFS - measured.integrated_lufs
    if math.isfinite(measured.true_peak_dbtp):
        gain_db = min(gain_db, _PEAK_CEILING_DBTP - measured.true_peak_dbtp)
    write_wav(out, loop.samples, copies=copies, gain_db=gain_db)
    _check(cancel)
    final = measure_loudness(out, cancel=cancel, scratch=scratch)
    return Mastered(duration_s=round(copies * loop.duration_s, 4), loops=copies, gain_db=round(gain_db, 2),
                    integrated_lufs=round(final.integrated_lufs, 2), true_peak_dbtp=round(final.true_peak_dbtp, 2),
                    seam=seam_of(out))
