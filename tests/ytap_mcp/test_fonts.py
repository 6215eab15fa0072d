"""Fonts through the SDK's in-memory client: import a font, draw a thumbnail title and captions in it."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image, ImageChops, ImageFont

from core.assets.props import ThumbnailProps
from core.config import Settings
from core.media import videograph
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from core.media.fonts import font_path
from core.media.thumbnail import BADGE_BOX, SAFE_BOX, layout_title
from core.media.timeline import Timeline
from tests.mcp_helpers import error_text, ok
from ytap_mcp.server import YtapServer

TITLE = "How Lighthouses Work"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp_font_root").resolve()
    # Aileron Regular (CC0), the font Pillow embeds: unlike Inter, and free to ship in tests.
    aileron = ImageFont.load_default(20).font_bytes
    (root / "aileron.ttf").write_bytes(aileron)
    # Another file under the same name, to import over the first: a later revision (head.fontRevision).
    head = aileron.index(b"head") + 8
    at = int.from_bytes(aileron[head : head + 4], "big") + 4
    (root / "other").mkdir()
    (root / "other" / "aileron.ttf").write_bytes(aileron[:at] + b"\x00\x02\x00\x00" + aileron[at + 4 :])
    # And another font with the same stem.
    shutil.copyfile(font_path("display"), root / "aileron.otf")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1.5", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", str(root / "clip.mp4")])
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=220:r=48000:d=1.5", "-ac", "1", str(root / "voice.wav")])
    return root


@pytest.fixture
def settings(tmp_path: Path, media: Path) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(media),
                              "YTAP_X264_PRESET": "ultrafast"})




def _pixels(path: str) -> Image.Image:
    with Image.open(io.BytesIO(Path(path).read_bytes())) as im:
        return im.convert("RGB")


def _changed(a: Image.Image, b: Image.Image) -> int:
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 60 else 0)
    return diff.histogram()[255]


def _fontselect(ass: str, fonts_dir: Path, tmp_path: Path) -> list[str]:
    """libass's font choices for ``ass`` over one frame (the assembly's own filter), from ffmpeg's verbose log."""
    (tmp_path / "c.ass").write_text(ass, encoding="utf-8")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "verbose", "-f", "lavfi", "-i",
                           "color=c=0x404040:s=1280x720:d=0.1", "-vf",
                           f"ass=filename={tmp_path / 'c.ass'}:fontsdir={fonts_dir}", "-frames:v", "1", "-f", "null",
                           "-"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.split("fontselect: ", 1)[1] for line in proc.stderr.splitlines() if "fontselect: " in line]


def test_tool_schemas_offer_the_fonts(server: YtapServer) -> None:
    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            return {t.name: t.input_schema for t in (await client.list_tools()).tools}

    schemas = anyio.run(main)
    # The fonts are named once, on make_thumbnail's font; caption_font points there and names its default.
    font = schemas["make_thumbnail"]["properties"]["font"]["description"]
    assert "inter-display-black" in font and "inter-bold" in font and "kind=font" in font
    caption_font = schemas["assemble_video"]["properties"]["caption_font"]["description"]
    assert "make_thumbnail's font" in caption_font and "inter-bold" in caption_font
    for tool, param in (("make_thumbnail", "font"), ("assemble_video", "caption_font")):
        assert param not in schemas[tool].get("required", [])


def test_thumbnail_in_an_imported_font(server: YtapServer, media: Path) -> None:
    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            out: dict[str, Any] = {}
            font = await ok(client, "import_asset", {"video_id": "mine", "source": "aileron.ttf", "kind": "font"})
            out["font"] = font
            default = await ok(client, "make_thumbnail", {"video_id": "mine", "title": TITLE})
            out["default"], out["default_px"] = default, _pixels(default["path"])
            mine = await ok(client, "make_thumbnail", {"video_id": "mine", "title": TITLE, "font": "aileron"})
            out["mine"], out["mine_px"] = mine, _pixels(mine["path"])
            out["again"] = await ok(client, "make_thumbnail", {"video_id": "mine", "title": TITLE,
                                                                "font": font["uri"]})
            # Another file imported under the same name: the cache key follows the bytes.
            await ok(client, "import_asset", {"video_id": "mine", "source": str(media / "other" / "aileron.ttf"),
                                               "kind": "font"})
            out["revised"] = await ok(client, "make_thumbnail", {"video_id": "mine", "title": TITLE,
                                                                  "font": "fonts/aileron.ttf"})
            # Two imported fonts share the stem: the stem is ambiguous, a ref is not.
            await ok(client, "import_asset", {"video_id": "mine", "source": "aileron.otf", "kind": "font"})
            out["ambiguous"] = await error_text(client, "make_thumbnail", {"video_id": "mine", "title": TITLE,
                                                                       "font": "aileron"})
            other = await ok(client, "make_thumbnail", {"video_id": "mine", "title": TITLE,
                                                         "font": "fonts/aileron.otf"})
            out["other"], out["other_px"] = other, _pixels(other["path"])
            return out

    out = anyio.run(main)
    font = out["font"]
    assert (font["uri"], font["font_name"]) == ("ytap://default/mine/fonts/aileron.ttf", "Aileron Regular")
    assert out["default"]["font"] == "inter-display-black" and not out["default"]["cached"]
    mine = out["mine"]
    assert (mine["font"], mine["cached"], mine["provider"]) == ("fonts/aileron.ttf", False, "local:pillow")
    assert _changed(out["default_px"], out["mine_px"]) > 5000  # the title is drawn in other letterforms
    assert out["again"]["cached"] and out["again"]["font"] == "fonts/aileron.ttf"  # by uri: the same font
    assert not out["revised"]["cached"] and out["revised"]["font"] == "fonts/aileron.ttf"
    assert "fonts/aileron.otf, fonts/aileron.ttf" in out["ambiguous"]
    assert out["other"]["font"] == "fonts/aileron.otf" and _changed(out["mine_px"], out["other_px"]) > 5000
    # The title still fits: laid out in that font, every box is inside the safe area and clear of the badge.
    lay = layout_title(TITLE, font=Path(font["path"]).parent / "aileron.ttf")
    assert len(lay.lines) <= 3 and all(
        b[0] >= SAFE_BOX[0] and b[1] >= SAFE_BOX[1] and b[2] <= SAFE_BOX[2] and b[3] <= SAFE_BOX[3]
        and not (b[0] < BADGE_BOX[2] and BADGE_BOX[0] < b[2] and b[1] < BADGE_BOX[3] and BADGE_BOX[1] < b[3])
        for b in lay.boxes)
    # The asset on record names the font it was drawn with, down to the file's bytes.
    (row,) = server.runtime.registry.assets.current("default", "mine", "thumbnail")
    recorded = row.props_of(ThumbnailProps).font
    assert recorded is not None
    assert (recorded.name, recorded.family, recorded.weight) == ("fonts/aileron.otf", "Inter Display Black", 900)
    assert recorded.sha256 == hashlib.sha256((media / "aileron.otf").read_bytes()).hexdigest()


