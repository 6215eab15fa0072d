"""SubRip (``.srt``) subtitles from narration timings.

Cues are built from per-word timings (the engine's, or aligned to the audio by
core.media.align for engines that give none), so a cue appears when its first word is
spoken and leaves when its last word ends. Without any (alignment could not run),
:func:`spread_words` spreads the segment's words over its span, weighted by length, and
the same grouping applies.

Grouping rules, in order:

* a cue never spans two segments (a segment is a scene);
* a cue ends after a word that ends a sentence (``.``, ``!``, ``?``, ``…``, ``。！？``);
* a cue holds at most ``max_lines`` lines of at most ``max_chars_per_line`` columns (a
  full-width character takes two); a single word longer than a line is kept whole on its
  own line, except text written without spaces (Japanese, Chinese, Thai: one "word" may be
  a sentence), which is cut after each sentence and at phrase boundaries
  (core.media.fonts.break_lines, ``language`` deciding Japanese or Chinese Han), each piece
  timed by its share of the word's characters;
* a cue lasts at most ``max_cue_s`` seconds (a single word spoken for longer is alone);
* lines are balanced (the narrowest wrap that needs no more lines than a greedy one).

Timestamps are whole milliseconds, ``HH:MM:SS,mmm``; cues are numbered from 1 and never
overlap (a cue ends no later than the next one starts).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from core.media.text import as_written, markup_spans, strip_markup
from core.schemas import SegmentTiming, WordTiming

__all__ = ["to_srt", "spread_words", "format_timestamp"]

_SENTENCE_END = re.compile(r"[.!?…。！？]['\"”’)\]」』]*$")
_UNSPACED = ("kana", "han", "thai")  # scripts written without spaces between words
_GLUE = "\x00"  # starts a piece of an unspaced word: no space before it (never reaches the file)


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` for a time in seconds (negative times clamp to zero)."""
    return _fmt_ms(_to_ms(seconds))


def spread_words(text: str, start_s: float, end_s: float) -> list[WordTiming]:
    """Spread the whitespace-separated words of ``text`` over ``[start_s, end_s]``.

    Each word gets a share of the span proportional to its length plus one (the "+1"
    stands for the word's onset, so "a" is not given almost no time). Words are
    contiguous: each ends where the next starts, the first starts at ``start_s`` and
    the last ends at ``end_s``. Times are rounded to milliseconds.
    """
    words = text.split()
    if not words:
        return []
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError("start_s and end_s must be finite")
    if end_s < start_s:
        raise ValueError(f"end_s ({end_s}) is before start_s ({start_s})")
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    span = end_s - start_s
    out: list[WordTiming] = []
    acc = 0
    for word, weight in zip(words, weights):
        w_start = start_s + span * acc / total
        acc += weight
        w_end = end_s if acc == total else start_s + span * acc / total
        out.append(WordTiming(text=word, start_s=round(w_start, 3), end_s=round(w_end, 3)))
    return out


@dataclass
class _Cue:
    start_ms: int
    end_ms: int
    lines: list[str]


def to_srt(
    segments: Sequence[SegmentTiming],
    *,
    max_chars_per_line: int = 42,
    max_lines: int = 2,
    max_cue_s: float = 6.0,
    language: str | None = None,
) -> str:
    """Render ``segments`` as an SRT document (``""`` when there is nothing to show).

    ``language`` (BCP 47) says where unspaced text may break (core.media.fonts.break_lines: Japanese,
    Chinese, Thai phrases); a full-width character counts as two of ``max_chars_per_line``."""
    if max_chars_per_line < 1:
        raise ValueError("max_chars_per_line must be at least 1")
    if max_lines < 1:
        raise ValueError("max_lines must be at least 1")
    if not (max_cue_s > 0 and math.isfinite(max_cue_s)):
        raise ValueError("max_cue_s must be a positive number of seconds")
    max_cue_ms = round(max_cue_s * 1000)

    cues: list[_Cue] = []
    for seg in segments:
        words = [w for w in seg.words if w.text.strip()]
        if not words:
            words = spread_words(seg.text, seg.start_s, max(seg.start_s, seg.end_s))
        words = _phrased(_plain_words(words), max_chars_per_line, language)
        for group in _group(words, max_chars_per_line, max_lines, max_cue_ms):
            texts = [w.text for w in group]
            cues.append(
                _Cue(
                    start_ms=_to_ms(group[0].start_s),
                    end_ms=max(_to_ms(w.end_s) for w in group),
                    lines=_layout(texts, max_chars_per_line),
                )
            )

    _remove_overlaps(cues)
    blocks = [
        f"{n}\n{_fmt_ms(c.start_ms)} --> {_fmt_ms(c.end_ms)}\n" + "\n".join(ln.replace(_GLUE, "") for ln in c.lines)
        for n, c in enumerate(cues, 1)
    ]
    return "\n\n".join(blocks) + "\n" if blocks else ""


