from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    NotConfigured,
    ProvidersExhausted,
    RateLimited,
    Refused,
    Unavailable,
    UnknownProvider,
)
from core.providers import CallContext, ProviderCatalog, VideoSpec
from core.providers.chain import FallbackChain as _FallbackChain
from core.providers.resilience import HealthBoard, RetryPolicy
from core.providers.testing import ScriptedProvider, write_bytes


def FallbackChain(capability, providers, **kw):  # noqa: N802 - the chain, without retries unless asked
    kw.setdefault("retry", RetryPolicy(attempts=1))
    return _FallbackChain(capability, providers, **kw)


SPEC = VideoSpec(prompt="p", scene_index=1, duration_s=1, width=320, height=180)


def _ctx(**env: str) -> CallContext:
    return CallContext(settings=Settings.from_env({"YTAP_HOME": "/tmp/unused", **env}))


def _run(chain: FallbackChain, out: Path, ctx: CallContext | None = None):
    return anyio.run(chain.generate_video, SPEC, out, ctx or _ctx())


def test_chain_empty_is_exhausted_with_no_attempts(tmp_path: Path) -> None:
    with pytest.raises(ProvidersExhausted) as info:
        _run(FallbackChain("video", []), tmp_path / "o.mp4")
    assert info.value.attempts == []


def test_chain_single_provider_wins(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [write_bytes(b"A")])
    out = _run(FallbackChain("video", [a]), tmp_path / "o.mp4")
    assert out.provider == "a:1" and (tmp_path / "o.mp4").read_bytes() == b"A"
    assert [(x.provider, x.outcome) for x in out.attempts] == [("a:1", "succeeded")]


def test_chain_falls_back_and_records_every_reason(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [RateLimited("429 Too Many Requests", retry_after_s=3)])
    b = ScriptedProvider("b:1", "video", unavailable="B_API_KEY not set")
    c = ScriptedProvider("c:1", "video", [write_bytes(b"C")])
    out = _run(FallbackChain("video", [a, b, c]), tmp_path / "o.mp4")
    assert out.provider == "c:1"
    assert [(x.provider, x.outcome, x.error_code) for x in out.attempts] == [
        ("a:1", "failed", "rate_limited"),
        ("b:1", "skipped", "not_configured"),
        ("c:1", "succeeded", ""),
    ]
    assert out.attempts[0].reason == "429 Too Many Requests"
    assert out.attempts[1].reason == "B_API_KEY not set"
    assert b.calls == []  # a skipped provider is never called


def test_chain_all_three_fail_is_one_error_carrying_every_attempt(tmp_path: Path) -> None:
    providers = [
        ScriptedProvider("a:1", "video", [Unavailable("HTTP 503")]),
        ScriptedProvider("b:1", "video", [Refused("blocked by safety filter", reasons=["violence"])]),
        ScriptedProvider("c:1", "video", [BadOutput("truncated mp4")]),
    ]
    with pytest.raises(ProvidersExhausted) as info:
        _run(FallbackChain("video", providers), tmp_path / "o.mp4")
    assert [a.error_code for a in info.value.attempts] == ["unavailable", "refused", "bad_output"]
    assert "HTTP 503" in str(info.value) and "truncated mp4" in str(info.value)


def test_chain_input_error_is_not_passed_down(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [InputError("prompt is empty")])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    with pytest.raises(InputError):
        _run(FallbackChain("video", [a, b]), tmp_path / "o.mp4")
    assert b.calls == []


def test_chain_failed_attempt_leaves_no_partial_file(tmp_path: Path) -> None:
    seen_before_b: list[bool] = []

    def half_then_fail(spec, out: Path):
        out.write_bytes(b"partial")
        raise BadOutput("connection dropped mid-download")

    def b_writes(spec, out: Path):
        seen_before_b.append(out.exists())
        out.write_bytes(b"B")

    out = tmp_path / "o.mp4"
    a = ScriptedProvider("a:1", "video", [half_then_fail, half_then_fail])
    b = ScriptedProvider("b:1", "video", [b_writes])
    assert _run(FallbackChain("video", [a, b]), out).provider == "b:1"
    assert seen_before_b == [False] and out.read_bytes() == b"B"
    with pytest.raises(ProvidersExhausted):
        _run(FallbackChain("video", [a]), out)
    assert not out.exists()


