"""Stock footage tiers (pexels:video, pixabay:video, commons:video) against loopback servers speaking each
API's documented JSON and serving real clips made by ffmpeg (tests/vendors/stock_mock.py).

Every scene is finished on the scene service's path (core.services.scenes.finish_clip, inside a
FallbackChain attempt) and probed: exact size, 30 fps, exact frame count. Failure paths are checked
through a chain ending in the placeholder, so each is seen as the attempt's code and reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest

from core.config import Settings
from core.errors import NothingFound, ProvidersExhausted, RateLimited
from core.media.probe import probe
from core.providers.base import CallContext, ProviderOutput, VideoSpec
from core.providers.chain import FallbackChain
from core.providers.local import LocalPlaceholderVideoProvider
from core.providers.registry import DEFAULT_CHAINS, ProviderCatalog
from core.providers.resilience import RetryPolicy
from core.providers.stock import _http
from core.providers.stock.commons import CommonsVideoProvider
from core.providers.stock.pexels import PexelsVideoProvider
from core.providers.stock.pixabay import PixabayVideoProvider
from core.providers.stock.ranking import queries_for
from core.runtime import Runtime
from core.services.scenes import finish_clip
from tests.vendors import stock_mock as sm
from tests.vendors.loopback import LoopbackServer, Reply, json_reply

PEXELS_KEY = "pexels-test-key-0123456789"
PIXABAY_KEY = "pixabay-secret-key-9876543210"
LAND = VideoSpec(prompt="A golden retriever running on a beach at sunset", scene_index=1, duration_s=2.0,
                 width=320, height=180)
PORTRAIT = VideoSpec(prompt="A golden retriever running on a beach at sunset", scene_index=2, duration_s=2.0,
                     width=180, height=320, aspect_ratio="9:16")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "land_small": sm.make_clip(d / "a.mp4", 160, 90, 4, "blue"),
        "land": sm.make_clip(d / "b.mp4", 640, 360, 4, "red"),
        "land_big": sm.make_clip(d / "c.mp4", 1280, 720, 4, "red"),
        "portrait": sm.make_clip(d / "d.mp4", 360, 640, 4, "green"),
        "short": sm.make_clip(d / "e.mp4", 640, 360, 1.0, "yellow"),
        "short2": sm.make_clip(d / "f.mp4", 640, 360, 1.2, "magenta"),
        "slowable": sm.make_clip(d / "g.mp4", 640, 360, 1.8, "cyan"),
        "webm": sm.make_clip(d / "h.webm", 640, 360, 3, "orange", webm=True),
        "webm_portrait": sm.make_clip(d / "i.webm", 360, 640, 3, "purple", webm=True),
    }


@pytest.fixture(autouse=True)
def _fresh_rate_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendors' windows are process-wide; each test starts with a fresh one."""
    monkeypatch.setattr(PexelsVideoProvider, "rate", _http.RateWindow(200, 3600.0))
    monkeypatch.setattr(PixabayVideoProvider, "rate", _http.RateWindow(100, 60.0))


def _settings(tmp_path: Path, server: LoopbackServer | None, **env: str) -> Settings:
    base = server.url if server else "http://stock.invalid"
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "PEXELS_API_KEY": PEXELS_KEY,
                              "PEXELS_BASE_URL": base, "PIXABAY_API_KEY": PIXABAY_KEY, "PIXABAY_BASE_URL": base,
                              "YTAP_COMMONS_BASE_URL": base, **env})


def _scene(provider: Any, spec: VideoSpec, tmp_path: Path, settings: Settings, *, used: frozenset[str] = frozenset(),
           searches: Any = None, retry: RetryPolicy | None = None) -> tuple[ProviderOutput, Path]:
    """The provider in a chain before the placeholder, finished as the scene service finishes it."""
    out = tmp_path / f"scene_{spec.scene_index:03d}_{time.monotonic_ns()}.mp4"
    chain = FallbackChain("video", [provider, LocalPlaceholderVideoProvider(settings)],
                          retry=retry or RetryPolicy(attempts=1))
    ctx = CallContext(settings=settings, cancel=threading.Event(), used_sources=used, searches=searches)
    result = anyio.run(lambda: chain.generate_video(spec, out, ctx, finish=finish_clip(spec)))
    return result, out


