"""YouTube thumbnails with Pillow: the ``local:pillow`` provider and the AI-image finisher.

:func:`render_thumbnail` writes a 1280x720 sRGB JPEG (no alpha, under 2 MB) with the title
auto-fitted as large as possible inside the safe area, wrapped to at most three lines,
white/yellow with a thick dark stroke and a soft drop shadow, and an optional subtitle in a
pill below it. The background is either

* generated: a diagonal gradient from a deterministic palette (hash of title + style), a
  soft glow, a geometric motif (sunburst, stripes, slab or rings), halftone dots, a
  vignette and a little grain so the JPEG does not band; or
* a caller's image (e.g. an AI picture of any size/aspect), cover-fitted to 16:9, converted
  to sRGB and darkened behind the text for contrast.

The title's font is bundled Inter Display Black unless the caller passes ``font`` (a font
file): the image providers draw the title over their picture with this module, passing
the request's ``ImageSpec.font``.

Layout is exposed separately (:func:`layout_title` -> :class:`TitleLayout`) so tests and
callers can check sizes: every text box stays inside :data:`SAFE_BOX` and out of
:data:`BADGE_BOX`, the corner where YouTube draws the duration badge.

``style`` is free text. Words steer the design: palette words (``dark``, ``bright``,
``red``, ``blue``, ``green``, ``purple``, ``pink``, ``orange``, ``gold``, ``teal``,
``warm``, ``cool``, ``tech``, ``mono`` ...), ``caps``/``upper`` or ``nocaps``/``lower``
(titles are upper-cased by default), ``center``/``left``, ``plain`` (no highlighted
word), ``yellow`` (whole title in the highlight colour). Anything else only seeds the hash.

Nothing here writes to stdout (stdout is the MCP protocol on stdio).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps, ImageStat

from core.errors import InputError, MediaError, StorageError
from core.media.fonts import font_path, truetype

__all__ = [
    "WIDTH",
    "HEIGHT",
    "SAFE_BOX",
    "BADGE_BOX",
    "MAX_BYTES",
    "MAX_LINES",
    "Palette",
    "PALETTES",
    "TitleLayout",
    "choose_palette",
    "layout_title",
    "render_background",
    "load_background",
    "compose_thumbnail",
    "encode_jpeg",
    "render_thumbnail",
]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive
RGB = tuple[int, int, int]

WIDTH, HEIGHT = 1280, 720
_MARGIN_X, _MARGIN_Y = round(WIDTH * 0.05), round(HEIGHT * 0.05)
#: Where text may go: 5% margins all round.
SAFE_BOX: Box = (_MARGIN_X, _MARGIN_Y, WIDTH - _MARGIN_X, HEIGHT - _MARGIN_Y)
#: YouTube's duration badge (~170x60 at the bottom right) plus a little air: keep text out.
BADGE_BOX: Box = (WIDTH - 190, HEIGHT - 80, WIDTH, HEIGHT)
#: YouTube's limit is 2 MB; stay clearly under it.
MAX_BYTES = 2_000_000
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

_STROKE_RGB: RGB = (10, 10, 14)
_WHITE: RGB = (255, 255, 255)


# --------------------------------------------------------------------------- palettes


@dataclass(frozen=True)
class Palette:
    name: str
    tags: frozenset[str]
    dark: RGB  # deep end of the gradient, also the tint of the text scrim
    mid: RGB  # vivid end of the gradient
    glow: RGB  # soft light
    accent: RGB  # shapes and the subtitle pill
    highlight: RGB  # the emphasised title word


def _hex(s: str) -> RGB:
    s = s.lstrip("#")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))


def _pal(name: str, tags: str, dark: str, mid: str, glow: str, accent: str, highlight: str = "#ffd60a") -> Palette:
    return Palette(name, frozenset(tags.split()), _hex(dark), _hex(mid), _hex(glow), _hex(accent), _hex(highlight))


PALETTES: tuple[Palette, ...] = (
    _pal("ocean", "blue cool tech", "#050d24", "#1d4ed8", "#38bdf8", "#22d3ee"),
    _pal("cyber", "tech purple dark cool", "#07031a", "#6d28d9", "#22d3ee", "#22d3ee", "#ffe14d"),
    _pal("crimson", "red warm dark", "#1a0306", "#c1121f", "#ff6b35", "#ffba08"),
    _pal("sunset", "warm orange bright pink", "#2b0a3d", "#e4572e", "#ffb627", "#ff3c8e", "#ffd23f"),
    _pal("emerald", "green cool", "#021a12", "#059669", "#a3e635", "#a3e635", "#fde047"),
    _pal("magenta", "pink purple bright warm", "#1f0322", "#be185d", "#f472b6", "#fb7185", "#fde047"),
    _pal("teal", "teal blue cool tech green", "#031b24", "#0e7490", "#2dd4bf", "#5eead4", "#ffd166"),
    _pal("gold", "gold warm dark yellow orange", "#0c0a09", "#92400e", "#f59e0b", "#fbbf24", "#ffd60a"),
    _pal("noir", "mono dark red", "#050505", "#2a2a30", "#ef4444", "#ef4444", "#ffd60a"),
    _pal("royal", "purple blue dark", "#0f0c29", "#4338ca", "#a78bfa", "#f472b6", "#ffd60a"),
    _pal("sky", "bright blue cool", "#0c4a6e", "#0ea5e9", "#fef08a", "#facc15", "#ffe14d"),
    _pal("lava", "orange red warm bright", "#260b00", "#ea580c", "#fde047", "#facc15", "#ffd60a"),
)

_SYNONYMS: dict[str, str] = {
    "dark": "dark", "night": "dark", "moody": "dark", "black": "mono", "noir": "mono", "mono": "mono",
    "minimal": "mono", "monochrome": "mono", "grey": "mono", "gray": "mono",
    "bright": "bright", "light": "bright", "vivid": "bright", "fun": "bright", "colorful": "bright",
    "colourful": "bright", "kids": "bright", "pop": "bright",
    "red": "red", "crimson": "red", "fire": "red", "blue": "blue", "ocean": "blue", "sea": "blue",
    "tech": "tech", "technology": "tech", "science": "tech", "code": "tech", "coding": "tech",
    "ai": "tech", "cyber": "tech", "futuristic": "tech", "space": "tech", "digital": "tech",
    "warm": "warm", "cozy": "warm", "cool": "cool", "cold": "cool", "calm": "cool",
    "green": "green", "nature": "green", "eco": "green", "forest": "green",
    "purple": "purple", "violet": "purple", "pink": "pink", "orange": "orange",
    "gold": "gold", "luxury": "gold", "money": "gold", "finance": "gold", "yellow": "yellow",
    "teal": "teal", "cyan": "teal",
}

_UPPER_WORDS = {"caps", "upper", "uppercase", "allcaps"}
_KEEPCASE_WORDS = {"nocaps", "lower", "lowercase", "sentence", "keepcase", "asis", "mixed"}
_CENTER_WORDS = {"center", "centre", "centered", "centred", "middle"}
_PLAIN_WORDS = {"plain", "nohighlight"}


def _style_words(style: str | None) -> list[str]:
    return re.findall(r"[a-z0-9]+", (style or "").lower())


def _seed(title: str, style: str | None) -> bytes:
    return hashlib.sha256(f"{(style or '').strip().lower()}\x00{title}".encode()).digest()


def choose_palette(title: str, style: str | None = None) -> Palette:
    """The palette for this title + style: style words narrow the choice, the hash picks."""
    tags = {_SYNONYMS[w] for w in _style_words(style) if w in _SYNONYMS}
    candidates: Sequence[Palette] = PALETTES
    if tags:
        scored = [(len(tags & p.tags), p) for p in PALETTES]
        best = max(s for s, _ in scored)
        if best:
            candidates = [p for s, p in scored if s == best]
    return candidates[_seed(title, style)[0] % len(candidates)]


# --------------------------------------------------------------------------- text input


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


# --------------------------------------------------------------------------- layout


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
    align: str  # "left" | "center"
    highlight: str | None  # the emphasised word, as drawn
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
    fpath = str(font_path("text"))
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
        l, t, r, b = f.getbbox(line, stroke_width=sw, anchor="ls")
        if r - l > avail_w:
            return None
        ox = sx0 - l if align == "left" else cx - (l + r) // 2
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
        sf = _font(str(font_path("text")), s_size)
        s_cap = -sf.getbbox("H", anchor="ls")[1]
        pill_w = round(sf.getlength(s_text)) + 2 * pad_x
        pill_h = s_cap + 2 * pad_y
        pill_top = title_bottom + max(14, round(size * 0.22))
        px0 = sx0 if align == "left" else cx - pill_w // 2
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
                "subtitle_font_path": str(font_path("text")),
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
    tokens: Sequence[_Token], fpath: str, *, uppercase: bool, align: str, subtitle: str | None
) -> TitleLayout | None:
    """The largest layout of ``tokens`` over 1..3 lines, or None if nothing fits at the minimum size."""
    best: TitleLayout | None = None
    for lines in _best_partitions(tokens, fpath):
        place = functools.partial(_place, lines, fpath=fpath, uppercase=uppercase, align=align, subtitle=subtitle)
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
    text = _drop_missing_glyphs(_check_title(title), fpath)
    sub = _check_subtitle(subtitle)
    if sub:
        sub = _drop_missing_glyphs(sub, str(font_path("text")))
    words = set(_style_words(style))
    align = "center" if words & _CENTER_WORDS and "left" not in words else "left"
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
    if len(text) > _MAX_TITLE_CHARS:
        text = text[:_MAX_TITLE_CHARS].rsplit(" ", 1)[0] + _ELLIPSIS
    tokens: list[_Token] = [(w, False) for w in text.split(" ")]
    fit = functools.partial(_fit, fpath=fpath, uppercase=uppercase, align=align, subtitle=subtitle)
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


# --------------------------------------------------------------------------- backgrounds


def _solid(color: RGB, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    return Image.new("RGB", size, color)


def _scale(mask: Image.Image, factor: float) -> Image.Image:
    return mask.point(lambda v: round(v * factor))


def _curve(mask: Image.Image, gamma: float) -> Image.Image:
    return mask.point(lambda v: round(255 * (v / 255) ** gamma))


def _tint(base: Image.Image, color: RGB, mask: Image.Image) -> Image.Image:
    return Image.composite(_solid(color, base.size), base, mask)


def _ramp(values: Sequence[float], horizontal: bool = True) -> Image.Image:
    """A WIDTHxHEIGHT L mask from a 1-D profile (0..1) across x (or down y)."""
    data = [max(0, min(255, round(v * 255))) for v in values]
    if horizontal:
        strip = Image.new("L", (len(data), 1))
        strip.putdata(data)
    else:
        strip = Image.new("L", (1, len(data)))
        strip.putdata(data)
    return strip.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)


def _linear_mask(angle_deg: float) -> Image.Image:
    """0 -> 255 across the canvas along ``angle_deg`` (0 = left to right, counter-clockwise)."""
    # Smooth, so built at quarter resolution and scaled up (rotating full size is slow).
    w, h = WIDTH // 4, HEIGHT // 4
    side = math.ceil(math.hypot(w, h)) + 4
    g = Image.linear_gradient("L").rotate(90).resize((side, side), Image.Resampling.BILINEAR)
    g = g.rotate(angle_deg, resample=Image.Resampling.BICUBIC)
    left, top = (side - w) // 2, (side - h) // 2
    return g.crop((left, top, left + w, top + h)).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)


@functools.cache
def _disc() -> Image.Image:
    """256x256 L: 255 in the centre fading to 0 at the inscribed circle."""
    inv = ImageChops.invert(Image.radial_gradient("L"))
    edge = 255 - 181  # radial_gradient reaches 181 at the inscribed circle
    return inv.point(lambda v: max(0, round((v - edge) * 255 / (255 - edge))))


def _radial_mask(center: tuple[float, float], radius: tuple[float, float], gamma: float = 1.0) -> Image.Image:
    rx, ry = max(2, round(radius[0])), max(2, round(radius[1]))
    blob = _disc().resize((2 * rx, 2 * ry), Image.Resampling.BILINEAR)
    if gamma != 1.0:
        blob = _curve(blob, gamma)
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    mask.paste(blob, (round(center[0]) - rx, round(center[1]) - ry))
    return mask


def _rotated_layer(draw_fn, angle: float) -> Image.Image:  # type: ignore[no-untyped-def]
    """Draw on an oversized square L canvas with ``draw_fn(draw, side)``, rotate, crop to the frame."""
    side = math.ceil(math.hypot(WIDTH, HEIGHT)) + 4
    layer = Image.new("L", (side, side), 0)
    draw_fn(ImageDraw.Draw(layer), side)
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC)
    left, top = (side - WIDTH) // 2, (side - HEIGHT) // 2
    return layer.crop((left, top, left + WIDTH, top + HEIGHT))


def _vignette(img: Image.Image, strength: float) -> Image.Image:
    m = _radial_mask((WIDTH / 2, HEIGHT / 2), (WIDTH * 0.78, HEIGHT * 0.85), gamma=1.0)
    m = _scale(_curve(ImageChops.invert(m), 1.8), strength)
    return _tint(img, (0, 0, 0), m)


_GRAIN_TILE = 256


@functools.cache
def _grain_tile() -> Image.Image:
    """A fixed 256x256 tile of fine noise centred on 128 (deterministic: xorshift, fixed seed)."""
    vals = []
    x = 0x9E3779B9
    for _ in range(_GRAIN_TILE * _GRAIN_TILE):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        vals.append(x & 0xFF)
    tile = Image.new("L", (_GRAIN_TILE, _GRAIN_TILE))
    tile.putdata(vals)
    return tile.filter(ImageFilter.GaussianBlur(0.6))


def _grain(img: Image.Image, sigma: float, seed: bytes) -> Image.Image:
    """Add fine monochrome grain (+-``sigma`` levels) so gradients do not band in the JPEG."""
    tile = _grain_tile()
    ox, oy = seed[13] % _GRAIN_TILE, seed[14] % _GRAIN_TILE
    noise = Image.new("L", (WIDTH + _GRAIN_TILE, HEIGHT + _GRAIN_TILE))
    for ty in range(0, noise.height, _GRAIN_TILE):
        for tx in range(0, noise.width, _GRAIN_TILE):
            noise.paste(tile, (tx, ty))
    noise = noise.crop((ox, oy, ox + WIDTH, oy + HEIGHT))
    mean = sum(i * c for i, c in enumerate(tile.histogram())) / (_GRAIN_TILE * _GRAIN_TILE)
    spread = ImageStat.Stat(tile).stddev[0] or 1.0
    noise = noise.point(lambda v: max(0, min(255, round(128 + (v - mean) * sigma / spread))))
    return ImageChops.add(img, Image.merge("RGB", (noise,) * 3), scale=1.0, offset=-128)


def render_background(title: str, style: str | None = None, *, align: str = "left") -> Image.Image:
    """A designed 1280x720 RGB background, deterministic in (title, style)."""
    text = _check_title(title)
    seed = _seed(text, style)
    pal = choose_palette(text, style)

    def unit(i: int) -> float:  # deterministic floats in [0, 1)
        return seed[i] / 256

    # 1. Diagonal gradient, deep colour on the text side.
    angle = -25 + 50 * unit(1)
    grad = _curve(_linear_mask(angle), 1.35 + 0.5 * unit(2))
    img = Image.composite(_solid(pal.mid), _solid(pal.dark), grad)

    # 2. Soft glow, on the side away from the text.
    if align == "left":
        gc = (WIDTH * (0.70 + 0.18 * unit(3)), HEIGHT * (0.22 + 0.45 * unit(4)))
    else:
        gc = (WIDTH * (0.5 + 0.3 * (unit(3) - 0.5)), HEIGHT * (0.15 + 0.2 * unit(4)))
    gr = WIDTH * (0.38 + 0.12 * unit(5))
    img = _tint(img, pal.glow, _scale(_radial_mask(gc, (gr, gr), gamma=1.6), 0.85))
    img = _tint(img, _WHITE, _scale(_radial_mask(gc, (gr * 0.35, gr * 0.35), gamma=2.0), 0.40))

    # 3. Geometric motif.
    motif = ("sunburst", "stripes", "slab", "rings")[seed[6] % 4]
    right_fade = _curve(_ramp([0, 0.1, 0.45, 1.0]), 1.2) if align == "left" else _ramp([1.0])
    if motif == "sunburst":
        rays = 18 + 2 * (seed[7] % 5)
        rot = 360 * unit(8)
        layer = Image.new("L", (WIDTH, HEIGHT), 0)
        d = ImageDraw.Draw(layer)
        far = 2 * WIDTH
        for k in range(rays):
            a0 = math.radians(rot + k * 360 / rays)
            a1 = math.radians(rot + (k + 0.5) * 360 / rays)
            d.polygon(
                [gc, (gc[0] + far * math.cos(a0), gc[1] + far * math.sin(a0)),
                 (gc[0] + far * math.cos(a1), gc[1] + far * math.sin(a1))],
                fill=255,
            )
        fade = _radial_mask(gc, (WIDTH * 0.9, WIDTH * 0.9), gamma=0.8)
        layer = ImageChops.multiply(ImageChops.multiply(layer, fade), right_fade)
        img = _tint(img, pal.glow, _scale(layer, 0.22))
    elif motif == "stripes":
        period = 46 + seed[7] % 30
        width = period * (0.30 + 0.2 * unit(8))

        def stripes(d: ImageDraw.ImageDraw, side: int) -> None:
            for x in range(0, side, period):
                d.rectangle((x, 0, x + width, side), fill=255)

        layer = _rotated_layer(stripes, 28 + 12 * unit(9))
        layer = ImageChops.multiply(layer, right_fade)
        img = _tint(img, pal.accent, _scale(layer, 0.3))
    elif motif == "slab":
        slant = 0.30 + 0.2 * unit(8)
        x0 = WIDTH * (0.76 + 0.08 * unit(9)) if align == "left" else WIDTH * 0.86
        band = WIDTH * 0.09
        layer = Image.new("L", (WIDTH, HEIGHT), 0)
        d = ImageDraw.Draw(layer)
        dx = HEIGHT * slant
        d.polygon([(x0, 0), (x0 + band, 0), (x0 + band - dx, HEIGHT), (x0 - dx, HEIGHT)], fill=255)
        x2 = x0 + band * 1.45
        d.polygon([(x2, 0), (x2 + band * 0.25, 0), (x2 + band * 0.25 - dx, HEIGHT), (x2 - dx, HEIGHT)], fill=150)
        x3 = x0 - band * 0.75
        d.polygon([(x3, 0), (x3 + band * 0.12, 0), (x3 + band * 0.12 - dx, HEIGHT), (x3 - dx, HEIGHT)], fill=110)
        layer = layer.filter(ImageFilter.GaussianBlur(1.2))
        img = _tint(img, pal.accent, _scale(layer, 0.85))
    else:  # rings
        layer = Image.new("L", (WIDTH, HEIGHT), 0)
        d = ImageDraw.Draw(layer)
        step = 54 + seed[7] % 28
        for k in range(1, 14):
            r = k * step
            d.ellipse((gc[0] - r, gc[1] - r, gc[0] + r, gc[1] + r), outline=max(60, 255 - 16 * k), width=5)
        layer = ImageChops.multiply(layer, right_fade)
        img = _tint(img, pal.accent, _scale(layer, 0.5))

    # 4. Halftone dots in one corner, sometimes.
    if seed[10] % 3 != 0:
        corner = (WIDTH if seed[11] % 2 else WIDTH * 0.55, 0 if seed[12] % 2 else HEIGHT)
        layer = Image.new("L", (WIDTH, HEIGHT), 0)
        d = ImageDraw.Draw(layer)
        pitch = 26
        reach = WIDTH * 0.42
        for yy in range(pitch // 2, HEIGHT, pitch):
            for xx in range(pitch // 2, WIDTH, pitch):
                dist = math.hypot(xx - corner[0], yy - corner[1])
                r = 6.5 * (1 - dist / reach)
                if r > 0.8:
                    d.ellipse((xx - r, yy - r, xx + r, yy + r), fill=255)
        img = _tint(img, _WHITE, _scale(layer, 0.16))

    # 5. Vignette and grain.
    img = _vignette(img, 0.55)
    return _grain(img, 3.0, seed)


def load_background(path: Path) -> Image.Image:
    """Open any image Pillow reads, upright, in sRGB RGB, cover-fitted to 1280x720."""
    path = Path(path)
    try:
        with Image.open(path) as src:
            src.draft("RGB", (WIDTH, HEIGHT))  # JPEG: decode at a reduced scale, much faster
            src.load()
            im = ImageOps.exif_transpose(src) or src
            im = _to_srgb(im)
            fitted = ImageOps.fit(im, (WIDTH, HEIGHT), Image.Resampling.LANCZOS, centering=(0.5, 0.45))
    except FileNotFoundError as exc:
        raise MediaError(f"background image not found: {path}") from exc
    except IsADirectoryError as exc:
        raise MediaError(f"background image is a directory, not an image: {path}") from exc
    except Image.UnidentifiedImageError as exc:
        raise MediaError(f"background image is not a readable image (unknown or corrupt format): {path}") from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(f"background image is too large to decode safely: {path}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(f"cannot read background image {path}: {exc}") from exc
    return fitted


def _to_srgb(im: Image.Image) -> Image.Image:
    """RGB in sRGB; alpha flattened onto black; 16-bit and float modes scaled down."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        hi = im.getextrema()[1] if im.mode == "I" else 65535
        factor = 1 / 257 if hi > 255 else 1
        im = im.convert("I").point(lambda v: v * factor).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "RGBA", "CMYK", "L", "LA"):
        try:
            from PIL import ImageCms

            src_prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            alpha = im.getchannel("A") if im.mode in ("RGBA", "LA") else None
            base = im.convert("RGB" if im.mode == "RGBA" else "L") if alpha is not None else im
            out = ImageCms.profileToProfile(base, src_prof, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if out is not None:
                if alpha is not None:
                    out.putalpha(alpha)
                im = out
        except Exception as exc:  # a broken profile is not worth failing over
            log.info("ignoring unusable ICC profile in background image: %s", exc)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        flat = Image.new("RGB", im.size, (0, 0, 0))
        flat.paste(im, mask=im.getchannel("A"))
        return flat
    return im.convert("RGB")


# --------------------------------------------------------------------------- composition


def _scrim(img: Image.Image, lay: TitleLayout, color: RGB, strength: float, *, per_line: bool = False) -> Image.Image:
    """Darken behind the text (one soft box, or one per line), plus the text side of the frame."""
    pad = round(lay.font_size * 0.45)
    box = Image.new("L", (WIDTH, HEIGHT), 0)
    d = ImageDraw.Draw(box)
    for x0, y0, x1, y1 in lay.boxes if per_line else (lay.block_box,):
        d.rounded_rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), radius=pad, fill=255)
    box = box.filter(ImageFilter.GaussianBlur(max(30, lay.font_size * 0.6)))
    if lay.align == "left":
        side = _ramp([1.0, 0.85, 0.5, 0.2, 0.0, 0.0])
        box = ImageChops.lighter(box, _scale(side, 0.8))
    return _tint(img, color, _scale(box, strength))


