"""Stills in motion: the move, the clip (probed and measured, never trusted), the ``motion:<image id>``
providers around the real image adapters against loopback vendors, and the chain around them.

Clips here are small (320x180, 1-2 s); the full-size scenes are made through the MCP client in
test_motion_scenarios.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from benchmarks.motion_smoothness import zoompan_clip
from core.config import Settings
from core.errors import BadOutput, MediaError, OperationCancelled, RateLimited, Refused
from core.media import motion
from core.media.normalize import matches_contract, normalize_clip
from core.media.probe import probe
from core.providers import pricing
from core.providers.base import CallContext, VideoSpec
from core.providers.chain import FallbackChain
from core.providers.local import LocalPlaceholderVideoProvider
from core.providers.motion import MotionVideoProvider
from core.providers.openai import OpenAIImageProvider
from core.providers.registry import MOTION_TIER, ProviderCatalog
from core.providers.resilience import RetryPolicy
from core.providers.sd import StableDiffusionImageProvider
from core.providers.testing import ScriptedProvider, write_bytes
from tests.vendors import openai_mock as om
from tests.vendors import sd_mock as sm
from tests.vendors.loopback import LoopbackServer, json_reply, loopback_server
from tests.vendors.stills import scenic_png

W, H = 320, 180
KEY = "FAKE-openai-MOTION-9c2e51b7a0"

pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture
def still(tmp_path: Path) -> Path:
    p = tmp_path / "still.png"
    p.write_bytes(scenic_png(3, 480, 320))
    return p


@pytest.fixture
def vendor() -> Iterator[LoopbackServer]:
    with loopback_server() as s:
        s.route("POST", sm.INTERRUPT, sticky=json_reply({}))
        yield s


def _spec(index: int = 1, *, duration_s: float = 1.0, width: int = W, height: int = H) -> VideoSpec:
    return VideoSpec(prompt="a lighthouse on a cliff at dawn", scene_index=index, duration_s=duration_s, width=width,
                     height=height, fps=30, aspect_ratio="16:9" if width > height else "9:16",
                     style="film still", negative_prompt="people")


def _ctx(settings: Settings, cancel: threading.Event | None = None) -> CallContext:
    return CallContext(settings=settings, cancel=cancel or threading.Event())


def _render(still: Path, out: Path, index: int = 1, **kw) -> motion.Move:  # noqa: ANN003
    spec = _spec(index, **kw)
    move = motion.choose_move(index, spec.prompt, duration_s=spec.duration_s, width=spec.width, height=spec.height)
    motion.render_motion(still, out, move=move, duration_s=spec.duration_s, width=spec.width, height=spec.height)
    return move


# --- the move -------------------------------------------------------------------------------


def test_motion_move_is_chosen_from_index_and_prompt_and_consecutive_scenes_differ() -> None:
    moves = [motion.choose_move(i, "same prompt", duration_s=8, width=1920, height=1080) for i in range(1, 13)]
    kinds = [m.kind for m in moves]
    assert all(a.split("_")[0] != b.split("_")[0] for a, b in zip(kinds, kinds[1:]))  # zoom, pan, zoom, pan ...
    assert {k.split("_")[0] for k in kinds} == {"push", "pull", "pan"}
    assert motion.choose_move(5, "same prompt", duration_s=8, width=1920, height=1080) == moves[4]  # a re-run
    prompts = {motion.choose_move(2, f"prompt {n}", duration_s=8, width=1920, height=1080) for n in range(12)}
    assert len(prompts) > 2  # the prompt picks the direction and the point of interest
    portrait = motion.choose_move(1, "same prompt", duration_s=8, width=1080, height=1920)
    assert portrait.kind in ("pan_up", "pan_down")  # along the long axis


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)])
@pytest.mark.parametrize("duration_s", [1.0, 5.0, 60.0])
def test_motion_window_never_leaves_the_picture(size: tuple[int, int], duration_s: float) -> None:
    for index in range(1, 9):
        move = motion.choose_move(index, f"p{index}", duration_s=duration_s, width=size[0], height=size[1])
        sw, sh = motion._even(size[0] * move.zoom_max), motion._even(size[1] * move.zoom_max)
        boxes = list(motion._frame_boxes(move, 30, sw, sh))
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 and 0 <= y0 and x1 <= sw + 1e-6 and y1 <= sh + 1e-6  # no border can show
            assert (x1 - x0) / (y1 - y0) == pytest.approx(size[0] / size[1], rel=1e-3)
            assert x1 - x0 >= size[0] - 1  # never narrower than the output (the picture is prepared at even sizes)
        assert boxes[0] != boxes[-1]


# --- the clip -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(W, H), (H, W)])
def test_motion_clip_is_the_scene_format_already(still: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    out = tmp_path / "clip.mp4"
    _render(still, out, 2, duration_s=1.5, width=size[0], height=size[1])
    info = probe(out, count_frames=True)
    v, a = info.video, info.audio
    assert (v.width, v.height, v.frames, v.codec, v.profile, v.pix_fmt) == (*size, 45, "h264", "High", "yuv420p")
    assert v.fps == pytest.approx(30) and info.duration_s == pytest.approx(1.5, abs=0.03)
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 2)
    assert matches_contract(info, width=size[0], height=size[1], fps=30, duration_s=1.5)
    # So the scene service's finishing step keeps the clip as it is (no second encode).
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    normalize_clip(out, tmp_path / "scene.mp4", width=size[0], height=size[1], fps=30, duration_s=1.5)
    assert hashlib.sha256((tmp_path / "scene.mp4").read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob(".*motion*"))  # the FIFO's folder is gone


def test_motion_clip_is_smooth_and_plain_zoompan_is_not(still: Path, tmp_path: Path) -> None:
    ours, plain = tmp_path / "ours.mp4", tmp_path / "zoompan.mp4"
    move = _render(still, ours, 1, duration_s=2.0)  # scene 1: a pan, the move zoompan steps through
    zoompan_clip(still, plain, move, frames=60, width=W, height=H, fps=30)
    a, b = motion.measure_smoothness(ours), motion.measure_smoothness(plain)
    assert a.smooth, a.summary()
    assert a.ratio <= motion.MAX_STEP_RATIO and a.first_last >= motion.FIRST_LAST_MIN
    assert not b.smooth, b.summary()  # whole-pixel steps with frames between that do not move
    assert len(a.steps) == len(b.steps) == 59


def test_motion_rerun_gives_the_same_clip(still: Path, tmp_path: Path) -> None:
    _render(still, tmp_path / "a.mp4", 3)
    _render(still, tmp_path / "b.mp4", 3)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def _blob_picture(path: Path, size: tuple[int, int], centre: tuple[float, float], sigma: float) -> None:
    """A grey picture with one bright Gaussian blob whose centre is ``centre`` in picture pixels (edges at 0)."""
    import numpy as np
    from PIL import Image

    w, h = size
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5  # pixel centres, in edge coordinates
    blob = np.exp(-((xs[None, :] - centre[0]) ** 2 + (ys[:, None] - centre[1]) ** 2) / (2 * sigma**2))
    grey = (40 + 180 * blob).round().astype(np.uint8)
    Image.fromarray(np.dstack([grey] * 3)).save(path)


def _luma_frames(clip: Path, width: int, height: int):  # -> list of 2-D uint8 arrays
    import numpy as np

    from core.media.ffmpeg import run_ffmpeg

    raw = clip.with_suffix(".y")
    run_ffmpeg(["-i", str(clip), "-map", "0:v:0", "-vf", "extractplanes=y", "-f", "rawvideo", str(raw)],
               what="the test's luma frames")
    data = np.frombuffer(raw.read_bytes(), np.uint8)
    return list(data.reshape(-1, height, width))


def _centroid(frame) -> tuple[float, float]:  # noqa: ANN001 - a 2-D array; pixel centres at whole numbers
    import numpy as np

    weight = np.clip(frame.astype(np.float64) - 60.0, 0.0, None)
    ys, xs = np.indices(frame.shape)
    return float((xs * weight).sum() / weight.sum()), float((ys * weight).sum() / weight.sum())


@pytest.mark.parametrize("window", [(0.5, 0.5, 1.0), (0.41, 0.56, 1.07), (0.63, 0.47, 1.15)])
def test_motion_frames_show_the_window_at_its_exact_position(tmp_path: Path,
                                                             window: tuple[float, float, float]) -> None:
    # A held window (start == end) over a picture with one blob: where the blob lands in the decoded frame
    # is where the geometry says, to a twentieth of a pixel (sampling at pixel edges instead of centres
    # would put it 0.075 px off in the first window).
    w, h, zoom_max = 320, 180, 1.15
    pw, ph = 960, 540
    centre = (0.55 * pw + 0.3, 0.48 * ph - 0.2)
    still = tmp_path / "blob.png"
    _blob_picture(still, (pw, ph), centre, sigma=12.0)
    move = motion.Move(kind="held", start=window, end=window, zoom_max=zoom_max)
    out = tmp_path / "held.mp4"
    motion.render_motion(still, out, move=move, duration_s=0.2, width=w, height=h)
    sw, sh = motion._even(w * zoom_max), motion._even(h * zoom_max)
    (x0, y0, x1, y1), = set(motion._frame_boxes(move, 6, sw, sh))
    # The blob's centre in the prepared picture, then in the frame (edge coordinates -> pixel-centre ones).
    fx, fy = centre[0] * sw / pw, centre[1] * sh / ph
    expected = ((fx - x0) * w / (x1 - x0) - 0.5, (fy - y0) * h / (y1 - y0) - 0.5)
    for frame in _luma_frames(out, w, h):
        got = _centroid(frame)
        assert got == pytest.approx(expected, abs=0.05), (got, expected)


def test_motion_without_opencv_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    reason = motion.motion_supported()
    assert reason is not None and "OpenCV (opencv-python-headless)" in reason
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_SD_BASE_URL": "http://127.0.0.1:9"})
    assert _sd(settings).unavailable_reason() == reason
    with pytest.raises(MediaError, match="OpenCV"):
        _render(tmp_path / "never-read.png", tmp_path / "clip.mp4")
    assert not (tmp_path / "clip.mp4").exists()


def test_motion_undecodable_still_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "still.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(MediaError, match="does not decode"):
        _render(bad, tmp_path / "clip.mp4")
    assert not (tmp_path / "clip.mp4").exists()


def test_motion_cancel_stops_the_render_and_leaves_nothing(still: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    out = tmp_path / "clip.mp4"
    move = motion.choose_move(1, "p", duration_s=20, width=1280, height=720)
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(OperationCancelled):
        motion.render_motion(still, out, move=move, duration_s=20, width=1280, height=720, cancel=cancel)
    assert not out.exists() and not list(tmp_path.glob(".*"))


# --- the providers --------------------------------------------------------------------------


def _sd(settings: Settings) -> MotionVideoProvider:
    return MotionVideoProvider(settings, StableDiffusionImageProvider(settings))


def test_motion_sd_makes_a_scene_from_the_sd_loopback(vendor: LoopbackServer, tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_SD_BASE_URL": vendor.url})
    vendor.route("POST", sm.TXT2IMG, sticky=sm.txt2img_reply(scenic_png(1, 1344, 768)))
    provider = _sd(settings)
    assert (provider.id, provider.paid, provider.unavailable_reason()) == ("motion:sd:default", False, None)
    out = tmp_path / "clip.mp4"
    result = anyio.run(provider.generate_video, _spec(2), out, _ctx(settings))
    assert (result.provider, result.cost_usd) == ("motion:sd:default", 0.0)
    assert result.model == "default + pull_out"  # both steps: the image model and the move
    body = vendor.calls("POST", sm.TXT2IMG)[0].json()
    assert body["seed"] == motion.seed_for(2, _spec().prompt)  # the same scene asks for the same picture
    assert "people" in body["negative_prompt"] and "film still" in body["prompt"]
    assert probe(out, count_frames=True).video.frames == 30
    assert [p.name for p in tmp_path.iterdir() if p.name != "home"] == ["clip.mp4"]  # the still is removed


@pytest.fixture
def openai_settings(vendor: LoopbackServer, tmp_path: Path) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": KEY,
                              "OPENAI_BASE_URL": vendor.url + "/v1"})


def test_motion_openai_is_priced_as_one_image(vendor: LoopbackServer, openai_settings: Settings,
                                              tmp_path: Path) -> None:
    vendor.route("POST", om.IMAGES, sticky=om.images_reply(scenic_png(4)))
    provider = MotionVideoProvider(openai_settings, OpenAIImageProvider(openai_settings))
    assert provider.estimate_cost_usd(_spec()) == pricing.cost_usd("openai:gpt-image-2", 1) > 0
    assert pricing.scene_cost_usd("motion:openai:gpt-image-2", 8) == pricing.cost_usd("openai:gpt-image-2", 1)
    result = anyio.run(provider.generate_video, _spec(4, width=H, height=W), tmp_path / "clip.mp4",
                       _ctx(openai_settings))
    assert result.cost_usd == pricing.cost_usd("openai:gpt-image-2", 1)
    assert vendor.calls("POST", om.IMAGES)[0].json()["size"] == "1024x1536"  # a portrait still for 9:16
    assert vendor.calls("POST", om.IMAGES)[0].headers["authorization"] == f"Bearer {KEY}"


def test_motion_passes_the_image_providers_failures_through(vendor: LoopbackServer, openai_settings: Settings,
                                                            tmp_path: Path) -> None:
    provider = MotionVideoProvider(openai_settings, OpenAIImageProvider(openai_settings))
    vendor.route("POST", om.IMAGES, om.rate_limit_reply(retry_after_s=7, model="gpt-image-2"),
                 om.moderation_reply(("violence",)))
    with pytest.raises(RateLimited) as limited:
        anyio.run(provider.generate_video, _spec(), tmp_path / "a.mp4", _ctx(openai_settings))
    assert limited.value.retry_after_s == pytest.approx(7)
    with pytest.raises(Refused):
        anyio.run(provider.generate_video, _spec(), tmp_path / "b.mp4", _ctx(openai_settings))
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


def test_motion_without_the_image_key_is_unavailable(tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path)})
    provider = ProviderCatalog(settings).get("motion:openai:gpt-image-2")
    assert provider.unavailable_reason() == "OPENAI_API_KEY not set"


def test_motion_a_still_that_cannot_move_is_bad_output_with_its_cost(tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path)})
    # The image provider answers with bytes no decoder takes (an adapter would refuse them; the
    # motion step must too, keeping what the picture cost).
    image = ScriptedProvider("test:image", "image", [write_bytes(b"not a picture")], paid=True, cost_usd=0.04)
    provider = MotionVideoProvider(settings, image)
    with pytest.raises(BadOutput, match="could not be put in motion") as bad:
        anyio.run(provider.generate_video, _spec(), tmp_path / "clip.mp4", _ctx(settings))
    assert bad.value.cost_usd == pytest.approx(0.04)
    assert not list(tmp_path.iterdir())


def test_motion_falls_back_to_the_placeholder_with_the_reason(vendor: LoopbackServer, openai_settings: Settings,
                                                              tmp_path: Path) -> None:
    vendor.route("POST", om.IMAGES, sticky=om.moderation_reply(("violence",)))
    chain = FallbackChain("video", [MotionVideoProvider(openai_settings, OpenAIImageProvider(openai_settings)),
                                    LocalPlaceholderVideoProvider()], retry=RetryPolicy(attempts=1))
    out = anyio.run(chain.generate_video, _spec(), tmp_path / "clip.mp4", _ctx(openai_settings))
    assert out.provider == "local:placeholder"
    failed = out.attempts[0]
    assert (failed.provider, failed.outcome, failed.error_code) == ("motion:openai:gpt-image-2", "failed", "refused")
    assert "violence" in failed.reason and KEY not in failed.reason


# --- the catalog ----------------------------------------------------------------------------


def test_motion_ids_for_every_image_provider_but_the_card(tmp_path: Path) -> None:
    catalog = ProviderCatalog(Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_SD_MODEL": "dreamshaper_8"}))
    video = catalog.known_ids("video")
    assert {"motion:openai:gpt-image-2", "motion:google:gemini-3.1-flash-image", "motion:sd:dreamshaper_8"} <= set(video)
    assert "motion:local:pillow" not in video
    provider = catalog.get("motion:google:gemini-3.1-flash-image")
    assert provider.image is catalog.get("google:gemini-3.1-flash-image")  # one instance, one SDK client
    assert provider.key_env == "GOOGLE_API_KEY" and provider.paid


def test_motion_tier_follows_the_image_chain_and_policies_see_its_price(tmp_path: Path) -> None:
    env = {"YTAP_HOME": str(tmp_path), "OPENAI_API_KEY": KEY, "YTAP_IMAGE_PROVIDERS": "google:gemini-3.1-flash-image,"
           "openai:gpt-image-2,local:pillow", "YTAP_VIDEO_PROVIDERS": f"google:veo-3.1,{MOTION_TIER},local:placeholder"}
    catalog = ProviderCatalog(Settings.from_env(env))
    assert catalog.chain_ids("video") == ["google:veo-3.1", "motion:google:gemini-3.1-flash-image",
                                          "motion:openai:gpt-image-2", "local:placeholder"]
    cheapest = ProviderCatalog(Settings.from_env({**env, "YTAP_CHAIN_POLICY": "cheapest"}))
    ranked, why = cheapest.ranked_ids("video")
    assert ranked == ["motion:openai:gpt-image-2", "motion:google:gemini-3.1-flash-image", "google:veo-3.1",
                      "local:placeholder"]  # one image ($0.06) before 8 s of Veo ($3.20)
    assert "$0.0630" in why["motion:openai:gpt-image-2"]
    limited = ProviderCatalog(Settings.from_env({**env, "YTAP_PROVIDER_CONCURRENCY": "motion:openai:gpt-image-2=1"}))
    assert limited.limits.limit_for("motion:openai:gpt-image-2") == 1


def test_motion_budget_cap_skips_it_with_the_figures(vendor: LoopbackServer, openai_settings: Settings,
                                                     tmp_path: Path) -> None:
    chain = FallbackChain("video", [MotionVideoProvider(openai_settings, OpenAIImageProvider(openai_settings)),
                                    LocalPlaceholderVideoProvider()])
    ctx = CallContext(settings=dataclasses.replace(openai_settings, budget_usd=0.05), budget_remaining_usd=0.05)
    out = anyio.run(chain.generate_video, _spec(), tmp_path / "clip.mp4", ctx)
    assert out.provider == "local:placeholder"
    skipped = out.attempts[0]
    assert (skipped.provider, skipped.error_code) == ("motion:openai:gpt-image-2", "budget_exceeded")
    assert "$0.0630" in skipped.reason and not vendor.calls("POST", om.IMAGES)
