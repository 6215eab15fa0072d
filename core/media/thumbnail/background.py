"""What the title is drawn over: a designed background, or a picture cover-fitted to 16:9.

* designed (:func:`render_background`, the ``local:pillow`` provider's picture): a diagonal
  gradient from a deterministic palette (hash of the seed text + style), a soft glow, a
  geometric motif (sunburst, stripes, slab or rings), halftone dots, a vignette and a little
  grain so the JPEG does not band;
* a picture (:func:`load_background`, e.g. an AI image of any size/aspect): cover-fitted to
  1280x720 and converted to sRGB.
"""

from __future__ import annotations

import functools
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat

from core.errors import MediaError
from core.media.thumbnail.layout import HEIGHT, WIDTH, accept_text
from core.media.thumbnail.style import _WHITE, RGB, _seed, choose_palette

__all__ = ["render_background", "load_background"]

log = logging.getLogger(__name__)


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
    """A designed 1280x720 RGB background, deterministic in (title, style); ``title`` is any text
    that seeds the design (the local provider passes the image prompt), ``align`` the side the
    title will take (the glow and motif go to the other side): "left", "center", or "right" (the
    left design mirrored, for a title that runs right to left)."""
    if align == "right":
        return ImageOps.mirror(render_background(title, style, align="left"))
    text, _ = accept_text(title)
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
