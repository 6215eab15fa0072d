"""Pictures made smaller without a second full-size copy (imports, previews).

A 8192x8192 picture decodes to 256 MiB in RGBA; Pillow's own shortcuts double that
(``convert`` copies it at full size, ``reduce``/``thumbnail`` of an RGBA picture make a
premultiplied full-size copy first). :func:`shrink` decodes a JPEG at a reduced DCT scale
(draft) and reduces anything else strip by strip, so the only full-size buffer is the
decoded one, in its own mode (a palette GIF: one byte a pixel).

:func:`decoding` opens a picture with its pixels reserved from :data:`DECODE_BUDGET`, one
budget for the process: the decodes of several imports at once stay under one picture at
the side limit, and the memory each one freed goes back to the system.
"""

from __future__ import annotations

import ctypes
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import OperationCancelled
from core.media.probe import MAX_SIDE_PX

__all__ = ["shrink", "PixelBudget", "DECODE_BUDGET", "decoding"]

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


class PixelBudget:
    """A semaphore weighted by pixels: the decodes of all imports at once stay under ``total``.

    A decode larger than the whole budget still runs, alone. Waiting stops when ``cancel``
    (the job's event) is set.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int, cancel: Any = None) -> Iterator[None]:
        n = min(max(1, pixels), self.total)
        with self._cond:
            while self.in_use and self.in_use + n > self.total:
                if cancel is not None and cancel.is_set():
                    raise OperationCancelled("import cancelled")
                self._cond.wait(0.1)
            self.in_use += n
        try:
            yield
        finally:
            _give_back_memory()
            with self._cond:
                self.in_use -= n
                self._cond.notify_all()


def _give_back_memory() -> None:
    """Return the freed decode buffers to the system now (glibc only; elsewhere a no-op).

    glibc raises its mmap threshold after a large block is freed, so the next picture's
    buffers come from the heap and stay counted in the server's RSS after they are freed:
    three 8192 px TIFF imports at once peaked at 603 MiB without this, 346 MiB with it
    (one alone: 344 MiB).
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


DECODE_BUDGET = PixelBudget(MAX_SIDE_PX * MAX_SIDE_PX)


@contextmanager
def decoding(path: Path, cancel: Any) -> Iterator[Any]:
    """``path`` opened with its pixels reserved from DECODE_BUDGET; its memory freed on the way out.

    Leaving ``with Image.open()`` closes the file but keeps the decoded pixels until the
    object is collected: ``close()`` is what frees them, before the budget is given back.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    try:
        with DECODE_BUDGET.hold(im.width * im.height, cancel):
            try:
                yield im
            finally:
                im.close()  # the pixels go before the budget is given back
    finally:
        im.close()  # the file, when waiting for the budget was cancelled
