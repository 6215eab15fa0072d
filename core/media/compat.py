"""What ytap does itself so that it works on every ffmpeg build it accepts (5.1 to 9.0).

A build is chosen by what it can do (core.media.ffmpeg); where a convenient option exists
only in new builds and ytap can do without it cheaply, the work is done here instead, so
the distributions' builds (Debian 12's 5.1, Ubuntu 24.04's 6.1) stay usable.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

__all__ = ["fit_size", "parse_sar", "output_duration"]


def parse_sar(sar: str | float | None) -> float:
    """A sample aspect ratio as a number: ``"4:3"``, ``"0:1"`` (unknown, so square) or a float."""
    if sar is None:
        return 1.0
    if isinstance(sar, (int, float)):
        return float(sar) if sar > 0 else 1.0
    num, _, den = sar.partition(":")
    try:
        value = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return 1.0
    return float(value) if value > 0 else 1.0


def fit_size(width: int, height: int, sar: float, box_w: int, box_h: int,
             fit: Literal["decrease", "increase"]) -> tuple[int, int]:
    """Even, square-pixel size of a ``width`` x ``height`` picture with pixels ``sar`` wide, scaled to
    fit inside (``decrease``) or to cover (``increase``) ``box_w`` x ``box_h``.

    What scale's ``force_original_aspect_ratio`` + ``reset_sar`` do, but 5.1 has no ``reset_sar``
    (9.0 has): for an anamorphic source the size is computed here instead.
    A covering size is never smaller than the box (the crop after it needs the whole box).
    """
    display_w = width * sar
    scale = (min if fit == "decrease" else max)(box_w / display_w, box_h / height)
    if fit == "decrease":
        w, h = (max(2, min(box, math.floor(x * scale / 2 + 1e-9) * 2)) for x, box in ((display_w, box_w), (height, box_h)))
    else:
        w, h = (max(box, math.ceil(x * scale / 2 - 1e-9) * 2) for x, box in ((display_w, box_w), (height, box_h)))
    return w, h


def output_duration(frames: int, fps: int) -> str:
    """``-t`` for an output of exactly ``frames`` frames at ``fps``, its audio untouched.

    The frame count is not given with ``-frames:v``: on ffmpeg 5.1 reaching it closes every
    stream of the file, so the audio (behind the video in the interleaving) came out up to
    ~0.1 s short; 9.0 does not. ``-t`` ends each stream at its own time. Truncated to the
    microsecond, so frame ``frames`` (at exactly ``frames / fps``) is always past it and
    frame ``frames - 1`` never is; with ``-r`` that also drops the copy of the last frame
    that constant-rate sync adds when a source's last frame was longer than the output's.
    """
    return f"{frames * 1_000_000 // fps / 1_000_000:.6f}"