def test_chain_cost_of_failed_paid_attempt_is_kept(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [BadOutput("billed but corrupt", cost_usd=0.4)], paid=True)
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    out = _run(FallbackChain("video", [a, b]), tmp_path / "o.mp4")
    assert out.attempts[0].cost_usd == 0.4


def test_chain_scrubs_secrets_from_recorded_reasons(tmp_path: Path) -> None:
    key = "FAKE-openai-SECRET-abcdef0123456789"
    a = ScriptedProvider("a:1", "video", [Unavailable(f"401 for key {key}")])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    out = _run(FallbackChain("video", [a, b]), tmp_path / "o.mp4", _ctx(OPENAI_API_KEY=key))
    assert key not in (out.attempts[0].reason or "") and "***" in (out.attempts[0].reason or "")


def test_chain_not_configured_raised_by_provider_falls_through(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [NotConfigured("OPENAI_API_KEY not set")])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    assert _run(FallbackChain("video", [a, b]), tmp_path / "o.mp4").provider == "b:1"


def test_catalog_unknown_id_lists_known_ids(settings: Settings) -> None:
    catalog = ProviderCatalog(settings)
    with pytest.raises(UnknownProvider, match="local:placeholder"):
        catalog.chain_ids("video", ["nope:1"])


def test_catalog_wrong_capability_is_refused(settings: Settings) -> None:
    with pytest.raises(UnknownProvider, match="speech provider, not a video one"):
        ProviderCatalog(settings).chain_ids("video", ["local:espeak-ng"])


def test_catalog_env_chain_order_is_used(tmp_path: Path) -> None:
    s = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_VIDEO_PROVIDERS": "x:1, local:placeholder"})
    extra = ScriptedProvider("x:1", "video")
    assert ProviderCatalog(s, [extra]).chain_ids("video") == ["x:1", "local:placeholder"]


def test_catalog_default_chains_end_in_the_local_tier(settings: Settings) -> None:
    catalog = ProviderCatalog(settings)
    assert catalog.chain_ids("video")[-1] == "local:placeholder"
    assert catalog.chain_ids("speech")[-1] == "local:espeak-ng"
    assert catalog.chain_ids("image")[-1] == "local:pillow"


def test_chain_retries_honour_retry_after_then_succeed(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [RateLimited("429", retry_after_s=0.3), Unavailable("503"), write_bytes(b"A")])
    chain = FallbackChain("video", [a], retry=RetryPolicy(attempts=3, base_delay_s=0.05))
    t0 = __import__("time").monotonic()
    out = _run(chain, tmp_path / "o.mp4")
    assert __import__("time").monotonic() - t0 >= 0.3
    assert [x.outcome for x in out.attempts] == ["failed", "failed", "succeeded"]
    assert "retrying in 0.30 s" in (out.attempts[0].reason or "")
    assert out.attempts[2].decision and "retry 2" in out.attempts[2].decision


def test_chain_retry_after_beyond_the_cap_falls_back_at_once(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [RateLimited("429", retry_after_s=600)])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    chain = FallbackChain("video", [a, b], retry=RetryPolicy(attempts=3, retry_after_cap_s=20))
    out = _run(chain, tmp_path / "o.mp4")
    assert out.provider == "b:1" and len(a.calls) == 1


def test_chain_refusal_is_not_retried(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [Refused("policy", reasons=["violence"])])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    out = _run(FallbackChain("video", [a, b], retry=RetryPolicy(attempts=3)), tmp_path / "o.mp4")
    assert len(a.calls) == 1 and out.provider == "b:1"


