"""The ``local:placeholder`` video: an animated title card of the scene prompt.

Offline, deterministic and cheap, but real media: a four-colour gradient turning slowly
behind a vignette (drawn at 1/8 of the output size and scaled up: BENCHMARKS.md measured
5.4 s for a full-size gradients source), the scene prompt in large bundled-font type with
a soft drop shadow, rising and fading in line by line, and a small "SCENE 03" label over an
accent bar. The palette is chosen from the prompt, the scene index and the style, so
neighbouring scenes never share one.

The output is an intermediate that the assembly pass re-encodes: H.264 High yuv420p
(x264 ultrafast), BT.709 tagged, SAR 1:1, a silent AAC 48 kHz stereo track of the same
length, exactly ``round(duration_s * fps)`` frames, ``+faststart``, always MP4 whatever
``out_path`` is called (callers write to a ``.part`` name and rename).

Text is laid out and drawn here, with Pillow (HarfBuzz shaping, FriBiDi ordering), in the
bundled font, or for a script it lacks the bundled face that has it (core.media.fonts), so
every script reads right whichever ffmpeg build runs, and quotes, colons, percent signs and
backslashes arrive verbatim (no filter-graph escaping). Every text element is drawn once, on a
transparent band (a PNG), and that band is overlaid on each frame: drawing three shadowed lines
with drawtext on every frame of a 5 s 1080p30 card cost ~0.5 CPU-s, overlaying them ~0.15.
"""

from __future__ import annotations

import colorsys
import hashlib
import logging
import math
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg  # ffmpeg-python: the filter graph is data until the argument list is built

from core.errors import InputError
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.fonts import _phrases, face_for, font_path, right_to_left
from core.media.formats import (
    AUDIO_CHANNELS,
    AUDIO_LAYOUT,
    AUDIO_SAMPLE_RATE,
    BT709_FRAME_PARAMS,
    BT709_OUTPUT_OPTIONS,
    INTERMEDIATE_X264,
)
from core.media.text import EMOJI_NOTE, as_written, break_token

__all__ = ["render_title_card", "wrap_text", "choose_palette", "Palette", "MAX_LINES"]

log = logging.getLogger(__name__)

# What build_args asks of ffmpeg (checked when the build is chosen).
requires(
    {
        "gradients": ("s", "r", "d", "n", "c0", "c1", "c2", "c3", "x0", "y0", "x1", "y1", "type", "speed", "seed"),
        "color": ("c", "s", "r", "d"), "anullsrc": ("r", "cl"), "atrim": ("end_sample",),
        "vignette": ("angle",), "scale": ("out_color_matrix", "out_range", "flags"), "format": (), "setsar": (),
        "setparams": ("range", "colorspace", "color_primaries", "color_trc"), "split": (), "crop": (),
        "overlay": ("x", "y", "eval", "format", "eof_action"), "loop": ("loop", "size", "start"),
        "fade": ("t", "st", "d", "alpha"), "trim": ("end_frame",),
    },
    encoders=("libx264", "aac"),
)

MAX_LINES = 6
ELLIPSIS = "\u2026"
AUDIO_RATE = AUDIO_SAMPLE_RATE
BG_SCALE = 8  # the background is drawn at 1/BG_SCALE of the output size


# --- palettes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    name: str
    colors: tuple[str, ...]  # gradient stops, "0xRRGGBB"
    accent: str  # label and bar colour, "0xRRGGBB"
    direction: tuple[tuple[float, float], tuple[float, float]]  # gradient line, canvas fractions
    seed: int


