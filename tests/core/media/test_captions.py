"""Captions: cues from narration timings, the ASS document, the SRT sidecar, and one real libass render."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

from core.media import captions as C
from core.media.ffmpeg import run_ffmpeg
from core.media.fonts import font_path
from core.schemas import SegmentTiming, WordTiming

LONG = ("Lighthouses were built on rocky coasts to warn ships of danger, and their keepers lived in small "
        "houses beside the towers for months at a time.")


def _seg(index: int, text: str, start: float, end: float, *, words: bool = True) -> SegmentTiming:
    tokens = text.split()
    step = (end - start) / len(tokens)
    ws = [WordTiming(text=t, start_s=round(start + i * step, 3), end_s=round(start + (i + 1) * step, 3))
          for i, t in enumerate(tokens)] if words else []
    return SegmentTiming(index=index, text=text, start_s=start, end_s=end, words=ws)


def _dialogues(ass: str, style: str = "Caption") -> list[tuple[str, str, str]]:
    out = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            parts = line.split(",", 9)
            if parts[3] == style:
                out.append((parts[1], parts[2], parts[9]))
    return out


def _style(ass: str, name: str) -> dict[str, str]:
    fmt = next(line for line in ass.splitlines() if line.startswith("Format: Name"))
    keys = [k.strip() for k in fmt.split(":", 1)[1].split(",")]
    row = next(line for line in ass.splitlines() if line.startswith(f"Style: {name},"))
    return dict(zip(keys, (v.strip() for v in row.split(":", 1)[1].split(",")), strict=True))


def _text_lines(event_text: str) -> list[str]:
    return re.sub(r"\{[^}]*\}", "", event_text).split("\\N")


# --------------------------------------------------------------------------- layout


def test_caption_layout_landscape_is_42_chars_inside_safe_margins() -> None:
    L = C.CaptionLayout.for_size(1920, 1080)
    assert L.max_chars == 42 and L.max_lines == 2
    assert L.margin_l == L.margin_r >= 0.1 * 1920 - 1  # title-safe sides
    assert L.margin_v >= 0.05 * 1080
    # 42 average characters fit the box at the chosen size
    assert C.text_width_px("x" * 42, L.font_size) < L.box_width


def test_caption_layout_portrait_has_fewer_chars_and_clears_the_shorts_interface() -> None:
    L = C.CaptionLayout.for_size(1080, 1920)
    assert 14 <= L.max_chars < 42
    assert L.margin_v >= C.SHORTS_UI_BOTTOM_FRACTION * 1920  # above the bottom quarter
    assert L.margin_r >= C.SHORTS_UI_RIGHT_FRACTION * 1080  # left of the action buttons
    assert L.font_size > C.CaptionLayout.for_size(1920, 1080).font_size * 0.9


# --------------------------------------------------------------------------- cues


def test_caption_cues_follow_word_timings_two_lines_max() -> None:
    L = C.CaptionLayout.for_size(1920, 1080)
    cues = C.caption_cues([_seg(1, LONG, 0.0, 8.0)], L)
    assert len(cues) >= 2
    assert cues[0].start_ms == 0
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        assert all(len(line) <= L.max_chars for line in cue.lines)
    assert " ".join(" ".join(c.lines) for c in cues) == LONG
    assert all(a.end_ms <= b.start_ms for a, b in zip(cues, cues[1:]))


def test_caption_cues_spread_words_evenly_when_a_segment_has_none() -> None:
    L = C.CaptionLayout.for_size(1920, 1080)
    cues = C.caption_cues([_seg(1, "Short one.", 1.0, 2.0, words=False),
                           _seg(2, "Then another sentence here.", 2.5, 4.5, words=False)], L)
    assert [(c.start_ms, c.end_ms) for c in cues] == [(1000, 2000), (2500, 4500)]
    assert cues[1].lines == ("Then another sentence here.",)


def test_caption_cues_portrait_lines_are_shorter() -> None:
    P = C.CaptionLayout.for_size(1080, 1920)
    cues = C.caption_cues([_seg(1, LONG, 0.0, 8.0)], P)
    assert all(len(line) <= P.max_chars for c in cues for line in c.lines)
    assert max(len(line) for c in cues for line in c.lines) < 42


def test_srt_round_trip() -> None:
    cues = [C.Cue(0, 1500, ("Hello there,", "world.")), C.Cue(1600, 61_001, ("Second",))]
    text = C.cues_to_srt(cues)
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,500\nHello there,\nworld.\n\n2\n00:00:01,600 --> 00:01:01,001")
    assert C.parse_srt(text) == cues
    assert C.cues_to_srt([]) == ""


# --------------------------------------------------------------------------- ASS


def test_build_ass_style_uses_bundled_font_outline_and_margins() -> None:
    L = C.CaptionLayout.for_size(1920, 1080)
    ass = C.build_ass(C.caption_cues([_seg(1, LONG, 0.0, 8.0)], L), L)
    assert "PlayResX: 1920" in ass and "PlayResY: 1080" in ass
    assert "WrapStyle: 2" in ass  # only our line breaks
    assert "YCbCr Matrix: TV.709" in ass
    st = _style(ass, "Caption")
    assert st["Fontname"] == "Inter" == C.FONT_FAMILY and st["Bold"] == "-1"
    assert C.FONTS_DIR == font_path("text").parent
    assert st["BorderStyle"] == "1" and int(st["Outline"]) >= 2  # outlined text
    assert st["Alignment"] == "2"  # bottom centre
    assert (int(st["MarginL"]), int(st["MarginR"]), int(st["MarginV"])) == (L.margin_l, L.margin_r, L.margin_v)
    events = _dialogues(ass)
    assert events
    for start, end, text in events:
        lines = _text_lines(text)
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= L.max_chars for line in lines)
        assert re.fullmatch(r"\d:\d\d:\d\d\.\d\d", start) and start < end


def test_build_ass_portrait_keeps_captions_above_the_shorts_interface() -> None:
    P = C.CaptionLayout.for_size(1080, 1920)
    st = _style(C.build_ass([C.Cue(0, 1000, ("Hi",))], P), "Caption")
    assert int(st["MarginV"]) >= 0.25 * 1920 and int(st["MarginR"]) >= 0.15 * 1080


def test_build_ass_escapes_override_characters() -> None:
    L = C.CaptionLayout.for_size(1280, 720)
    ass = C.build_ass([C.Cue(0, 1000, ("a {b} c\\N d",))], L)
    (_, _, text), = _dialogues(ass)
    assert text == "a \\{b\\} c\u29f5N d"


def test_build_ass_shrinks_a_line_too_wide_for_its_box() -> None:
    L = C.CaptionLayout.for_size(1080, 1920)
    wide = "W" * L.max_chars
    (_, _, text), = _dialogues(C.build_ass([C.Cue(0, 1000, (wide,))], L))
    m = re.match(r"\{\\fs(\d+)\}", text)
    assert m and int(m.group(1)) < L.font_size
    assert C.text_width_px(wide, int(m.group(1))) <= L.box_width


def test_build_ass_overlays_are_positioned_events() -> None:
    L = C.CaptionLayout.for_size(1920, 1080)
    ass = C.build_ass([], L, [C.OverlayText("Chapter 1", 1.0, 3.5, "top-right"),
                              C.OverlayText("Bottom note", 0.0, 1.0, "bottom")])
    events = _dialogues(ass, "Overlay")
    assert events[0][:2] == ("0:00:01.00", "0:00:03.50") and events[0][2].startswith("{\\an9}")
    assert "\\an2" in events[1][2]


def test_caption_burned_in_renders_in_the_caption_region(tmp_path: Path) -> None:
    L = C.CaptionLayout.for_size(640, 360)
    ass = tmp_path / "c.ass"
    ass.write_text(C.build_ass([C.Cue(0, 1000, ("Caption text here", "second line"))], L))
    out = tmp_path / "f.png"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=0x404040:s=640x360:d=0.1", "-vf",
                f"ass=filename={ass}:fontsdir={C.FONTS_DIR}", "-frames:v", "1", str(out)])
    with av.open(str(out)) as c:
        img = next(c.decode(video=0)).to_image().convert("L")
    bbox = img.point(lambda v: 255 if v > 200 else 0).getbbox()
    assert bbox is not None
    left, top, right, bottom = bbox
    assert bottom <= 360 - L.margin_v + 2 and top > 360 / 2  # bottom of the frame, above the margin
    assert left >= L.margin_l and right <= 640 - L.margin_r
