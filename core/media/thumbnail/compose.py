"""The title drawn over a background, and the contract JPEG.

:func:`render_thumbnail` is the one place a thumbnail's title is drawn, whichever provider
made the picture: a darkening scrim behind the text, the title white/yellow with a thick
dark stroke and a soft drop shadow, an optional subtitle in a pill below it, encoded as a
1280x720 sRGB JPEG (no alpha) under 2 MB.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from core.media.formats import THUMBNAIL_MAX_BYTES
from core.errors import MediaError, StorageError
from core.media.fonts import RIGHT_TO_LEFT_SCRIPTS, font_path, script_of
from core.media.thumbnail.background import _ramp, _scale, _tint, _vignette, load_background, render_background
from core.media.thumbnail.layout import HEIGHT, WIDTH, TitleLayout, _font, accept_text, layout_title
from core.media.thumbnail.style import _STROKE_RGB, _WHITE, RGB, Palette, _style_words, choose_palette

__all__ = ["MAX_BYTES", "compose_thumbnail", "encode_jpeg", "render_thumbnail"]

log = logging.getLogger(__name__)

#: YouTube's limit is 2 MB; stay clearly under it.
MAX_BYTES = THUMBNAIL_MAX_BYTES


def _scrim(img: Image.Image, lay: TitleLayout, color: RGB, strength: float, *, per_line: bool = False) -> Image.Image:
    """Darken behind the text (one soft box, or one per line), plus the text side of the frame."""
    pad = round(lay.font_size * 0.45)
    box = Image.new("L", (WIDTH, HEIGHT), 0)
    d = ImageDraw.Draw(box)
    for x0, y0, x1, y1 in lay.boxes if per_line else (lay.block_box,):
        d.rounded_rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), radius=pad, fill=255)
    box = box.filter(ImageFilter.GaussianBlur(max(30, lay.font_size * 0.6)))
    if lay.align in ("left", "right"):
        side = _ramp([1.0, 0.85, 0.5, 0.2, 0.0, 0.0])
        box = ImageChops.lighter(box, _scale(side if lay.align == "left" else ImageOps.mirror(side), 0.8))
    return _tint(img, color, _scale(box, strength))


def _luma(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _draw_text(img: Image.Image, lay: TitleLayout, pal: Palette, *, all_highlight: bool) -> Image.Image:
    f = _font(lay.font_path, lay.font_size)
    sw = lay.stroke_width
    # Words with their x offsets; both passes use the same positions.
    words: list[tuple[int, int, str, RGB]] = []
    accents: list[tuple[int, int, str, tuple[int, int]]] = []  # a right-to-left line's highlighted word: x span
    for (ox, oy), line in zip(lay.origins, lay.lines):
        # A right-to-left line is drawn whole: its words run leftwards, which only the layout
        # engine (FriBiDi) orders; drawn word by word they would read backwards.
        rtl = lay.direction == "rtl" or any(script_of(c) in RIGHT_TO_LEFT_SCRIPTS for c in line)
        parts = [line] if rtl else line.split(" ")
        for i, w in enumerate(parts):
            prefix = " ".join(parts[:i]) + (" " if i else "")
            x = ox + round(f.getlength(prefix)) if i else ox
            fill = pal.highlight if (all_highlight or w == lay.highlight) else _WHITE
            words.append((x, oy, w, fill))
        span = _rtl_word_span(f, line, lay.highlight, lay.direction) if rtl and not all_highlight else None
        if span and len(parts) == 1 and parts[0] != lay.highlight:
            accents.append((ox, oy, line, span))

    # Soft drop shadow: the stroked text, blurred and offset, plus a wide halo.
    shadow = Image.new("L", (WIDTH, HEIGHT), 0)
    sd = ImageDraw.Draw(shadow)
    off = max(3, round(lay.font_size * 0.05))
    for x, y, w, _ in words:
        sd.text((x + off, y + off), w, font=f, fill=255, anchor="ls", stroke_width=sw, stroke_fill=255,
                direction=lay.direction)
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
        d.text((x, y), w, font=f, fill=_STROKE_RGB, anchor="ls", stroke_width=sw, stroke_fill=_STROKE_RGB,
               direction=lay.direction)
    for x, y, w, fill in words:
        d.text((x, y), w, font=f, fill=fill, anchor="ls", direction=lay.direction)
    for x, y, line, (a, b) in accents:  # the line's fill again in the highlight colour, only over its word
        mask = Image.new("L", (WIDTH, HEIGHT), 0)
        ImageDraw.Draw(mask).text((x, y), line, font=f, fill=255, anchor="ls", direction=lay.direction)
        keep = Image.new("L", (WIDTH, HEIGHT), 0)
        ImageDraw.Draw(keep).rectangle((x + a, 0, x + b, HEIGHT), fill=255)
        img.paste(pal.highlight, (0, 0), ImageChops.multiply(mask, keep))
    return img


def _rtl_word_span(f, line: str, word: str | None, direction: str | None) -> tuple[int, int] | None:  # noqa: ANN001
    """Where ``word`` lies in a right-to-left ``line`` drawn from x = 0, or None when that cannot be told
    from widths alone. Words of Arabic or Hebrew run leftwards from the right end in the order they are
    written (they do not join across a space), so a word's right edge is the line's width less the width
    of the words before it; a Latin run inside the line is laid out left to right and breaks that rule."""
    parts = line.split(" ")
    if not word or word not in parts or any(c.isalpha() and script_of(c) not in RIGHT_TO_LEFT_SCRIPTS for c in line):
        return None
    i = parts.index(word)
    right = f.getlength(line, direction=direction) - (f.getlength(" ".join(parts[:i]) + " ", direction=direction)
                                                       if i else 0.0)
    return round(right - f.getlength(word, direction=direction)) - 2, round(right) + 2


def compose_thumbnail(
    *,
    title: str,
    subtitle: str | None = None,
    style: str | None = None,
    background: Path | None = None,
    font: Path | None = None,
    designed: bool = False,
    palette_key: str | None = None,
) -> Image.Image:
    """The finished 1280x720 RGB thumbnail as a Pillow image (see :func:`render_thumbnail`).

    ``designed``: ``background`` is a designed card (calm, its own contrast: a lighter
    scrim); ``palette_key``: the text that chose that card's palette (default: the title).
    """
    lay = layout_title(title, subtitle, style=style, font=font)
    pal = choose_palette(palette_key if palette_key is not None else accept_text(title)[0], style)
    if background is not None and designed:
        img = load_background(Path(background))
        if lay.align == "right":  # a card designed with room for the title on the left: mirrored
            img = ImageOps.mirror(img)
        img = _scrim(img, lay, pal.dark, 0.3, per_line=True)
    elif background is not None:
        img = load_background(Path(background))
        img = _tint(img, (0, 0, 0), Image.new("L", (WIDTH, HEIGHT), 26))  # ~10% darker overall
        img = _scrim(img, lay, pal.dark, 0.5, per_line=True)
        img = _vignette(img, 0.3)
    else:
        img = render_background(palette_key if palette_key is not None else title, style, align=lay.align)
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
    designed: bool = False,
    palette_key: str | None = None,
) -> None:
    """Write a YouTube thumbnail (1280x720 JPEG, sRGB, < 2 MB) to exactly ``out_path``: the title
    (and subtitle) drawn over ``background``.

    ``background``: an image file (any size/aspect, e.g. AI-generated) used cover-fitted under
    a darkening scrim (a lighter one when ``designed``); None: a designed background made here
    from ``palette_key`` (default: the title) + style. ``font``: the title font file (default:
    bundled Inter Display Black).
    Raises InputError (empty title, unusable font), MediaError (unreadable background),
    StorageError (cannot write ``out_path``).
    """
    img = compose_thumbnail(title=title, subtitle=subtitle, style=style, background=background, font=font,
                            designed=designed, palette_key=palette_key)
    data = encode_jpeg(img)
    try:
        Path(out_path).write_bytes(data)
    except OSError as exc:
        raise StorageError(f"cannot write thumbnail {out_path}: {exc}") from exc
    log.debug("thumbnail written: %s (%d bytes)", out_path, len(data))