# Deep, saturated stops so white type keeps its contrast; the accent is a light tint.
# Eleven (a prime): scene n+1 steps 7 palettes on, so consecutive scenes always differ.
_PALETTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("dusk", ("#0f172a", "#1e3a8a", "#6d28d9", "#db2777"), "#f9a8d4"),
    ("lagoon", ("#042f2e", "#0f766e", "#0e7490", "#b45309"), "#fcd34d"),
    ("ember", ("#1c1917", "#7c2d12", "#c2410c", "#a16207"), "#fdba74"),
    ("sunset", ("#0c0a3e", "#7b1e7a", "#b33f62", "#e4572e"), "#ffc2b0"),
    ("reef", ("#001219", "#005f73", "#0a9396", "#ca6702"), "#94d2bd"),
    ("amethyst", ("#10002b", "#3c096c", "#7b2cbf", "#5a189a"), "#e0aaff"),
    ("forest", ("#081c15", "#1b4332", "#2d6a4f", "#40916c"), "#b7e4c7"),
    ("ocean", ("#03045e", "#023e8a", "#0077b6", "#0096c7"), "#caf0f8"),
    ("crimson", ("#2b0f0e", "#6a040f", "#9d0208", "#dc2f02"), "#ffd166"),
    ("slate", ("#0d1b2a", "#1b263b", "#415a77", "#778da9"), "#e0e1dd"),
    ("mauve", ("#1a1423", "#3d314a", "#684756", "#96705b"), "#f2d0a9"),
)
# Where the gradient line starts and ends, as fractions of the canvas; it then turns slowly
# about the centre. Radial, circular and spiral types looked like a blot or had a seam.
_DIRECTIONS = (
    ((0.0, 0.0), (1.0, 1.0)),
    ((1.0, 0.0), (0.0, 1.0)),
    ((0.0, 0.5), (1.0, 0.5)),
    ((0.5, 0.0), (0.5, 1.0)),
    ((1.0, 1.0), (0.0, 0.0)),
    ((0.0, 1.0), (1.0, 0.0)),
)
# Relative luminance ceiling for gradient stops: white text keeps a contrast of at least
# 3.5:1 before its shadow is even counted.
_MAX_LUMINANCE = 0.25


def _digest(*parts: object) -> int:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest()[:8], "big")


def _luminance(r: float, g: float, b: float) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _shift(hex_color: str, hue_shift: float, *, cap: float | None) -> str:
    """Rotate the hue of ``#rrggbb`` by ``hue_shift`` turns; darken to luminance ``cap``."""
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, l_, s = colorsys.rgb_to_hls(r, g, b)
    r, g, b = colorsys.hls_to_rgb((h + hue_shift) % 1.0, l_, s)
    if cap is not None:
        for _ in range(40):
            if _luminance(r, g, b) <= cap:
                break
            r, g, b = r * 0.93, g * 0.93, b * 0.93
    return "0x{:02x}{:02x}{:02x}".format(*(max(0, min(255, round(c * 255))) for c in (r, g, b)))


def choose_palette(prompt: str, scene_index: int, style: str | None = None) -> Palette:
    """The card's colours, deterministic in (prompt, scene_index, style).

    With a ``style`` the palette family follows the style (one video, one look, stepping
    per scene); without, it follows the prompt. A small hue shift and the gradient seed
    follow the prompt, so two prompts differ even on the same family.
    """
    family_key = _digest("style", style) if style else _digest("prompt", prompt)
    name, stops, accent = _PALETTES[(family_key + 7 * scene_index) % len(_PALETTES)]
    fine = _digest("fine", prompt, scene_index, style or "")
    hue_shift = ((fine & 0xFFFF) / 0xFFFF - 0.5) * (24 / 360)  # +-12 degrees
    return Palette(
        name=name,
        colors=tuple(_shift(c, hue_shift, cap=_MAX_LUMINANCE) for c in stops),
        accent=_shift(accent, hue_shift, cap=None),
        direction=_DIRECTIONS[(fine >> 16) % len(_DIRECTIONS)],
        seed=(fine >> 24) & 0xFFFFFFFF,
    )


# --- text ------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _font(role: str, size: int, basic: bool = False):  # -> ImageFont.FreeTypeFont
    """The font at ``size`` (a role or a face's file), shaped by HarfBuzz (libraqm)."""
    from PIL import ImageFont  # imported here: only rendering needs Pillow

    engine = ImageFont.Layout.BASIC if basic else ImageFont.Layout.RAQM
    return ImageFont.truetype(str(_face(role)), size, layout_engine=engine)


