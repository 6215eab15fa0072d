"""The thumbnail service draws the title once, over whatever picture the image provider made.

Each vendor (OpenAI, Gemini, a Stable Diffusion server) answers through its loopback mock
with a flat grey picture that has no text on it; the thumbnail that comes out must show the
title (white fill, near-black stroke) where the layout puts it, and the plain picture
elsewhere. Checked by looking at the JPEG's pixels, not by trusting the code that drew it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from PIL import Image, ImageStat

from core.config import Settings
from core.jobs import JobHandle
from core.media.probe import probe
from core.media.thumbnail import BADGE_BOX, layout_title
from core.providers.google import GeminiImageProvider
from core.runtime import Runtime
from core.schemas import ThumbnailRequest, ThumbnailResult
from core.services import thumbnails
from tests.vendors import openai_mock as om
from tests.vendors import sd_mock as sm
from tests.vendors.google_mock import GoogleMock, image_reply
from tests.vendors.loopback import LoopbackServer, loopback_server

TITLE = "Lighthouses explained"
GREY = (128, 128, 128)


def _flat_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), GREY).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as s:
        yield s


@pytest.fixture
def rt(tmp_path: Path, server: LoopbackServer) -> Iterator[Runtime]:
    settings = Settings.from_env({
        "YTAP_HOME": str(tmp_path / "home"),
        "OPENAI_API_KEY": "FAKE-openai-thumbnail-test", "OPENAI_BASE_URL": server.url + "/v1",
        "GOOGLE_API_KEY": "FAKE-google-thumbnail-test", "GOOGLE_GEMINI_BASE_URL": server.url,
        "YTAP_SD_BASE_URL": server.url,
    })
    runtime = Runtime.create(settings)
    yield runtime
    runtime.close()


def _make(rt: Runtime, provider: str, **kw: object) -> ThumbnailResult:
    req = ThumbnailRequest(video_id="v", title=TITLE, providers=[provider], **kw)
    return anyio.run(thumbnails.make_thumbnail, rt, thumbnails.prepare(rt, req),
                     JobHandle(job_id="job_" + "2" * 20, kind="make_thumbnail"))


def _script(server: LoopbackServer, provider: str) -> None:
    if provider == "openai:gpt-image-2":
        server.route("POST", om.IMAGES, om.images_reply(_flat_png(1536, 1024)))
    elif provider == "google:gemini-3.1-flash-image":
        GoogleMock(server).generate_content(GeminiImageProvider.model, image_reply(_flat_png(1344, 768)))
    else:
        server.route("POST", sm.TXT2IMG, sm.txt2img_reply(_flat_png(1344, 768)))


@pytest.mark.parametrize("provider", ["openai:gpt-image-2", "google:gemini-3.1-flash-image", "sd:default"])
def test_thumbnail_title_is_drawn_over_every_providers_picture(rt: Runtime, server: LoopbackServer,
                                                               provider: str) -> None:
    _script(server, provider)
    result = _make(rt, provider)
    assert result.provider == provider and [a.outcome for a in result.attempts] == ["succeeded"]
    info = probe(result.path)
    assert info.video is not None and (info.video.codec, info.video.width, info.video.height) == ("mjpeg", 1280, 720)

    with Image.open(result.path) as im:
        grey = im.convert("L")
    title_box = layout_title(TITLE).title_box
    lo, hi = grey.crop(title_box).getextrema()
    # The picture is one flat grey: white letters and their dark stroke can only be the drawn title.
    assert hi > 230 and lo < 40, (lo, hi)
    # Where no text goes (the duration-badge corner), the picture is still the flat (darkened) grey.
    corner = ImageStat.Stat(grey.crop(BADGE_BOX))
    assert corner.stddev[0] < 12 and 40 < corner.mean[0] < 135


def test_local_card_gets_its_title_from_the_service_too(rt: Runtime) -> None:
    """local:pillow returns a designed background with no text; the title is drawn by the service."""
    from core.providers.base import CallContext, ImageSpec
    from core.providers.local import LocalPillowImageProvider

    raw = Path(rt.paths("default", "v").root) / "raw.png"
    raw.parent.mkdir(parents=True, exist_ok=True)
    anyio.run(LocalPillowImageProvider().generate_image, ImageSpec(prompt=TITLE), raw,
              CallContext(settings=rt.settings))
    result = _make(rt, "local:pillow")
    with Image.open(raw) as bare, Image.open(result.path) as made:
        box = layout_title(TITLE).title_box
        bare_lo, bare_hi = bare.convert("L").crop(box).getextrema()
        lo, hi = made.convert("L").crop(box).getextrema()
    assert hi > 230 and lo < 40  # the title, white over a near-black stroke
    assert not (bare_hi > 230 and bare_lo < 40), "the provider's background must carry no title"


def test_a_title_drawn_in_a_fallback_face_says_which(rt: Runtime) -> None:
    """``font`` is the font asked for; a title in a script it lacks is drawn in a bundled Noto face, and the
    result says so (a cache hit too) instead of letting ``font`` pass for it."""
    def make(title: str, video: str) -> ThumbnailResult:
        req = ThumbnailRequest(video_id=video, title=title, providers=["local:pillow"])
        return anyio.run(thumbnails.make_thumbnail, rt, thumbnails.prepare(rt, req),
                         JobHandle(job_id="job_" + "3" * 20, kind="make_thumbnail"))

    arabic, again = make("أسرار المدن القديمة", "a"), make("أسرار المدن القديمة", "b")
    note = "the title is drawn in the bundled Noto Sans Arabic: inter-display-black has no glyphs for its script"
    assert arabic.font == "inter-display-black" and note in arabic.notes
    assert again.cached and note in again.notes
    assert not any("bundled" in n for n in make(TITLE, "c").notes)