def _check_scene(out: Path, spec: VideoSpec) -> None:
    info = probe(out, count_frames=True)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (spec.width, spec.height)
    assert info.video.fps == 30
    assert info.video.frames == round(spec.duration_s * 30)
    assert info.audio is not None


def _pexels_catalogue(server: LoopbackServer, clips: dict[str, bytes]) -> dict[str, Any]:
    url = {k: sm.serve_file(server, f"{k}.mp4", v) for k, v in clips.items() if not k.startswith("webm")}
    return sm.pexels_search([
        sm.pexels_video(11, "people-in-an-office-meeting", 4, [(640, 360, url["land"], "sd")], user="Off Topic"),
        sm.pexels_video(22, "golden-retriever-running-on-the-beach", 4,
                        [(160, 90, url["land_small"], "sd"), (640, 360, url["land"], "sd"),
                         (1280, 720, url["land_big"], "hd")], user="Dog Person"),
        sm.pexels_video(33, "golden-retriever-running-on-a-beach", 4, [(360, 640, url["portrait"], "sd")],
                        user="Tall Person"),
    ])


# --- Pexels -----------------------------------------------------------------------------------


def test_pexels_picks_the_fitting_clip_at_the_smallest_covering_rendition(
        server: LoopbackServer, clips: dict[str, bytes], tmp_path: Path) -> None:
    server.route("GET", "/videos/search", sticky=json_reply(_pexels_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.provider == "pexels:video"
    _check_scene(out, LAND)
    search = server.calls("GET", "/videos/search")[0]
    assert search.headers["authorization"] == PEXELS_KEY
    q = parse_qs(search.query)
    assert q["query"] == ["golden retriever running beach"] and q["orientation"] == ["landscape"]
    # The relevant landscape clip, at 640x360 (covers 320x180), not the 1280x720 nor the 160x90.
    downloads = [r for r in server.requests if r.path.startswith("/media/")]
    assert [r.path for r in downloads] == ["/media/land.mp4"]
    assert "authorization" not in downloads[0].headers  # the key goes to the API, never to a clip's host
    assert [c.source_id for c in result.footage.credits] == ["pexels:22"]
    credit = result.footage.credits[0]
    assert credit.author == "Dog Person" and credit.license == "Pexels License" and not credit.required
    assert credit.source_url == "https://www.pexels.com/video/golden-retriever-running-on-the-beach-22/"
    decision = result.attempts[-1].decision
    assert "queries: 'golden retriever running beach' (3 found)" in decision
    assert "top: pexels:22 " in decision and "chose pexels:22" in decision and "cut: clip 1 " in decision


def test_pexels_portrait_scene_takes_the_portrait_clip(server: LoopbackServer, clips: dict[str, bytes],
                                                       tmp_path: Path) -> None:
    server.route("GET", "/videos/search", sticky=json_reply(_pexels_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), PORTRAIT, tmp_path, settings)
    assert parse_qs(server.calls("GET", "/videos/search")[0].query)["orientation"] == ["portrait"]
    assert [c.source_id for c in result.footage.credits] == ["pexels:33"]
    _check_scene(out, PORTRAIT)


def test_pexels_clip_used_in_the_video_is_not_used_again(server: LoopbackServer, clips: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    server.route("GET", "/videos/search", sticky=json_reply(_pexels_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings, used=frozenset({"pexels:22"}))
    assert "pexels:22" not in [c.source_id for c in result.footage.credits]
    _check_scene(out, LAND)


def test_pexels_short_clips_are_joined_never_frozen(server: LoopbackServer, clips: dict[str, bytes],
                                                    tmp_path: Path) -> None:
    a = sm.serve_file(server, "short.mp4", clips["short"])
    b = sm.serve_file(server, "short2.mp4", clips["short2"])
    server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([
        sm.pexels_video(1, "golden-retriever-on-beach", 1, [(640, 360, a, "sd")]),
        sm.pexels_video(2, "golden-retriever-running-beach", 1, [(640, 360, b, "sd")]),
    ])))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.provider == "pexels:video"
    assert len(result.footage.credits) == 2  # 1.0 s + 1.2 s for a 2 s scene
    assert "cut: clip 1 " in result.attempts[-1].decision and "clip 2 " in result.attempts[-1].decision
    _check_scene(out, LAND)


def test_pexels_a_clip_a_little_short_is_slowed(server: LoopbackServer, clips: dict[str, bytes],
                                                tmp_path: Path) -> None:
    a = sm.serve_file(server, "slowable.mp4", clips["slowable"])
    server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([
        sm.pexels_video(7, "golden-retriever-running-on-beach-at-sunset", 2, [(640, 360, a, "sd")])])))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert len(result.footage.credits) == 1
    assert "x" in result.attempts[-1].decision.split("cut: ")[1]  # "clip 1 0.00-1.80 s at 0.87x"
    _check_scene(out, LAND)


