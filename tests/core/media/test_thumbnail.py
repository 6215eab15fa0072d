"""Thumbnails: format, design, layout/legibility and input handling. Offline, Pillow only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from core.errors import InputError, MediaError, StorageError
from core.media import thumbnail as th
from core.media.thumbnail import layout
from core.media.thumbnail import (
    BADGE_BOX,
    HEIGHT,
    MAX_BYTES,
    SAFE_BOX,
    WIDTH,
    choose_palette,
    compose_thumbnail,
    encode_jpeg,
    layout_title,
    render_background,
    render_thumbnail,
)

SHORT = "How Lighthouses Work"
MEDIUM = "The Secret Life of Octopuses"
LONG_90 = "Why Ancient Roman Concrete Still Outlasts Modern Highways After Two Thousand Years of Rain"
LONG_100 = "Everything You Never Knew About the Deep Ocean Creatures That Live Below Eleven Thousand Meters Down"
assert len(LONG_90) == 90 and len(LONG_100) == 100


def _inside(box, outer) -> bool:
    return box[0] >= outer[0] and box[1] >= outer[1] and box[2] <= outer[2] and box[3] <= outer[3]


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _words(s: str) -> str:
    return " ".join(s.split()).upper()


@pytest.fixture(scope="module")
def short_jpeg(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("thumb") / "thumb.jpg.part"  # the caller's temp name
    render_thumbnail(out, title=SHORT)
    return out


# --------------------------------------------------------------------------- the file


def test_output_is_baseline_rgb_jpeg_1280x720_under_2mb(short_jpeg: Path) -> None:
    assert short_jpeg.stat().st_size < MAX_BYTES == 2 * 1024 * 1024  # YouTube's 2 MB (core.media.formats)
    assert short_jpeg.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(short_jpeg) as im:
        assert im.format == "JPEG"
        assert im.size == (WIDTH, HEIGHT) == (1280, 720)
        assert im.mode == "RGB"
        assert "A" not in im.getbands()
        assert not im.info.get("progressive") and not im.info.get("progression")
        assert "icc_profile" not in im.info  # untagged RGB is read as sRGB


def test_writes_exactly_out_path(tmp_path: Path) -> None:
    out = tmp_path / "x.part"
    render_thumbnail(out, title="Hello World")
    assert [p.name for p in tmp_path.iterdir()] == ["x.part"]


def test_encode_lowers_quality_until_under_the_limit() -> None:
    noise = Image.merge("RGB", [Image.effect_noise((WIDTH, HEIGHT), 90) for _ in range(3)])
    big = encode_jpeg(noise, max_bytes=10**9)
    assert len(big) > 400_000
    small = encode_jpeg(noise, max_bytes=400_000)
    assert len(small) < 400_000
    with Image.open(io.BytesIO(small)) as im:
        assert im.format == "JPEG" and im.size == (WIDTH, HEIGHT)


def test_unwritable_out_path_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        render_thumbnail(tmp_path / "no" / "such" / "dir" / "t.jpg", title="Hello")


# --------------------------------------------------------------------------- the design


def test_generated_background_is_designed_not_flat() -> None:
    bg = render_background(SHORT)
    assert bg.size == (WIDTH, HEIGHT) and bg.mode == "RGB"
    stddev = ImageStat.Stat(bg.convert("L")).stddev[0]
    assert stddev > 12, stddev
    # Not just a gradient either: the two halves differ, and there is local structure.
    left = ImageStat.Stat(bg.crop((0, 0, WIDTH // 2, HEIGHT)).convert("L")).mean[0]
    right = ImageStat.Stat(bg.crop((WIDTH // 2, 0, WIDTH, HEIGHT)).convert("L")).mean[0]
    assert abs(left - right) > 8


def test_background_is_deterministic_and_differs_between_titles() -> None:
    a1, a2 = render_background(SHORT), render_background(SHORT)
    assert ImageChops.difference(a1, a2).getbbox() is None
    b = render_background(MEDIUM)
    diff = ImageStat.Stat(ImageChops.difference(a1, b).convert("L")).mean[0]
    assert diff > 10, diff
    # Style text seeds the hash too.
    c = render_background(SHORT, "documentary")
    assert ImageStat.Stat(ImageChops.difference(a1, c).convert("L")).mean[0] > 5


@pytest.mark.parametrize("word", ["red", "blue", "green", "purple", "tech", "warm", "dark", "bright"])
def test_style_words_steer_the_palette(word: str) -> None:
    tag = {"red": "red", "blue": "blue", "green": "green", "purple": "purple", "tech": "tech",
           "warm": "warm", "dark": "dark", "bright": "bright"}[word]
    for title in (SHORT, MEDIUM, LONG_90):
        assert tag in choose_palette(title, word).tags


def test_title_region_has_high_contrast(short_jpeg: Path) -> None:
    lay = layout_title(SHORT)
    with Image.open(short_jpeg) as im:
        region = im.convert("L").crop(lay.title_box)
    hist = region.histogram()
    n = sum(hist)
    bright = sum(hist[230:]) / n  # white / yellow fill
    dark = sum(hist[:40]) / n  # the stroke
    assert bright > 0.10, bright
    assert dark > 0.10, dark


def test_text_contrast_over_a_bright_background_image(tmp_path: Path) -> None:
    white = tmp_path / "white.png"
    Image.new("RGB", (800, 800), (250, 250, 250)).save(white)
    out = tmp_path / "t.jpg"
    render_thumbnail(out, title=MEDIUM, background=white)
    lay = layout_title(MEDIUM)
    with Image.open(out) as im:
        region = im.convert("L").crop(lay.line_boxes[0])
    lo, hi = region.getextrema()
    assert hi >= 235 and lo <= 30


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize("title", ["Why", SHORT, MEDIUM, LONG_90, LONG_100])
@pytest.mark.parametrize("subtitle", [None, "Explained in 3 minutes"])
@pytest.mark.parametrize("style", [None, "center"])
def test_layout_stays_in_safe_area_and_out_of_badge(title: str, subtitle: str | None, style: str | None) -> None:
    lay = layout_title(title, subtitle, style=style)
    assert 1 <= len(lay.lines) <= 3
    assert _words(" ".join(lay.lines)) == _words(title)  # nothing dropped: it all fits
    for box in lay.boxes:
        assert _inside(box, SAFE_BOX), (box, SAFE_BOX)
        assert not _overlaps(box, BADGE_BOX), (box, BADGE_BOX)
    if subtitle:
        assert lay.subtitle == subtitle
        assert lay.subtitle_box is not None and lay.subtitle_box[1] > lay.title_box[3]


def test_layout_boxes_match_what_is_drawn() -> None:
    lay = layout_title(SHORT)
    canvas = Image.new("L", (WIDTH, HEIGHT), 0)
    from PIL import ImageDraw, ImageFont

    f = ImageFont.truetype(lay.font_path, lay.font_size)
    d = ImageDraw.Draw(canvas)
    for origin, line in zip(lay.origins, lay.lines):
        d.text(origin, line, font=f, fill=255, anchor="ls", stroke_width=lay.stroke_width, stroke_fill=255)
    ink = canvas.getbbox()
    assert ink is not None
    tb = lay.title_box
    assert all(abs(a - b) <= 2 for a, b in zip(ink, tb)), (ink, tb)


def test_font_is_as_large_as_fits() -> None:
    lay = layout_title(SHORT)
    assert lay.font_size >= 120  # three short words fill the frame
    long = layout_title(LONG_100)
    assert th.MIN_TITLE_SIZE <= long.font_size < lay.font_size
    # One size more would not fit the same lines (the binary search found the maximum),
    # unless the size cap was reached.
    bigger = layout._place(long.lines, long.font_size + 1, long.font_path,
                       uppercase=long.uppercase, align=long.align, subtitle=None)
    assert bigger is None


def test_badge_corner_is_kept_clear_even_when_text_would_reach_it() -> None:
    # Tall title + a pill wide enough to reach under the badge: centred, the block would
    # run into the badge corner, so it is lifted (and sized) to end just above it.
    lay = layout_title("Blue Whales Sing", "The complete guide to the giants of the deep ocean")
    assert lay.subtitle_box is not None
    assert lay.subtitle_box[2] > BADGE_BOX[0]  # horizontally, the pill does reach the badge column
    for box in lay.boxes:
        assert not _overlaps(box, BADGE_BOX)
        assert _inside(box, SAFE_BOX)
    centred_top = SAFE_BOX[1] + round((SAFE_BOX[3] - SAFE_BOX[1] - (lay.block_box[3] - lay.block_box[1])) * 0.46)
    assert lay.block_box[1] < centred_top  # it was lifted


@pytest.mark.parametrize(
    "title",
    [SHORT, MEDIUM, "Why Cats Purr", "Build a CPU from Scratch", "Quantum Computing in 5 Minutes",
     "Inside the Mind of a Chess Grandmaster"],
)
def test_title_is_legible_at_320_px_wide(title: str) -> None:
    assert 3 <= len(title.split()) <= 7
    lay = layout_title(title)
    assert lay.cap_height_at(320) >= 12, (title, lay.font_size, lay.cap_height_at(320))


def test_long_titles_stay_readable_at_320_px_wide() -> None:
    for title in (LONG_90, LONG_100):
        assert layout_title(title).cap_height_at(320) >= 9


def test_rendered_title_measures_legible_after_downscale(short_jpeg: Path) -> None:
    """Measure the drawn cap height on a 320x180 downscale, not just the layout's number."""
    lay = layout_title(SHORT)
    with Image.open(short_jpeg) as im:
        small = im.convert("L").resize((320, 180), Image.Resampling.LANCZOS)
    x0, y0, x1, y1 = (round(v / 4) for v in lay.line_boxes[0])  # first line, white
    rows = 0
    for y in range(y0, y1):
        row = [small.getpixel((x, y)) for x in range(x0, x1)]
        if sum(v > 200 for v in row) >= 3:
            rows += 1
    assert rows >= 12, rows


