"""Captions: narration timings -> cues -> an ASS document (burned in by libass) and an SRT sidecar.

Cues come from the narration's per-word timings (ElevenLabs alignment, espeak word
events); a segment without word timings has its words spread over its span
(:func:`core.media.srt.spread_words`). The grouping rules are :mod:`core.media.srt`'s
(a cue never spans two segments, ends at a sentence end, at most two lines, balanced
lines), so the burned-in captions and the sidecar are the same cues: :func:`caption_cues`
renders them with :func:`~core.media.srt.to_srt` and reads them back.

Layout (:class:`CaptionLayout`) is in output pixels (``PlayResX/Y`` = the video's size):

* 16:9 — at most 42 characters a line, bottom-centred inside a 10 % side margin;
* 9:16 — fewer characters (what fits a narrower box at a larger size), and placed
  clear of the Shorts interface: above the bottom quarter (title, channel, subscribe,
  navigation) and left of the action-button column on the right.

Every line is measured with the caption font (Pillow and libass both use FreeType); a cue
whose widest line would not fit its box gets a smaller size (``\\fs``) rather than being
re-wrapped by libass (``WrapStyle: 2`` — only our line breaks).

The caption font (:class:`CaptionFont`) is bundled Inter Bold unless the caller chooses
another file: the styles then name that file's own family (what libass matches, see
:func:`core.media.fonts.font_facts`) and its real weight and slant, so libass picks that
face and neither emboldens nor slants it (a regular face asked for bold would be drawn
faux-bold, wider than measured). Whoever renders the ASS must hand libass a fonts folder
holding the file (core.media.assembly builds one per render); captions and overlays share
the font.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.media.fonts import (
    FALLBACK_FONTS,
    FONT_DIR,
    RIGHT_TO_LEFT_SCRIPTS,
    _drawn,
    break_lines,
    candidate_faces,
    coverage,
    font_facts,
    font_path,
    needs_complex_layout,
    require_complex_layout,
    script_of,
    truetype,
)
from core.media.srt import to_srt
from core.media.text import MIN_LEGIBLE_SHARE, as_written, ass_literal, notes_for
from core.schemas import SegmentTiming

__all__ = [
    "Cue",
    "CaptionLayout",
    "OverlayText",
    "CaptionFont",
    "DEFAULT_CAPTION_FONT",
    "SHORTS_UI_BOTTOM_FRACTION",
    "SHORTS_UI_RIGHT_FRACTION",
    "FONT_FAMILY",
    "FONTS_DIR",
    "FALLBACK_FACES",
    "fallback_faces_in",
    "caption_cues",
    "parse_srt",
    "cues_to_srt",
    "build_ass",
    "text_width_px",
    "text_notes",
]

log = logging.getLogger(__name__)

# YouTube Shorts draws its interface over the bottom of the picture (title, channel,
# subscribe button, sound, navigation: about the bottom quarter) and a column of action
# buttons (like, comment, share, remix) down the right edge.
SHORTS_UI_BOTTOM_FRACTION = 0.25
SHORTS_UI_RIGHT_FRACTION = 0.15

FONT_FAMILY = "Inter"  # Inter-Bold.otf: family "Inter", weight bold (font_path("text"))
FONTS_DIR = FONT_DIR  # handed to libass as fontsdir, so no system font is ever used
#: The bundled faces a caption run may switch to (a fonts folder for libass must hold them too).
FALLBACK_FACES = tuple(FONT_DIR / f for f in FALLBACK_FONTS.values())
# What the default layout's line length assumes a line of text to be made of.
_WIDTH_SAMPLE = "The quick brown fox jumps over the lazy dog, 1234567890."

_MAX_CHARS_LANDSCAPE = 42
_WIDTH_SAFETY = 0.97  # libass shapes with HarfBuzz (kerning); Pillow's basic layout may differ slightly
_TIME_RE = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{3})")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class OverlayText:
    text: str
    start_s: float
    end_s: float
    position: str  # top, center, bottom, top-left, top-right, bottom-left, bottom-right


@dataclass(frozen=True)
class CaptionFont:
    """The font captions and overlays are drawn in: a file, and the names libass knows it by."""

    path: Path
    family: str  # the style's Fontname: the file's family name (name ID 1)
    weight: int = 700
    italic: bool = False
    cell_em: float | None = None  # libass sizes a font by this many em (None: ask FreeType)

    @classmethod
    def from_file(cls, path: Path) -> CaptionFont:
        """Raises ValueError when ``path`` is not a font whose names can be read."""
        facts = font_facts(path)
        return cls(Path(path), facts.family, facts.weight, facts.italic, facts.cell_em)

    @property
    def ass_bold(self) -> int:
        # -1/0 are what every renderer reads; libass also takes a weight, which asks for
        # exactly this face (no faux bold on a light one, none missing on a black one).
        return {700: -1, 400: 0}.get(self.weight, self.weight)


DEFAULT_CAPTION_FONT = CaptionFont(font_path("text"), FONT_FAMILY, 700, False)


@dataclass(frozen=True)
class CaptionLayout:
    """Caption geometry for one output size, in output pixels."""

    width: int
    height: int
    font_size: int
    outline_px: int
    shadow_px: int
    margin_l: int
    margin_r: int
    margin_v: int  # from the bottom edge to the bottom of the last line
    max_chars: int
    max_lines: int = 2
    font: CaptionFont = DEFAULT_CAPTION_FONT

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def box_width(self) -> int:
        return self.width - self.margin_l - self.margin_r

    @property
    def overlay_font_size(self) -> int:
        return round(self.font_size * 1.15)

    @classmethod
    def for_size(cls, width: int, height: int, font: CaptionFont = DEFAULT_CAPTION_FONT) -> CaptionLayout:
        if height > width:
            # 9:16: a larger size relative to the width, for a phone held upright.
            size = max(12, round(width * 0.065))
            margin_l = round(width * 0.07)
            margin_r = max(margin_l, math.ceil(width * (SHORTS_UI_RIGHT_FRACTION + 0.01)))
            margin_v = math.ceil(height * (SHORTS_UI_BOTTOM_FRACTION + 0.03))
        else:
            size = max(12, round(height * 0.06))
            margin_l = margin_r = round(width * 0.10)
            margin_v = round(height * 0.075)
        outline = max(1, round(size * 0.075))
        # No drop shadow: ffmpeg blends each libass layer in plain C on every frame, and the
        # shadow layer (as large as the outline) cost 0.8 CPU-s on a 30 s 1080p job, almost
        # half of the captions' cost; the black outline alone keeps the text legible.
        shadow = 0
        box = width - margin_l - margin_r
        # What fits at an average Inter Bold advance of ~0.6 em (a size is ~1.2 em in ASS),
        # scaled by how much wider or narrower another caption font sets the same text.
        spread = 1.0
        if font != DEFAULT_CAPTION_FONT:
            spread = text_width_px(_WIDTH_SAMPLE, 100, font) / text_width_px(_WIDTH_SAMPLE, 100)
        fits = int(box / (size * 0.55 * spread))
        max_chars = max(12, min(_MAX_CHARS_LANDSCAPE, fits))
        return cls(width, height, size, outline, shadow, margin_l, margin_r, margin_v, max_chars, font=font)


# --------------------------------------------------------------------------- cues


def caption_cues(segments: Sequence[SegmentTiming], layout: CaptionLayout, *, max_cue_s: float = 6.0) -> list[Cue]:
    """Cues for ``segments`` under ``layout``'s line length (the SRT rules, read back)."""
    return parse_srt(to_srt(segments, max_chars_per_line=layout.max_chars, max_lines=layout.max_lines,
                            max_cue_s=max_cue_s))


