"""Word times aligned to the audio, for speech engines that give none (OpenAI, Gemini, Kokoro).

No network and no downloaded model: the segment's text is spoken again by espeak-ng
(:func:`core.media.espeak.speak_reference`, whose word events are exact), both signals
become MFCC-like features, dynamic time warping finds where each moment of the reference
falls in the real speech, and every reference word start is carried through that path.
This is the aeneas approach, in numpy only.

How it works
------------
* Features, per 10 ms frame of 25 ms, computed at each signal's own sample rate (no
  resampling): a 40-band mel power spectrum (60-7600 Hz) -> log -> DCT, coefficients 1..12
  (c0, the loudness, is left out: the two voices are not equally loud), normalised to zero
  mean and unit variance over the segment's voiced frames, so the two speakers' average
  timbres cancel out.
* Pauses anchor the path: a frame is voiced when its energy is within 30 dB of the
  segment's loud frames (95th percentile). Unvoiced frames get a zero cepstrum and every
  frame carries its clipped relative energy and its voiced flag, weighted so a pause in
  the speech matches a pause in the reference far more cheaply than it matches a word.
  Leading and trailing silence is cut off both signals before aligning.
* DTW in two passes, so minutes of audio stay cheap: a coarse pass on 40 ms frames within
  a band around the diagonal (a fifth of the length, at least 1.6 s, at most 24 s), then the
  10 ms pass only within 300 ms of the coarse path (80 ms frames and 150 ms blurred short
  words away, and on some inputs the path then missed by a second or more). Each row of the cost matrix is solved with numpy
  at once (the in-row recurrence D[j] = min(A[j], c[j] + D[j-1]) is a running minimum
  over prefix sums), so the Python loop runs once per frame, not once per cell.
* A word starts at the median speech frame the path pairs with its reference start
  frame, kept in order, then put on sound: a start in a pause moves to the next onset,
  and a start followed, early in its word, by a pause of 60 ms or more, after sound far
  shorter than the word should last, moves past it (a word's sound does not stop near its
  beginning: the path has paired its first sounds with the end of the word before,
  because one voice paused there and the other did not).
  A word ends where the next word starts, trimmed of trailing silence (and of the next
  word's onset when that start is a frame or two late); the last ends where the
  segment's sound ends.
* Frames are exactly 10 ms apart at any rate (frame i starts at round(i * rate / 100)):
  a whole-sample hop (220 at espeak's 22050 Hz) is 9.977 ms, and word times read back as
  10 ms frames would drift 2.3 ms a second.
* Memory: the master is read one segment at a time; the fine pass stores one row of the
  cost matrix per frame, as wide as its window (the coarse path +-150 ms).

Measured in benchmarks/alignment.py (tests/core/media/test_align.py holds the thresholds).
"""

from __future__ import annotations

import logging
import math
import threading
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from core.errors import OperationCancelled
from core.schemas import SegmentTiming, WordTiming

__all__ = ["align_words", "align_segments", "align_untimed", "read_mono", "HOP_S"]

log = logging.getLogger(__name__)

HOP_S = 0.010
_WIN_S = 0.025
_N_MELS = 40
_N_CEPS = 12
_FMIN_HZ, _FMAX_HZ = 60.0, 7600.0
_VOICED_DB = 30.0  # below the loud frames' level: a pause
_AUDIBLE_DB = 35.0  # ... and where a word's sound ends (a little more of its fading tail kept)
_COARSE = 4  # fine frames per coarse frame (8 blurred short words away: the path then missed by seconds)
_FINE_RADIUS = 30  # fine frames either side of the coarse path
_MIN_BAND = 40  # coarse frames (1.6 s) either side of the diagonal, at least
_MAX_BAND = 600  # ... and at most (24 s): bounds the memory of one pass (10 minutes in one segment: ~70 MB)
_ENERGY_WEIGHT = 1.5
_VOICED_WEIGHT = 3.0
_FEATURE_RATE = 16000  # what the features need (bands up to 7.6 kHz); 48 and 32 kHz audio is reduced to it
_READ_BLOCK = 1 << 20  # frames read from a WAV at a time
_SNAP_S = 0.25  # a start that falls in a pause moves to the next onset within this
_GAP_MIN_S = 0.06  # a pause this long early in a word ...
_GAP_REACH_S = 0.3  # ... within this of its start
_GAP_SHARE = 0.35  # ... and within this share of its span
_TAIL_SHARE = 0.35  # ... after less sound than this share of the word's expected length


