"""Where the title goes: the text accepted, its font, and the layout fitted into the safe area.

:func:`accept_text` is where a title and a subtitle enter (checked and cleaned); everything
after works on what it returns. :func:`layout_title` -> :class:`TitleLayout` fits the
title as large as possible, wrapped to at most three lines: every text box stays inside
:data:`SAFE_BOX` and out of :data:`BADGE_BOX`, the corner where YouTube draws the duration
badge. Tests and callers check sizes on the layout without drawing.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import ImageFont

from core.errors import InputError
from core.media.formats import THUMBNAIL_SIZE
from core.media.fonts import _phrases, face_for, font_path, right_to_left, truetype
from core.media.text import EMOJI_NOTE, as_written
from core.media.thumbnail.style import _style_words

__all__ = [
    "WIDTH",
    "HEIGHT",
    "SAFE_BOX",
    "BADGE_BOX",
    "MAX_LINES",
    "MIN_TITLE_SIZE",
    "MAX_TITLE_SIZE",
    "TitleLayout",
    "accept_text",
    "title_align",
    "layout_title",
]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive

WIDTH, HEIGHT = THUMBNAIL_SIZE
_MARGIN_X, _MARGIN_Y = round(WIDTH * 0.05), round(HEIGHT * 0.05)
#: Where text may go: 5% margins all round.
SAFE_BOX: Box = (_MARGIN_X, _MARGIN_Y, WIDTH - _MARGIN_X, HEIGHT - _MARGIN_Y)
#: YouTube's duration badge (~170x60 at the bottom right) plus a little air: keep text out.
BADGE_BOX: Box = (WIDTH - 190, HEIGHT - 80, WIDTH, HEIGHT)
MAX_LINES = 3

MIN_TITLE_SIZE = 28
MAX_TITLE_SIZE = 200
_MAX_TITLE_CHARS = 220  # nothing longer can fit in 3 lines even at MIN_TITLE_SIZE
_STROKE_RATIO = 0.075  # stroke width / font size
_PITCH_UPPER = 0.98  # baseline-to-baseline / font size, all caps
_PITCH_MIXED = 1.10  # ... with lowercase (descenders)
_REF_SIZE = 200  # size at which line widths are compared to choose the wrap
_SUB_RATIO = 0.36  # subtitle size / title size
_SUB_MIN, _SUB_MAX, _SUB_FLOOR = 30, 54, 20
_CAPS_AUTO_MIN = 90  # below this caps size, a long title may keep its case to come out larger
_MAX_FILL = 0.94  # the text block may use this much of the safe height (breathing room)
_ELLIPSIS = "\u2026"

_UPPER_WORDS = {"caps", "upper", "uppercase", "allcaps"}
_KEEPCASE_WORDS = {"nocaps", "lower", "lowercase", "sentence", "keepcase", "asis", "mixed"}
_CENTER_WORDS = {"center", "centre", "centered", "centred", "middle"}
_PLAIN_WORDS = {"plain", "nohighlight"}


# --- the text ---------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Collapse whitespace; drop control and format characters (ZWJ, variation selectors...)."""
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif cat == "Cf" or "\ufe00" <= c <= "\ufe0f" or "\U0001f3fb" <= c <= "\U0001f3ff":
            continue
        else:
            out.append(c)
    return " ".join("".join(out).split())


def _has_glyph(fpath: str, ch: str) -> bool:
    """False when the font would draw its .notdef box for ``ch`` (e.g. emoji in Inter)."""
    if ch.isspace() or unicodedata.category(ch).startswith("M"):
        return True
    return _font_has_glyph(_font(fpath, 40), ch)


@functools.lru_cache(maxsize=4096)
def _font_has_glyph(f: ImageFont.FreeTypeFont, ch: str) -> bool:
    # Keyed by the loaded font, which is per file identity: a replaced file is asked afresh.
    missing = f.getmask("\U0010fffd")
    m = f.getmask(ch)
    return not (m.size == missing.size and bytes(m) == bytes(missing))


def _drop_missing_glyphs(text: str, fpath: str) -> str:
    """Remove characters the font cannot draw; keep the text as is if nothing would remain."""
    kept = _clean("".join(c for c in text if _has_glyph(fpath, c)))
    if kept != text:
        log.info("thumbnail text: dropped characters the font lacks: %r -> %r", text, kept)
    return kept or text


_GREEK_ACCENTS = {"\u0300", "\u0301", "\u0342", "\u0313", "\u0314", "\u0345"}


