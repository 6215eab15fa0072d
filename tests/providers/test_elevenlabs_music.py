"""elevenlabs:music over the wire: the official SDK's music.compose against a loopback server speaking
ElevenLabs' music API (tests/vendors/elevenlabs_mock.py), every failure falling back to local:ambient.

The audio served is a real MP3 of music cut from a longer bed, so the loop is made on the
decoded audio: tempo, bar line, crossfade, mastering, all measured on the written file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from core.config import Settings
from core.jobs import JobHandle
from core.media.mix import measure_loudness
from core.media.probe import probe
from core.providers.elevenlabs_music import ElevenLabsMusicProvider
from core.providers.pricing import price_for
from core.providers.resilience import RetryPolicy
from core.runtime import Runtime
from core.schemas import MusicRequest, MusicResult
from core.services import music
from core.services.tracking import provider_report
from tests.vendors import elevenlabs_mock as el
from tests.vendors.loopback import LoopbackServer, Reply

KEY = "sk_test_9c1e_MUSIC_DISTINCTIVE_FAKE_KEY"
PRICE_PER_S = price_for("elevenlabs:music").usd_per_unit  # type: ignore[union-attr]


@pytest.fixture
def rt(tmp_path: Path, server: LoopbackServer) -> Iterator[Runtime]:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "ELEVENLABS_API_KEY": KEY,
                                  "ELEVENLABS_BASE_URL": server.url})
    runtime = Runtime.create(settings)
    runtime.catalog.retry = RetryPolicy(attempts=2, base_delay_s=0.05, max_delay_s=0.1)
    yield runtime
    runtime.close()


def _generate(rt: Runtime, video: str, mood: str = "upbeat, happy", duration_s: float = 10.0) -> MusicResult:
    plan = music.prepare(rt, MusicRequest(video_id=video, mood=mood, duration_s=duration_s))
    return anyio.run(music.generate_music, rt, plan, JobHandle(job_id="job_" + "m" * 20, kind="generate_music"))


def _no_key_anywhere(rt: Runtime, server: LoopbackServer, result: MusicResult) -> None:
    assert KEY not in result.model_dump_json()
    assert KEY not in json.dumps(provider_report(rt, "default", None).model_dump(mode="json"))
    assert all(r.headers.get("xi-api-key") == KEY for r in server.requests)  # sent, only as the header


def test_elevenlabs_music_composes_an_instrumental_bed_through_the_sdk(rt: Runtime, server: LoopbackServer) -> None:
    server.route("POST", el.MUSIC_PATH, el.composing(12.0))
    res = _generate(rt, "m1", duration_s=10.0)

    (req,) = server.calls("POST", el.MUSIC_PATH)
    body = req.json()
    assert body["prompt"] == "upbeat, happy" and body["force_instrumental"] is True
    assert body["model_id"] == "music_v1" and body["music_length_ms"] == 12_000  # 10 s + the crossfade it eats
    assert "output_format=mp3_44100_128" in req.query

    assert res.provider == "elevenlabs:music" and res.kind == "music"
    assert res.cost_usd == pytest.approx(12.0 * PRICE_PER_S)
    assert [a.outcome for a in res.attempts] == ["succeeded"]
    info = probe(res.path)
    assert info.audio is not None and (info.audio.sample_rate, info.audio.channels) == (48000, 2)
    # Looped on a bar line (its tempo found in the audio) to whole loops near the 10 s asked for.
    assert res.bpm is not None and res.loop_s <= 10.5
    assert info.duration_s == pytest.approx(res.loop_s * round(10.0 / res.loop_s), abs=0.01)
    assert res.loops_seamlessly
    assert measure_loudness(res.path).integrated_lufs == pytest.approx(res.integrated_lufs, abs=0.05)
    assert res.integrated_lufs == pytest.approx(-20.0, abs=0.5)

    report = provider_report(rt, "default", "m1")
    status = next(p for p in report.providers if p.id == "elevenlabs:music")
    assert status.capability == "music" and status.calls == 1 and status.cost_usd == pytest.approx(res.cost_usd)
    assert report.totals.by_capability.get("music") == pytest.approx(res.cost_usd)
    _no_key_anywhere(rt, server, res)


def test_elevenlabs_music_honours_its_length_limit_and_loops_to_the_duration(
    rt: Runtime, server: LoopbackServer
) -> None:
    provider = rt.catalog.get("elevenlabs:music")
    assert isinstance(provider, ElevenLabsMusicProvider)
    provider.max_request_s = 12.0  # the API's ceiling, scaled down: a 30 s bed is a 12 s track looped
    server.route("POST", el.MUSIC_PATH, el.composing(12.0))
    res = _generate(rt, "m2", duration_s=30.0)
    (req,) = server.calls("POST", el.MUSIC_PATH)
    assert req.json()["music_length_ms"] == 12_000
    assert res.cost_usd == pytest.approx(12.0 * PRICE_PER_S)
    info = probe(res.path)
    loops = round(30.0 / res.loop_s)
    assert loops >= 3 and info.duration_s == pytest.approx(loops * res.loop_s, abs=0.01)
    assert res.loops_seamlessly


@pytest.mark.parametrize(("replies", "code", "says"), [
    ([el.rate_limited("0.2"), el.rate_limited("0.2")], "rate_limited", "429"),
    ([el.server_error(500), el.server_error(503)], "unavailable", "server error"),
    ([el.bad_prompt()], "refused", "bad_prompt"),
    ([el.bad_prompt(status=422)], "refused", "bad_prompt"),
    # The stream ends before its announced length (the connection cut), twice.
    ([Reply(body=el.music_mp3(12.0), headers={"content-type": "audio/mpeg"}, truncate_to=20_000)] * 2,
     "unavailable", "cut the music short"),
    # A whole answer, but of 6 s where 10 were asked for, twice.
    ([el.composing(6.0)] * 2, "bad_output", "cut off"),
])
def test_elevenlabs_music_failures_fall_back_to_local_ambient_with_the_reason(
    rt: Runtime, server: LoopbackServer, replies: list[Reply], code: str, says: str
) -> None:
    server.route("POST", el.MUSIC_PATH, *replies)
    started = time.monotonic()
    res = _generate(rt, f"f-{code.replace('_', '-')}", duration_s=8.0)
    assert res.provider == "local:ambient" and res.loops_seamlessly
    failed = [a for a in res.attempts if a.provider == "elevenlabs:music"]
    assert failed and all(a.outcome == "failed" for a in failed)
    assert {a.error_code for a in failed} <= {code, "unavailable"} and failed[-1].error_code == code
    assert says in (failed[-1].reason or "")
    assert res.attempts[-1].provider == "local:ambient" and res.attempts[-1].outcome == "succeeded"
    if code == "rate_limited":  # Retry-After honoured: asked twice, 0.2 s apart
        assert len(server.calls("POST", el.MUSIC_PATH)) == 2 and time.monotonic() - started >= 0.2
        assert "retrying in 0.20 s" in (failed[0].reason or "")
    if code == "refused":  # not retried; the vendor's rewording is passed on for the agent
        assert len(server.calls("POST", el.MUSIC_PATH)) == 1
        assert "suggests: An upbeat pop track" in (failed[0].reason or "")
    if code in ("bad_output", "unavailable") and says.startswith("cut"):  # a 2xx answer was billed, cut or not
        assert all(a.cost_usd == pytest.approx(10.0 * PRICE_PER_S) for a in failed)
        assert res.cost_usd == pytest.approx(len(failed) * 10.0 * PRICE_PER_S)  # the bed's cost counts them
    _no_key_anywhere(rt, server, res)


def test_elevenlabs_music_without_a_key_is_skipped(tmp_path: Path, server: LoopbackServer) -> None:
    runtime = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "h2"), "ELEVENLABS_BASE_URL": server.url}))
    try:
        res = _generate(runtime, "nokey", duration_s=6.0)
    finally:
        runtime.close()
    assert server.requests == []
    assert (res.attempts[0].provider, res.attempts[0].outcome, res.attempts[0].reason) == (
        "elevenlabs:music", "skipped", "ELEVENLABS_API_KEY not set")
    assert res.provider == "local:ambient"


def test_elevenlabs_music_over_the_budget_is_skipped_before_any_request(tmp_path: Path, server: LoopbackServer) -> None:
    runtime = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "h3"), "ELEVENLABS_API_KEY": KEY,
                                                "ELEVENLABS_BASE_URL": server.url, "YTAP_BUDGET_USD": "0.05"}))
    try:
        res = _generate(runtime, "budget", duration_s=60.0)  # 62 s asked for: $0.78 > $0.05
    finally:
        runtime.close()
    assert server.requests == []
    first = res.attempts[0]
    assert (first.outcome, first.error_code) == ("skipped", "budget_exceeded") and "YTAP_BUDGET_USD" in first.reason
    assert res.provider == "local:ambient"