def _face(role: str) -> Path:
    """A role's bundled font (``display``, ``text``), or a face's file (the one that draws the prompt)."""
    return Path(role) if role.endswith((".otf", ".ttf")) else font_path(role)


def _width(role: str, size: int, text: str) -> float:
    """Advance width of ``text`` in pixels."""
    try:
        return _font(role, size).getlength(text)
    except (RuntimeError, ValueError):  # raqm refuses a few sequences outright
        return _font(role, size, basic=True).getlength(text)


def normalise_text(text: str) -> str:
    """One line of printable text as written (core.media.text: no emoji, no bidi controls):
    whitespace runs become one space, controls go."""
    text = as_written(text).text
    cleaned = "".join(
        " " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
    )
    return " ".join(cleaned.split())


def wrap_text(
    text: str, *, role: str, size: int, max_width: float, max_lines: int | None = None
) -> tuple[list[str], bool]:
    """Greedy word wrap of ``text`` measured in the bundled font; ``(lines, truncated)``.

    With ``max_lines``, wrapping stops once the text cannot fit and the last line ends in
    an ellipsis (words, then characters, are dropped until it fits).
    """
    def fits(s: str) -> bool:
        return _width(role, size, s) <= max_width

    words = normalise_text(text)
    overflow = False
    if max_lines is not None:
        # No spacing glyph of the bundled fonts is narrower than 0.13 em: more characters
        # than this cannot fit, and measuring them all (up to 4000) would only cost time.
        cap = int(max_lines * (max_width / (0.1 * size) + 2))
        if len(words) > cap:
            words, overflow = words[:cap], True

    lines: list[str] = []
    current = ""
    truncated = False
    # Words, and inside unspaced Japanese, Chinese and Thai their phrases (joined without a space).
    phrases = [(p, " " if j == 0 else "") for w in (words.split(" ") if words else []) for j, p in enumerate(_phrases(w, None))]
    for word, glue in phrases:
        pieces = [word] if fits(word) else break_token(word, fits)
        for i, piece in enumerate(pieces):
            if i == 0 and not current:
                current = piece
                continue
            if i == 0 and fits(f"{current}{glue}{piece}"):
                current = f"{current}{glue}{piece}"
                continue
            lines.append(current)  # a new line; a broken word always continues on one
            current = piece
            if max_lines is not None and len(lines) >= max_lines:
                truncated = True
                break
        if truncated:
            break
    if not truncated and current:
        lines.append(current)
    truncated = truncated or overflow
    if truncated and lines:
        last = lines[-1]
        while last and not fits(last + ELLIPSIS):
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        lines[-1] = (last.rstrip(" ,;:.-\u2013\u2014") or last) + ELLIPSIS
    return lines, truncated


@dataclass(frozen=True)
class _Layer:
    """One animated element (the label with its bar, or one title line).

    Its text is drawn once by Pillow onto a transparent band with a blurred drop shadow;
    the band is then looped and overlaid on every frame at (x, y), fading and rising in.
    """

    text: str
    role: str  # bundled font role
    size: int
    color: str
    x: int  # band position in the frame (even, for 4:2:0 chroma)
    y: int
    w: int  # band size (even)
    h: int
    baseline: int  # of the text, inside the band
    shadow_offset: int
    shadow_sigma: float
    bar: tuple[int, int, int, int] | None = None  # x, y, w, h inside the band
    direction: str | None = None  # "rtl" for a line of a right-to-left prompt (None: as its own text says)


@dataclass(frozen=True)
class _Layout:
    lines: list[str]
    truncated: bool
    title_size: int
    label: _Layer
    title: list[_Layer]


