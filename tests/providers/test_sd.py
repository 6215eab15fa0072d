"""The self-hosted Stable Diffusion provider against a loopback server speaking the AUTOMATIC1111 API.

``YTAP_SD_BASE_URL`` points at a :class:`LoopbackServer` scripted with tests/vendors/sd_mock.py.
The thumbnail is probed, never trusted. Every failure is checked twice, as for the vendors:
the provider alone raises the mapped ``core.errors`` class, and a ``FallbackChain([sd, local])``
lets the local tier win while recording the SD attempt with its reason.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    TimedOut,
    Unavailable,
)
from core.jobs import JobHandle
from core.media.probe import probe
from core.providers import pricing
from core.providers.base import CallContext, ImageSpec, ProviderOutput
from core.providers.chain import FallbackChain
from core.providers.local import LocalPillowImageProvider
from core.providers.registry import DEFAULT_CHAINS, ProviderCatalog
from core.providers.resilience import ConcurrencyLimits, RetryPolicy
from core.providers.sd import StableDiffusionImageProvider
from core.runtime import Runtime
from core.schemas import ThumbnailRequest
from core.services import thumbnails
from tests.vendors import sd_mock as sm
from tests.vendors.loopback import LoopbackServer, Reply, json_reply, loopback_server

TIMEOUT_S = 10.0
SHORT_TIMEOUT_S = 0.3
IMAGE = ImageSpec(prompt="Rust, fast: a quick tour", style="neon")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as s:
        s.route("POST", sm.INTERRUPT, sticky=json_reply({}))
        yield s


@pytest.fixture
def settings(tmp_path: Path, server: LoopbackServer) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_SD_BASE_URL": server.url})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "video"
    d.mkdir()
    return d


def _sd(settings: Settings, timeout_s: float = TIMEOUT_S, **kw: Any) -> StableDiffusionImageProvider:
    return StableDiffusionImageProvider(settings, timeout_s=timeout_s, **kw)


def _call(provider: Any, out: Path, settings: Settings, ctx: CallContext | None = None) -> ProviderOutput:
    return anyio.run(provider.generate_image, IMAGE, out, ctx or CallContext(settings=settings))


def _chain(settings: Settings, provider: Any = None) -> FallbackChain:
    return FallbackChain("image", [provider or _sd(settings), LocalPillowImageProvider(settings)],
                         retry=RetryPolicy(attempts=1))


def _leftovers(work: Path, keep: Path | None = None) -> list[str]:
    return sorted(p.name for p in work.iterdir() if p != keep)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- success ---------------------------------------------------------------------------------


def test_sd_returns_its_picture_as_made(server: LoopbackServer, settings: Settings, work: Path) -> None:
    """Raw media: the server's PNG byte for byte (no title drawn; the thumbnail service does that)."""
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply())
    out = work / "thumbnail.jpg"
    result = _call(_sd(settings), out, settings)

    info = probe(out)
    assert info.video is not None and (info.video.codec, info.video.width, info.video.height) == ("png", 1344, 768)
    assert out.read_bytes() == sm.png_bytes()
    assert (result.provider, result.model, result.cost_usd) == ("sd:default", "default", 0.0)
    body = server.calls("POST", sm.TXT2IMG)[0].json()
    width, height = body["width"], body["height"]
    assert abs(width / height / (16 / 9) - 1) < 0.02 and width % 64 == 0 and height % 64 == 0  # 16:9 within 2 %
    assert body["seed"] == -1  # random unless given
    assert "text" in body["negative_prompt"] and "watermark" in body["negative_prompt"]
    assert body["prompt"] == "Rust, fast: a quick tour, neon"
    assert {"steps", "cfg_scale", "sampler_name"} <= body.keys() and body["batch_size"] == 1
    assert "override_settings" not in body  # sd:default: the checkpoint the server has loaded
    assert _leftovers(work, keep=out) == []


def test_sd_seed_and_model_are_sent(server: LoopbackServer, tmp_path: Path, work: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_SD_BASE_URL": server.url + "/",
                                  "YTAP_SD_MODEL": "juggernautXL_v9"})
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply())
    provider = _sd(settings, seed=4242)
    result = _call(provider, work / "t.jpg", settings)
    body = server.calls("POST", sm.TXT2IMG)[0].json()
    assert body["seed"] == 4242
    assert body["override_settings"] == {"sd_model_checkpoint": "juggernautXL_v9"}
    assert (provider.id, result.provider, result.model) == ("sd:juggernautXL_v9",) * 2 + ("juggernautXL_v9",)