# --- grouping and layout ----------------------------------------------------------------


def _plain_words(words: list[WordTiming]) -> list[WordTiming]:
    """The words as plain text (core.media.text): no markup a player would read, even one split across
    words (``<font`` ``color=red>Hi``), no bidi controls, no emoji. A word left empty is dropped."""
    texts = [w.text.strip() for w in words]
    joined = " ".join(texts)
    keep = [True] * len(joined)
    for start, end in markup_spans(joined):
        keep[start:end] = [False] * (end - start)
    out: list[WordTiming] = []
    pos = 0
    for word, text in zip(words, texts):
        kept = "".join(ch for ch, k in zip(text, keep[pos : pos + len(text)]) if k)
        pos += len(text) + 1
        plain = " ".join(as_written(strip_markup(kept)).text.split())
        if plain:
            out.append(word if plain == word.text else word.model_copy(update={"text": plain}))
    return out


def _phrased(words: list[WordTiming], max_chars: int, language: str | None) -> list[WordTiming]:
    """Unspaced words wider than a line (a Japanese sentence is one "word") cut after each sentence and
    where their script allows, each piece timed by its share of the word's characters; a piece after the
    first starts with _GLUE (joined to the one before without a space)."""
    from core.media.fonts import break_lines, script_of

    out: list[WordTiming] = []
    for word in words:
        if _cells(word.text) <= max_chars or not any(script_of(c) in _UNSPACED for c in word.text):
            out.append(word)
            continue
        sentences = re.findall(r"[^。！？]+[。！？」』]*|[。！？」』]+", word.text)  # a cue ends with its sentence
        pieces = [p for sentence in sentences for p in break_lines(sentence, max_chars, _cells, language=language)
                  if p]
        total = sum(len(p) for p in pieces) or 1
        span, done = word.end_s - word.start_s, 0
        for i, piece in enumerate(pieces):
            start = word.start_s + span * done / total
            done += len(piece)
            out.append(WordTiming(text=(_GLUE if i else "") + piece, start_s=round(start, 3),
                                  end_s=round(word.start_s + span * done / total, 3)))
    return out


def _cells(text: str) -> int:
    """Columns ``text`` takes: two for a full-width (CJK) character, none for the glue mark."""
    return sum(0 if ch == _GLUE else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _group(words: list[WordTiming], max_chars: int, max_lines: int, max_cue_ms: int) -> list[list[WordTiming]]:
    groups: list[list[WordTiming]] = []
    current: list[WordTiming] = []
    for word in words:
        if current:
            candidate = current + [word]
            too_long = _to_ms(word.end_s) - _to_ms(current[0].start_s) > max_cue_ms
            too_wide = len(_wrap([w.text for w in candidate], max_chars)) > max_lines
            if too_long or too_wide:
                groups.append(current)
                current = []
        current.append(word)
        if _SENTENCE_END.search(word.text.strip()):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _wrap(words: list[str], width: int) -> list[str]:
    """Greedy wrap; a word longer than ``width`` gets a line of its own."""
    lines: list[str] = []
    line = ""
    for word in words:
        sep = "" if word.startswith(_GLUE) else " "
        if not line:
            line = word.removeprefix(_GLUE)
        elif _cells(line) + len(sep) + _cells(word) <= width:
            line = f"{line}{sep}{word.removeprefix(_GLUE)}"
        else:
            lines.append(line)
            line = word.removeprefix(_GLUE)
    if line:
        lines.append(line)
    return lines


def _layout(words: list[str], max_chars: int) -> list[str]:
    """Balanced lines: the narrowest width whose greedy wrap needs no more lines."""
    greedy = _wrap(words, max_chars)
    if len(greedy) <= 1:
        return greedy
    narrowest = max(_cells(w) for w in words)
    for width in range(narrowest, max_chars):
        lines = _wrap(words, width)
        if len(lines) <= len(greedy):
            return lines
    return greedy


def _remove_overlaps(cues: list[_Cue]) -> None:
    cues.sort(key=lambda c: c.start_ms)
    prev_end = 0
    for i, cue in enumerate(cues):
        cue.start_ms = max(cue.start_ms, prev_end)
        if i + 1 < len(cues):
            cue.end_ms = min(cue.end_ms, max(cues[i + 1].start_ms, cue.start_ms))
        if cue.end_ms <= cue.start_ms:
            # A zero-length cue is never shown by players; give it one millisecond and
            # push whatever follows (the loop keeps pushing, so order is preserved).
            cue.end_ms = cue.start_ms + 1
        prev_end = cue.end_ms


# --- time formatting --------------------------------------------------------------------


def _to_ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _fmt_ms(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"
