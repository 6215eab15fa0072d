"""Word times from a speech engine's word events (espeak-ng's): each whitespace-separated token of a
segment starts at the first event that falls inside it ("3.5%" yields several events: "three", "point",
"five", "percent"); tokens the engine gave no event for are spread between their neighbours by length. A
word ends where the next starts, the last where the segment's sound ends, then trailing silence (a comma's
pause) is trimmed off. A segment runs from its first sample to its last audible one.
"""

from __future__ import annotations

import bisect
import re
from array import array

from core.schemas import SegmentTiming, WordTiming

__all__ = ["segment_timing"]

# Silence detection for trimming word and segment ends (16-bit samples).
_SILENCE_PEAK = 200  # ~ -44 dBFS; espeak's pauses are exact zeros
_TRIM_FRAME_S = 0.005


def segment_timing(
    index: int, text: str, samples: array, events: list[tuple[int, int]], offset: int, sr: int
) -> SegmentTiming:
    """Segment ``index`` of ``text`` spoken as ``samples`` (16-bit, at ``sr``), placed ``offset`` samples into the
    narration, with its words' times from the engine's ``events`` ((1-based character position, sample))."""
    n = len(samples)
    frame = max(1, round(_TRIM_FRAME_S * sr))
    seg_end = _audible_end(samples, 0, n, frame)
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    token_starts = [t[0] for t in tokens]

    starts: list[int | None] = [None] * len(tokens)
    for text_position, sample in events:
        char = text_position - 1
        k = bisect.bisect_right(token_starts, char) - 1
        if k < 0 or char >= tokens[k][1]:
            k += 1  # the event points at whitespace: it belongs to the next token
        if k < len(tokens) and starts[k] is None:
            starts[k] = min(max(sample, 0), seg_end)
    filled = _fill_starts(starts, [len(t[2]) for t in tokens], seg_end)

    words: list[WordTiming] = []
    for k, (_, _, word) in enumerate(tokens):
        start = filled[k]
        end = filled[k + 1] if k + 1 < len(tokens) else seg_end
        end = max(start, _audible_end(samples, start, end, frame, keep_if_silent=True))
        words.append(WordTiming(text=word, start_s=_sec(offset + start, sr), end_s=_sec(offset + end, sr)))
    return SegmentTiming(
        index=index,
        text=text,
        start_s=_sec(offset, sr),
        end_s=_sec(offset + seg_end, sr),
        words=words,
    )


def _fill_starts(starts: list[int | None], lengths: list[int], seg_end: int) -> list[int]:
    """Give tokens without a word event a start between their neighbours, by length."""
    out = list(starts)
    k = 0
    while k < len(out):
        if out[k] is not None:
            k += 1
            continue
        j = k
        while j < len(out) and out[j] is None:
            j += 1
        # Tokens k..j-1 have no start: share [lo, hi) with the token before them (if any).
        first = k - 1 if k > 0 else k
        lo = out[k - 1] if k > 0 else 0
        hi = out[j] if j < len(out) else seg_end
        assert lo is not None and hi is not None
        hi = max(hi, lo)
        weights = [lengths[i] + 1 for i in range(first, j)]
        total = sum(weights)
        acc = 0
        for i, w in zip(range(first, j), weights):
            if out[i] is None:
                out[i] = lo + (hi - lo) * acc // total
            acc += w
        k = j
    result: list[int] = []
    for v in out:
        assert v is not None
        result.append(max(v, result[-1]) if result else v)
    return result


def _audible_end(samples: array, lo: int, hi: int, frame: int, *, keep_if_silent: bool = False) -> int:
    """End of the last frame in [lo, hi) with sound; ``lo`` (or ``hi``) when all is silent."""
    j = hi
    while j > lo:
        i = max(lo, j - frame)
        chunk = samples[i:j]
        if max(chunk) > _SILENCE_PEAK or -min(chunk) > _SILENCE_PEAK:
            return j
        j = i
    return hi if keep_if_silent else lo


def _sec(sample: int, sr: int) -> float:
    return round(sample / sr, 3)