def _luma(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _draw_text(img: Image.Image, lay: TitleLayout, pal: Palette, *, all_highlight: bool) -> Image.Image:
    f = _font(lay.font_path, lay.font_size)
    sw = lay.stroke_width
    # Words with their x offsets; both passes use the same positions.
    words: list[tuple[int, int, str, RGB]] = []
    for (ox, oy), line in zip(lay.origins, lay.lines):
        parts = line.split(" ")
        for i, w in enumerate(parts):
            prefix = " ".join(parts[:i]) + (" " if i else "")
            x = ox + round(f.getlength(prefix)) if i else ox
            fill = pal.highlight if (all_highlight or w == lay.highlight) else _WHITE
            words.append((x, oy, w, fill))

    # Soft drop shadow: the stroked text, blurred and offset, plus a wide halo.
    shadow = Image.new("L", (WIDTH, HEIGHT), 0)
    sd = ImageDraw.Draw(shadow)
    off = max(3, round(lay.font_size * 0.05))
    for x, y, w, _ in words:
        sd.text((x + off, y + off), w, font=f, fill=255, anchor="ls", stroke_width=sw, stroke_fill=255)
    halo = _scale(shadow.filter(ImageFilter.GaussianBlur(max(8, lay.font_size * 0.22))), 0.55)
    shadow = ImageChops.lighter(_scale(shadow.filter(ImageFilter.GaussianBlur(max(2, lay.font_size * 0.04))), 0.85), halo)

    # Subtitle pill (with its own shadow).
    if lay.subtitle_box and lay.subtitle and lay.subtitle_size and lay.subtitle_origin:
        bx0, by0, bx1, by1 = lay.subtitle_box
        r = (by1 - by0) // 2
        ps = Image.new("L", (WIDTH, HEIGHT), 0)
        ImageDraw.Draw(ps).rounded_rectangle((bx0 + off, by0 + off, bx1 + off, by1 + off), radius=r, fill=200)
        shadow = ImageChops.lighter(shadow, ps.filter(ImageFilter.GaussianBlur(max(4, r * 0.4))))

    img = _tint(img, (0, 0, 0), shadow)
    d = ImageDraw.Draw(img)
    if lay.subtitle_box and lay.subtitle and lay.subtitle_size and lay.subtitle_origin:
        bx0, by0, bx1, by1 = lay.subtitle_box
        r = (by1 - by0) // 2
        pill = pal.accent if _luma(pal.accent) > 110 else pal.highlight
        d.rounded_rectangle((bx0, by0, bx1 - 1, by1 - 1), radius=r, fill=pill, outline=_STROKE_RGB, width=3)
        sf = _font(lay.subtitle_font_path or str(font_path("text")), lay.subtitle_size)
        d.text(lay.subtitle_origin, lay.subtitle, font=sf, fill=_STROKE_RGB, anchor="ls")

    # Strokes first, then fills, so no stroke ever bites into a neighbouring glyph.
    for x, y, w, _ in words:
        d.text((x, y), w, font=f, fill=_STROKE_RGB, anchor="ls", stroke_width=sw, stroke_fill=_STROKE_RGB)
    for x, y, w, fill in words:
        d.text((x, y), w, font=f, fill=fill, anchor="ls")
    return img


def compose_thumbnail(
    *,
    title: str,
    subtitle: str | None = None,
    style: str | None = None,
    background: Path | None = None,
    font: Path | None = None,
) -> Image.Image:
    """The finished 1280x720 RGB thumbnail as a Pillow image (see :func:`render_thumbnail`)."""
    lay = layout_title(title, subtitle, style=style, font=font)
    text = _check_title(title)
    pal = choose_palette(text, style)
    if background is not None:
        img = load_background(Path(background))
        img = _tint(img, (0, 0, 0), Image.new("L", (WIDTH, HEIGHT), 26))  # ~10% darker overall
        img = _scrim(img, lay, pal.dark, 0.5, per_line=True)
        img = _vignette(img, 0.3)
    else:
        img = render_background(text, style, align=lay.align)
        img = _scrim(img, lay, pal.dark, 0.3, per_line=True)
    all_highlight = "yellow" in _style_words(style)
    return _draw_text(img, lay, pal, all_highlight=all_highlight)


def encode_jpeg(img: Image.Image, max_bytes: int = MAX_BYTES) -> bytes:
    """Baseline sRGB JPEG bytes under ``max_bytes``: quality 90, lowered only if needed."""
    img = img.convert("RGB")
    quality, subsampling = 90, 0  # 4:4:4 keeps coloured text edges crisp
    while True:
        buf = io.BytesIO()
        try:
            img.save(buf, format="JPEG", quality=quality, subsampling=subsampling, optimize=True)
        except OSError:
            # Pillow gives libjpeg's optimiser a buffer of width*height bytes; a very busy
            # image can need more ("broken data stream"). Unoptimised encoding streams.
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality, subsampling=subsampling)
        data = buf.getvalue()
        if len(data) < max_bytes:
            return data
        if quality <= 40:
            raise MediaError(f"thumbnail JPEG is still {len(data)} bytes at quality {quality}")
        log.info("thumbnail JPEG %d bytes at quality %d; lowering", len(data), quality)
        quality -= 8
        if quality < 75:
            subsampling = 2


def render_thumbnail(
    out_path: Path,
    *,
    title: str,
    subtitle: str | None = None,
    style: str | None = None,
    background: Path | None = None,
    font: Path | None = None,
) -> None:
    """Write a YouTube thumbnail (1280x720 JPEG, sRGB, < 2 MB) to exactly ``out_path``.

    ``background``: an image file (any size/aspect, e.g. AI-generated) used cover-fitted under
    a darkening scrim; without it a designed background is generated from title + style.
    ``font``: the title font file (default: bundled Inter
    Display Black).
    Raises InputError (empty title, unusable font), MediaError (unreadable background),
    StorageError (cannot write ``out_path``).
    """
    img = compose_thumbnail(title=title, subtitle=subtitle, style=style, background=background, font=font)
    data = encode_jpeg(img)
    try:
        Path(out_path).write_bytes(data)
    except OSError as exc:
        raise StorageError(f"cannot write thumbnail {out_path}: {exc}") from exc
    log.debug("thumbnail written: %s (%d bytes)", out_path, len(data))