def read_mono(wav: Path, start_s: float = 0.0, end_s: float | None = None) -> tuple[np.ndarray, int]:
    """``[start_s, end_s)`` of a 16-bit PCM WAV as float32 mono in [-1, 1], and its sample rate.

    Only that span is read, a block at a time, and a 48 or 32 kHz file comes back at 16 kHz (the
    features stop at 7.6 kHz): a long narration is aligned a segment at a time, never held whole, and
    twenty minutes of one segment hold about 77 MB here."""
    with wave.open(str(wav), "rb") as w:
        sr, channels, width, total = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        if width != 2:
            raise ValueError(f"{wav.name}: {8 * width}-bit samples; 16-bit PCM expected")
        k = sr // _FEATURE_RATE if sr > _FEATURE_RATE and sr % _FEATURE_RATE == 0 else 1
        lo = min(total, max(0, int(start_s * sr)))
        hi = total if end_s is None else min(total, max(lo, int(math.ceil(end_s * sr))))
        w.setpos(lo)
        blocks: list[np.ndarray] = []
        left = hi - lo
        while left > 0:
            n = min(left, _READ_BLOCK - _READ_BLOCK % k)
            block = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
            block = block[: len(block) - len(block) % (channels * k)]
            if not len(block):
                break
            # Mono, then k samples averaged into one (a box low-pass: speech above 8 kHz is faint).
            blocks.append(block.reshape(-1, channels * k).mean(axis=1))
            left -= n
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), sr // k


def align_untimed(
    wav: Path,
    segments: Sequence[SegmentTiming],
    which: Iterable[int],
    language: str | None,
    *,
    cancel: threading.Event | None = None,
) -> list[SegmentTiming]:
    """:func:`align_segments` with the reference spoken in ``language``'s espeak-ng voice, for a finished
    narration: when it cannot run (no espeak-ng voice for the language, the engine missing or crashing),
    ``segments`` come back as they were (an even spread) and the log says why. The audio is sound either way."""
    from core.errors import BadOutput, Crashed, InputError, NotConfigured
    from core.media.language import espeak_voice

    which = list(which)
    if not which:
        return list(segments)
    voice = espeak_voice(language)
    if voice is None:
        log.warning("word alignment skipped, words spread over their segments: espeak-ng has no %s voice to "
                    "align against", language)
        return list(segments)
    try:
        return align_segments(wav, segments, which, voice=voice, cancel=cancel)
    except (NotConfigured, Crashed, BadOutput, InputError, ValueError) as exc:
        log.warning("word alignment skipped, words spread over their segments: %s", exc)
        return list(segments)


def align_segments(
    wav: Path,
    segments: Sequence[SegmentTiming],
    which: Iterable[int],
    *,
    voice: str | None = None,
    cancel: threading.Event | None = None,
) -> list[SegmentTiming]:
    """``segments`` with the words of the segments at positions ``which`` aligned to ``wav``.

    ``voice`` is the espeak-ng voice the reference is spoken in (the narration's language)."""
    out = list(segments)
    for k in sorted(set(which)):
        seg = out[k]
        audio, sr = read_mono(wav, seg.start_s, seg.end_s)
        lo = int(max(0.0, seg.start_s) * sr)
        words = align_words(audio, sr, seg.text, voice=voice, offset_s=lo / sr, cancel=cancel)
        out[k] = seg.model_copy(update={"words": words})
    return out


def align_words(
    samples: np.ndarray,
    sr: int,
    text: str,
    *,
    voice: str | None = None,
    offset_s: float = 0.0,
    cancel: threading.Event | None = None,
) -> list[WordTiming]:
    """The whitespace-separated words of ``text`` placed where ``samples`` speaks them.

    Times are seconds plus ``offset_s``. Raises what espeak-ng raises when the reference
    cannot be spoken (NotConfigured, InputError for an unknown voice)."""
    from core.media import espeak

    tokens = text.split()
    if not tokens:
        return []
    ref_pcm, ref_sr, ref_words = espeak.speak_reference(text, voice=voice, cancel=cancel)
    ref = np.frombuffer(ref_pcm.tobytes(), dtype=np.int16).astype(np.float32) / 32768.0
    starts = _align(np.asarray(samples, dtype=np.float32), sr, ref, ref_sr,
                    [w.start_s for w in ref_words], cancel)
    return _words(tokens, [w.text for w in ref_words], starts, samples, sr, offset_s)


# --- the pieces ----------------------------------------------------------------------------