@pytest.mark.slow
def test_assembly_captions_in_an_imported_font(server: YtapServer, media: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    write = videograph.write_captions  # each chunk of the picture writes its slice of the captions

    def spy(tl: Timeline, work_dir: Path) -> None:
        write(tl, work_dir)
        seen["ass"] = tl.captions_ass
        if (work_dir / "fonts").is_dir():
            seen["fonts"] = sorted(p.name for p in (work_dir / "fonts").iterdir())
            shutil.copytree(work_dir / "fonts", tmp_path / "libass_fonts")

    monkeypatch.setattr(videograph, "write_captions", spy)

    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            await ok(client, "import_asset", {"video_id": "cap", "source": "aileron.ttf", "kind": "font"})
            await ok(client, "import_asset", {"video_id": "cap", "source": "clip.mp4", "kind": "scene",
                                               "scene_index": 1, "wait_seconds": 30})
            await ok(client, "import_asset", {"video_id": "cap", "source": "voice.wav", "kind": "narration",
                                               "transcript": "Lighthouses guide the ships home."})
            final = await ok(client, "assemble_video", {"video_id": "cap", "caption_font": "aileron", "height": 720,
                                                         "hardware_encoder": False, "wait_seconds": 40})
            bad = await error_text(client, "assemble_video", {"video_id": "cap", "caption_font": "comic-sans"})
            return {"final": final, "bad": bad}

    out = anyio.run(main)
    final = out["final"]
    assert final["captions_burned"] and final["caption_font"] == "fonts/aileron.ttf"
    style = next(line for line in seen["ass"].splitlines() if line.startswith("Style: Caption,"))
    assert style.split(",")[1] == "Aileron" and style.split(",")[7] == "0"  # its family, its own (regular) weight
    assert seen["fonts"] == ["aileron.ttf"]  # libass's fontsdir holds exactly that font
    chosen = _fontselect(seen["ass"], tmp_path / "libass_fonts", tmp_path)
    # A memory font from fontsdir is named by its PostScript name; a fallback would be a system font's path.
    assert chosen and all(c.startswith("(Aileron, 400, 0) -> Aileron-Regular,") for c in chosen), chosen
    assert "[invalid_input]" in out["bad"] and "inter-bold" in out["bad"] and "fonts/aileron.ttf" in out["bad"]


@pytest.mark.parametrize(
    ("font", "needles"),
    [
        ("comic-sans", ["[invalid_input]", "inter-display-black", "inter-bold", "fonts/aileron.ttf"]),
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", ["[path_outside_workspace]"]),
        ("../other/fonts/aileron.ttf", ["[path_outside_workspace]"]),
        ("ytap://default/other/fonts/aileron.ttf", ["[path_outside_workspace]", "does not belong"]),
        ("file:///etc/passwd", ["[path_outside_workspace]"]),
        ("fonts/missing.ttf", ["[asset_not_found]", "fonts/aileron.ttf"]),
        ("audio/narration.srt", ["[asset_not_found]"]),
    ],
)
def test_fonts_outside_the_bundled_set_and_the_video_are_refused(server: YtapServer, font: str,
                                                                 needles: list[str]) -> None:
    async def main() -> tuple[str, str]:
        async with Client(server) as client:
            await ok(client, "import_asset", {"video_id": "mine", "source": "aileron.ttf", "kind": "font"})
            thumb = await error_text(client, "make_thumbnail", {"video_id": "mine", "title": TITLE, "font": font})
            other = await ok(client, "import_asset", {"video_id": "other", "source": "aileron.ttf", "kind": "font"})
            assert other["uri"] == "ytap://default/other/fonts/aileron.ttf"
            return thumb, await error_text(client, "make_thumbnail", {"video_id": "mine", "title": TITLE, "font": font,
                                                                   "fresh": True})

    for text in anyio.run(main):
        for needle in needles:
            assert needle in text, text
