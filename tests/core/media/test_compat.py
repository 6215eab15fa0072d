"""Spellings that work on every ffmpeg ytap accepts (core.media.compat, placeholder's drawtext baseline)."""

from __future__ import annotations

import pytest

from core.media.compat import fit_size, output_duration, parse_sar


@pytest.mark.parametrize(("sar", "expected"), [("4:3", 4 / 3), ("1:1", 1.0), ("0:1", 1.0), (None, 1.0), ("x", 1.0)])
def test_parse_sar(sar: str | None, expected: float) -> None:
    assert parse_sar(sar) == pytest.approx(expected)


def test_fit_size_anamorphic_fills_the_frame_it_displays_as() -> None:
    # 240x180 stored at SAR 4:3 displays 320x180 (16:9): it fills a 16:9 box either way.
    assert fit_size(240, 180, 4 / 3, 1920, 1080, "decrease") == (1920, 1080)
    assert fit_size(240, 180, 4 / 3, 1920, 1080, "increase") == (1920, 1080)


def test_fit_size_keeps_even_sizes_inside_or_covering_the_box() -> None:
    # 720x576 PAL at SAR 16:15 displays 768x576 (4:3).
    assert fit_size(720, 576, 16 / 15, 1920, 1080, "decrease") == (1440, 1080)
    w, h = fit_size(720, 576, 16 / 15, 1920, 1080, "increase")
    assert (w, h) == (1920, 1440)
    w, h = fit_size(703, 480, 1.1, 320, 180, "decrease")
    assert w % 2 == 0 and h % 2 == 0 and w <= 320 and h <= 180 and (w == 320 or h == 180)


@pytest.mark.parametrize(("frames", "fps", "expected"), [(111, 30, "3.700000"), (100, 30, "3.333333"),
                                                          (1, 60, "0.016666"), (450, 30, "15.000000")])
def test_output_duration_keeps_the_last_frame_and_never_the_next(frames: int, fps: int, expected: str) -> None:
    t = output_duration(frames, fps)
    assert t == expected
    assert (frames - 1) / fps < float(t) <= frames / fps