def _align(
    target: np.ndarray, sr: int, ref: np.ndarray, ref_sr: int, ref_starts_s: list[float],
    cancel: threading.Event | None,
) -> list[float]:
    """Each reference time in ``ref_starts_s`` mapped to seconds in ``target``."""
    t_feat, t_voiced = _features(target, sr)
    r_feat, r_voiced = _features(ref, ref_sr)
    if not t_voiced.any() or not r_voiced.any():
        # Nothing audible to align to: the words share the span (the only honest answer).
        dur = len(target) / sr
        ref_dur = max(len(ref) / ref_sr, 1e-6)
        return [min(dur, s * dur / ref_dur) for s in ref_starts_s]
    t0, t1 = _voiced_span(t_voiced)
    r0, r1 = _voiced_span(r_voiced)
    path = _dtw(t_feat[t0:t1], r_feat[r0:r1], cancel)
    # For every reference frame: the speech frames paired with it.
    ref_idx, tgt_idx = path[:, 1], path[:, 0]
    first = np.searchsorted(ref_idx, np.arange(r1 - r0), side="left")
    last = np.searchsorted(ref_idx, np.arange(r1 - r0), side="right")
    frames: list[int] = []
    for s in ref_starts_s:
        j = min(max(int(round(s / HOP_S)) - r0, 0), r1 - r0 - 1)
        mid = tgt_idx[first[j]:last[j]]
        frames.append(t0 + int(np.median(mid)) if len(mid) else t0)
    # How long each word should sound here: its length in the reference, at the two voices' ratio of pace.
    rate = (t1 - t0) / max(r1 - r0, 1)
    ref_frames = [s / HOP_S for s in ref_starts_s] + [float(r1)]
    expected = [max(1.0, (b - a) * rate) for a, b in zip(ref_frames, ref_frames[1:])]
    return [f * HOP_S for f in _onsets(frames, t_voiced, t1, expected)]


def _onsets(frames: list[int], voiced: np.ndarray, end: int, expected: list[float]) -> list[int]:
    """Word start frames made to start where sound starts.

    Kept in order; a start in a pause moves to the next onset (within _SNAP_S); and a start followed, early in
    its word, by a pause of at least _GAP_MIN_S moves past that pause when the sound before the pause is far
    shorter than the word should last (``expected`` frames): a word's sound does not stop near its beginning,
    so the path has paired this word's first sounds with the last of the word before (one voice paused
    between the two words where the other did not)."""
    frames = list(np.maximum.accumulate(np.asarray(frames, dtype=int))) if frames else []
    min_gap, reach = round(_GAP_MIN_S / HOP_S), round(_GAP_REACH_S / HOP_S)
    for k, f in enumerate(frames):
        f = _snap(f, voiced)
        nxt = frames[k + 1] if k + 1 < len(frames) else end
        limit = min(f + max(1, min(reach, int((nxt - f) * _GAP_SHARE))), len(voiced))
        quiet = np.flatnonzero(~voiced[f:limit])
        # Only sound much shorter than the word is expected to last can be the word before's tail.
        if len(quiet) and quiet[0] < _TAIL_SHARE * expected[k]:
            q = f + int(quiet[0])
            after = np.flatnonzero(voiced[q:min(len(voiced), nxt + reach)])
            if len(after) and after[0] >= min_gap:
                f = q + int(after[0])
        frames[k] = f
        if k + 1 < len(frames):
            frames[k + 1] = max(frames[k + 1], f)
    return frames


def _snap(frame: int, voiced: np.ndarray) -> int:
    """A start in a pause moves to the next onset (within _SNAP_S), never into the pause."""
    if voiced[min(frame, len(voiced) - 1)]:
        return frame
    limit = min(len(voiced), frame + round(_SNAP_S / HOP_S))
    ahead = np.flatnonzero(voiced[frame:limit])
    return frame + int(ahead[0]) if len(ahead) else frame