def parse_srt(text: str) -> list[Cue]:
    """Cues of an SRT document (ours: numbered blocks separated by blank lines)."""
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", text.strip().replace("\r\n", "\n")):
        lines = block.split("\n")
        for i, line in enumerate(lines[:2]):
            if "-->" in line:
                start, _, end = line.partition("-->")
                s, e = _TIME_RE.search(start), _TIME_RE.search(end)
                if s and e:
                    body = tuple(t.strip() for t in lines[i + 1 :] if t.strip())
                    if body:
                        cues.append(Cue(_ms(s), _ms(e), body))
                break
    return cues


def cues_to_srt(cues: Sequence[Cue]) -> str:
    blocks = [f"{n}\n{_srt_time(c.start_ms)} --> {_srt_time(c.end_ms)}\n" + "\n".join(c.lines)
              for n, c in enumerate(cues, 1)]
    return "\n\n".join(blocks) + "\n" if blocks else ""


# --------------------------------------------------------------------------- ASS


_ALIGN = {"bottom-left": 1, "bottom": 2, "bottom-right": 3, "center": 5, "top-left": 7, "top": 8, "top-right": 9}


def build_ass(cues: Sequence[Cue], layout: CaptionLayout, overlays: Sequence[OverlayText] = ()) -> str:
    """An ASS document: the captions (style ``Caption``) and text overlays (style ``Overlay``)."""
    L = layout
    white, black, shadow = "&H00FFFFFF", "&H00000000", "&H80000000"
    fields = ("Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
              "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
              "MarginL, MarginR, MarginV, Encoding")
    top_margin = max(round(L.height * 0.06), L.margin_v // 4)
    # A family name is one field of a comma-separated row: a comma in it would shift the rest.
    face = f"{L.font.family.replace(',', ' ')},"
    weight = f"{L.font.ass_bold},{-1 if L.font.italic else 0}"
    caption_style = (f"Style: Caption,{face}{L.font_size},{white},{white},{black},{shadow},{weight},0,0,100,100,"
                     f"0,0,1,{L.outline_px},{L.shadow_px},2,{L.margin_l},{L.margin_r},{L.margin_v},-1")
    overlay_style = (f"Style: Overlay,{face}{L.overlay_font_size},{white},{white},{black},{shadow},{weight},0,0,"
                     f"100,100,0,0,1,{L.outline_px + 1},{L.shadow_px},8,{L.margin_l},{L.margin_r},{top_margin},-1")
    out = [
        "[Script Info]",
        "; written by ytap-mcp (core.media.captions)",
        "ScriptType: v4.00+",
        f"PlayResX: {L.width}",
        f"PlayResY: {L.height}",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: TV.709",
        "Collisions: Normal",
        "",
        "[V4+ Styles]",
        f"Format: Name, {fields}",
        caption_style,
        overlay_style,
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    # A cue is a piece of a paragraph: in a narration that reads right to left, a cue that starts with a
    # Latin word ("Python في عشر دقائق") must still run right to left, which libass would not guess from
    # the cue alone. A right-to-left mark at the head of each line sets it.
    mark = "\u200f" if _reads_right_to_left(cues) else ""
    for cue in cues:
        size, lines = _fit([as_written(line, font=L.font.path).text for line in cue.lines], L.font_size,
                           L.box_width, L.font)
        if not lines:
            continue
        prefix = f"{{\\fs{size}}}" if size != L.font_size else ""
        text = "\\N".join(mark + _ass_runs(" ".join(line.split()), size, L.font) for line in lines)
        out.append(f"Dialogue: 0,{_ass_time(cue.start_ms)},{_ass_time(max(cue.end_ms, cue.start_ms + 10))},"
                   f"Caption,,0,0,0,,{prefix}{text}")
    for ov in overlays:
        written = as_written(ov.text, font=L.font.path).text
        lines = _wrap_overlay(written, max(8, round(L.max_chars * L.font_size / L.overlay_font_size)))
        size, lines = _fit(lines, L.overlay_font_size, L.box_width, L.font)
        if not lines:
            continue  # nothing left to draw (it was all emoji)
        align = _ALIGN.get(ov.position, 8)
        tags = f"\\an{align}" + (f"\\fs{size}" if size != L.overlay_font_size else "")
        # Bottom overlays keep the caption margin (clear of the Shorts interface too); libass
        # stacks an overlay and a caption that meet, instead of drawing one over the other.
        margin_v = L.margin_v if align in (1, 2, 3) else 0
        start_ms, end_ms = round(ov.start_s * 1000), round(ov.end_s * 1000)
        out.append(f"Dialogue: 0,{_ass_time(start_ms)},{_ass_time(max(end_ms, start_ms + 10))},Overlay,,0,0,"
                   f"{margin_v},,{{{tags}}}" + "\\N".join(_ass_runs(" ".join(line.split()), size, L.font)
                                                             for line in lines))
    return "\n".join(out) + "\n"


def _reads_right_to_left(cues: Sequence[Cue]) -> bool:
    """Whether the captions, as a whole, are right-to-left text: most of their letters are Arabic or Hebrew."""
    rtl = other = 0
    for cue in cues:
        for line in cue.lines:
            for ch in line:
                if ch.isalpha():
                    if script_of(ch) in RIGHT_TO_LEFT_SCRIPTS:
                        rtl += 1
                    else:
                        other += 1
    return rtl > other


def text_width_px(text: str, size: int, font: CaptionFont = DEFAULT_CAPTION_FONT) -> float:
    """Advance width of ``text`` at ``size`` (ASS) pixels, each run in the face that draws it."""
    total = 0.0
    for run, face in _runs(text, font):
        em = _em_px(size, font)  # every face at the caption font's em (see _ass_runs)
        if needs_complex_layout(run):
            require_complex_layout(run)
        total += truetype(face, em).getlength(run)
    return total


def _runs(text: str, font: CaptionFont) -> list[tuple[str, Path]]:
    """``text`` cut where the face changes: the caption font where it has the character, else the
    first bundled face that has it; spaces and punctuation stay in the run they are in."""
    faces = candidate_faces(text, font.path)
    runs: list[tuple[str, Path]] = []
    for ch in text:
        cp = ord(ch)
        if runs and (cp in coverage(runs[-1][1]) and script_of(ch) is None and not ch.isalpha()
                     or not _drawn(ch)):
            runs[-1] = (runs[-1][0] + ch, runs[-1][1])
            continue
        face = next((f for f in faces if cp in coverage(f)), None)
        if face is None:
            if _drawn(ch):  # no bundled face has it: left out rather than drawn as a box
                log.info("caption: no bundled font has %r (U+%04X); left out", ch, cp)
                continue
            face = font.path
        if runs and runs[-1][1] == face:
            runs[-1] = (runs[-1][0] + ch, face)
        else:
            runs.append((ch, face))
    return runs


def _ass_runs(text: str, size: int, font: CaptionFont) -> str:
    """One caption line as ASS text: each run that the caption font cannot draw switched to the
    bundled face that can (``\\fn``), at the same em (libass sizes a face by its own ascent +
    descent: Noto Sans Arabic's is 2.1 em against Inter's 1.2, so the same ``\\fs`` would draw it
    at half the size). libass orders the runs (FriBiDi) and shapes each (HarfBuzz)."""
    out: list[str] = []
    for run, face in _runs(text, font):
        if face == font.path:
            back = f"{{\\fn{font.family.replace(',', ' ')}\\fs{size}}}"  # to the caption font again
            out.append(_escape_run(run) if not out else back + _escape_run(run))
            continue
        facts = font_facts(face)
        scaled = round(size * (facts.cell_em or 1.0) / (font.cell_em or _freetype_cell_em(str(font.path))))
        out.append(f"{{\\fn{facts.family}\\fs{scaled}}}" + _escape_run(run))
    return "".join(out)


def fallback_faces_in(ass: str) -> tuple[Path, ...]:
    """The bundled fallback faces an ASS script switches to (``\\fn``): what a fonts folder for
    libass must hold besides the caption font (a Latin-only script needs none of them)."""
    return tuple(f for f in FALLBACK_FACES if f"\\fn{font_facts(f).family}\\" in ass)


def _em_px(ass_size: int, font: CaptionFont = DEFAULT_CAPTION_FONT) -> int:
    # libass (like VSFilter) sizes a font by its ascent + descent, not its em: Inter's
    # hhea ascent + descent is ~1.21 em, so an ASS size of 56 draws a ~46 px em.
    return max(1, round(ass_size / (font.cell_em or _freetype_cell_em(str(font.path)))))


@lru_cache(maxsize=8)
def _freetype_cell_em(path: str) -> float:
    ascent, descent = truetype(path, 1000).getmetrics()
    return (ascent + descent) / 1000


def _fit(lines: Sequence[str], size: int, box_px: int, font: CaptionFont = DEFAULT_CAPTION_FONT
         ) -> tuple[int, list[str]]:
    """The lines and the size to draw them at: ``size``, or the largest smaller size at which the
    widest line fits the box, but never below :data:`MIN_LEGIBLE_SHARE` of ``size``: lines still too
    wide there are broken (at spaces, and inside a token no line can hold)."""
    lines = [line for line in (" ".join(line.split()) for line in lines) if line]
    widest = max((text_width_px(line, size, font) for line in lines), default=0.0)
    limit = box_px * _WIDTH_SAFETY
    if widest <= limit:
        return size, lines
    floor = math.ceil(size * MIN_LEGIBLE_SHARE)
    shrunk = math.floor(size * limit / widest)
    if shrunk >= floor:
        return shrunk, lines

    def fits(s: str) -> bool:
        return text_width_px(s, floor, font) <= limit

    broken: list[str] = []
    for line in lines:  # at spaces, and at phrase boundaries in Japanese, Chinese and Thai
        broken += break_lines(line, limit, lambda s: text_width_px(s, floor, font))
    return floor, broken


def _wrap_overlay(text: str, max_chars: int) -> list[str]:
    words = text.split()
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > max_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines or [text.strip()]


def _escape_run(text: str) -> str:
    return ass_literal(text)


def text_notes(segments: Sequence[SegmentTiming], overlays: Sequence[OverlayText] = (),
               font: CaptionFont = DEFAULT_CAPTION_FONT) -> list[str]:
    """What the result should say about the captions' and overlays' text (emoji removed)."""
    texts = [seg.text or " ".join(w.text for w in seg.words) for seg in segments] + [ov.text for ov in overlays]
    return notes_for(*texts, font=font.path)


def _ass_time(ms: int) -> str:
    cs = max(0, round(ms / 10))
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, c = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{c:02d}"


def _srt_time(ms: int) -> str:
    h, rest = divmod(max(0, ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, millis = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{millis:03d}"


def _ms(m: re.Match[str]) -> int:
    h, mi, s, ms = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms
