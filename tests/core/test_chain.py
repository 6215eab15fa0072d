from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    BudgetExceeded,
    InputError,
    NotConfigured,
    ProvidersExhausted,
    RateLimited,
    Refused,
    Unavailable,
    UnknownProvider,
)
from core.providers import CallContext, FallbackChain, ProviderCatalog, VideoSpec
from core.providers.testing import ScriptedProvider, write_bytes

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
        ("c:1", "succeeded", None),
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


def test_chain_budget_refusal_propagates_as_input_error(tmp_path: Path) -> None:
    a = ScriptedProvider("a:1", "video", [BudgetExceeded("would pass YTAP_BUDGET_USD")])
    with pytest.raises(BudgetExceeded):
        _run(FallbackChain("video", [a]), tmp_path / "o.mp4")


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
    key = "sk-test-SECRET-abcdef0123456789"
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