def _voiced_span(voiced: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(voiced)
    return int(idx[0]), int(idx[-1]) + 1


def _words(
    tokens: list[str], ref_tokens: list[str], starts: list[float], samples: np.ndarray, sr: int, offset_s: float
) -> list[WordTiming]:
    if len(ref_tokens) != len(tokens):  # espeak tokenises the cleaned text the same way; guard anyway
        raise ValueError(f"reference has {len(ref_tokens)} words, the text {len(tokens)}")
    duration_s = len(samples) / sr
    starts = list(np.maximum.accumulate(np.clip(starts, 0.0, duration_s)))
    # Once, per 10 ms: a frame is audible when its energy is within _AUDIBLE_DB of the loud frames' (95th
    # percentile), the measure the features' pauses use; a peak-based one heard a -60 dB noise floor as speech.
    hop = max(1, int(HOP_S * sr))
    n = len(samples) // hop
    if n:
        db = 10.0 * np.log10(np.mean(np.square(samples[: n * hop].reshape(n, hop)), axis=1) + 1e-12)
        audible = db > max(float(np.percentile(db, 95)) - _AUDIBLE_DB, -70.0)
    else:
        audible = np.zeros(0, dtype=bool)

    min_gap = round(_GAP_MIN_S / HOP_S)

    def audible_end_s(lo_s: float, hi_s: float) -> float | None:
        """Where the sound in [lo_s, hi_s) ends: before its last pause of _GAP_MIN_S or more (what follows
        that pause is the next word's onset, its start placed a frame or two late), else at its last
        audible frame; None when all is quiet."""
        lo = int(lo_s * sr) // hop
        window = audible[lo:int(hi_s * sr) // hop]
        loud = np.flatnonzero(window)
        if not len(loud):
            return None
        gaps = np.flatnonzero(np.diff(loud) > min_gap)  # a pause of more than min_gap frames after loud[g]
        last = loud[gaps[-1]] if len(gaps) else loud[-1]
        return (lo + int(last) + 1) * hop / sr

    end_of_sound = audible_end_s(0.0, duration_s) or duration_s
    out: list[WordTiming] = []
    for k, token in enumerate(tokens):
        start = starts[k]
        nxt = starts[k + 1] if k + 1 < len(tokens) else max(end_of_sound, start)
        end = min(max(start, audible_end_s(start, nxt) or nxt), max(nxt, start))
        out.append(WordTiming(text=token, start_s=round(offset_s + start, 3), end_s=round(offset_s + end, 3)))
    return out


def _mel_filters(sr: int, n_fft: int) -> np.ndarray:
    fmax = min(_FMAX_HZ, sr / 2)

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(_FMIN_HZ), mel(fmax), _N_MELS + 2)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((_N_MELS, len(bins)), dtype=np.float32)
    for m in range(_N_MELS):
        left, centre, right = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        up = (bins - left) / max(centre - left, 1e-9)
        down = (right - bins) / max(right - centre, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


def _dct_matrix() -> np.ndarray:
    n = np.arange(_N_MELS)
    k = np.arange(1, _N_CEPS + 1)[:, None]
    return (np.cos(np.pi * k * (2 * n + 1) / (2 * _N_MELS)) * math.sqrt(2.0 / _N_MELS)).astype(np.float32)


def _features(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames x features) and the voiced mask, one row per 10 ms."""
    if sr > _FEATURE_RATE and sr % _FEATURE_RATE == 0:  # 48 or 32 kHz: the bands stop at 7.6 kHz (3x cheaper)
        k = sr // _FEATURE_RATE
        x, sr = x[: len(x) - len(x) % k].reshape(-1, k).mean(axis=1), _FEATURE_RATE
    win = max(2, round(_WIN_S * sr))
    n_fft = 1 << (win - 1).bit_length()
    n = max(1, 1 + int((len(x) - win) / (HOP_S * sr))) if len(x) >= win else 1
    # Frame i starts at exactly i * 10 ms: a whole-sample hop (220 at 22050 Hz) would make 9.977 ms
    # frames, and word times read as 10 ms frames would drift 2.3 ms a second (0.35 s in 2.5 minutes).
    starts = np.round(np.arange(n) * HOP_S * sr).astype(np.int64)
    padded = np.zeros(int(starts[-1]) + win, dtype=np.float32)
    padded[: min(len(x), len(padded))] = x[: len(padded)]
    idx = np.arange(win)[None, :] + starts[:, None]
    frames = padded[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames *= np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    mel = power @ _mel_filters(sr, n_fft).T
    ceps = np.log(mel + 1e-10) @ _dct_matrix().T
    db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    level = float(np.percentile(db, 95))
    voiced = db > max(level - _VOICED_DB, -70.0)
    if voiced.sum() >= 2:
        mu = ceps[voiced].mean(axis=0)
        sd = ceps[voiced].std(axis=0) + 1e-6
        ceps = (ceps - mu) / sd
    ceps[~voiced] = 0.0
    energy = np.clip((db - level) / 10.0, -4.0, 0.5)[:, None] * _ENERGY_WEIGHT
    flag = voiced.astype(np.float32)[:, None] * _VOICED_WEIGHT
    return np.hstack([ceps, energy, flag]).astype(np.float32), voiced


def _dtw(a: np.ndarray, b: np.ndarray, cancel: threading.Event | None) -> np.ndarray:
    """The warping path between frame sequences ``a`` (rows) and ``b`` (columns), as (i, j) pairs."""
    n, m = len(a), len(b)
    ca, cb = _pool(a, _COARSE), _pool(b, _COARSE)
    nc, mc = len(ca), len(cb)
    band = min(_MAX_BAND, max(_MIN_BAND, max(nc, mc) // 5))
    centre = np.arange(nc) * (mc - 1) / max(nc - 1, 1)
    lo = np.clip(np.floor(centre - band), 0, mc - 1).astype(int)
    hi = np.clip(np.ceil(centre + band) + 1, 1, mc).astype(int)
    coarse = _dtw_windows(ca, cb, lo, hi, cancel)
    # The fine windows: every fine row may reach the coarse path's columns (scaled) +- the radius.
    flo = np.full(n, m, dtype=int)
    fhi = np.zeros(n, dtype=int)
    for i, j in coarse:
        r0, r1 = i * _COARSE, min(n, (i + 1) * _COARSE)
        c0, c1 = max(0, j * _COARSE - _FINE_RADIUS), min(m, (j + 1) * _COARSE + _FINE_RADIUS)
        flo[r0:r1] = np.minimum(flo[r0:r1], c0)
        fhi[r0:r1] = np.maximum(fhi[r0:r1], c1)
    return _dtw_windows(a, b, flo, fhi, cancel)


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    n = -(-len(x) // k)
    padded = np.concatenate([x, np.repeat(x[-1:], n * k - len(x), axis=0)])
    return padded.reshape(n, k, -1).mean(axis=1)


def _dtw_windows(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 cancel: threading.Event | None) -> np.ndarray:
    """DTW where row i may use columns [lo[i], hi[i]); steps (1,1), (1,0), (0,1), each costing the cell."""
    n, m = len(a), len(b)
    lo, hi = lo.copy(), hi.copy()
    lo[0], hi[-1] = 0, m
    lo = np.minimum.accumulate(lo[::-1])[::-1]  # non-decreasing, and each window touches the one before
    hi = np.maximum.accumulate(hi)
    for i in range(1, n):
        lo[i] = min(lo[i], hi[i - 1])
    hi = np.maximum(hi, lo + 1)
    width = int((hi - lo).max())
    acc = np.full((n, width), np.inf, dtype=np.float32)
    prev = None
    for i in range(n):
        if cancel is not None and i % 512 == 0 and cancel.is_set():
            raise OperationCancelled("alignment cancelled")
        l, h = lo[i], hi[i]
        cost = np.sqrt(((b[l:h] - a[i]) ** 2).sum(axis=1)).astype(np.float64)
        if prev is None:
            row = np.cumsum(cost)
        else:
            pl, ph, prow = prev
            up = np.full(h - l, np.inf)
            diag = np.full(h - l, np.inf)
            s, e = max(l, pl), min(h, ph)
            if s < e:
                up[s - l:e - l] = prow[s - pl:e - pl]
            s, e = max(l, pl + 1), min(h, ph + 1)
            if s < e:
                diag[s - l:e - l] = prow[s - 1 - pl:e - 1 - pl]
            from_above = cost + np.minimum(up, diag)
            prefix = np.cumsum(cost)
            row = prefix + np.minimum.accumulate(from_above - prefix)
        acc[i, : h - l] = row
        prev = (l, h, row)
    # Backtrack from the last cell to the first.
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        best, step = math.inf, (0, 0)
        if i > 0:
            pl, ph = lo[i - 1], hi[i - 1]
            if pl <= j - 1 < ph and acc[i - 1, j - 1 - pl] < best:
                best, step = acc[i - 1, j - 1 - pl], (i - 1, j - 1)
            if pl <= j < ph and acc[i - 1, j - pl] < best:
                best, step = acc[i - 1, j - pl], (i - 1, j)
        if j - 1 >= lo[i] and acc[i, j - 1 - lo[i]] < best:
            best, step = acc[i, j - 1 - lo[i]], (i, j - 1)
        if best == math.inf:  # cannot happen with connected windows; leave straight to the origin
            step = (max(i - 1, 0), max(j - 1, 0))
        i, j = step
        path.append((i, j))
    return np.array(path[::-1], dtype=int)