def test_uppercase_is_a_style_choice() -> None:
    assert layout_title(SHORT).lines == ("HOW", "LIGHTHOUSES", "WORK")
    kept = layout_title(SHORT, style="nocaps")
    assert not kept.uppercase and "Lighthouses" in " ".join(kept.lines)
    assert layout_title(LONG_100, style="caps").uppercase


def test_very_long_text_is_shortened_not_overflowing() -> None:
    lay = layout_title("word " * 120)
    assert lay.lines[-1].endswith("\u2026") and len(lay.lines) <= 3
    lay = layout_title("X" * 300)  # one unbreakable word
    assert len(lay.lines) <= 3
    for box in lay.boxes:
        assert _inside(box, SAFE_BOX) and not _overlaps(box, BADGE_BOX)


def test_subtitle_pill_is_fitted() -> None:
    sub = "A very long subtitle that goes on and on and on and on and on forever and ever and ever"
    lay = layout_title(SHORT, sub)
    assert lay.subtitle and lay.subtitle_box and _inside(lay.subtitle_box, SAFE_BOX)
    assert layout_title(SHORT, "   ").subtitle is None


# --------------------------------------------------------------------------- unicode


@pytest.mark.parametrize(
    "title",
    ["Élan, façade & naïve café", "Как работают маяки", "Πώς λειτουργούν οι φάροι", "Rocket Science 🚀 for Kids 👩‍🚀"],
)
def test_unicode_titles_render(tmp_path: Path, title: str) -> None:
    out = tmp_path / "u.jpg"
    render_thumbnail(out, title=title, subtitle="Ünïcødé — ΑΒΓ — ЖЗИ")
    with Image.open(out) as im:
        assert im.size == (WIDTH, HEIGHT)