def test_pexels_broader_queries_only_while_nothing_fits(server: LoopbackServer, clips: dict[str, bytes],
                                                        tmp_path: Path) -> None:
    url = sm.serve_file(server, "land.mp4", clips["land"])
    server.route("GET", "/videos/search", json_reply(sm.pexels_search([])),
                 sticky=json_reply(sm.pexels_search([sm.pexels_video(5, "golden-retriever-dog", 4,
                                                                     [(640, 360, url, "sd")])])))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    asked = [parse_qs(r.query)["query"][0] for r in server.calls("GET", "/videos/search")]
    assert asked == queries_for(LAND.prompt)[:2] == ["golden retriever running beach", "golden retriever"]
    assert result.provider == "pexels:video"
    _check_scene(out, LAND)


def test_pexels_nothing_found_lists_the_queries_and_falls_back(server: LoopbackServer, tmp_path: Path) -> None:
    server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([])))
    settings = _settings(tmp_path, server)
    result, _ = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    failed = result.attempts[0]
    assert result.provider == "local:placeholder" and failed.error_code == "nothing_found"
    assert failed.reason == ("Pexels found nothing usable for 'golden retriever running beach' (0 found), "
                             "'golden retriever' (0 found), 'retriever beach' (0 found)")


def test_pexels_missing_key_is_skipped_without_a_request(server: LoopbackServer, tmp_path: Path) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "PEXELS_BASE_URL": server.url})
    result, _ = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert (result.attempts[0].outcome, result.attempts[0].reason) == ("skipped", "PEXELS_API_KEY not set")
    assert server.requests == []


@pytest.mark.parametrize(("reply", "code", "reason"), [
    (json_reply({"error": "Unauthorized"}, status=401), "not_configured",
     "Pexels rejected the key (401): check PEXELS_API_KEY"),
    (json_reply({"error": "boom"}, status=502), "unavailable", "Pexels failed (502: {\"error\": \"boom\"})"),
    (Reply(body=b"{\"videos\": [", headers={"content-type": "application/json"}), "bad_output",
     "Pexels answered with malformed JSON"),
    (json_reply({"photos": []}), "bad_output", "Pexels answered without a videos list"),
    (Reply(delay_s=1.5), "timed_out", "Pexels did not answer in time (ReadTimeout)"),
])
def test_pexels_failures_fall_back_with_their_reason(server: LoopbackServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, reply: Reply, code: str,
                                                     reason: str) -> None:
    monkeypatch.setattr(PexelsVideoProvider, "timeout_s", 0.5)
    server.route("GET", "/videos/search", sticky=reply)
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.provider == "local:placeholder"
    assert result.attempts[0].error_code == code and result.attempts[0].reason.startswith(reason)
    _check_scene(out, LAND)


def test_pexels_429_waits_for_retry_after_then_succeeds(server: LoopbackServer, clips: dict[str, bytes],
                                                        tmp_path: Path) -> None:
    server.route("GET", "/videos/search", json_reply({"error": "slow down"}, status=429, headers={"Retry-After": "1"}),
                 sticky=json_reply(_pexels_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    started = time.monotonic()
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings, retry=RetryPolicy(attempts=2))
    assert time.monotonic() - started >= 1.0
    assert result.provider == "pexels:video"
    assert result.attempts[0].error_code == "rate_limited"
    assert result.attempts[0].reason == "Pexels is rate limiting us (429), retry after 1 s (retrying in 1.00 s)"
    _check_scene(out, LAND)


def test_pexels_429_reset_header_is_read_when_retry_after_is_absent() -> None:
    err = _http._status_error(429, "", {"x-ratelimit-reset": str(int(time.time()) + 600)}, who="Pexels",
                              key_env="PEXELS_API_KEY")
    assert isinstance(err, RateLimited) and 590 <= (err.retry_after_s or 0) <= 600


@pytest.mark.parametrize("reply", ["truncated", "not_video"])
def test_pexels_bad_download_passes_over_to_the_next_clip(server: LoopbackServer, clips: dict[str, bytes],
                                                          tmp_path: Path, reply: str) -> None:
    bad = (sm.serve_file(server, "bad.mp4", clips["land"], truncate_to=len(clips["land"]) // 3) if reply == "truncated"
           else sm.serve_file(server, "bad.mp4", b"<html>not a video</html>" * 50, mime="text/html"))
    good = sm.serve_file(server, "good.mp4", clips["land"])
    server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([
        sm.pexels_video(1, "golden-retriever-running-on-beach", 4, [(640, 360, bad, "sd")]),
        sm.pexels_video(2, "golden-retriever-beach", 4, [(640, 360, good, "sd")])])))
    settings = _settings(tmp_path, server)
    result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert [c.source_id for c in result.footage.credits] == ["pexels:2"]
    assert "passed over pexels:1: " in result.attempts[-1].decision
    _check_scene(out, LAND)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no clip left behind


