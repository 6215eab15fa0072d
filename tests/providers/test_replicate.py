"""The video aggregator (``replicate:<model>``) through the official replicate SDK, against a loopback
server speaking Replicate's HTTP API (tests/vendors/replicate_mock.py). Every failure path: the
provider alone raises the mapped ``core.errors`` class, messages never carry the token."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    JobFailed,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.media.probe import probe
from core.providers import pricing
from core.providers.base import CallContext, VideoSpec
from core.providers.chain import FallbackChain
from core.providers.local import LocalPlaceholderVideoProvider
from core.providers.registry import ProviderCatalog
from core.providers.replicate import HailuoVideoProvider, SeedanceLiteVideoProvider
from core.providers.resilience import RetryPolicy
from core.services.scenes import finish_clip
from tests.vendors import openai_mock as om
from tests.vendors import replicate_mock as rm
from tests.vendors.loopback import LoopbackServer, Reply

TOKEN = "r8_FAKE-replicate-TOKEN-5e0c7d"
SPEC = VideoSpec(prompt="waves on a black sand beach", scene_index=1, duration_s=2.0, width=320, height=180,
                 style="drone shot")

pytestmark = pytest.mark.usefixtures("no_vendor_environment")


@pytest.fixture
def settings(tmp_path: Path, server: LoopbackServer) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "REPLICATE_API_TOKEN": TOKEN,
                              "REPLICATE_BASE_URL": server.url})


def _provider(settings: Settings, cls: type = SeedanceLiteVideoProvider, **kw) -> SeedanceLiteVideoProvider:  # noqa: ANN003
    return cls(settings, poll_interval_s=0.02, **kw)


def _healthy(server: LoopbackServer, *, clip: Reply | None = None) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, rm.prediction(server.url, "processing", logs=" 45%|####5     | 45/100"),
                 sticky=rm.prediction(server.url, "succeeded", output=rm.clip_url(server.url)))
    server.route("GET", rm.CLIP, clip or Reply(body=om.mp4_bytes(seconds=2.0), headers={"content-type": "video/mp4"}))


def _call(provider, out: Path, ctx: CallContext):  # noqa: ANN001, ANN202
    return anyio.run(provider.generate_video, SPEC, out, ctx)


def _ctx(settings: Settings, progress: list | None = None) -> CallContext:
    return CallContext(settings=settings, progress=(lambda f, m: progress.append((f, m))) if progress is not None
                       else (lambda f, m: None))


def _raises(exc_type: type[ProviderError], provider, out: Path, settings: Settings) -> ProviderError:  # noqa: ANN001
    with pytest.raises(exc_type) as info:
        _call(provider, out, _ctx(settings))
    assert TOKEN not in str(info.value)
    assert not out.exists()
    return info.value


def test_replicate_makes_a_clip_through_the_sdk(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    _healthy(server)
    progress: list = []
    out = tmp_path / "clip.mp4"
    result = _call(_provider(settings), out, _ctx(settings, progress))
    assert (result.provider, result.model) == ("replicate:seedance-1-lite", "seedance-1-lite")
    assert result.cost_usd == pytest.approx(5 * 0.036) == pricing.cost_usd("replicate:seedance-1-lite", 5)
    create = server.calls("POST", rm.CREATE)[0]
    assert create.path == "/v1/models/bytedance/seedance-1-lite/predictions"
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.json()["input"] == {"prompt": "waves on a black sand beach. Style: drone shot", "duration": 5,
                                      "resolution": "720p", "aspect_ratio": "16:9"}
    assert "authorization" not in server.calls("GET", rm.CLIP)[0].headers  # the token stays with the API
    assert any(0.3 < f < 0.5 for f, _ in progress)  # 45 % read from the logs
    assert probe(out).video is not None


def test_replicate_clip_goes_through_the_scene_finishing_step(server: LoopbackServer, settings: Settings,
                                                              tmp_path: Path) -> None:
    _healthy(server)
    chain = FallbackChain("video", [_provider(settings)])
    out = anyio.run(lambda: chain.generate_video(SPEC, tmp_path / "scene.mp4", _ctx(settings),
                                                 finish=finish_clip(SPEC)))
    info = probe(tmp_path / "scene.mp4", count_frames=True)
    assert (info.video.width, info.video.height, info.video.frames) == (320, 180, 60)  # the scene's, exactly
    assert out.attempts[-1].cost_usd == pytest.approx(0.18)


def test_replicate_rate_limit_carries_retry_after(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.problem(429, "Request was throttled", "Request was throttled. Expected "
                                                "available in 3 seconds.", headers={"retry-after": "3"}))
    err = _raises(RateLimited, _provider(settings), tmp_path / "c.mp4", settings)
    assert err.retry_after_s == pytest.approx(3)
    assert len(server.calls("POST", rm.CREATE)) == 1  # the SDK did not retry behind the chain's back


@pytest.mark.parametrize(("status", "expected", "retryable"), [(500, Unavailable, True), (503, Unavailable, True),
                                                               (402, Unavailable, False), (404, Unavailable, False),
                                                               (422, Unavailable, False), (401, NotConfigured, True)])
def test_replicate_http_errors_are_mapped(server: LoopbackServer, settings: Settings, tmp_path: Path, status: int,
                                          expected: type[ProviderError], retryable: bool) -> None:
    server.route("POST", rm.CREATE, rm.problem(status, "error", f"failure {status} for token {TOKEN}"))
    err = _raises(expected, _provider(settings), tmp_path / "c.mp4", settings)
    assert err.retryable is retryable and str(status) in str(err)


def test_replicate_timeout(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, Reply(delay_s=1.5, body=b"{}"))
    _raises(TimedOut, _provider(settings, timeout_s=0.3), tmp_path / "c.mp4", settings)


def test_replicate_connection_refused_is_unavailable(settings: Settings, tmp_path: Path) -> None:
    import dataclasses

    down = dataclasses.replace(settings, replicate_base_url="http://127.0.0.1:9")
    _raises(Unavailable, _provider(down), tmp_path / "c.mp4", down)


def test_replicate_failed_job(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, sticky=rm.prediction(server.url, "failed", error="CUDA error: out of memory"))
    err = _raises(JobFailed, _provider(settings), tmp_path / "c.mp4", settings)
    assert "out of memory" in str(err)


def test_replicate_content_refusal(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, sticky=rm.prediction(server.url, "failed", error=(
        "The input or output was flagged as sensitive. Please try again with different inputs. (E005)")))
    err = _raises(Refused, _provider(settings), tmp_path / "c.mp4", settings)
    assert "E005" in err.reasons[0]


@pytest.mark.parametrize("reply", [
    Reply(status=201, body=b"<html>not json</html>", headers={"content-type": "text/html"}),
    Reply(status=201, body=b'{"status": "starting"}', headers={"content-type": "application/json"}),  # no id
])
def test_replicate_malformed_answer(server: LoopbackServer, settings: Settings, tmp_path: Path, reply: Reply) -> None:
    server.route("POST", rm.CREATE, reply)
    _raises(BadOutput, _provider(settings), tmp_path / "c.mp4", settings)


def test_replicate_finished_without_a_clip_url_is_bad_output_billed(server: LoopbackServer, settings: Settings,
                                                                    tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "succeeded", output=None, http_status=201))
    err = _raises(BadOutput, _provider(settings), tmp_path / "c.mp4", settings)
    assert err.cost_usd == pytest.approx(0.18)


def test_replicate_truncated_media_is_bad_output_billed(server: LoopbackServer, settings: Settings,
                                                        tmp_path: Path) -> None:
    mp4 = om.mp4_bytes(seconds=2.0)
    _healthy(server, clip=Reply(body=mp4, truncate_to=len(mp4) // 3, headers={"content-type": "video/mp4"}))
    err = _raises(BadOutput, _provider(settings), tmp_path / "c.mp4", settings)
    assert err.cost_usd == pytest.approx(0.18) and "cut short" in str(err)


def test_replicate_missing_key(tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path)})
    provider = ProviderCatalog(settings).get("replicate:seedance-1-lite")
    assert provider.unavailable_reason() == "REPLICATE_API_TOKEN not set"
    with pytest.raises(NotConfigured):
        anyio.run(provider.generate_video, SPEC, tmp_path / "c.mp4", _ctx(settings))


def test_replicate_cancel_cancels_the_prediction(server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, sticky=rm.prediction(server.url, "processing"))
    server.route("POST", rm.CANCEL, sticky=rm.prediction(server.url, "canceled"))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(OperationCancelled):
        anyio.run(_provider(settings).generate_video, SPEC, tmp_path / "c.mp4",
                  CallContext(settings=settings, cancel=cancel))
    assert len(server.calls("POST", rm.CANCEL)) == 1


def test_replicate_poll_deadline_times_out_and_cancels(server: LoopbackServer, settings: Settings,
                                                       tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, sticky=rm.prediction(server.url, "processing"))
    server.route("POST", rm.CANCEL, sticky=rm.prediction(server.url, "canceled"))
    _raises(TimedOut, _provider(settings, poll_deadline_s=0.2), tmp_path / "c.mp4", settings)
    assert len(server.calls("POST", rm.CANCEL)) == 1


def test_replicate_one_failed_status_check_is_not_a_failed_job(server: LoopbackServer, settings: Settings,
                                                               tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, rm.problem(500, "Internal Server Error", "try again"),
                 sticky=rm.prediction(server.url, "succeeded", output=rm.clip_url(server.url)))
    server.route("GET", rm.CLIP, Reply(body=om.mp4_bytes(seconds=1.0)))
    assert _call(_provider(settings), tmp_path / "c.mp4", _ctx(settings)).provider == "replicate:seedance-1-lite"


def test_replicate_hailuo_is_landscape_only_and_falls_back(server: LoopbackServer, settings: Settings,
                                                           tmp_path: Path) -> None:
    portrait = VideoSpec(prompt="p", scene_index=1, duration_s=1, width=180, height=320, aspect_ratio="9:16")
    chain = FallbackChain("video", [_provider(settings, HailuoVideoProvider), LocalPlaceholderVideoProvider()],
                          retry=RetryPolicy(attempts=3))
    out = anyio.run(chain.generate_video, portrait, tmp_path / "c.mp4", _ctx(settings))
    assert out.provider == "local:placeholder"
    assert [(a.provider, a.error_code) for a in out.attempts[:-1]] == [("replicate:hailuo-02", "unavailable")]
    assert not server.requests  # nothing was asked of Replicate


def test_replicate_default_chain_position_and_price_per_scene(tmp_path: Path) -> None:
    catalog = ProviderCatalog(Settings.from_env({"YTAP_HOME": str(tmp_path)}))
    ids = catalog.chain_ids("video")
    assert ids[:2] == ["google:veo-3.1", "replicate:seedance-1-lite"]
    assert ids.index("replicate:seedance-1-lite") < ids.index("motion:openai:gpt-image-2")
    assert {"replicate:seedance-1-pro", "replicate:hailuo-02"} <= set(catalog.known_ids("video"))
    assert pricing.scene_cost_usd("replicate:seedance-1-lite", 8) == pytest.approx(0.288)
    for pid in ("replicate:seedance-1-lite", "replicate:seedance-1-pro", "replicate:hailuo-02"):
        price = pricing.price_for(pid)
        assert price.unit == "second" and price.source.startswith("https://replicate.com/") and price.as_of


def test_replicate_records_the_prediction_before_waiting_and_a_resumed_job_is_not_paid_twice(
        server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    """A worker that dies while Replicate works leaves the prediction's id in the job's checkpoints; the
    next attempt polls that prediction instead of creating (and paying for) another."""
    _healthy(server)
    saved: dict = {}
    ctx = CallContext(settings=settings, progress=lambda f, m: None, checkpoint=saved.__setitem__)
    _call(_provider(settings), tmp_path / "first.mp4", ctx)
    assert saved == {"replicate:seedance-1-lite:scene_1": rm.PREDICTION_ID}

    resumed_server_calls = len(server.calls("POST", rm.CREATE))
    _healthy(server)
    progress: list = []
    again = CallContext(settings=settings, progress=lambda f, m: progress.append(m), resumed=dict(saved),
                        checkpoint=saved.__setitem__)
    result = _call(_provider(settings), tmp_path / "resumed.mp4", again)
    assert len(server.calls("POST", rm.CREATE)) == resumed_server_calls == 1  # no second prediction
    assert any(f"resuming prediction {rm.PREDICTION_ID}" in m for m in progress)
    assert probe(tmp_path / "resumed.mp4").video is not None and result.cost_usd > 0


def test_replicate_a_failed_prediction_is_forgotten_so_the_next_attempt_submits_anew(
        server: LoopbackServer, settings: Settings, tmp_path: Path) -> None:
    server.route("POST", rm.CREATE, rm.prediction(server.url, "starting", http_status=201))
    server.route("GET", rm.GET, sticky=rm.prediction(server.url, "failed", error="CUDA out of memory"))
    recorded: list = []
    ctx = CallContext(settings=settings, progress=lambda f, m: None, checkpoint=lambda k, v: recorded.append((k, v)))
    with pytest.raises(JobFailed):
        _call(_provider(settings), tmp_path / "c.mp4", ctx)
    key = "replicate:seedance-1-lite:scene_1"
    assert recorded == [(key, rm.PREDICTION_ID), (key, None)]