def _upper(text: str) -> str:
    """Upper-case; Greek capitals lose their accents (tonos), as Greek typesetting does."""
    up = text.upper()
    if not any("\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff" for c in up):
        return up
    out: list[str] = []
    base = ""
    for c in unicodedata.normalize("NFD", up):
        if c in _GREEK_ACCENTS and ("\u0370" <= base <= "\u03ff" or "\u1f00" <= base <= "\u1fff"):
            continue
        if not unicodedata.combining(c):
            base = c
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


def _check_title(title: object) -> str:
    if not isinstance(title, str):
        raise InputError(f"thumbnail title must be a string, not {type(title).__name__}")
    cleaned = _clean(title)
    if not cleaned:
        raise InputError("thumbnail title is empty")
    return cleaned


def _check_subtitle(subtitle: object) -> str | None:
    if subtitle is None:
        return None
    if not isinstance(subtitle, str):
        raise InputError(f"thumbnail subtitle must be a string, not {type(subtitle).__name__}")
    return _clean(subtitle) or None


def accept_text(title: object, subtitle: object = None) -> tuple[str, str | None]:
    """Where a thumbnail's title and subtitle enter: checked and cleaned, (title, subtitle or None).

    Raises InputError for an empty or non-string title.
    """
    return _check_title(title), _check_subtitle(subtitle)


def title_align(style: str | None, text: str | None = None) -> str:
    """"left" or "center", as the style's words say (a designed background leaves room on that side);
    "right" instead of "left" for a ``text`` written right to left (Arabic, Hebrew), whose lines start
    at the right edge."""
    words = set(_style_words(style))
    if words & _CENTER_WORDS and "left" not in words:
        return "center"
    return "right" if text is not None and right_to_left(text) else "left"


def _subtitle_face(text: str) -> str:
    return str(face_for(text, font_path("text")))


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return truetype(path, size)


def _title_font_path(font: Path | None) -> str:
    if font is None:
        return str(font_path("display"))
    path = Path(font)
    try:
        _font(str(path), 40)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot use title font {str(path)!r}: not a readable TrueType/OpenType font ({exc})") from exc
    return str(path)


# --- the layout -------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleLayout:
    """Where everything goes on the 1280x720 canvas. Boxes are ink boxes (stroke included)."""

    lines: tuple[str, ...]
    font_path: str
    font_size: int
    stroke_width: int
    cap_height: int  # px at 1280x720: ink height of "H" without stroke
    origins: tuple[tuple[int, int], ...]  # left-baseline origin of each line (anchor "ls")
    line_boxes: tuple[Box, ...]
    title_box: Box
    uppercase: bool
    align: str  # "left" | "right" (a right-to-left title) | "center"
    highlight: str | None  # the emphasised word, as drawn
    direction: str | None = None  # "rtl": every line of a right-to-left title is laid out so (None: by its text)
    subtitle: str | None = None
    subtitle_font_path: str | None = None
    subtitle_size: int | None = None
    subtitle_origin: tuple[int, int] | None = None
    subtitle_box: Box | None = None  # the pill

    @property
    def boxes(self) -> tuple[Box, ...]:
        return self.line_boxes + ((self.subtitle_box,) if self.subtitle_box else ())

    @property
    def block_box(self) -> Box:
        return _union(self.boxes)

    def cap_height_at(self, width: int) -> float:
        """Cap height in px when the thumbnail is shown ``width`` px wide."""
        return self.cap_height * width / WIDTH


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _inside(b: Box, outer: Box) -> bool:
    return b[0] >= outer[0] and b[1] >= outer[1] and b[2] <= outer[2] and b[3] <= outer[3]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# A token is a word, or a piece of an over-long word glued to the previous piece.
_Token = tuple[str, bool]  # (text, glued_to_previous)


def _join(tokens: Sequence[_Token]) -> str:
    out = []
    for i, (t, glued) in enumerate(tokens):
        if i and not glued:
            out.append(" ")
        out.append(t)
    return "".join(out)


