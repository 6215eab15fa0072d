"""Text as written, the same on every surface that draws it.

Burned captions and overlays (libass), the ``.srt`` sidecar, scene cards (drawtext) and
thumbnail titles (Pillow) all take their text through :func:`as_written` first, so one
input reads the same everywhere:

* **Emoji** are removed, and the caller is told (:attr:`Written.emoji_removed`, whose note
  goes into the result): the bundled fonts have no emoji glyphs, so each would draw as a
  box (or, in libass, as whatever a system font offers, which differs from machine to
  machine). A whole emoji sequence goes (its ZWJ joins, skin tones, variation selectors,
  keycap and tag characters), never half of it. A pictographic character the font does
  have (©, ™, ↔, ✓) is text and stays.
* **Bidi controls** (U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates,
  U+200E/U+200F/U+061C marks) are removed on every surface. Honouring them everywhere is
  not possible today: libass runs FriBidi over them, while drawtext and the thumbnail's
  Pillow layout do not, so one title read two ways; and an override is how text is made
  to read differently from what was written (the "Trojan Source" trick). Right-to-left
  scripts still come out right to left wherever a renderer applies the Unicode
  bidirectional algorithm: it orders text by its letters, and needs no control characters.
* Everything else, a backslash included, is kept exactly: escaping for a renderer is that
  renderer's business (:func:`ass_literal` for libass; drawtext reads a file with
  ``expansion=none``; an ``.srt`` is plain text).

Lines that do not fit are broken, never shrunk past :data:`MIN_LEGIBLE_SHARE` of the size a
surface chose: :func:`break_token` splits a token too wide for a line (a URL, 200 "X").
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "Written",
    "as_written",
    "notes_for",
    "EMOJI_NOTE",
    "BIDI_CONTROLS",
    "MIN_LEGIBLE_SHARE",
    "strip_markup",
    "markup_spans",
    "break_token",
    "ass_literal",
]

EMOJI_NOTE = "emoji removed: the bundled fonts have no emoji glyphs"
# A line of text may be set smaller to fit its box, down to this share of the size its surface
# chose; past that it is broken into more lines instead (a caption's 65 px never ends at 8).
MIN_LEGIBLE_SHARE = 0.6

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

_ZWJ = "\u200d"
_KEYCAP = "\u20e3"


@dataclass(frozen=True)
class Written:
    """Text ready for a surface: what will be drawn, and what was removed on the way."""

    text: str
    emoji_removed: bool = False

    @property
    def notes(self) -> list[str]:
        return [EMOJI_NOTE] if self.emoji_removed else []


def as_written(text: str, *, font: Path | None = None) -> Written:
    """``text`` without bidi controls and without the emoji ``font`` (default: the bundled font) cannot draw.

    Whitespace is kept as it is (each surface lays out lines its own way), except that the
    gap an emoji leaves between two spaces closes.
    """
    out: list[str] = []
    removed = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in BIDI_CONTROLS:
            i += 1
            continue
        if _is_pictographic(ch) and not _font_has(font, ch) or _is_emoji_component(ch):
            # The whole sequence: base, modifiers, and whatever a ZWJ joins to it.
            start = i
            i += 1
            while i < n and (_is_emoji_component(text[i]) or text[i] == _ZWJ or
                             (text[i - 1] == _ZWJ and _is_pictographic(text[i]))):
                i += 1
            # A lone variation selector after a character the font has (©️) only asks for a style.
            removed = removed or any(not _is_selector(c) for c in text[start:i])
            if out and out[-1] == " " and i < n and text[i] == " ":
                i += 1  # "a 😀 b" -> "a b"
            continue
        out.append(ch)
        i += 1
    kept = "".join(out)
    if removed and not kept.strip():
        kept = ""
    return Written(kept, removed)


def notes_for(*texts: str | None, font: Path | None = None) -> list[str]:
    """What a result should say about ``texts`` as drawn (each note once)."""
    return sorted({note for t in texts if t for note in as_written(t, font=font).notes})


def _is_pictographic(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x1F000 <= cp <= 0x1FAFF and not 0x1F700 <= cp <= 0x1F77F  # pictographs, emoticons, flags (not alchemy)
        or 0x2600 <= cp <= 0x27BF  # miscellaneous symbols, dingbats
        or 0x2300 <= cp <= 0x23FF or 0x2B00 <= cp <= 0x2BFF or 0x2190 <= cp <= 0x21FF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def _is_selector(ch: str) -> bool:
    return ch in ("\ufe0e", "\ufe0f")


def _is_emoji_component(ch: str) -> bool:
    """Characters that only mean something inside an emoji sequence."""
    cp = ord(ch)
    return _is_selector(ch) or ch == _KEYCAP or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F


def _font_has(font: Path | None, ch: str) -> bool:
    return _has_glyph(str(font) if font is not None else "", ch)


@lru_cache(maxsize=4096)
def _has_glyph(font: str, ch: str) -> bool:
    """Whether ``font`` (empty: the bundled text font) maps ``ch`` to a glyph of its own, not .notdef."""
    return ord(ch) in _cmap(font)


@lru_cache(maxsize=8)
def _cmap(font: str) -> frozenset[int]:
    """The pictographic code points ``font`` maps to a glyph (its ``cmap`` table, read once per font)."""
    from core.media.fonts import font_path

    data = (Path(font) if font else font_path("text")).read_bytes()
    try:
        return frozenset(cp for cp in _mapped_code_points(data) if _is_pictographic(chr(cp)))
    except (struct.error, IndexError):  # a damaged table: draw nothing doubtful, the result says so
        return frozenset()


def _mapped_code_points(data: bytes) -> set[int]:
    """Every code point a TrueType/OpenType font's Unicode cmap subtable (format 12, else 4) maps to a glyph."""
    (count,) = struct.unpack_from(">H", data, 4)
    tables = {struct.unpack_from(">4s", data, 12 + 16 * i)[0]: struct.unpack_from(">I", data, 20 + 16 * i)[0]
              for i in range(count)}
    cmap = tables[b"cmap"]
    (n_sub,) = struct.unpack_from(">H", data, cmap + 2)
    subtables: dict[int, int] = {}
    for i in range(n_sub):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        if (platform, encoding) in ((3, 10), (0, 4), (0, 6), (3, 1), (0, 3)):
            fmt = struct.unpack_from(">H", data, cmap + offset)[0]
            subtables.setdefault(fmt, cmap + offset)
    out: set[int] = set()
    if 12 in subtables:
        at = subtables[12]
        (groups,) = struct.unpack_from(">I", data, at + 12)
        for g in range(groups):
            first, last, glyph = struct.unpack_from(">III", data, at + 16 + 12 * g)
            out.update(cp for cp in range(first, last + 1) if glyph + cp - first)
    elif 4 in subtables:
        at = subtables[4]
        seg = struct.unpack_from(">H", data, at + 6)[0] // 2
        ends, starts = at + 14, at + 16 + 2 * seg
        deltas, ranges = starts + 2 * seg, starts + 4 * seg
        for i in range(seg):
            (last,) = struct.unpack_from(">H", data, ends + 2 * i)
            (first,) = struct.unpack_from(">H", data, starts + 2 * i)
            (delta,) = struct.unpack_from(">h", data, deltas + 2 * i)
            (range_offset,) = struct.unpack_from(">H", data, ranges + 2 * i)
            for cp in range(first, min(last, 0xFFFE) + 1):
                if range_offset:
                    (glyph,) = struct.unpack_from(">H", data, ranges + 2 * i + range_offset + 2 * (cp - first))
                    glyph = (glyph + delta) & 0xFFFF if glyph else 0
                else:
                    glyph = (cp + delta) & 0xFFFF
                if glyph:
                    out.add(cp)
    return out


# --- markup ----------------------------------------------------------------------------------

# What SRT players (and WebVTT) read as formatting: HTML-like tags and ASS override blocks.
_TAG = re.compile(r"</?\s*(?:b|i|u|s|font|c|v|lang|ruby|rt|span)\b[^<>]*>", re.IGNORECASE)
_ASS_BLOCK = re.compile(r"\{[^{}]*\\[^{}]*\}")


def markup_spans(text: str) -> list[tuple[int, int]]:
    """Where formatting markup sits in ``text`` (start, end), for callers that must map removals back."""
    return sorted(m.span() for pattern in (_TAG, _ASS_BLOCK) for m in pattern.finditer(text))


def strip_markup(text: str) -> str:
    """``text`` with formatting markup removed (``<i>``, ``<font color=…>``, ``{\\an8}``); other text stays."""
    previous = None
    while previous != text:  # "<<i>i>" leaves "<i>" after one pass
        previous = text
        text = _ASS_BLOCK.sub("", _TAG.sub("", text))
    return text


# --- breaking --------------------------------------------------------------------------------


def break_token(word: str, fits: Callable[[str], bool]) -> list[str]:
    """Break a token wider than the line (a URL, a long compound, unspaced script) into pieces that fit.

    Each piece is the longest prefix that fits, found by bisection (a few measurements a
    line instead of one a character); a piece is at least one character, and never ends
    between a character and the marks combined with it.
    """
    pieces: list[str] = []
    rest = word
    while rest:
        if fits(rest):
            pieces.append(rest)
            break
        lo, hi = 1, len(rest)  # fits(rest[:lo]) is assumed (one glyph); fits(rest[:hi]) is false
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(rest[:mid]):
                lo = mid
            else:
                hi = mid
        while lo < len(rest) and unicodedata.combining(rest[lo]):
            lo += 1
        pieces.append(rest[:lo])
        rest = rest[lo:]
    return pieces


# --- renderers' escapes ----------------------------------------------------------------------

_WORD_JOINER = "\u2060"


def ass_literal(text: str) -> str:
    """``text`` as an ASS event shows it: braces and backslashes drawn, never read as tags.

    libass reads ``\\N``, ``\\n`` and ``\\h`` anywhere, and ``{`` opens an override block. A
    word joiner (U+2060, invisible, zero width: HarfBuzz hides it) after each backslash keeps
    it from pairing with the next character; ``\\{`` and ``\\}`` are libass's escapes for braces.
    """
    text = text.replace("\\", "\\" + _WORD_JOINER)
    return text.replace("{", "\\{").replace("}", "\\}")