def test_sd_requests_seed_and_negative_prompt_are_sent(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply(), sm.txt2img_reply())
    spec = ImageSpec(prompt="T", negative_prompt="people, cars", seed=77)
    anyio.run(_sd(settings, seed=4242).generate_image, spec, work / "t.jpg", CallContext(settings=settings))
    anyio.run(_sd(settings).generate_image, ImageSpec(prompt="T"), work / "u.jpg", CallContext(settings=settings))
    first, second = (c.json() for c in server.calls("POST", sm.TXT2IMG))
    assert first["seed"] == 77  # the request's seed wins over the provider's
    assert first["negative_prompt"].endswith(", people, cars") and "watermark" in first["negative_prompt"]
    assert second["seed"] == -1 and "people" not in second["negative_prompt"]


def test_sd_callers_prompt_is_used(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply())
    anyio.run(_sd(settings).generate_image, ImageSpec(prompt="a lighthouse at dusk"), work / "t.jpg",
              CallContext(settings=settings))
    assert server.calls("POST", sm.TXT2IMG)[0].json()["prompt"] == "a lighthouse at dusk"


def test_sd_first_in_the_default_chain_makes_the_thumbnail(server: LoopbackServer, settings: Settings) -> None:
    """Through the thumbnail service and the runtime's own catalog: the chain as it is configured."""
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply())
    rt = Runtime.create(settings)
    try:
        plan = thumbnails.prepare(rt, ThumbnailRequest(video_id="sd", title="Self-hosted"))
        result = anyio.run(thumbnails.make_thumbnail, rt, plan, JobHandle(job_id="job_" + "1" * 20, kind="make_thumbnail"))
    finally:
        rt.close()
    info = probe(result.path)
    assert (result.provider, result.cost_usd, info.video.codec, info.video.width, info.video.height) == \
        ("sd:default", 0.0, "mjpeg", 1280, 720)
    assert info.bytes < 2_000_000
    assert [a.provider for a in result.attempts] == ["sd:default"]


# --- failures --------------------------------------------------------------------------------


def _broken_png() -> Reply:
    return json_reply({"images": [base64.b64encode(b"this is not an image, just text").decode()], "info": "{}"})


@pytest.mark.parametrize(
    ("reply", "error", "words", "retryable"),
    [
        (sm.server_error_reply, Unavailable, "CUDA out of memory", True),
        (sm.not_found_reply, Unavailable, "--api", False),
        (sm.sampler_not_found_reply, Unavailable, "Sampler not found", False),
        (sm.auth_reply, NotConfigured, "--api-auth", True),
        (lambda: json_reply({"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer"}]},
                            status=422), Unavailable, "not a valid integer", False),
        (lambda: Reply(body=b'{"images": ["iVBOR', headers={"content-type": "application/json"}), BadOutput,
         "malformed JSON", True),
        (lambda: json_reply({"images": [], "parameters": {}, "info": "{}"}), BadOutput, "without an image", True),
        (lambda: json_reply({"images": ["@@not base64@@"]}), BadOutput, "not valid base64", True),
        (_broken_png, BadOutput, "does not decode as an image", True),
        (lambda: sm.txt2img_reply(truncate_to=300), BadOutput, "cut short", True),
    ],
    ids=["500-oom", "404-no-api", "404-sampler", "401-auth", "422", "malformed-json", "no-images", "bad-base64",
         "not-an-image", "truncated"],
)
def test_sd_failures_are_mapped_and_the_local_tier_wins(server: LoopbackServer, settings: Settings, work: Path,
                                                        reply: Callable[[], Reply], error: type[ProviderError],
                                                        words: str, retryable: bool) -> None:
    server.route("POST", sm.TXT2IMG, reply(), reply())
    out = work / "thumbnail.jpg"
    with pytest.raises(error) as info:
        _call(_sd(settings), out, settings)
    assert type(info.value) is error and words in info.value.message and info.value.retryable is retryable
    assert _leftovers(work) == []

    result = _call(_chain(settings), out, settings)
    assert result.provider == "local:pillow" and probe(out).video.width == 1280
    first = result.attempts[0]
    assert (first.provider, first.outcome, first.error_code) == ("sd:default", "failed", error.code)
    assert words in (first.reason or "")
    assert _leftovers(work, keep=out) == []


def test_sd_connection_refused_is_unavailable(tmp_path: Path, work: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"),
                                  "YTAP_SD_BASE_URL": f"http://127.0.0.1:{_free_port()}"})
    with pytest.raises(Unavailable, match="cannot be reached") as info:
        _call(_sd(settings), work / "t.jpg", settings)
    assert info.value.retryable
    result = _call(_chain(settings), work / "t.jpg", settings)
    assert result.provider == "local:pillow" and result.attempts[0].error_code == "unavailable"