def _best_partitions(tokens: Sequence[_Token], fpath: str) -> list[list[str]]:
    """For each line count 1..3, the wrap that minimises the widest line (at a reference size)."""
    n = len(tokens)
    f = _font(fpath, _REF_SIZE)
    width = functools.cache(lambda i, j: f.getlength(_join(tokens[i:j])))
    candidates: list[list[str]] = [[_join(tokens)]]
    cuts = list(range(1, n))  # a line may also break between the pieces of a split word
    if cuts:
        i = min(cuts, key=lambda c: max(width(0, c), width(c, n)))
        candidates.append([_join(tokens[:i]), _join(tokens[i:])])
    if len(cuts) >= 2:
        best: tuple[float, int, int] | None = None
        for a_i, a in enumerate(cuts):
            for b in cuts[a_i + 1 :]:
                w = max(width(0, a), width(a, b), width(b, n))
                # Prefer the widest line lower down on ties: a pyramid reads better.
                if best is None or w < best[0] - 0.5:
                    best = (w, a, b)
        assert best is not None
        _, a, b = best
        candidates.append([_join(tokens[:a]), _join(tokens[a:b]), _join(tokens[b:])])
    return candidates


def _fit_subtitle(text: str, target: int, avail_w: int) -> tuple[int, str, int, int]:
    """Size and (possibly truncated) text of the subtitle so its pill fits ``avail_w``.

    Returns (size, text, pad_x, pad_y).
    """
    fpath = _subtitle_face(text)
    size = target
    while True:
        f = _font(fpath, size)
        pad_x, pad_y = round(size * 0.62), round(size * 0.42)
        if f.getlength(text) + 2 * pad_x <= avail_w:
            return size, text, pad_x, pad_y
        if size > _SUB_FLOOR:
            size -= 2
            continue
        # Smallest size and still too long: cut words, then characters.
        words = text.split(" ")
        while len(words) > 1 and f.getlength(" ".join(words) + _ELLIPSIS) + 2 * pad_x > avail_w:
            words.pop()
        cut = " ".join(words)
        while cut and f.getlength(cut + _ELLIPSIS) + 2 * pad_x > avail_w:
            cut = cut[:-1]
        return size, cut.rstrip() + _ELLIPSIS, pad_x, pad_y


def _place(
    lines: Sequence[str],
    size: int,
    fpath: str,
    *,
    uppercase: bool,
    align: str,
    subtitle: str | None,
    direction: str | None = None,
) -> TitleLayout | None:
    """Lay ``lines`` out at ``size``; None if anything leaves the safe area or hits the badge."""
    f = _font(fpath, size)
    sw = max(2, round(size * _STROKE_RATIO))
    pitch = round(size * (_PITCH_UPPER if uppercase else _PITCH_MIXED))
    sx0, sy0, sx1, sy1 = SAFE_BOX
    avail_w = sx1 - sx0
    cx = (sx0 + sx1) // 2

    rel: list[tuple[int, int, int, int]] = []  # ink boxes relative to (x origin, baseline 0)
    origins_x: list[int] = []
    for i, line in enumerate(lines):
        l, t, r, b = f.getbbox(line, stroke_width=sw, anchor="ls", direction=direction)
        if r - l > avail_w:
            return None
        ox = sx0 - l if align == "left" else sx1 - r if align == "right" else cx - (l + r) // 2
        origins_x.append(ox)
        rel.append((ox + l, i * pitch + t, ox + r, i * pitch + b))
    # Lines without ascenders/caps (e.g. "…") must not make the block look shorter.
    cap_top = -f.getbbox("H", anchor="ls")[1]
    rel[0] = (rel[0][0], min(rel[0][1], -cap_top - sw), rel[0][2], rel[0][3])
    title_top = min(b[1] for b in rel)
    title_bottom = max(b[3] for b in rel)

    sub = None
    block_bottom = title_bottom
    if subtitle:
        target = min(_SUB_MAX, max(_SUB_MIN, round(size * _SUB_RATIO)))
        s_size, s_text, pad_x, pad_y = _fit_subtitle(subtitle, target, avail_w)
        sf = _font(_subtitle_face(subtitle), s_size)
        s_cap = -sf.getbbox("H", anchor="ls")[1]
        pill_w = round(sf.getlength(s_text)) + 2 * pad_x
        pill_h = s_cap + 2 * pad_y
        pill_top = title_bottom + max(14, round(size * 0.22))
        px0 = sx0 if align == "left" else sx1 - pill_w if align == "right" else cx - pill_w // 2
        sub = (s_text, s_size, px0, pill_top, pill_w, pill_h, pad_x, pad_y, s_cap)
        block_bottom = pill_top + pill_h

    block_h = block_bottom - title_top
    if block_h > (sy1 - sy0) * _MAX_FILL:
        return None
    # Optically centred: a touch above the middle.
    shift = sy0 + round((sy1 - sy0 - block_h) * 0.46) - title_top

    def build(dy: int) -> TitleLayout:
        line_boxes = tuple((b[0], b[1] + dy, b[2], b[3] + dy) for b in rel)
        origins = tuple((ox, i * pitch + dy) for i, ox in enumerate(origins_x))
        s_fields: dict[str, object] = {}
        if sub:
            s_text, s_size, px0, pill_top, pill_w, pill_h, pad_x, pad_y, s_cap = sub
            s_fields = {
                "subtitle": s_text,
                "subtitle_font_path": _subtitle_face(subtitle),
                "subtitle_size": s_size,
                "subtitle_origin": (px0 + pad_x, pill_top + dy + pad_y + s_cap),
                "subtitle_box": (px0, pill_top + dy, px0 + pill_w, pill_top + dy + pill_h),
            }
        return TitleLayout(
            lines=tuple(lines),
            font_path=fpath,
            font_size=size,
            stroke_width=sw,
            cap_height=cap_top,
            origins=origins,
            line_boxes=line_boxes,
            title_box=_union(line_boxes),
            uppercase=uppercase,
            align=align,
            highlight=None,
            direction=direction,
            **s_fields,  # type: ignore[arg-type]
        )

    lay = build(shift)
    hits = [b for b in lay.boxes if _overlaps(b, BADGE_BOX)]
    if hits:
        # Lift the block clear of the duration badge if there is room above it.
        lift = max(b[3] for b in hits) - BADGE_BOX[1]
        top_room = lay.block_box[1] - sy0
        if lift > top_room:
            return None
        lay = build(shift - lift)
        if any(_overlaps(b, BADGE_BOX) for b in lay.boxes):
            return None
    if not all(_inside(b, SAFE_BOX) for b in lay.boxes):
        return None
    return lay


