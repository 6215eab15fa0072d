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
    assert text == "a \\{b\\} c\\\u2060N d"  # a backslash, then an invisible word joiner: no tag


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


# --------------------------------------------------------------------------- another font


@pytest.fixture(scope="module")
def aileron(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A font unlike Inter that may ship in tests: Aileron Regular (CC0), embedded in Pillow."""
    from PIL import ImageFont

    path = tmp_path_factory.mktemp("fonts") / "aileron.ttf"
    path.write_bytes(ImageFont.load_default(20).font_bytes)
    return path


def _fontselect(ass: str, fonts_dir: Path, tmp_path: Path) -> list[str]:
    """libass's font choices for ``ass`` rendered over one frame, from ffmpeg's verbose log."""
    import subprocess

    from core.media.ffmpeg import ffmpeg_exe

    (tmp_path / "c.ass").write_text(ass, encoding="utf-8")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "verbose", "-f", "lavfi", "-i",
                           "color=c=0x404040:s=640x360:d=0.1", "-vf",
                           f"ass=filename={tmp_path / 'c.ass'}:fontsdir={fonts_dir}", "-frames:v", "1", "-f", "null",
                           "-"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.split("fontselect: ", 1)[1] for line in proc.stderr.splitlines() if "fontselect: " in line]


def test_font_facts_are_what_libass_matches() -> None:
    from core.media.fonts import font_facts

    black = font_facts(font_path("display"))
    # Pillow (FreeType) calls it "Inter Display" (the typographic family); libass matches name ID 1.
    assert (black.family, black.weight, black.postscript_name) == ("Inter Display Black", 900, "InterDisplay-Black")
    bold = font_facts(font_path("text"))
    assert (bold.family, bold.style, bold.weight, bold.italic) == ("Inter", "Bold", 700, False)
    assert bold.cell_em == pytest.approx(1.21, abs=0.01)


def test_caption_font_from_a_file_names_its_family_and_real_weight(aileron: Path) -> None:
    face = C.CaptionFont.from_file(aileron)
    assert (face.family, face.weight, face.ass_bold, face.italic) == ("Aileron", 400, 0, False)
    assert C.CaptionFont.from_file(font_path("display")).ass_bold == 900  # no faux bold, none missing
    L = C.CaptionLayout.for_size(1920, 1080, face)
    ass = C.build_ass(C.caption_cues([_seg(1, LONG, 0.0, 8.0)], L), L, [C.OverlayText("Chapter 1", 0, 1, "top")])
    for style in ("Caption", "Overlay"):
        st = _style(ass, style)
        assert (st["Fontname"], st["Bold"], st["Italic"]) == ("Aileron", "0", "0")
    default = _style(C.build_ass([], C.CaptionLayout.for_size(1920, 1080)), "Caption")
    assert (default["Fontname"], default["Bold"]) == ("Inter", "-1")  # unchanged without a font


def test_caption_lines_are_measured_in_the_caption_font(aileron: Path) -> None:
    face = C.CaptionFont.from_file(aileron)
    assert C.text_width_px(LONG, 60, face) != pytest.approx(C.text_width_px(LONG, 60), rel=0.02)
    for w, h in ((1920, 1080), (1080, 1920)):
        L = C.CaptionLayout.for_size(w, h, face)
        assert L.font is face and L.max_chars <= 42
        cues = C.caption_cues([_seg(1, LONG, 0.0, 8.0)], L)
        for _, _, text in _dialogues(C.build_ass(cues, L)):
            lines = _text_lines(text)
            m = re.match(r"\{\\fs(\d+)\}", text)
            size = int(m.group(1)) if m else L.font_size
            assert len(lines) <= 2 and all(C.text_width_px(line, size, face) <= L.box_width for line in lines)
    wide = C.CaptionLayout.for_size(1080, 1920, face)
    (_, _, text), = _dialogues(C.build_ass([C.Cue(0, 1000, ("W" * wide.max_chars,))], wide))
    m = re.match(r"\{\\fs(\d+)\}", text)
    assert m and C.text_width_px("W" * wide.max_chars, int(m.group(1)), face) <= wide.box_width


def test_libass_draws_the_caption_font_without_falling_back(aileron: Path, tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / aileron.name).write_bytes(aileron.read_bytes())
    L = C.CaptionLayout.for_size(640, 360, C.CaptionFont.from_file(aileron))
    chosen = _fontselect(C.build_ass([C.Cue(0, 1000, ("Caption text here",))], L), fonts, tmp_path)
    # A memory font from fontsdir is named by its PostScript name; a system font by its path.
    assert chosen and all(c.startswith("(Aileron, 400, 0) -> Aileron-Regular,") for c in chosen), chosen
    L = C.CaptionLayout.for_size(640, 360)
    chosen = _fontselect(C.build_ass([C.Cue(0, 1000, ("Caption text here",))], L), C.FONTS_DIR, tmp_path)
    assert chosen and all(c.startswith("(Inter, 700, 0) -> Inter-Bold,") for c in chosen), chosen
