"""Text as written on every surface (issue 20, finding 5): backslashes, emoji, long tokens, bidi
controls and markup, checked by rendering and reading the pixels, not by trusting the escapes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import anyio
import av
import pytest
from PIL import Image

from core.jobs import JobHandle
from core.media import captions as C
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from core.media.placeholder import _layout, normalise_text, render_title_card
from core.media.srt import to_srt
from core.media.text import EMOJI_NOTE, MIN_LEGIBLE_SHARE, as_written, notes_for, strip_markup
from core.schemas import AssemblyRequest, SegmentTiming, ThumbnailRequest, WordTiming
from core.services import assembly
from core.services.thumbnails import make_thumbnail, prepare as prepare_thumbnail
from tests.core.media.test_captions import _dialogues

W, H = 640, 360


def _burn(tmp_path: Path, ass: str, name: str = "f") -> Image.Image:
    """The first frame of a grey picture with ``ass`` burned in by libass, as greyscale."""
    (tmp_path / f"{name}.ass").write_text(ass, "utf-8")
    out = tmp_path / f"{name}.png"
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=0x404040:s={W}x{H}:d=0.1", "-vf",
                f"ass=filename={tmp_path / f'{name}.ass'}:fontsdir={C.FONTS_DIR}", "-frames:v", "1", str(out)])
    return Image.open(out).convert("L")


def _ink(img: Image.Image, threshold: int = 200) -> list[tuple[int, int]]:
    px = img.load()
    return [(x, y) for y in range(img.height) for x in range(img.width) if px[x, y] > threshold]


def _lean(points: list[tuple[int, int]]) -> float:
    """How the ink's x moves as y grows (least squares slope): > 0 leans like \\, < 0 like /, ~0 upright."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    cov = sum((x - mx) * (y - my) for x, y in points)
    var = sum((y - my) ** 2 for _, y in points)
    return cov / var


def _overlay_ass(text: str) -> str:
    return C.build_ass([], C.CaptionLayout.for_size(W, H), [C.OverlayText(text, 0.0, 1.0, "center")])


# --- backslash ---------------------------------------------------------------------------------


def test_backslash_in_an_overlay_draws_a_backslash_not_a_box(tmp_path: Path) -> None:
    back = _ink(_burn(tmp_path, _overlay_ass("\\"), "back"))
    slash = _ink(_burn(tmp_path, _overlay_ass("/"), "slash"))
    assert back and slash
    assert _lean(back) > 0.2 and _lean(slash) < -0.2  # a box (U+29F5 in a font without it) leans neither way
    # As much ink as the slash (its mirror image), not a box's outline.
    assert 0.7 < len(back) / len(slash) < 1.4


def test_backslash_before_n_and_braces_stay_text_in_captions(tmp_path: Path) -> None:
    L = C.CaptionLayout.for_size(W, H)
    one_line = _ink(_burn(tmp_path, C.build_ass([C.Cue(0, 1000, ("C:\\new {x}",))], L), "one"))
    ys = [y for _, y in one_line]
    assert max(ys) - min(ys) < L.font_size * 1.3  # "\n" did not break the line, "{x}" was not eaten
    xs = [x for x, _ in one_line]
    plain = _ink(_burn(tmp_path, C.build_ass([C.Cue(0, 1000, ("C:/new {x}",))], L), "plain"))
    assert abs((max(xs) - min(xs)) - (max(x for x, _ in plain) - min(x for x, _ in plain))) < 8


def _card_title(tmp_path: Path, prompt: str, name: str) -> Image.Image:
    out = tmp_path / f"{name}.mp4"
    render_title_card(out, prompt=prompt, scene_index=1, duration_s=1.0, width=W, height=H, fps=30)
    with av.open(str(out)) as c:
        last = list(c.decode(video=0))[-1].to_image().convert("L")
    band = _layout(prompt, 1, W, H).title[0]
    return last.crop((band.x, band.y, band.x + band.w, band.y + band.h))


def test_backslash_on_a_scene_card_draws_a_backslash(tmp_path: Path) -> None:
    back = _ink(_card_title(tmp_path, "\\", "back"), 230)
    slash = _ink(_card_title(tmp_path, "/", "slash"), 230)
    assert back and slash and _lean(back) > 0.2 and _lean(slash) < -0.2


# --- emoji -------------------------------------------------------------------------------------


def test_as_written_removes_whole_emoji_sequences_and_says_so() -> None:
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # man ZWJ woman ZWJ girl
    cases = {
        "Launch day \U0001F680": "Launch day ",
        f"a {family} b": "a b",
        "thumbs \U0001F44D\U0001F3FD up": "thumbs up",
        "flag \U0001F1EB\U0001F1F7 here": "flag here",
        "star \u2b50\ufe0f!": "star !",
        "keycap 1\ufe0f\u20e3": "keycap 1",
    }
    for text, expected in cases.items():
        w = as_written(text)
        assert (w.text, w.emoji_removed, w.notes) == (expected, True, [EMOJI_NOTE]), text
    # What the font draws stays: these are text, and the result says nothing.
    for text in ("\u00a9 2026 ACME\u2122", "left \u2194 right", "C:\\path", "\u00e9t\u00e9 \u2014 \u041f\u0440\u0438"):
        assert as_written(text).text == text and not as_written(text).emoji_removed
    assert notes_for("no emoji", None) == [] and notes_for("\U0001F600", "x") == [EMOJI_NOTE]


