"""Font resolution (core.services.fonts) and the font reaching a provider that draws the title over its picture."""

from __future__ import annotations

import shutil

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from PIL import Image, ImageFont

from core.config import Settings
from core.errors import AssetNotFound, InputError, PathOutsideWorkspace
from core.jobs import JobHandle
from core.media.fonts import font_path
from core.media.thumbnail import render_thumbnail
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from core.schemas import ThumbnailRequest
from core.services import imports
from core.services.fonts import resolve_font
from core.services import thumbnails
from core.services.thumbnails import make_thumbnail

TITLE = "How Lighthouses Work"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("font_root").resolve()
    # Aileron Regular (CC0), the font Pillow embeds: unlike Inter, and free to ship in tests.
    (root / "Aileron.ttf").write_bytes(ImageFont.load_default(20).font_bytes)
    Image.linear_gradient("L").resize((1536, 1024)).convert("RGB").save(root / "picture.png")
    return root


def _ai_picture(background: Path):  # noqa: ANN202 - a ScriptedProvider outcome
    def picture(spec: object, out: Path) -> None:
        # What the OpenAI, Gemini and Stable Diffusion providers return: their picture, no text on it.
        shutil.copyfile(background, out)

    return picture


@pytest.fixture
def ai(media: Path) -> ScriptedProvider:
    return ScriptedProvider("test:ai-image", "image", [_ai_picture(media / "picture.png")] * 2)


@pytest.fixture
def rt(tmp_path: Path, media: Path, ai: ScriptedProvider) -> Iterator[Runtime]:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(media)})
    runtime = Runtime.create(settings, extra_providers=[ai])
    req = imports.ImportRequest(workspace_id="default", video_id="v", source="Aileron.ttf", kind="font")
    anyio.run(imports.import_asset, runtime, imports.prepare(runtime, req),
              JobHandle(job_id="job_" + os.urandom(10).hex(), kind="import_asset"))
    yield runtime
    runtime.close()


@pytest.mark.parametrize(("value", "name"), [
    ("inter-display-black", "inter-display-black"),
    ("Inter Display Black", "inter-display-black"),
    ("INTER_BOLD", "inter-bold"),
])
def test_bundled_fonts_by_name(rt: Runtime, value: str, name: str) -> None:
    font = resolve_font(rt, rt.paths("default", "v"), value)
    assert (font.name, font.bundled) == (name, True) and font.path.parent == font_path("text").parent


@pytest.mark.parametrize("value", ["aileron", "Aileron", "aileron.ttf", "fonts/aileron.ttf",
                                   "ytap://default/v/fonts/aileron.ttf", " fonts/aileron.ttf "])
def test_imported_font_by_stem_name_path_or_uri(rt: Runtime, media: Path, value: str) -> None:
    paths = rt.paths("default", "v")
    font = resolve_font(rt, paths, value)
    assert (font.name, font.bundled) == ("fonts/aileron.ttf", False)
    assert (font.facts.family, font.facts.weight) == ("Aileron", 400)
    assert font.path == paths.real_root / "fonts" / "aileron.ttf"
    assert font.sha256 == hashlib.sha256((media / "Aileron.ttf").read_bytes()).hexdigest()


def test_unknown_font_lists_the_choices(rt: Runtime) -> None:
    with pytest.raises(InputError, match="inter-display-black, inter-bold.*fonts/aileron.ttf"):
        resolve_font(rt, rt.paths("default", "v"), "DejaVu Sans")
    with pytest.raises(InputError, match="none yet.*import_asset kind=font"):
        resolve_font(rt, rt.paths("default", "empty"), "aileron")  # another video's font is not this one's


@pytest.mark.parametrize("value", ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", str(font_path("text")),
                                   "../w/fonts/aileron.ttf", "ytap://default/w/fonts/aileron.ttf",
                                   "file:///etc/passwd"])
def test_fonts_outside_the_video_are_refused(rt: Runtime, value: str) -> None:
    with pytest.raises(PathOutsideWorkspace):
        resolve_font(rt, rt.paths("default", "v"), value)


def test_a_file_in_the_video_that_is_not_a_font_is_refused(rt: Runtime) -> None:
    paths = rt.paths("default", "v")
    (paths.root / "fonts" / "broken.ttf").write_bytes(b"\x00\x01\x00\x00 not really")
    with pytest.raises(InputError, match="cannot be used"):
        resolve_font(rt, paths, "fonts/broken.ttf")
    with pytest.raises(InputError, match=r"not a \.ttf or \.otf"):
        resolve_font(rt, paths, "./manifest.json")
    with pytest.raises(AssetNotFound):
        resolve_font(rt, paths, "fonts/missing.otf")


def test_a_provider_drawing_over_its_picture_uses_the_font(rt: Runtime, media: Path, ai: ScriptedProvider,
                                                           tmp_path: Path) -> None:
    req = ThumbnailRequest(video_id="v", title=TITLE, font="aileron", providers=["test:ai-image"])
    result = anyio.run(make_thumbnail, rt, thumbnails.prepare(rt, req),
                       JobHandle(job_id="job_" + "1" * 20, kind="make_thumbnail"))
    assert (result.provider, result.font) == ("test:ai-image", "fonts/aileron.ttf")
    expected = tmp_path / "expected.jpg"  # the title drawn once, by the service, over the provider's picture
    render_thumbnail(expected, title=TITLE, background=media / "picture.png",
                     font=rt.paths("default", "v").root / "fonts" / "aileron.ttf",
                     palette_key=thumbnails.background_prompt(req))
    assert Path(result.path).read_bytes() == expected.read_bytes()
    default = tmp_path / "default.jpg"
    render_thumbnail(default, title=TITLE, background=media / "picture.png")
    assert default.read_bytes() != expected.read_bytes()
