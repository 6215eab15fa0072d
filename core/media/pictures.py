"""Pictures made smaller without a second full-size copy (imports, previews).

A 8192x8192 picture decodes to 256 MiB in RGBA; Pillow's own shortcuts double that
(``convert`` copies it at full size, ``reduce``/``thumbnail`` of an RGBA picture make a
premultiplied full-size copy first). :func:`shrink` decodes a JPEG at a reduced DCT scale
(draft) and reduces anything else strip by strip, so the only full-size buffer is the
decoded one, in its own mode (a palette GIF: one byte a pixel).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["shrink"]

_STRIP_ROWS = 256


def shrink(src: Any, mode: str, max_side_px: int) -> Any:
    """The current frame of the opened picture ``src`` in ``mode``, at most ``max_side_px`` on a side.

    The reduction is by a whole factor (a box filter, strip by strip, without seams): the
    result is between half of ``max_side_px`` and ``max_side_px``, never a resampling pass
    over a second full-size buffer. A picture already small enough is only converted.
    """
    from PIL import Image

    if src.format in ("JPEG", "MPO") and max(src.size) > max_side_px:
        # The smallest DCT scale whose picture still covers the target.
        scale = max_side_px / max(src.size)
        src.draft("RGB", (max(1, math.floor(src.width * scale)), max(1, math.floor(src.height * scale))))
    src.load()
    width, height = src.size
    factor = math.ceil(max(width, height) / max_side_px)
    if factor <= 1:
        return src.convert(mode)
    out = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    band = factor * max(1, _STRIP_ROWS // factor)
    for top in range(0, height, band):
        strip = src.crop((0, top, width, min(height, top + band))).convert(mode).reduce(factor)
        out.paste(strip, (0, top // factor))
    return out