def _fit(
    tokens: Sequence[_Token], fpath: str, *, uppercase: bool, align: str, subtitle: str | None,
    direction: str | None = None,
) -> TitleLayout | None:
    """The largest layout of ``tokens`` over 1..3 lines, or None if nothing fits at the minimum size."""
    best: TitleLayout | None = None
    for lines in _best_partitions(tokens, fpath):
        place = functools.partial(_place, lines, fpath=fpath, uppercase=uppercase, align=align, subtitle=subtitle,
                                  direction=direction)
        lo, hi = MIN_TITLE_SIZE, MAX_TITLE_SIZE
        if best is not None:
            lo = best.font_size + 1  # only interested in beating it
        if lo > hi or place(lo) is None:
            continue
        while lo < hi:  # largest size that fits; fitting is monotone in size
            mid = (lo + hi + 1) // 2
            if place(mid) is not None:
                lo = mid
            else:
                hi = mid - 1
        best = place(lo)
    return best


def _split_long_tokens(tokens: list[_Token], fpath: str) -> list[_Token]:
    """Break words too wide for a line even at the minimum size into glued pieces."""
    f = _font(fpath, MIN_TITLE_SIZE)
    avail = SAFE_BOX[2] - SAFE_BOX[0] - 2 * max(2, round(MIN_TITLE_SIZE * _STROKE_RATIO)) - 4
    out: list[_Token] = []
    for text, glued in tokens:
        if f.getlength(text) <= avail:
            out.append((text, glued))
            continue
        piece = ""
        for ch in text:
            if piece and f.getlength(piece + ch) > avail:
                out.append((piece, glued))
                glued = True
                piece = ""
            piece += ch
        out.append((piece, glued))
    return out


_STOPWORDS = frozenset(
    "about above after again against also among and are because been before being below between both "
    "but can could did does doing down during each even every few for from further had has have having "
    "her here hers him his how into its itself just like more most much must never not now off once only "
    "other our ours out over own same she should some such than that the their theirs them then there "
    "these they this those through too under until upon very was were what when where which while who "
    "whom why will with within without would you your yours".split()
)


def _pick_highlight(words: Sequence[str]) -> str | None:
    """The word to draw in the highlight colour: the longest non-stop-word (>= 4 letters), last on ties."""
    best, best_len = None, 3
    for w in words:
        n = sum(ch.isalnum() for ch in w)
        if w.lower().strip(".,;:!?\"'()") in _STOPWORDS:
            continue
        if n >= best_len:
            best, best_len = w, n
    return best