def test_a_title_of_emoji_only_is_refused_not_drawn_as_boxes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to draw once emoji are removed"):
        render_thumbnail(tmp_path / "u.jpg", title="🚀🚀🚀")


def test_emoji_are_dropped_when_the_font_lacks_them() -> None:
    lay = layout_title("Rocket Science 🚀 for Kids")
    assert "🚀" not in " ".join(lay.lines)
    assert _words(" ".join(lay.lines)) == "ROCKET SCIENCE FOR KIDS"


def test_greek_capitals_lose_tonos() -> None:
    assert "ΠΩΣ" in " ".join(layout_title("Πώς λειτουργούν οι φάροι").lines)


# --------------------------------------------------------------------------- background images


def test_non_16x9_background_image_is_cover_fitted(tmp_path: Path) -> None:
    # Portrait, with alpha: top half red, bottom half blue.
    src = tmp_path / "portrait.png"
    im = Image.new("RGBA", (600, 1100), (220, 20, 20, 255))
    im.paste((20, 40, 220, 255), (0, 550, 600, 1100))
    im.save(src)
    out = tmp_path / "t.jpg"
    render_thumbnail(out, title="Hi", background=src)
    with Image.open(out) as res:
        assert res.size == (WIDTH, HEIGHT) and res.mode == "RGB"
        top = res.getpixel((WIDTH - 250, 120))
        bottom = res.getpixel((WIDTH - 250, HEIGHT - 150))
    assert top[0] > top[2] + 60, top  # red stays red (darkened, not replaced)
    assert bottom[2] > bottom[0] + 60, bottom


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "LA"])
def test_background_image_modes(tmp_path: Path, mode: str) -> None:
    src = tmp_path / ("bg.tif" if mode in ("CMYK", "I;16") else "bg.png")
    base = Image.linear_gradient("L").resize((1500, 500))
    if mode == "I;16":
        im = base.convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        im = base.convert(mode)
    im.save(src)
    img = compose_thumbnail(title="Modes", background=src)
    assert img.size == (WIDTH, HEIGHT) and img.mode == "RGB"
    # The gradient survives on the right, where no text is.
    assert ImageStat.Stat(img.crop((WIDTH // 2, 0, WIDTH, HEIGHT)).convert("L")).stddev[0] > 10


def test_background_image_with_icc_profile(tmp_path: Path) -> None:
    from PIL import ImageCms

    src = tmp_path / "tagged.jpg"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (2000, 2000), (30, 160, 90)).save(src, icc_profile=icc)
    img = compose_thumbnail(title="Tagged", background=src)
    r, g, b = img.getpixel((WIDTH - 40, HEIGHT // 2))
    assert g > r + 40 and g > b + 20


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("title", ["", "   ", "\n\t ", "\u200d"])
def test_empty_title_is_an_input_error(tmp_path: Path, title: str) -> None:
    with pytest.raises(InputError):
        render_thumbnail(tmp_path / "t.jpg", title=title)
    assert not (tmp_path / "t.jpg").exists()


def test_non_string_title_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        render_thumbnail(tmp_path / "t.jpg", title=None)  # type: ignore[arg-type]


def test_missing_background_is_a_media_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(MediaError, match="not found") as exc:
        render_thumbnail(tmp_path / "t.jpg", title="Hello", background=missing)
    assert str(missing) in exc.value.message


@pytest.mark.parametrize("content", [b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_background_is_a_media_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(MediaError, match="background image"):
        render_thumbnail(tmp_path / "t.jpg", title="Hello", background=bad)
    assert not (tmp_path / "t.jpg").exists()


def test_truncated_background_is_a_media_error(tmp_path: Path) -> None:
    good = io.BytesIO()
    Image.effect_noise((400, 400), 50).convert("RGB").save(good, format="JPEG")
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(good.getvalue()[:600])
    with pytest.raises(MediaError):
        render_thumbnail(tmp_path / "t.jpg", title="Hello", background=bad)


def test_directory_as_background_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        render_thumbnail(tmp_path / "t.jpg", title="Hello", background=tmp_path)


def test_bad_font_is_an_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.otf"
    fake.write_bytes(b"not a font")
    with pytest.raises(InputError, match="font"):
        layout_title("Hello", font=fake)


def test_custom_font_is_used(tmp_path: Path) -> None:
    from core.media.fonts import font_path

    lay = layout_title(SHORT, font=font_path("text"))
    assert lay.font_path == str(font_path("text"))


# --------------------------------------------------------------------------- fonts


@pytest.fixture(scope="module")
def aileron(tmp_path_factory) -> Path:
    """A font unlike Inter that may ship in tests: Aileron Regular (CC0), embedded in Pillow."""
    from PIL import ImageFont

    path = tmp_path_factory.mktemp("fonts") / "aileron.ttf"
    path.write_bytes(ImageFont.load_default(20).font_bytes)
    return path


@pytest.mark.parametrize("title", [SHORT, LONG_100])
def test_imported_font_is_drawn_and_the_title_still_fits(aileron: Path, title: str) -> None:
    lay = layout_title(title, "Explained", font=aileron)
    assert lay.font_path == str(aileron)
    assert _words(" ".join(lay.lines)) == _words(title)
    for box in lay.boxes:
        assert _inside(box, SAFE_BOX) and not _overlaps(box, BADGE_BOX), box
    default = compose_thumbnail(title=title, subtitle="Explained")
    mine = compose_thumbnail(title=title, subtitle="Explained", font=aileron)
    diff = ImageChops.difference(default, mine).convert("L").point(lambda v: 255 if v > 60 else 0)
    assert diff.getbbox() is not None and sum(diff.histogram()[255:]) > 5000  # other letterforms, not noise


def test_font_replaced_under_the_same_name_is_not_drawn_from_a_stale_cache(tmp_path: Path, aileron: Path) -> None:
    import os

    font = tmp_path / "mine.ttf"
    font.write_bytes(aileron.read_bytes())
    assert layout._font(str(font), 100).getname()[0] == "Aileron"
    first = layout_title(SHORT, font=font)
    tmp = tmp_path / "mine.ttf.part"
    tmp.write_bytes(layout.font_path("display").read_bytes())
    os.replace(tmp, font)  # what a re-import does
    assert layout._font(str(font), 100).getname()[0] == "Inter Display"
    assert layout_title(SHORT, font=font).line_boxes != first.line_boxes