def test_retry_policy_backoff_grows_with_jitter_and_is_capped() -> None:
    import random

    policy = RetryPolicy(attempts=10, base_delay_s=1, max_delay_s=4, jitter=0.25)
    rng = random.Random(7)
    delays = [policy.delay_s(n, Unavailable("x"), rng) for n in range(1, 6)]
    assert 0.75 <= delays[0] <= 1.25 and 1.5 <= delays[1] <= 2.5 and all(d <= 5.0 for d in delays)
    assert policy.delay_s(10, Unavailable("x")) is None


def test_chain_cooldown_after_repeated_failures_skips_the_provider(tmp_path: Path) -> None:
    health = HealthBoard(threshold=2, cooldown_s=60)
    a = ScriptedProvider("a:1", "video", [Unavailable("503")] * 2)
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")] * 3)
    for _ in range(2):
        _run(FallbackChain("video", [a, b], health=health), tmp_path / "o.mp4")
    out = _run(FallbackChain("video", [a, b], health=health), tmp_path / "o.mp4")
    assert len(a.calls) == 2  # the third request did not call it
    assert out.attempts[0].outcome == "skipped" and out.attempts[0].error_code == "cooling_down"
    assert health.snapshot("a:1").cooldown_until_utc is not None


def test_chain_budget_skips_a_paid_call_that_would_pass_the_cap(tmp_path: Path) -> None:
    class Paid(ScriptedProvider):
        def estimate_cost_usd(self, spec) -> float:
            return 0.8

    a = Paid("a:1", "video", [write_bytes(b"A")], paid=True)
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    ctx = _ctx(YTAP_BUDGET_USD="1.00")
    ctx.budget_remaining_usd = 0.5
    out = _run(FallbackChain("video", [a, b]), tmp_path / "o.mp4", ctx)
    assert out.provider == "b:1" and a.calls == []
    assert out.attempts[0].error_code == "budget_exceeded"
    assert "$0.8000" in (out.attempts[0].reason or "") and "$0.5000 left" in (out.attempts[0].reason or "")


def test_chain_non_retryable_provider_error_falls_back_at_once(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [Unavailable("404: model gone", retryable=False)])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"B")])
    out = _run(FallbackChain("video", [a, b], retry=RetryPolicy(attempts=3)), tmp_path / "o.mp4")
    assert len(a.calls) == 1 and out.provider == "b:1"


def test_chain_concurrency_limit_caps_calls_in_flight(tmp_path: Path) -> None:
    from core.providers.resilience import ConcurrencyLimits

    in_flight, peak = 0, 0

    def slow(spec, out: Path) -> None:
        out.write_bytes(b"x")

    class Counting(ScriptedProvider):
        async def generate_video(self, spec, out, ctx):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await anyio.sleep(0.1)
            in_flight -= 1
            return await super().generate_video(spec, out, ctx)

    a = Counting("a:1", "video", [slow] * 6)
    limits = ConcurrencyLimits(overrides={"a:1": 2})

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(FallbackChain("video", [a], limits=limits).generate_video, SPEC, tmp_path / f"{i}.mp4",
                              _ctx())

    anyio.run(main)
    assert peak == 2 and len(a.calls) == 6


def test_settings_provider_concurrency_parsed_and_checked(tmp_path: Path) -> None:
    s = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_PROVIDER_CONCURRENCY": "google:veo-3.1=8, local:placeholder=1"})
    assert dict(s.provider_concurrency) == {"google:veo-3.1": 8, "local:placeholder": 1}
    assert ProviderCatalog(s).limits.limit_for("google:veo-3.1") == 8
    with pytest.raises(ValueError, match="provider_id=N"):
        Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_PROVIDER_CONCURRENCY": "veo"})


