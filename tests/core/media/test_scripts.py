"""Every script of DESIGN.md §6 drawn as real glyphs: the bundled faces, coverage, shaping,
right to left, line breaking, on thumbnails, placeholder cards and burned captions.

Glyphs are checked on pixels (each character's ink differs from the font's .notdef box and
from the other characters'), and the fonts' coverage through fontTools, not through the
cmap reader under test. Burned captions run libass with an empty fontconfig, so a system
font can never stand in for a bundled one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops, ImageFilter, ImageFont, features

from core.errors import InputError
from core.media import fonts as F
from core.media.captions import CaptionLayout, Cue, build_ass
from core.media.ffmpeg import ffmpeg_exe
from core.media.placeholder import _layout, render_title_card
from core.media.thumbnail import compose_thumbnail, layout_title

SAMPLES = {
    "latin": "Deep ocean secrets",
    "cyrillic": "Тайны глубокого океана",
    "greek": "Μυστικά του ωκεανού",
    "japanese": "東京の夜景を楽しむ旅",
    "chinese": "今天天气很好我们去公园",
    "korean": "서울 여행 완벽 가이드",
    "arabic": "أسرار المحيط العميق",
    "hebrew": "סודות האוקיינוס",
    "devanagari": "भारत की अद्भुत यात्रा",
    "thai": "เที่ยวกรุงเทพแบบประหยัด",
}
FACE = {"latin": "InterDisplay", "cyrillic": "InterDisplay", "greek": "InterDisplay", "japanese": "CJKjp",
        "chinese": "CJKsc", "korean": "CJKkr", "arabic": "Arabic", "hebrew": "Hebrew", "devanagari": "Devanagari",
        "thai": "Thai"}

needs_raqm = pytest.mark.skipif(not features.check("raqm"), reason="Pillow without raqm (libfribidi missing)")


def _bright(img: Image.Image, above: int) -> int:
    """How many pixels of a greyscale image are brighter than ``above``."""
    return sum(img.histogram()[above + 1 :])


def _ink(font: ImageFont.FreeTypeFont, text: str) -> Image.Image:
    img = Image.new("L", (int(font.getlength(text)) + 2 * font.size, 2 * font.size), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(img).text((font.size // 2, font.size // 2), text, font=font, fill=255)
    return img


def test_fallback_faces_are_bundled_with_their_licence() -> None:
    assert (F.FONT_DIR / "LICENSE-Noto.txt").read_text().count("SIL OPEN FONT LICENSE Version 1.1") == 1
    total = 0
    for file in F.FALLBACK_FONTS.values():
        path = F.FONT_DIR / file
        total += path.stat().st_size
        name = TTFont(path)["name"]
        assert "Open Font License" in (name.getDebugName(13) or "")
        assert name.getDebugName(1).endswith(" ytap")  # never confused with a system's full Noto
    assert total < 8_000_000


@pytest.mark.parametrize("script", sorted(SAMPLES))
def test_face_for_covers_each_script_per_fonttools(script: str) -> None:
    text = SAMPLES[script]
    face = F.face_for(text, F.font_path("display"))
    assert FACE[script] in face.name
    cmap = TTFont(face).getBestCmap()
    assert [c for c in text if not c.isspace() and ord(c) not in cmap] == []


@needs_raqm
@pytest.mark.parametrize("script", sorted(SAMPLES))
def test_each_character_draws_its_own_glyph_not_notdef(script: str) -> None:
    text = SAMPLES[script]
    face = F.face_for(text, F.font_path("display"))
    font = ImageFont.truetype(str(face), 40)
    notdef = _ink(font, "\U0010fffd").tobytes()
    letters = sorted({c for c in text if c.isalpha()})
    inks = {c: _ink(font, c).tobytes() for c in letters}
    assert all(ink != notdef and any(ink) for ink in inks.values())
    assert len(set(inks.values())) == len(letters)  # distinct characters, distinct ink


@needs_raqm
def test_arabic_is_joined_and_right_to_left() -> None:
    font = ImageFont.truetype(str(F.face_for("مرحبا", F.font_path("display"))), 60)
    word = "مرحبا"
    assert font.getlength(word) < 0.9 * sum(font.getlength(c) for c in word)  # joined forms are narrower
    # Alif (a tall stroke) is written last: right to left, it ends up at the left end.
    img = _ink(font, "بببا")
    cols = [_bright(img.crop((x, 0, x + 1, img.height)), 0) for x in range(img.width)]
    inked = [x for x, c in enumerate(cols) if c]
    tallest = max(inked, key=lambda x: cols[x])
    assert tallest < (inked[0] + inked[-1]) / 2


@needs_raqm
def test_devanagari_forms_conjuncts() -> None:
    font = ImageFont.truetype(str(F.face_for("क्ष", F.font_path("display"))), 60)
    assert font.getlength("क्ष") < font.getlength("क") + font.getlength("्") + font.getlength("ष") - 5


MIXED = {  # titles as people write them: the script with a Latin name in it
    "arabic": "تاريخ Python في عشر دقائق",
    "hebrew": "סודות iPhone 16 החדש",
    "devanagari": "आईफोन iPhone 16 समीक्षा",
    "thai": "รีวิว iPhone 16 ล่าสุด",
}


@needs_raqm
@pytest.mark.parametrize("script", sorted(MIXED))
def test_a_latin_word_in_another_script_draws_in_the_same_face(script: str, tmp_path: Path) -> None:
    text = MIXED[script]
    face = F.face_for(text, F.font_path("display"))
    assert FACE[script] in face.name
    cmap = TTFont(face).getBestCmap()
    assert [c for c in text if not c.isspace() and ord(c) not in cmap] == []  # per fontTools, not our reader
    font = ImageFont.truetype(str(face), 40)
    notdef = _ink(font, "\U0010fffd").tobytes()
    latin = sorted({c for c in text if c.isascii() and c.isalpha()})
    inks = {c: _ink(font, c).tobytes() for c in latin}
    assert all(ink != notdef and any(ink) for ink in inks.values()) and len(set(inks.values())) == len(latin)
    # A thumbnail and a burned caption of it: made, with the Latin word's ink in them.
    lay = layout_title(text, style="nocaps")
    assert any("Python" in line or "iPhone" in line for line in lay.lines)
    compose_thumbnail(title=text, style="nocaps")
    word = "Python" if "Python" in text else "iPhone"
    with_word, without = _burn(tmp_path, (text,), "with"), _burn(tmp_path, (text.replace(word, ""),), "without")
    region = (0, 120, 320, 180)
    assert _bright(with_word.crop(region), 230) > _bright(without.crop(region), 230) + 20


def _where(drawn: Image.Image, piece: Image.Image) -> str:
    """Which end of the line ``drawn`` (light on black) holds ``piece``'s ink: "left" or "right" (the best
    match of the piece's ink box anywhere in the line's)."""
    import numpy as np

    a, b = drawn.getbbox(), piece.getbbox()
    line = np.asarray(drawn.crop((a[0], a[1] - 2, a[2], a[3] + 2)), np.float64)
    word = np.asarray(piece.crop(b), np.float64)
    h, w = word.shape
    cost = {(x, y): np.abs(line[y:y + h, x:x + w] - word).mean()
            for y in range(line.shape[0] - h + 1) for x in range(line.shape[1] - w + 1)}
    best_x, _ = min(cost, key=cost.get)
    return "left" if best_x < (line.shape[1] - w) / 2 else "right"


@needs_raqm
def test_a_line_of_a_right_to_left_title_that_starts_with_a_latin_word_keeps_the_title_direction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageDraw

    title = "تاريخ Python في عشر دقائق"
    lay = layout_title(title, style="nocaps")
    line = next(li for li in lay.lines if li.startswith("Python"))  # the wrap puts it first on its line
    assert lay.direction == "rtl"
    font = ImageFont.truetype(lay.font_path, 50)

    def draw(text: str, direction: str | None) -> Image.Image:
        img = Image.new("L", (1400, 120), 0)
        ImageDraw.Draw(img).text((20, 20), text, font=font, fill=255, direction=direction)
        return img

    word = draw("Python", None)
    # Drawn as the layout says, "Python" is read first, at the right; left to its own devices (the line's
    # first letter is Latin), FriBiDi would have put it at the left.
    assert _where(draw(line, lay.direction), word) == "right"
    assert _where(draw(line, None), word) == "left"
    # Every call that draws the title passes that direction on.
    seen: list[tuple[str, str | None]] = []
    real = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):  # noqa: ANN001, ANN202 - Pillow's signature
        seen.append((text, kwargs.get("direction")))
        return real(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    compose_thumbnail(title=title, style="nocaps")
    assert {d for t, d in seen if t == line} == {"rtl"}
    seen.clear()
    from core.media.placeholder import _band_image, _layout

    card = _layout("منارة Python على ساحل صخري عند الفجر", 1, 640, 360)
    assert {layer.direction for layer in card.title} == {"rtl"}
    _band_image(card.title[0])
    assert {d for t, d in seen if t == card.title[0].text} == {"rtl"}
    assert {layer.direction for layer in _layout("Python على ساحل", 1, 640, 360).title} == {None}  # an LTR prompt


def test_missing_glyph_is_a_clear_error_never_a_box() -> None:
    with pytest.raises(InputError, match=r"U\+B620"):  # 똠: outside KS X 1001's 2,350 syllables
        F.face_for("똠", F.font_path("display"))
    with pytest.raises(InputError, match="mixes scripts"):
        F.face_for("東京 مرحبا", F.font_path("display"))


def test_break_lines_japanese_at_phrases_and_never_before_closing_punctuation() -> None:
    lines = F.break_lines("東京の夜景はとても美しいです。", 6 * 30, lambda s: 30 * len(s), language="ja")
    assert "".join(lines) == "東京の夜景はとても美しいです。"
    assert lines == ["東京の夜景は", "とても", "美しいです。"]
    assert not any(line[0] in "。、」" for line in lines)


def test_break_lines_thai_by_word_and_spaced_scripts_at_spaces() -> None:
    lines = F.break_lines("วันนี้อากาศดีมาก", 5 * 10, lambda s: 10 * len(s))
    assert "".join(lines) == "วันนี้อากาศดีมาก" and len(lines) > 1
    assert all(not ("\u0e30" <= line[0] <= "\u0e4e") for line in lines)  # no line starts with a vowel sign or mark
    assert F.break_lines("안녕하세요 세계 여러분", 11, len) == ["안녕하세요 세계", "여러분"]


@needs_raqm
@pytest.mark.parametrize("script", ["japanese", "arabic", "devanagari", "korean", "thai", "cyrillic"])
def test_thumbnail_draws_the_title_in_its_face(script: str) -> None:
    lay = layout_title(SAMPLES[script])
    assert FACE[script] in Path(lay.font_path).name
    img = compose_thumbnail(title=SAMPLES[script], style="plain")
    assert img.size == (1280, 720)
    x0, y0, x1, y1 = lay.title_box
    text = img.crop((x0, y0, x1, y1)).convert("L")
    assert _bright(text, 230) > 2000  # white type, not an empty box


def _ink_columns(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int]:
    """The leftmost and rightmost columns of white type inside ``box`` of a composed thumbnail."""
    x0, y0, x1, y1 = box
    white = img.crop(box).convert("L").point(lambda v: 255 if v > 235 else 0)
    l, _, r, _ = white.getbbox()
    return x0 + l, x0 + r


@needs_raqm
@pytest.mark.parametrize("script", ["arabic", "hebrew"])
def test_a_right_to_left_title_starts_at_the_right_edge(script: str) -> None:
    from core.media.thumbnail import SAFE_BOX, render_background

    lay = layout_title(SAMPLES[script], "وثائقي" if script == "arabic" else None)
    assert lay.align == "right"
    assert len(lay.line_boxes) > 1 and {box[2] for box in lay.line_boxes} == {SAFE_BOX[2]}  # every line flush right
    assert lay.subtitle_box is None or lay.subtitle_box[2] == SAFE_BOX[2]
    # On pixels: each line's white type ends at the same column, by the right edge (less the dark stroke),
    # and the shorter line starts further right.
    plain = layout_title(SAMPLES[script], style="plain")
    img = compose_thumbnail(title=SAMPLES[script], style="plain")
    ink = [_ink_columns(img, (0, box[1], 1280, box[3])) for box in plain.line_boxes]
    rights, lefts = [r for _, r in ink], [left for left, _ in ink]
    assert max(rights) - min(rights) <= 12 and max(rights) >= SAFE_BOX[2] - plain.stroke_width - 16, ink
    assert max(lefts) - min(lefts) > 60, ink
    # The designed background leaves the room on the right: the left design, mirrored.
    mirrored = render_background("ocean", None, align="right")
    assert ImageChops.difference(mirrored, render_background("ocean", None, align="left").transpose(
        Image.Transpose.FLIP_LEFT_RIGHT)).getbbox() is None


@needs_raqm
def test_a_right_to_left_title_highlights_its_word_inside_a_line(tmp_path: Path) -> None:
    # A right-to-left line is drawn whole (so FriBiDi orders it); the highlighted word is coloured where it
    # lies in the line, the rest of the line stays white.
    import numpy as np

    from core.media.thumbnail.compose import _rtl_word_span
    from core.media.thumbnail.style import choose_palette

    title = "أسرار المدن القديمة في الصحراء"
    lay = layout_title(title)
    line_no = next(i for i, line in enumerate(lay.lines) if lay.highlight in line.split(" ") and line != lay.highlight)
    line, (ox, _), box = lay.lines[line_no], lay.origins[line_no], lay.line_boxes[line_no]
    a, b = _rtl_word_span(ImageFont.truetype(lay.font_path, lay.font_size), line, lay.highlight, lay.direction)
    pal = choose_palette(title, None)
    img = np.asarray(compose_thumbnail(title=title).convert("RGB"), np.int32)
    band = img[box[1]:box[3]]
    near = np.abs(band - np.array(pal.highlight)).sum(axis=2) < 60  # the highlight colour
    white = band.min(axis=2) > 235
    inside, outside = slice(ox + a, ox + b), np.r_[box[0]:ox + a - 4, ox + b + 4:box[2]]
    assert near[:, inside].sum() > 500 and white[:, inside].sum() < 0.05 * near[:, inside].sum()
    assert white[:, outside].sum() > 500 and near[:, outside].sum() < 0.05 * white[:, outside].sum()
    assert _rtl_word_span(ImageFont.truetype(lay.font_path, 40), "تاريخ Python في", "تاريخ", "rtl") is None


def test_left_to_right_titles_keep_their_side_and_centred_styles_stay_centred() -> None:
    from core.media.thumbnail import SAFE_BOX, title_align

    assert layout_title(SAMPLES["latin"]).align == "left"
    assert {box[0] for box in layout_title(SAMPLES["cyrillic"]).line_boxes} == {SAFE_BOX[0]}
    assert layout_title(SAMPLES["arabic"], style="centered").align == "center"
    assert title_align(None, "2024: " + SAMPLES["hebrew"]) == "right"  # digits and punctuation carry no direction
    assert title_align(None, "YouTube " + SAMPLES["arabic"]) == "left"  # the first letter decides (bidi rule P2)


@needs_raqm
@pytest.mark.parametrize("prompt,face", [("東京の夜景を見下ろす高層ビルの屋上", "CJKjp"),
                                         ("منارة على ساحل صخري عند الفجر", "Arabic")])
def test_placeholder_card_draws_the_prompt_in_its_face(tmp_path: Path, prompt: str, face: str) -> None:
    layout = _layout(prompt, 1, 320, 180)
    assert face in Path(layout.title[0].role).name
    out = tmp_path / "card.mp4"
    render_title_card(out, prompt=prompt, scene_index=1, duration_s=1.0, width=320, height=180)
    with av.open(str(out)) as c:
        last = list(c.decode(video=0))[-1].to_image().convert("L")
    band = layout.title[0]
    assert _bright(last.crop((band.x, band.y, band.x + band.w, band.y + band.h)), 220) > 50


def _burn(tmp_path: Path, lines: tuple[str, ...], name: str) -> Image.Image:
    layout = CaptionLayout.for_size(320, 180)
    ass = tmp_path / f"{name}.ass"
    ass.write_text(build_ass([Cue(0, 1000, lines)], layout), encoding="utf-8")
    conf = tmp_path / "fonts.conf"  # no font folders: only what fontsdir hands libass
    conf.write_text(f'<?xml version="1.0"?><fontconfig><cachedir>{tmp_path}/fc</cachedir></fontconfig>')
    png = tmp_path / f"{name}.png"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", "1", "-f", "lavfi", "-i", "color=c=0x204060:s=320x180:d=1",
                    "-vf", f"ass=filename={ass}:fontsdir={F.FONT_DIR}", "-frames:v", "1", "-y", str(png)],
                   check=True, capture_output=True, env={"FONTCONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin"})
    return Image.open(png).convert("L")


@pytest.mark.parametrize("a,b,face", [("東京の夜景", "大阪の朝日", "Noto Sans CJK JP ytap"),
                                      ("مرحبا بكم", "أسرار البحر", "Noto Sans Arabic ytap"),
                                      ("नमस्ते दुनिया", "भारत यात्रा", "Noto Sans Devanagari ytap")])
def test_burned_captions_draw_each_script_with_no_system_font(tmp_path: Path, a: str, b: str, face: str) -> None:
    assert f"\\fn{face}" in build_ass([Cue(0, 1000, (a,))], CaptionLayout.for_size(320, 180))
    first, second = _burn(tmp_path, (a,), "a"), _burn(tmp_path, (b,), "b")
    region = (0, 120, 320, 180)
    ink = [_bright(im.crop(region), 230) for im in (first, second)]
    assert min(ink) > 20
    assert ImageChops.difference(first.crop(region), second.crop(region)).getbbox() is not None


@needs_raqm
def test_a_caption_of_a_right_to_left_narration_that_starts_with_a_latin_word_runs_right_to_left(
        tmp_path: Path) -> None:
    def burn(cues: list[Cue], name: str) -> Image.Image:
        layout = CaptionLayout.for_size(640, 360)
        ass = tmp_path / f"{name}.ass"
        ass.write_text(build_ass(cues, layout), encoding="utf-8")
        conf = tmp_path / "fonts.conf"
        conf.write_text(f'<?xml version="1.0"?><fontconfig><cachedir>{tmp_path}/fc</cachedir></fontconfig>')
        png = tmp_path / f"{name}.png"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", "1", "-f", "lavfi", "-i", "color=c=black:s=640x360:d=1",
                        "-vf", f"ass=filename={ass}:fontsdir={F.FONT_DIR}", "-frames:v", "1", "-y", str(png)],
                       check=True, capture_output=True, env={"FONTCONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin"})
        return Image.open(png).convert("L").filter(ImageFilter.GaussianBlur(1.5))  # blind to sub-pixel placement

    line = "Python في عشر"
    word = burn([Cue(0, 1000, ("Python",))], "word")
    arabic = [Cue(0, 1000, (line,)), Cue(1000, 2000, ("تعلم البرمجة خطوة بخطوة",))]  # an Arabic narration
    english = [Cue(0, 1000, (line,)), Cue(1000, 2000, ("Learn to code step by step",))]
    assert _where(burn(arabic, "arabic"), word) == "right"  # read first, on the right
    assert _where(burn(english, "english"), word) == "left"  # the same cue in a left-to-right narration


def test_caption_base_direction_follows_the_text() -> None:
    ass = build_ass([Cue(0, 1000, ("مرحبا YouTube",))], CaptionLayout.for_size(320, 180))
    assert all(line.endswith(",-1") for line in ass.splitlines() if line.startswith("Style:"))  # libass: auto


def test_a_fonts_folder_for_libass_holds_only_the_faces_the_captions_switch_to() -> None:
    from core.media.captions import fallback_faces_in

    layout = CaptionLayout.for_size(320, 180)
    assert fallback_faces_in(build_ass([Cue(0, 1000, ("Lighthouses guide ships",))], layout)) == ()
    mixed = build_ass([Cue(0, 1000, ("مرحبا بكم",)), Cue(1000, 2000, ("東京の夜景",))], layout)
    assert sorted(p.name for p in fallback_faces_in(mixed)) == ["NotoSansArabic-Bold.subset.ttf",
                                                                "NotoSansCJKjp-Bold.subset.otf"]