def test_sd_timeout_is_timed_out_and_the_server_is_told_to_stop(server: LoopbackServer, settings: Settings,
                                                                work: Path) -> None:
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply(delay_s=1.5), sm.txt2img_reply(delay_s=1.5))
    started = time.monotonic()
    with pytest.raises(TimedOut, match="did not answer within 0.3 s"):
        _call(_sd(settings, timeout_s=SHORT_TIMEOUT_S), work / "t.jpg", settings)
    assert time.monotonic() - started < 1.4
    assert len(server.calls("POST", sm.INTERRUPT)) == 1
    result = _call(_chain(settings, _sd(settings, timeout_s=SHORT_TIMEOUT_S)), work / "t.jpg", settings)
    assert (result.provider, result.attempts[0].error_code) == ("local:pillow", "timed_out")
    assert _leftovers(work, keep=work / "t.jpg") == []


def test_sd_cancel_cuts_the_call_short(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", sm.TXT2IMG, sm.txt2img_reply(delay_s=3))
    ctx = CallContext(settings=settings)
    threading.Timer(0.2, ctx.cancel.set).start()
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        _call(_sd(settings), work / "t.jpg", settings, ctx)
    assert time.monotonic() - started < 2.0
    assert len(server.calls("POST", sm.INTERRUPT)) == 1
    assert _leftovers(work) == []


def test_sd_credentials_in_the_url_are_sent_never_shown(server: LoopbackServer, tmp_path: Path, work: Path) -> None:
    host = server.url.removeprefix("http://")
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"),
                                  "YTAP_SD_BASE_URL": f"http://ytap:s3cret-pass@{host}"})
    server.route("POST", sm.TXT2IMG, sm.auth_reply())
    with pytest.raises(NotConfigured) as info:
        _call(_sd(settings), work / "t.jpg", settings)
    assert "s3cret-pass" not in info.value.message and host in info.value.message
    sent = server.calls("POST", sm.TXT2IMG)[0].headers["authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == b"ytap:s3cret-pass"


# --- configuration ---------------------------------------------------------------------------


def test_sd_not_configured_skips_without_a_request(server: LoopbackServer, tmp_path: Path, work: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home")})
    provider = _sd(settings)
    assert provider.unavailable_reason() == "YTAP_SD_BASE_URL not set"
    result = _call(_chain(settings, provider), work / "t.jpg", settings)
    assert result.provider == "local:pillow"
    assert (result.attempts[0].outcome, result.attempts[0].reason) == ("skipped", "YTAP_SD_BASE_URL not set")
    with pytest.raises(NotConfigured, match="YTAP_SD_BASE_URL not set"):
        _call(provider, work / "t.jpg", settings)
    assert server.requests == []


def test_sd_url_without_a_scheme_is_not_configured(tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_SD_BASE_URL": "127.0.0.1:7860"})
    assert "http://" in (_sd(settings).unavailable_reason() or "")


def test_sd_states_its_facts(settings: Settings) -> None:
    provider = _sd(settings)
    assert (provider.id, provider.capability, provider.paid, provider.key_env) == ("sd:default", "image", False, None)
    assert pricing.price_for("sd:default") is None and pricing.cost_usd("sd:default", 1) == 0.0
    assert provider.unavailable_reason() is None
    assert ConcurrencyLimits().limit_for("sd:default") == 1  # one GPU, one image at a time


def test_sd_leads_the_default_image_chain_only_when_configured(tmp_path: Path) -> None:
    home = str(tmp_path)
    plain = ProviderCatalog(Settings.from_env({"YTAP_HOME": home}))
    assert plain.chain_ids("image") == list(DEFAULT_CHAINS["image"])
    assert "sd:default" in plain.known_ids("image")  # registered (provider_report shows why it is off)

    configured = ProviderCatalog(Settings.from_env({"YTAP_HOME": home, "YTAP_SD_BASE_URL": "http://127.0.0.1:7860"}))
    assert configured.chain_ids("image") == ["sd:default", *DEFAULT_CHAINS["image"]]
    # ... and its pictures, put in motion, lead the stills-in-motion tier of the video chain (issue 14).
    assert [i for i in configured.chain_ids("video") if i.startswith("motion:")] == [
        "motion:sd:default", "motion:openai:gpt-image-2", "motion:google:gemini-3.1-flash-image"]

    model = ProviderCatalog(Settings.from_env({"YTAP_HOME": home, "YTAP_SD_BASE_URL": "http://127.0.0.1:7860",
                                               "YTAP_SD_MODEL": "dreamshaper_8"}))
    assert model.chain_ids("image")[0] == "sd:dreamshaper_8" and "sd:default" not in model.known_ids()

    overridden = ProviderCatalog(Settings.from_env({"YTAP_HOME": home, "YTAP_SD_BASE_URL": "http://127.0.0.1:7860",
                                                    "YTAP_IMAGE_PROVIDERS": "openai:gpt-image-2,local:pillow"}))
    assert overridden.chain_ids("image") == ["openai:gpt-image-2", "local:pillow"]


def test_sd_model_with_a_comma_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YTAP_SD_MODEL"):
        Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_SD_MODEL": "a,b"})
