"""The ``local:placeholder`` title card: stream facts, layout, text safety, args, cancel.

Offline and small (320x180, 1-2 s) except one 1 s 1920x1080 render.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from core.errors import InputError, OperationCancelled
from core.media.placeholder import (
    ELLIPSIS,
    MAX_LINES,
    _font,
    _layout,
    choose_palette,
    normalise_text,
    render_title_card,
    wrap_text,
)
from core.media.probe import is_faststart, probe

SMALL = dict(width=320, height=180, fps=30)
PROMPT = "A lighthouse on a rocky coast at dawn, waves crashing, cinematic"
TRICKY = (
    "It's \"quoted\": 100% {pts} %{pts} %{eif:1:d} C:\\path\\to\\file ; [a], b=c "
    "Привет, мир — Καλημέρα κόσμε — Ünïcödé ß"
)


def _render(tmp_path: Path, name: str = "scene.mp4.part", **kw) -> Path:
    out = tmp_path / name
    args = dict(prompt=PROMPT, scene_index=3, duration_s=1.0, **SMALL)
    args.update(kw)
    render_title_card(out, **args)
    return out


def _frame(path: Path, index: int) -> Image.Image:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_image()
    raise AssertionError(f"{path.name} has no frame {index}")


def _assert_stream_facts(path: Path, *, width: int, height: int, fps: int, duration_s: float) -> None:
    info = probe(path, count_frames=True)
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert v.codec == "h264"
    assert v.profile == "High"
    assert v.pix_fmt == "yuv420p"
    assert (v.width, v.height) == (width, height)
    assert v.fps == pytest.approx(fps)
    assert v.frames == round(duration_s * fps)
    assert v.sar == "1:1"
    assert (v.color_primaries, v.color_transfer, v.color_space) == ("bt709", "bt709", "bt709")
    assert a.codec == "aac"
    assert a.sample_rate == 48_000
    assert a.channels == 2
    video_s = round(duration_s * fps) / fps
    assert v.duration_s == pytest.approx(video_s, abs=0.5 / fps)
    assert a.duration_s is not None and abs(a.duration_s - video_s) <= 1 / fps
    assert info.format_name.startswith("mov,mp4")
    assert is_faststart(path)


# --- the file ------------------------------------------------------------------------------------


def test_render_title_card_writes_h264_high_with_silent_stereo_aac(tmp_path: Path) -> None:
    out = _render(tmp_path, duration_s=2.0)
    _assert_stream_facts(out, width=320, height=180, fps=30, duration_s=2.0)


@pytest.mark.parametrize(("duration_s", "fps"), [(1.27, 24), (1.5, 25), (1.0, 60), (0.5, 30)])
def test_render_title_card_frame_count_is_rounded_duration_times_fps(
    tmp_path: Path, duration_s: float, fps: int
) -> None:
    out = _render(tmp_path, duration_s=duration_s, fps=fps)
    _assert_stream_facts(out, width=320, height=180, fps=fps, duration_s=duration_s)


def test_render_title_card_portrait_size(tmp_path: Path) -> None:
    out = _render(tmp_path, width=180, height=320)
    _assert_stream_facts(out, width=180, height=320, fps=30, duration_s=1.0)


@pytest.mark.slow
def test_render_title_card_full_hd(tmp_path: Path) -> None:
    out = _render(tmp_path, width=1920, height=1080, duration_s=1.0)
    _assert_stream_facts(out, width=1920, height=1080, fps=30, duration_s=1.0)
    frame = _frame(out, 29)
    assert frame.size == (1920, 1080)
    assert ImageStat.Stat(frame.convert("L")).stddev[0] > 20


def test_render_title_card_writes_exactly_out_path_and_no_temp_files(tmp_path: Path) -> None:
    folder = tmp_path / "videos" / "v1"  # created on demand
    out = _render(folder, name="scene_03.mp4.part")
    assert out.exists() and out.stat().st_size > 0
    assert sorted(p.name for p in folder.iterdir()) == ["scene_03.mp4.part"]


def test_render_title_card_folder_with_filter_graph_characters(tmp_path: Path) -> None:
    # The temp text files live next to the output: their paths go through the filter graph.
    folder = tmp_path / "we'ird: dir, [x] %{n} \\ ;ü"
    out = _render(folder, duration_s=0.5)
    _assert_stream_facts(out, width=320, height=180, fps=30, duration_s=0.5)
    assert [p.name for p in folder.iterdir()] == ["scene.mp4.part"]


def test_render_title_card_reports_progress_up_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    _render(tmp_path, duration_s=2.0, on_progress=seen.append)
    assert seen and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)


# --- the picture ---------------------------------------------------------------------------------


def test_render_title_card_frame_is_not_flat(tmp_path: Path) -> None:
    out = _render(tmp_path, duration_s=1.0)
    middle = _frame(out, 15).convert("L")
    assert ImageStat.Stat(middle).stddev[0] > 12  # text on a gradient, not a flat colour


def test_render_title_card_text_appears_after_the_fade_in(tmp_path: Path) -> None:
    out = _render(tmp_path, duration_s=2.0)
    first, last = _frame(out, 0).convert("L"), _frame(out, 59).convert("L")
    # White type is there at the end (bright pixels), not yet on the first frame.
    assert first.getextrema()[1] < 200
    assert last.getextrema()[1] > 230


def test_render_title_card_background_moves(tmp_path: Path) -> None:
    out = _render(tmp_path, duration_s=2.0)
    a, b = _frame(out, 30), _frame(out, 59)
    assert ImageStat.Stat(ImageChops.difference(a, b)).mean[0] > 0.5


def test_render_title_card_different_prompts_give_different_frames(tmp_path: Path) -> None:
    one = _render(tmp_path, name="one.mp4", prompt="A lighthouse at dawn")
    two = _render(tmp_path, name="two.mp4", prompt="Octopus hunting on a coral reef at night")
    diff = ImageChops.difference(_frame(one, 20), _frame(two, 20))
    assert ImageStat.Stat(diff).mean[0] > 5


def test_render_title_card_tricky_characters_render(tmp_path: Path) -> None:
    out = _render(tmp_path, prompt=TRICKY)
    _assert_stream_facts(out, width=320, height=180, fps=30, duration_s=1.0)
    assert ImageStat.Stat(_frame(out, 25).convert("L")).stddev[0] > 12


def test_render_title_card_4000_char_prompt_renders(tmp_path: Path) -> None:
    prompt = ("The quick brown fox jumps over the lazy dog near the old stone lighthouse. " * 60)[:4000]
    assert len(prompt) == 4000
    out = _render(tmp_path, prompt=prompt)
    _assert_stream_facts(out, width=320, height=180, fps=30, duration_s=1.0)


def test_render_title_card_blank_prompt_renders_label_only(tmp_path: Path) -> None:
    out = _render(tmp_path, prompt=" \n\t ")
    _assert_stream_facts(out, width=320, height=180, fps=30, duration_s=1.0)


@pytest.mark.parametrize(("width", "height"), [(16, 16), (2, 2), (640, 2), (1080, 1920)])
def test_render_title_card_odd_shapes_render(tmp_path: Path, width: int, height: int) -> None:
    out = _render(tmp_path, width=width, height=height, duration_s=0.2)
    info = probe(out)
    assert info.video is not None and (info.video.width, info.video.height) == (width, height)


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"duration_s": 0},
        {"duration_s": -1.0},
        {"duration_s": float("nan")},
        {"duration_s": float("inf")},
        {"duration_s": "five"},
        {"duration_s": 0.001},  # shorter than one frame
        {"width": 321},
        {"height": 181},
        {"width": 0},
        {"height": -180},
        {"width": 320.0},
        {"width": 10_000},
        {"fps": 0},
        {"fps": -30},
        {"fps": 29.97},
        {"scene_index": -1},
        {"prompt": None},
    ],
)
def test_render_title_card_invalid_args_raise_input_error(tmp_path: Path, bad: dict) -> None:
    out = tmp_path / "bad.mp4"
    args = dict(prompt=PROMPT, scene_index=1, duration_s=1.0, **SMALL)
    args.update(bad)
    with pytest.raises(InputError):
        render_title_card(out, **args)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_render_title_card_cancel_raises_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "scene.mp4.part"
    cancel = threading.Event()
    timer = threading.Timer(0.4, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(OperationCancelled):
            render_title_card(
                out, prompt=PROMPT, scene_index=1, duration_s=60.0, width=1920, height=1080, fps=30, cancel=cancel
            )
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temp text files are gone too


def test_render_title_card_cancel_already_set_raises(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    out = tmp_path / "scene.mp4"
    with pytest.raises(OperationCancelled):
        render_title_card(out, prompt=PROMPT, scene_index=1, duration_s=5.0, width=320, height=180, cancel=cancel)
    assert not out.exists()


# --- layout and palette (no ffmpeg) --------------------------------------------------------------


def test_wrap_text_lines_fit_and_keep_every_word() -> None:
    lines, truncated = wrap_text(PROMPT, role="display", size=118, max_width=1536)
    assert not truncated and len(lines) >= 2
    assert " ".join(lines) == PROMPT
    font = _font("display", 118)
    assert all(font.getlength(line) <= 1536 for line in lines)


def test_wrap_text_truncates_with_ellipsis_within_max_lines() -> None:
    long = "word " * 2000
    lines, truncated = wrap_text(long, role="display", size=62, max_width=1536, max_lines=MAX_LINES)
    assert truncated and len(lines) == MAX_LINES
    assert lines[-1].endswith(ELLIPSIS)
    font = _font("display", 62)
    assert all(font.getlength(line) <= 1536 for line in lines)


def test_wrap_text_breaks_words_longer_than_a_line() -> None:
    url = "https://example.com/" + "a" * 300
    lines, truncated = wrap_text(url, role="display", size=62, max_width=600)
    assert not truncated and len(lines) > 1
    assert "".join(lines) == url
    font = _font("display", 62)
    assert all(font.getlength(line) <= 600 for line in lines)


def test_normalise_text_collapses_whitespace_and_drops_controls() -> None:
    assert normalise_text("  a\n\tb\x00c\u200b d\r\n") == "a bc d"


def test_layout_keeps_text_verbatim_and_in_frame() -> None:
    layout = _layout(TRICKY, 3, 1920, 1080)
    assert " ".join(layout.lines) == normalise_text(TRICKY)
    assert layout.label.text == "SCENE 03"
    for layer in [layout.label, *layout.title]:
        assert 0 <= layer.x and layer.x + layer.w <= 1920
        assert 0 <= layer.y and layer.y + layer.h <= 1080
        assert layer.x % 2 == 0 and layer.y % 2 == 0 and layer.w % 2 == 0 and layer.h % 2 == 0


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1080, 1920), (320, 180)])
def test_layout_long_prompt_is_cut_to_six_lines(width: int, height: int) -> None:
    layout = _layout("x" * 7 + " lorem ipsum dolor sit amet" * 150, 12, width, height)
    assert layout.truncated and len(layout.lines) == MAX_LINES
    assert layout.lines[-1].endswith(ELLIPSIS)
    assert layout.label.text == "SCENE 12"


def test_layout_short_prompt_gets_large_type() -> None:
    short, long = _layout("Lighthouse", 1, 1920, 1080), _layout("word " * 60, 1, 1920, 1080)
    assert short.title_size > long.title_size
    assert short.title_size >= 100


def test_choose_palette_is_deterministic_and_scenes_differ() -> None:
    assert choose_palette(PROMPT, 3) == choose_palette(PROMPT, 3)
    names = [choose_palette(PROMPT, i, "documentary").name for i in range(1, 12)]
    assert all(a != b for a, b in zip(names, names[1:]))
    assert len(set(names)) == 11
    assert choose_palette(PROMPT, 3) != choose_palette("Something else entirely", 3)


def test_choose_palette_keeps_white_text_legible() -> None:
    def luminance(hex_color: str) -> float:
        def lin(c: float) -> float:
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (2, 4, 6))
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)

    for i in range(40):
        palette = choose_palette(f"prompt {i}", i)
        for color in palette.colors:
            contrast = 1.05 / (luminance(color) + 0.05)
            assert contrast >= 3.5 or math.isclose(contrast, 3.5, rel_tol=0.02), (palette, color)