def _band(
    text: str, *, role: str, size: int, color: str, baseline: int, width: int, height: int,
    extra_below: int = 0, min_text_w: int = 0, bar: tuple[int, int] | None = None, direction: str | None = None,
) -> _Layer:
    """The band around one centred line of text whose baseline is at ``baseline``."""
    font = _font(role, size)
    ascent, descent = font.getmetrics()
    offset = max(1, round(size / 26))
    sigma = max(0.6, size / 14)
    pad = offset + math.ceil(3 * sigma) + 2
    text_w = max(_width(role, size, text) * 1.04 + 4, min_text_w)  # slack: measured vs drawn
    w = min(_even(text_w + 2 * pad, 2), width)
    top = baseline - ascent - pad
    y = top - (top % 2)
    h = min(_even(baseline + descent + extra_below + pad - y + 1, 2), _even(height, 2))
    x = (width - w) // 2
    x -= x % 2
    local_bar = None
    if bar is not None:
        bar_w, bar_h = bar  # the bar's bottom is the bottom of the extra space below
        local_bar = ((w - bar_w) // 2, baseline + extra_below - bar_h - y, bar_w, bar_h)
    return _Layer(
        text=text, role=role, size=size, color=color, x=x, y=y, w=w, h=h,
        baseline=baseline - y, shadow_offset=offset, shadow_sigma=sigma, bar=local_bar, direction=direction,
    )


def _balance(text: str, lines: list[str], *, size: int, max_width: float, role: str = "display") -> list[str]:
    """The same number of lines, as even as they go: the narrowest measure that still
    takes no more lines (no lone last word under a full line)."""
    widest_word = max(_width(role, size, word) for w in text.split(" ") for word in _phrases(w, None))
    lo, hi = min(max(max_width * 0.4, widest_word), max_width), max_width  # never break a word
    best = lines
    for _ in range(10):
        mid = (lo + hi) / 2
        trial, cut = wrap_text(text, role=role, size=size, max_width=mid, max_lines=len(lines))
        if cut:
            lo = mid
        else:
            hi, best = mid, trial
    return best


def _layout(prompt: str, scene_index: int, width: int, height: int, accent: str = "white") -> _Layout:
    unit = min(width, height) / 1080  # 1.0 at 1080p, landscape or portrait
    max_width = width * (0.80 if width >= height else 0.84)
    biggest, large, smallest = max(8, round(150 * unit)), round(120 * unit), max(8, round(62 * unit))

    # The largest size that says it all in <= 2 lines above ``large``, <= 4 lines below
    # it; else the smallest size in <= 6 lines; else the smallest size, cut to 6 lines
    # with an ellipsis.
    steps = {round(biggest * 0.95**k) for k in range(40) if biggest * 0.95**k >= smallest}
    sizes = sorted(steps | {smallest}, reverse=True)
    lines: list[str] = []
    truncated = False
    size = smallest
    # Width scales with size: one measurement at the largest size skips the sizes whose
    # text could never fit in 4 lines (each size tried costs a font load and a wrap).
    text = normalise_text(prompt)
    # Every script: the display font if it has every character, else the bundled face that has.
    role = str(face_for(text[:1000], font_path("display"))) if text else "display"
    one_line = _width(role, biggest, text[:1000]) / biggest
    for candidate in sizes:
        most = 2 if candidate > large else 4
        if one_line * candidate > (most + 0.4) * max_width:
            continue
        lines, truncated = wrap_text(text, role=role, size=candidate, max_width=max_width, max_lines=most)
        if not truncated:
            size = candidate
            break
    else:
        size = smallest
        lines, truncated = wrap_text(text, role=role, size=size, max_width=max_width, max_lines=MAX_LINES)
    if 1 < len(lines) and not truncated:
        lines = _balance(text, lines, size=size, max_width=max_width, role=role)

    cap = -_font("display", size).getbbox("H")[1] + _font("display", size).getmetrics()[0]  # cap height in px
    line_height = round(size * 1.12)

    label = f"SCENE {scene_index:02d}"
    label_size = max(8, round(36 * unit))
    label_font = _font("text", label_size)
    label_cap = -label_font.getbbox("H")[1] + label_font.getmetrics()[0]
    bar_w, bar_h = max(4, _even(96 * unit, 2)), max(2, _even(7 * unit, 2))
    gap_label_bar = round(26 * unit)
    gap_bar_title = round(44 * unit) + (size - cap) // 3

    # Heights between visual edges: label cap top .. last title baseline, centred.
    block = label_cap + gap_label_bar + bar_h
    if lines:
        block += gap_bar_title + cap + line_height * (len(lines) - 1)
    top = round((height - block) / 2 - height * 0.01)
    label_baseline = top + label_cap
    bar_y = label_baseline + gap_label_bar
    first = bar_y + bar_h + gap_bar_title + cap

    label_layer = _band(
        label, role="text", size=label_size, color=accent, baseline=label_baseline,
        width=width, height=height, extra_below=gap_label_bar + bar_h, min_text_w=bar_w,
        bar=(bar_w, bar_h),
    )
    # Every line of a right-to-left prompt runs right to left, also one that starts with a Latin word.
    direction = "rtl" if right_to_left(text) else None
    title = [
        _band(
            line, role=role, size=size, color="white", baseline=first + i * line_height,
            width=width, height=height, direction=direction,
        )
        for i, line in enumerate(lines)
    ]
    return _Layout(lines=lines, truncated=truncated, title_size=size, label=label_layer, title=title)


# --- rendering -------------------------------------------------------------------------------


def _validate(duration_s: float, width: int, height: int, fps: int, scene_index: int, prompt: str) -> int:
    if not isinstance(prompt, str):
        raise InputError("prompt must be a string")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
            raise InputError(f"{name} must be a positive even integer, got {value!r}")
        if value > 8192:
            raise InputError(f"{name} must be at most 8192, got {value}")
    if isinstance(fps, bool) or not isinstance(fps, int) or not 0 < fps <= 240:
        raise InputError(f"fps must be an integer between 1 and 240, got {fps!r}")
    try:
        duration = float(duration_s)
    except (TypeError, ValueError):
        raise InputError(f"duration_s must be a number, got {duration_s!r}") from None
    if not duration > 0 or duration == float("inf"):
        raise InputError(f"duration_s must be positive, got {duration_s!r}")
    if isinstance(scene_index, bool) or not isinstance(scene_index, int) or scene_index < 0:
        raise InputError(f"scene_index must be a non-negative integer, got {scene_index!r}")
    frames = round(duration * fps)
    if frames < 1:
        raise InputError(f"duration_s={duration_s} is shorter than one frame at {fps} fps")
    return frames


def _even(x: float, minimum: int = 16) -> int:
    return max(minimum, int(round(x / 2)) * 2)


def _band_image(layer: _Layer):  # -> PIL.Image.Image
    """The layer's band as RGBA: a blurred drop shadow, then the text (and bar) over it.

    Drawn by Pillow with HarfBuzz and FriBiDi (raqm): Arabic joined and right to left,
    Devanagari conjuncts, Thai marks, whatever ffmpeg build runs (drawtext shapes only from
    ffmpeg 7 on, and 5.1's would have drawn Devanagari unjoined).
    """
    from PIL import Image, ImageDraw, ImageFilter

    font = _font(layer.role, layer.size)
    color = "#" + layer.color[2:] if layer.color.startswith("0x") else layer.color
    off = layer.shadow_offset
    shadow = Image.new("L", (layer.w, layer.h), 0)
    sd = ImageDraw.Draw(shadow)
    sd.text((layer.w / 2 + off, layer.baseline + off), layer.text, font=font, fill=158, anchor="ms",  # 62 %
            direction=layer.direction)
    if layer.bar is not None:
        bx, by, bw, bh = layer.bar
        sd.rectangle((bx + off, by + off, bx + off + bw - 1, by + off + bh - 1), fill=158)
    shadow = shadow.filter(ImageFilter.GaussianBlur(layer.shadow_sigma))
    band = Image.new("RGBA", (layer.w, layer.h), (0, 0, 0, 0))
    band.putalpha(shadow)
    d = ImageDraw.Draw(band)
    d.text((layer.w / 2, layer.baseline), layer.text, font=font, fill=color, anchor="ms", direction=layer.direction)
    if layer.bar is not None:
        bx, by, bw, bh = layer.bar
        d.rectangle((bx, by, bx + bw - 1, by + bh - 1), fill=color)
    return band


def _layer_stream(layer: _Layer, *, image: Path, frames: int):  # -> ffmpeg-python stream
    """The layer's band (drawn once, :func:`_band_image`) repeated ``frames`` times.

    The stream ends once its fade-in is over and overlay holds its last frame: while a
    secondary input is still live, overlay copies every main frame before blending
    (framesync cannot tell whether it will be needed again), ~0.5 ms per 1080p frame per
    layer; at its end of stream that copy stops.
    """
    band = (
        # png_pipe, not image2: image2 reads a file name as a pattern (%d, globs), and a video's
        # folder may be called anything.
        ffmpeg.input(str(image), f="png_pipe").video
        .filter("scale", out_color_matrix="bt709", out_range="tv")
        .filter("format", "yuva420p")
        .filter("setparams", **BT709_FRAME_PARAMS)
    )
    return band.filter("loop", loop=frames - 1, size=1, start=0)


def build_args(
    out_path: Path,
    *,
    layout: _Layout,
    palette: Palette,
    band_images: Sequence[Path],
    frames: int,
    width: int,
    height: int,
    fps: int,
) -> list[str]:
    """The ffmpeg argument list (everything after the executable).

    ``band_images`` hold the label, then each title line, in ``layout`` order (:func:`_band_image`).
    """
    seconds = frames / fps

    # Background: a 4-stop linear gradient turning slowly about the centre, drawn at 1/8 of
    # the output size, vignetted and converted to BT.709 4:2:0 while small, then scaled up:
    # the per-pixel work happens on 1/64 of the pixels and a smooth gradient loses nothing
    # by it. (Drawn at 1/16 the graph was 0.1 CPU-s cheaper but the 16x bilinear facets
    # cost x264 more than that, and 50 % more bytes. A pan of the small picture moved in
    # 8-pixel steps once scaled: left out.)
    lw, lh = _even(width / BG_SCALE), _even(height / BG_SCALE)
    (x0, y0), (x1, y1) = palette.direction
    grad = (
        # Half a frame more than needed, so float rounding can never cost the last frame;
        # trim cuts at exactly ``frames``.
        f"gradients=s={lw}x{lh}:r={fps}:d={(frames + 0.5) / fps:.6f}:n={len(palette.colors)}:"
        + ":".join(f"c{i}={c}" for i, c in enumerate(palette.colors))
        + f":x0={round(x0 * (lw - 1))}:y0={round(y0 * (lh - 1))}:x1={round(x1 * (lw - 1))}:y1={round(y1 * (lh - 1))}"
        + f":type=linear:speed={0.3 / fps:.6f}:seed={palette.seed}"
    )
    v = (
        ffmpeg.input(grad, f="lavfi")
        .video.filter("vignette", angle="PI/4.5")
        .filter("scale", lw, lh, out_color_matrix="bt709", out_range="tv")
        .filter("format", "yuv420p")
        .filter("scale", width, height, flags="bilinear")
        .filter("setsar", "1")
        .filter("setparams", **BT709_FRAME_PARAMS)
    )

    # Foreground: every text element drawn once on a transparent canvas, then overlaid on
    # each frame (drawtext on every frame cost ~3x as much), fading and rising into place
    # one after another. Several overlays in a row are only cheap because each layer
    # stream ends after its fade (see _layer_stream).
    # Each element fades and rises for ``anim``; the title lines follow the label one after
    # another. All of it is over within the first half of even a very short clip.
    anim = round(min(0.6, seconds * 0.25), 3)
    lead = round(min(0.12, seconds * 0.05), 3)
    stagger = round(min(0.1, seconds * 0.03), 3)
    layers = [layout.label, *layout.title]
    for i, (layer, path) in enumerate(zip(layers, band_images)):
        start = 0.0 if i == 0 else round(lead + stagger * (i - 1), 3)
        rise = 0 if i == 0 else max(2, round(layout.title_size * 0.3))
        until = min(frames, math.ceil((start + anim) * fps) + 1)  # the fade is over by then
        stream = _layer_stream(layer, image=path, frames=until).filter(
            "fade", t="in", st=start, d=anim, alpha=1
        )
        y = str(layer.y) if not rise else f"{layer.y}+{rise}*pow(1-clip((t-{start})/{anim},0,1),3)"
        v = ffmpeg.overlay(v, stream, x=layer.x, y=y, eval="frame", format="yuv420", eof_action="repeat")
    # Cut in the graph, not with -frames:v: in ffmpeg 5.1 that limit closes the whole file
    # and the silent track came out 38 ms short (measured; 9.0 does not).
    v = v.filter("trim", end_frame=frames)

    samples = round(seconds * AUDIO_RATE)
    audio = ffmpeg.input(f"anullsrc=r={AUDIO_RATE}:cl={AUDIO_LAYOUT}", f="lavfi").audio
    audio = audio.filter("atrim", end_sample=samples)
    out = ffmpeg.output(
        v,
        audio,
        str(out_path),
        format="mp4",
        **{
            "c:v": "libx264",
            **INTERMEDIATE_X264,  # the card is an intermediate the assembly encodes again
            "profile:v": "high",
            "pix_fmt": "yuv420p",
            **BT709_OUTPUT_OPTIONS,
            "c:a": "aac",
            "b:a": "128k",
            "ar": AUDIO_RATE,
            "ac": AUDIO_CHANNELS,
            "movflags": "+faststart",
        },
    )
    return out.get_args()


def render_title_card(
    out_path: Path,
    *,
    prompt: str,
    scene_index: int,
    duration_s: float,
    width: int,
    height: int,
    fps: int = 30,
    style: str | None = None,
    on_progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write an animated title card for ``prompt`` as an MP4 to exactly ``out_path``.

    ``round(duration_s * fps)`` frames of ``width`` x ``height``; raises
    :class:`~core.errors.InputError` on bad arguments, :class:`~core.errors.MediaError` if
    ffmpeg fails and :class:`~core.errors.OperationCancelled` when ``cancel`` is set; on
    any failure nothing is left at ``out_path``.
    """
    frames = _validate(duration_s, width, height, fps, scene_index, prompt)
    out_path = Path(out_path)
    if as_written(prompt).emoji_removed:
        log.info("title card %s: %s", out_path.name, EMOJI_NOTE)
    palette = choose_palette(prompt, scene_index, style)
    layout = _layout(prompt, scene_index, width, height, accent=palette.accent)
    log.debug(
        "title card %s: %dx%d %d frames, palette %s %s, %d lines at %d px%s",
        out_path.name, width, height, frames, palette.name, palette.direction,
        len(layout.lines), layout.title_size, " (truncated)" if layout.truncated else "",
    )

    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".text", dir=out_path.parent))
    try:
        files = []
        for i, layer in enumerate([layout.label, *layout.title]):
            p = work / f"{i}.png"
            _band_image(layer).save(p)
            files.append(p)
        args = build_args(
            out_path, layout=layout, palette=palette, band_images=files,
            frames=frames, width=width, height=height, fps=fps,
        )
        try:
            run_ffmpeg(
                args,
                timeout_s=max(120.0, frames / fps * 20),
                duration_s=frames / fps,
                on_progress=on_progress,
                cancel=cancel,
                what="placeholder title card",
            )
        except BaseException:
            out_path.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