def test_pexels_every_download_bad_is_bad_output(server: LoopbackServer, tmp_path: Path) -> None:
    bad = sm.serve_file(server, "bad.mp4", b"\x00" * 4096)
    server.route("GET", "/videos/search", sticky=json_reply(sm.pexels_search([
        sm.pexels_video(1, "golden-retriever-running-on-beach", 4, [(640, 360, bad, "sd")])])))
    settings = _settings(tmp_path, server)
    result, _ = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.provider == "local:placeholder" and result.attempts[0].error_code == "bad_output"
    assert result.attempts[0].reason.startswith("Pexels: no download was usable (pexels:1: ")


def test_stock_offline_dns_failure_falls_through_fast(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    for provider in (PexelsVideoProvider(settings), PixabayVideoProvider(settings), CommonsVideoProvider(settings)):
        started = time.monotonic()
        result, out = _scene(provider, LAND, tmp_path, settings, retry=RetryPolicy(attempts=3))
        failed = result.attempts[0]
        assert result.provider == "local:placeholder"
        assert (failed.provider, failed.error_code) == (provider.id, "unavailable")
        assert "cannot be reached" in failed.reason and "retrying" not in failed.reason
        assert failed.elapsed_s < 3.0 and time.monotonic() - started < 10.0


def test_stock_rate_window_refuses_before_calling() -> None:
    window = _http.RateWindow(2, 60.0)
    window.take("Pixabay")
    window.take("Pixabay")
    with pytest.raises(RateLimited) as caught:
        window.take("Pixabay")
    assert 59 <= (caught.value.retry_after_s or 0) <= 60


# --- Pixabay ----------------------------------------------------------------------------------


def _pixabay_catalogue(server: LoopbackServer, clips: dict[str, bytes]) -> dict[str, Any]:
    land = sm.serve_file(server, "land.mp4", clips["land"])
    big = sm.serve_file(server, "land_big.mp4", clips["land_big"])
    tall = sm.serve_file(server, "portrait.mp4", clips["portrait"])
    return sm.pixabay_search([
        sm.pixabay_hit(101, "office, meeting, people", 4, {"medium": (640, 360, land)}),
        sm.pixabay_hit(102, "dog, golden retriever, beach, running", 4,
                       {"large": (1280, 720, big), "medium": (640, 360, land)}),
        sm.pixabay_hit(103, "golden retriever, dog, beach, sunset", 4, {"medium": (360, 640, tall)}),
    ])


def test_pixabay_scene_and_the_key_is_only_on_the_wire(server: LoopbackServer, clips: dict[str, bytes],
                                                       tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # httpx's own logger too: a CLI test run earlier in this process (ytap_mcp.cli quiets it) must not hide
    # the request lines this test reads.
    caplog.set_level(logging.DEBUG, logger="httpx")
    server.route("GET", "/api/videos/", sticky=json_reply(_pixabay_catalogue(server, clips)))
    rt = Runtime.create(_settings(tmp_path, server))
    try:
        provider = PixabayVideoProvider(rt.settings)
        result, out = _scene(provider, LAND, tmp_path, rt.settings, searches=rt.registry.searches)
        result2, out2 = _scene(provider, PORTRAIT, tmp_path, rt.settings, searches=rt.registry.searches)
        # Bring a 429 (its reason is recorded) and a rejected key into the record too.
        server.route("GET", "/api/videos/", json_reply({"x": 1}, status=429),
                     Reply(status=400, body=b"[ERROR 400] Invalid or missing API key"))
        failed, _ = _scene(provider, VideoSpec("a red fox in snow", 3, 2.0, 320, 180), tmp_path, rt.settings,
                           searches=rt.registry.searches)
        failed2, _ = _scene(provider, VideoSpec("a red fox in snow", 3, 2.0, 320, 180), tmp_path, rt.settings,
                            searches=rt.registry.searches)
    finally:
        rt.close()
    searches = server.calls("GET", "/api/videos/")
    assert parse_qs(searches[0].query)["key"] == [PIXABAY_KEY]  # the vendor gets it, in the query string
    assert all("key" not in parse_qs(r.query) for r in server.requests if r.path.startswith("/media/"))
    assert [c.source_id for c in result.footage.credits] == ["pixabay:102"]
    assert [c.source_id for c in result2.footage.credits] == ["pixabay:103"]
    assert "/media/land.mp4" in [r.path for r in server.requests]  # 640x360 covers 320x180: not the 1280x720
    _check_scene(out, LAND)
    _check_scene(out2, PORTRAIT)
    assert failed.attempts[0].error_code == "rate_limited"
    assert (failed2.attempts[0].error_code, failed2.attempts[0].reason) == (
        "not_configured", "Pixabay rejected the key (400): check PIXABAY_API_KEY")
    # ...and nowhere else: logs (httpx's request lines included), results, attempts, registry, files.
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "HTTP Request: GET http://127.0.0.1" in logged and "/api/videos/" in logged
    assert PIXABAY_KEY not in logged
    for r in (result, result2, failed, failed2):
        assert PIXABAY_KEY not in repr(r) and PIXABAY_KEY not in repr(r.attempts)
    for f in (tmp_path / "home").rglob("*"):
        if f.is_file():
            assert PIXABAY_KEY.encode() not in f.read_bytes(), f


def test_pixabay_searches_are_cached_24_hours_in_the_registry(server: LoopbackServer, clips: dict[str, bytes],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("GET", "/api/videos/", sticky=json_reply(_pixabay_catalogue(server, clips)))
    rt = Runtime.create(_settings(tmp_path, server))
    try:
        provider = PixabayVideoProvider(rt.settings)
        for i in range(2):
            result, out = _scene(provider, VideoSpec(LAND.prompt, i + 1, 2.0, 320, 180), tmp_path, rt.settings,
                                 searches=rt.registry.searches)
            assert result.provider == "pixabay:video"
        assert len(server.calls("GET", "/api/videos/")) == 1  # the second scene read the stored answer
        key = rt.registry.db.query("SELECT search_key FROM searches")[0]["search_key"]
        assert key.startswith("pixabay:video ") and "q=golden retriever running beach" in key
        assert rt.registry.searches.get(key, max_age_s=0) is None  # older than that: asked again
        rt.registry.db.query("SELECT 1")
        with rt.registry.db.tx() as tx:  # a day and a minute old
            tx.execute("UPDATE searches SET created_at='2000-01-01T00:00:00.000Z'")
        _scene(provider, VideoSpec(LAND.prompt, 3, 2.0, 320, 180), tmp_path, rt.settings,
               searches=rt.registry.searches)
        assert len(server.calls("GET", "/api/videos/")) == 2
    finally:
        rt.close()


def test_pixabay_rate_limit_is_honoured_before_the_vendor(server: LoopbackServer, clips: dict[str, bytes],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PixabayVideoProvider, "rate", _http.RateWindow(1, 60.0))
    server.route("GET", "/api/videos/", sticky=json_reply(sm.pixabay_search([])))
    settings = _settings(tmp_path, server)
    result, _ = _scene(PixabayVideoProvider(settings), LAND, tmp_path, settings)
    # The first query was asked; the second was refused by us, not sent.
    assert len(server.calls("GET", "/api/videos/")) == 1
    assert result.attempts[0].error_code == "rate_limited"
    assert result.attempts[0].reason.startswith("Pixabay: 1 searches in 60 s is its limit; the next is allowed in")


# --- Wikimedia Commons ------------------------------------------------------------------------


def _commons_catalogue(server: LoopbackServer, clips: dict[str, bytes]) -> dict[str, Any]:
    wide = sm.serve_file(server, "wide.webm", clips["webm"], mime="video/webm")
    tall = sm.serve_file(server, "tall.webm", clips["webm_portrait"], mime="video/webm")
    return sm.commons_search([
        sm.commons_page(1, "Golden_retriever_running_on_beach_NC.webm", 640, 360, 3.0, wide, licence="CC BY-NC 4.0"),
        sm.commons_page(2, "Golden_retriever_on_the_beach_GFDL.webm", 640, 360, 3.0, wide, licence="GFDL"),
        sm.commons_page(3, "Golden_retriever_running_beach_SA.webm", 640, 360, 3.0, wide, licence="CC BY-SA 4.0",
                        licence_url="https://creativecommons.org/licenses/by-sa/4.0"),
        sm.commons_page(4, "Golden_retriever_at_the_beach.webm", 640, 360, 3.0, wide),
        sm.commons_page(5, "Golden_retriever_beach_vertical.webm", 360, 640, 3.0, tall, licence="CC0",
                        licence_url=None, artist="Unknown"),
        sm.commons_page(6, "Golden_retriever_beach_photo.jpg", 640, 360, 0, wide, mime="image/jpeg"),
    ])


def test_commons_only_reusable_licences_and_the_credit_is_required(server: LoopbackServer, clips: dict[str, bytes],
                                                                   tmp_path: Path) -> None:
    server.route("GET", "/w/api.php", sticky=json_reply(_commons_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    result, out = _scene(CommonsVideoProvider(settings), LAND, tmp_path, settings)
    q = parse_qs(server.calls("GET", "/w/api.php")[0].query)
    assert (q["action"], q["generator"], q["prop"]) == (["query"], ["search"], ["imageinfo"])
    assert q["gsrsearch"] == ["golden retriever running beach filetype:video"]
    assert "extmetadata" in q["iiprop"][0]
    decision = result.attempts[-1].decision
    assert "commons:1" not in decision and "commons:2" not in decision and "commons:3" not in decision
    credit = result.footage.credits[0]
    assert credit.source_id == "commons:4" and credit.required and credit.license == "CC BY 4.0"
    assert credit.author == "Ann" and credit.license_url == "https://creativecommons.org/licenses/by/4.0"
    assert credit.text == ('"Golden retriever at the beach.webm" by Ann, CC BY 4.0 '
                           '(https://creativecommons.org/licenses/by/4.0), via Wikimedia Commons: '
                           'https://commons.wikimedia.org/wiki/File:Golden_retriever_at_the_beach.webm')
    _check_scene(out, LAND)
    result, out = _scene(CommonsVideoProvider(settings), PORTRAIT, tmp_path, settings)
    assert result.footage.credits[0].source_id == "commons:5" and not result.footage.credits[0].required
    _check_scene(out, PORTRAIT)


def test_commons_share_alike_only_on_opt_in(server: LoopbackServer, clips: dict[str, bytes], tmp_path: Path) -> None:
    wide = sm.serve_file(server, "wide.webm", clips["webm"], mime="video/webm")
    server.route("GET", "/w/api.php", sticky=json_reply(sm.commons_search([
        sm.commons_page(3, "Golden_retriever_running_beach.webm", 640, 360, 3.0, wide, licence="CC BY-SA 4.0")])))
    settings = _settings(tmp_path, server)
    refused, _ = _scene(CommonsVideoProvider(settings), LAND, tmp_path, settings)
    assert refused.attempts[0].error_code == "nothing_found"
    settings = _settings(tmp_path, server, YTAP_COMMONS_ALLOW_SA="1")
    result, out = _scene(CommonsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.footage.credits[0].license == "CC BY-SA 4.0" and result.footage.credits[0].required
    _check_scene(out, LAND)


def test_commons_error_answer_is_bad_output(server: LoopbackServer, tmp_path: Path) -> None:
    server.route("GET", "/w/api.php", sticky=json_reply({"error": {"code": "badvalue", "info": "Unrecognized value"}}))
    settings = _settings(tmp_path, server)
    result, _ = _scene(CommonsVideoProvider(settings), LAND, tmp_path, settings)
    assert result.attempts[0].error_code == "bad_output"
    assert result.attempts[0].reason == "Wikimedia Commons answered without a query result: Unrecognized value"


# --- placement --------------------------------------------------------------------------------


def test_stock_tiers_sit_between_stills_in_motion_and_the_placeholder(tmp_path: Path) -> None:
    assert DEFAULT_CHAINS["video"][-4:] == ("pexels:video", "pixabay:video", "commons:video", "local:placeholder")
    ids = ProviderCatalog(Settings.from_env({"YTAP_HOME": str(tmp_path)})).chain_ids("video")
    assert ids.index("motion:openai:gpt-image-2") < ids.index("pexels:video")


def test_stock_nothing_found_is_not_retried() -> None:
    assert RetryPolicy().delay_s(1, NothingFound("x")) is None
    assert not isinstance(NothingFound("x"), ProvidersExhausted)


def test_stock_a_clip_exactly_at_the_slow_limit_is_joined_not_refused() -> None:
    from core.providers.stock.footage import _enough

    spec = VideoSpec("x", 1, 4.0, 320, 180)
    assert not _enough([3.0], spec)  # 3.0 s is 0.75 of 4 s, but the cut plans two frames more
    assert _enough([3.0, 1.0], spec) and _enough([3.5], spec)


def test_stock_scenes_made_at_the_same_time_take_different_clips(server: LoopbackServer, clips: dict[str, bytes],
                                                                 tmp_path: Path) -> None:
    from core.services.scenes import _IN_FLIGHT, _SourceClaims

    server.route("GET", "/videos/search", sticky=json_reply(_pexels_catalogue(server, clips)))
    settings = _settings(tmp_path, server)
    rt = Runtime.create(settings)
    try:
        video = rt.paths("ws", "v")
    finally:
        rt.close()
    first, second = _SourceClaims(video), _SourceClaims(video)
    provider = PexelsVideoProvider(settings)
    outputs: list[ProviderOutput] = []

    async def one(claims: _SourceClaims, n: int) -> None:
        ctx = CallContext(settings=settings, cancel=threading.Event(), claim=claims.take)
        outputs.append(await provider.generate_video(LAND, tmp_path / f"raw{n}.mp4", ctx))

    async def both() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first, 1)
            tg.start_soon(one, second, 2)

    anyio.run(both)
    chosen = sorted(o.footage.credits[0].source_id for o in outputs)
    assert chosen[0] != chosen[1] and "pexels:22" in chosen
    first.release()
    second.release()
    assert ("ws", "v") not in _IN_FLIGHT


@pytest.mark.parametrize(("prompt", "first_two"), [
    # Camera words before "of": what follows is the subject, not a prepositional phrase.
    ("Close-up of a huge Fresnel lens turning slowly, light refracting into bright beams",
     ["fresnel lens turning refracting", "fresnel lens"]),
    ("Aerial shot of a lighthouse on a rocky coast at dawn", ["lighthouse coast", "lighthouse"]),
    ("A golden retriever running on a beach at sunset", ["golden retriever running beach", "golden retriever"]),
])
def test_queries_name_the_subject(prompt: str, first_two: list[str]) -> None:
    assert queries_for(prompt)[:2] == first_two


def test_stock_connection_without_an_answer_falls_through_without_retrying(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets dropped (a firewall; here a listener whose accept queue is full, so its SYNs go unanswered):
    one attempt of the connect timeout, not three plus backoff, then the next tier."""
    import socket

    monkeypatch.setattr(PexelsVideoProvider, "timeout_s", 0.5)
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fill = []
    for _ in range(4):  # fill the backlog: later SYNs are dropped, not refused
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fill.append(c)
    try:
        settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "PEXELS_API_KEY": PEXELS_KEY,
                                      "PEXELS_BASE_URL": f"http://127.0.0.1:{port}"})
        result, out = _scene(PexelsVideoProvider(settings), LAND, tmp_path, settings, retry=RetryPolicy(attempts=3))
    finally:
        for c in fill:
            c.close()
        hole.close()
    pexels = [a for a in result.attempts if a.provider == "pexels:video"]
    assert result.provider == "local:placeholder"
    assert [a.error_code for a in pexels] == ["timed_out"], result.attempts
    assert pexels[0].reason.startswith("Pexels cannot be reached (no answer to the connection in time")
    assert pexels[0].elapsed_s < 3.0  # the connect timeout (2 s), once: retried, it was 3 x 2 s plus backoff
    _check_scene(out, LAND)