def layout_title(
    title: str,
    subtitle: str | None = None,
    *,
    style: str | None = None,
    font: Path | None = None,
) -> TitleLayout:
    """Fit ``title`` (and ``subtitle``) as large as possible into the safe area.

    Largest font size by binary search, wrapped to at most three lines (the wrap with the
    narrowest widest line), every box inside :data:`SAFE_BOX` and clear of :data:`BADGE_BOX`.
    Titles are upper-cased unless the style says otherwise (``nocaps``) or, with no case word
    in the style, a long title would come out small in capitals: then it keeps its case
    (mixed case is ~20% narrower, so larger). Titles too long even at the minimum size are
    cut with an ellipsis.
    """
    fpath = _title_font_path(font)
    # Text as written (core.media.text): backslashes kept, bidi controls and emoji removed.
    title, subtitle = (as_written(t, font=Path(fpath)).text if isinstance(t, str) else t for t in (title, subtitle))
    if title == "":  # it was all emoji: a title of boxes helps nobody
        raise InputError(f"the thumbnail title has nothing to draw once emoji are removed ({EMOJI_NOTE}); "
                         "give it words")
    text, sub = accept_text(title, subtitle)
    # Every script: the title font if it has every character, else the bundled face that has.
    fpath = str(face_for(text, Path(fpath)))
    text = _drop_missing_glyphs(text, fpath)
    if sub:
        sub = _drop_missing_glyphs(sub, _subtitle_face(sub))
    words = set(_style_words(style))
    align = title_align(style, text)
    if words & _UPPER_WORDS:
        lay = _layout_text(_upper(text), fpath, uppercase=True, align=align, subtitle=sub)
    elif words & _KEEPCASE_WORDS:
        lay = _layout_text(text, fpath, uppercase=False, align=align, subtitle=sub)
    else:
        lay = _layout_text(_upper(text), fpath, uppercase=True, align=align, subtitle=sub)
        if lay.font_size < _CAPS_AUTO_MIN and _upper(text) != text:
            mixed = _layout_text(text, fpath, uppercase=False, align=align, subtitle=sub)
            if mixed.font_size >= lay.font_size * 1.08:
                lay = mixed

    highlight = None
    drawn = " ".join(lay.lines).split(" ")
    if not words & _PLAIN_WORDS and "yellow" not in words and len(drawn) > 1:
        highlight = _pick_highlight(drawn)
    return replace(lay, highlight=highlight)


def _layout_text(text: str, fpath: str, *, uppercase: bool, align: str, subtitle: str | None) -> TitleLayout:
    # A line of a right-to-left title keeps that direction even when it starts with a Latin word
    # ("Python في" reads Python first, at the right), which FriBiDi would not guess from the line alone.
    direction = "rtl" if right_to_left(text) else None
    if len(text) > _MAX_TITLE_CHARS:
        text = text[:_MAX_TITLE_CHARS].rsplit(" ", 1)[0] + _ELLIPSIS
    # Words, and inside unspaced Japanese, Chinese and Thai their phrases (glued: no space between).
    tokens: list[_Token] = [(p, i > 0) for w in text.split(" ") for i, p in enumerate(_phrases(w, None))]
    fit = functools.partial(_fit, fpath=fpath, uppercase=uppercase, align=align, subtitle=subtitle, direction=direction)
    lay = fit(tokens)
    if lay is None:
        tokens = _split_long_tokens(tokens, fpath)
        lay = fit(tokens)
    shortened = False
    if lay is None:
        # Too long even at the minimum size: keep the longest prefix of tokens that fits,
        # ending in an ellipsis (binary search; fitting is monotone in the prefix length).
        shortened = True

        def cut(k: int) -> list[_Token]:
            head = list(tokens[:k])
            last, glued = head[-1]
            stripped = last.rstrip(".,;:!?-") or last
            head[-1] = (stripped + _ELLIPSIS, glued)
            return head

        lo, hi = 1, len(tokens) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fit(cut(mid)) is not None:
                lo = mid
            else:
                hi = mid - 1
        tokens = cut(lo)
        lay = fit(tokens)
        while lay is None and len(tokens[0][0]) > 2:  # a single piece plus ellipsis too wide
            tokens = [(tokens[0][0][:-2] + _ELLIPSIS, False)]
            lay = fit(tokens)
    if lay is None:  # cannot happen with a sane font; keep the contract anyway
        raise InputError(f"thumbnail title cannot be laid out: {text[:40]!r}")
    if shortened:
        log.info("thumbnail title shortened to fit: %r", _join(tokens))
    return lay
