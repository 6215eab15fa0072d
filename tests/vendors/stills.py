"""Pictures that stand in for a generated still: a small landscape drawn from a seed.

A sky gradient, a sun, three ridges of hills and a grain of texture, blurred a little, so a
camera move over it is visible (edges, detail) and two seeds give clearly different
pictures. No text anywhere: a frame of a motion clip that shows letters did not come from here.
"""

from __future__ import annotations

import io
import random

__all__ = ["scenic_png", "scenic_image"]

_SKIES = (((12, 28, 74), (244, 140, 66)), ((20, 60, 110), (160, 210, 240)), ((60, 20, 70), (250, 190, 120)),
          ((8, 40, 40), (120, 200, 170)), ((30, 30, 60), (230, 100, 120)), ((90, 140, 200), (250, 240, 200)))
_LANDS = ((34, 70, 40), (70, 50, 30), (30, 40, 70), (60, 80, 30), (80, 40, 50), (40, 60, 60))


def scenic_image(seed: int, width: int = 1536, height: int = 1024):  # -> PIL.Image.Image
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    top, bottom = _SKIES[seed % len(_SKIES)]
    sky = Image.linear_gradient("L").resize((width, height))
    im = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), sky)
    draw = ImageDraw.Draw(im)
    sx, sy, r = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.4) * height, height * rng.uniform(0.05, 0.09)
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 236, 180))
    land = _LANDS[seed % len(_LANDS)]
    for ridge in range(3):
        base = height * (0.5 + 0.15 * ridge)
        points = [(0, height)]
        for i in range(13):
            points.append((width * i / 12, base - rng.uniform(0.0, 0.18) * height))
        points.append((width, height))
        shade = tuple(min(255, int(c * (1.0 + 0.5 * (2 - ridge)))) for c in land)
        draw.polygon(points, fill=shade)
        for _ in range(60):  # trees / rocks: detail a move must carry smoothly
            x, y = rng.uniform(0, width), rng.uniform(base, height)
            s = rng.uniform(4, 14) * (1 + ridge)
            draw.polygon([(x, y - 2 * s), (x - s, y + s), (x + s, y + s)], fill=tuple(max(0, c - 25) for c in shade))
    grain = Image.effect_noise((width, height), 18).convert("RGB")
    im = Image.blend(im, grain, 0.06)
    return im.filter(ImageFilter.GaussianBlur(0.8))


def scenic_png(seed: int, width: int = 1536, height: int = 1024) -> bytes:
    buf = io.BytesIO()
    scenic_image(seed, width, height).save(buf, "PNG", compress_level=1)
    return buf.getvalue()