def test_emoji_are_removed_from_captions_overlays_srt_and_cards() -> None:
    L = C.CaptionLayout.for_size(W, H)
    seg = _seg("Blast off \U0001F680 now!")
    srt = to_srt([seg])
    ass = C.build_ass(C.caption_cues([seg], L), L, [C.OverlayText("Wow \U0001F929", 0.0, 1.0, "top")])
    for text in (srt, ass):
        assert not re.search("[\U0001F000-\U0001FAFF]", text)
    assert "Blast off now!" in srt and "Wow" in ass
    assert C.text_notes([seg], []) == [EMOJI_NOTE] and C.text_notes([_seg("plain")], []) == []
    assert _layout("A \U0001F680", 1, W, H).lines == _layout("A", 1, W, H).lines == ["A"]


# --- long tokens -------------------------------------------------------------------------------


def test_long_token_in_an_overlay_is_broken_not_shrunk_to_nothing(tmp_path: Path) -> None:
    L = C.CaptionLayout.for_size(W, H)
    ass = _overlay_ass("X" * 200)
    (_, _, text), = _dialogues(ass, "Overlay")
    m = re.search(r"\\fs(\d+)", text)
    size = int(m.group(1)) if m else L.overlay_font_size
    assert size >= MIN_LEGIBLE_SHARE * L.overlay_font_size
    lines = re.sub(r"\{[^}]*\}", "", text).split("\\N")
    assert len(lines) > 1 and "".join(lines) == "X" * 200
    assert all(C.text_width_px(line, size) <= L.box_width for line in lines)
    # On the frame: an X as tall as the legible minimum, not a 1 px smear.
    img = _burn(tmp_path, ass, "xs")
    first_row = [y for x, y in _ink(img)]
    assert first_row
    row_height = _first_run_height(img)
    assert row_height >= 0.5 * MIN_LEGIBLE_SHARE * L.overlay_font_size, row_height


def _first_run_height(img: Image.Image) -> int:
    """Height of the topmost band of rows with ink (one line of text)."""
    px = img.load()
    rows = [any(px[x, y] > 200 for x in range(img.width)) for y in range(img.height)]
    top = rows.index(True)
    end = top
    while end < len(rows) and rows[end]:
        end += 1
    return end - top


# --- bidi controls -----------------------------------------------------------------------------


def test_bidi_controls_are_removed_the_same_on_every_surface(tmp_path: Path) -> None:
    spoof = "A\u202eBCD\u202c E\u2067F\u2069\u200f"
    L = C.CaptionLayout.for_size(W, H)
    assert as_written(spoof).text == "ABCD EF"
    assert normalise_text(spoof) == "ABCD EF"
    assert "ABCD EF" in to_srt([_seg(spoof)])
    # Burned in: exactly the pixels of the plain text (libass would have reversed "BCD").
    burned = _burn(tmp_path, C.build_ass([C.Cue(0, 1000, (spoof,))], L), "spoof")
    plain = _burn(tmp_path, C.build_ass([C.Cue(0, 1000, ("ABCD EF",))], L), "plain")
    assert burned.tobytes() == plain.tobytes()


# --- markup in the .srt ------------------------------------------------------------------------


def test_srt_carries_plain_text_even_when_markup_is_split_across_words() -> None:
    text = '<font color="red">Hello</font> <i>big</i> {\\an8}world, <b>bold</b> 1 < 2'
    srt = to_srt([_seg(text)], max_chars_per_line=12, max_lines=1)  # many cues: tags split across them
    body = "\n".join(line for cue in C.parse_srt(srt) for line in cue.lines)
    assert "<" not in body.replace("1 < 2", "") and "{" not in body and "\\" not in body, srt
    words = body.split()
    assert words == ["Hello", "big", "world,", "bold", "1", "<", "2"], words  # a comparison is text: kept
    assert strip_markup("<<i>i>x") == "x"


def _seg(text: str) -> SegmentTiming:
    tokens = text.split()
    step = 0.4
    ws = [WordTiming(text=t, start_s=round(i * step, 3), end_s=round((i + 1) * step, 3)) for i, t in enumerate(tokens)]
    return SegmentTiming(index=1, text=text, start_s=0.0, end_s=len(tokens) * step, words=ws)


@pytest.fixture(autouse=True)
def _no_system_fonts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """libass falls back to fontconfig's fonts for a glyph Inter lacks; an empty fontconfig shows
    what a machine with no system fonts draws (the box this suite must never see)."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><fontconfig><cachedir>' + str(tmp_path / "fc") + "</cachedir></fontconfig>")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))


def test_thumbnail_result_says_emoji_were_removed(runtime) -> None:

    def make(title: str):
        req = ThumbnailRequest(video_id="t", title=title, providers=["local:pillow"], fresh=True)
        return anyio.run(make_thumbnail, runtime, prepare_thumbnail(runtime, req), JobHandle(job_id="job_" + "b" * 20, kind="make_thumbnail"))

    with_emoji = make("Launch day \U0001F680")
    assert with_emoji.notes == [EMOJI_NOTE] and with_emoji.title == "Launch day \U0001F680"
    assert make("Launch day").notes == []


def test_assembly_result_says_emoji_were_removed_from_overlays(runtime, tmp_path: Path) -> None:

    paths = runtime.paths("default", "a")
    paths.ensure()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=0x505050:s=640x360:r=30:d=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(paths.scenes_dir / "s.mp4")],
                   check=True, capture_output=True)
    req = AssemblyRequest(video_id="a", scenes=["scenes/s.mp4"], height=720, captions=False,
                          overlays=[{"text": "Wow \U0001F929 \\o/", "start_s": 0, "end_s": 1, "position": "top"}])
    plan = assembly.prepare(runtime, req)
    result = anyio.run(assembly.assemble_video, runtime, plan, JobHandle(job_id="job_" + "c" * 20, kind="assemble"))
    assert EMOJI_NOTE in result.notes