@pytest.mark.parametrize(("policy", "first"), [
    ("order", "openai:gpt-4o-mini-tts"),
    ("cheapest", "google:gemini-3.8-flash-tts"),
    ("quality", "elevenlabs:eleven_multilingual_v2"),
])
def test_catalog_chain_policy_orders_paid_providers_and_keeps_local_last(tmp_path: Path, policy: str,
                                                                         first: str) -> None:
    s = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_CHAIN_POLICY": policy})
    catalog = ProviderCatalog(s)
    ids, why = catalog.ranked_ids("speech")
    assert ids[0] == first and ids[-1] == "local:espeak-ng"
    assert (why == {}) == (policy == "order")
    chain = catalog.chain("speech")
    if policy != "order":
        assert f"{policy} policy" in chain.decisions[first]


def test_catalog_chain_policy_puts_cooling_providers_behind_healthy_ones(tmp_path: Path) -> None:
    s = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_CHAIN_POLICY": "quality"})
    catalog = ProviderCatalog(s)
    for _ in range(catalog.health.threshold):
        catalog.health.record_failure("elevenlabs:eleven_multilingual_v2", Unavailable("503"))
    ids, why = catalog.ranked_ids("speech")
    # Behind every healthy paid provider, ahead of the local tiers (local:kokoro, local:espeak-ng).
    assert ids[-3:] == ["elevenlabs:eleven_multilingual_v2", "local:kokoro", "local:espeak-ng"]
    assert "cooling down" in why["elevenlabs:eleven_multilingual_v2"]


def test_catalog_explicit_providers_list_is_used_as_given(tmp_path: Path) -> None:
    s = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_CHAIN_POLICY": "cheapest"})
    ids, why = ProviderCatalog(s).ranked_ids("speech", ["openai:tts-1-hd", "local:espeak-ng"])
    assert ids == ["openai:tts-1-hd", "local:espeak-ng"] and why == {}


# --- finishing each attempt's raw output ------------------------------------------------------


def _finish_upper(output, out: Path, ctx: CallContext) -> int:
    """A finishing step: the raw bytes, upper-cased, at ``out``; refuses raw media that says "bad"."""
    from core.errors import MediaError

    data = output.path.read_bytes()
    if data == b"bad":
        raise MediaError("not decodable")
    out.write_bytes(data.upper())
    return len(data)


def test_chain_finishes_the_raw_output_inside_the_attempt(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [write_bytes(b"raw")])
    out = tmp_path / "o.mp4"
    result = anyio.run(lambda: FallbackChain("video", [a]).generate_video(SPEC, out, _ctx(), finish=_finish_upper))
    assert out.read_bytes() == b"RAW" and result.path == out and result.finished == 3
    assert a.calls[0].out != out  # the provider wrote its raw media elsewhere...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]  # ...and it is gone


def test_chain_unusable_raw_output_falls_back_as_bad_output_with_its_cost(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [write_bytes(b"bad")], paid=True, cost_usd=0.4)
    b = ScriptedProvider("b:1", "video", [write_bytes(b"good")])
    out = tmp_path / "o.mp4"
    result = anyio.run(lambda: FallbackChain("video", [a, b]).generate_video(SPEC, out, _ctx(), finish=_finish_upper))
    assert result.provider == "b:1" and out.read_bytes() == b"GOOD"
    first = result.attempts[0]
    assert (first.provider, first.outcome, first.error_code, first.cost_usd) == ("a:1", "failed", "bad_output", 0.4)
    assert "not decodable" in (first.reason or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_chain_input_error_in_finishing_is_not_passed_down(tmp_path: Path) -> None:
    def refuse(output, out: Path, ctx: CallContext) -> None:
        raise InputError("the title font cannot be read")

    a = ScriptedProvider("a:1", "video", [write_bytes(b"raw")])
    b = ScriptedProvider("b:1", "video", [write_bytes(b"raw")])
    with pytest.raises(InputError):
        anyio.run(lambda: FallbackChain("video", [a, b]).generate_video(SPEC, tmp_path / "o.mp4", _ctx(), finish=refuse))
    assert b.calls == [] and list(tmp_path.iterdir()) == []
