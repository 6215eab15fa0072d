"""FallbackChain: a list of providers that is itself a provider.

Callers never know whether they hold one provider or a chain. Each provider is tried in
order and every try is recorded (provider, outcome, reason, elapsed, cost, and the
decision that led to it):

- not configured (no key) -> skipped with the reason;
- cooling down after repeated failures -> skipped until the cooldown ends;
- paid, and its estimated cost would pass the video's budget -> skipped with the figures;
- a ``ProviderError`` -> retried per the :class:`RetryPolicy` (Retry-After honoured up
  to a cap, else exponential backoff with jitter), then the next provider;
- any other error (an ``InputError`` every provider would reject, a cancellation)
  propagates at once.

A caller may hand a ``finish`` step (core.providers.base.Finish): the provider then writes
its raw media to a hidden sibling of ``out`` and the step turns it into ``out`` (a clip
normalised to the scene format, a picture with the thumbnail's title drawn on it) inside
the same attempt. A raw output the step cannot use fails that attempt like any provider
error, with the provider's cost, and the next provider is tried. This is the one place a
``MediaError`` about a provider's answer becomes a ``BadOutput``.

"All failed" is one ``ProvidersExhausted`` carrying every attempt.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

import anyio.to_thread

from core.assets.atomic import PART_SUFFIX
from core.errors import BadOutput, MediaError, OperationCancelled, ProviderError, ProvidersExhausted, YtapError
from core.providers._vendor import part_path
from core.providers.base import (
    CAPABILITY_METHODS,
    CallContext,
    Finish,
    ImageSpec,
    MusicSpec,
    Provider,
    ProviderOutput,
    SpeechSpec,
    VideoSpec,
    scrub,
)
from core.providers.resilience import ConcurrencyLimits, HealthBoard, RetryPolicy
from core.schemas import Attempt, Capability

__all__ = ["FallbackChain"]

log = logging.getLogger(__name__)


class FallbackChain:
    paid = False
    key_env = None

    def __init__(
        self,
        capability: Capability,
        providers: Sequence[Provider],
        *,
        fallback_on: tuple[type[BaseException], ...] = (ProviderError,),
        retry: RetryPolicy | None = None,
        health: HealthBoard | None = None,
        limits: ConcurrencyLimits | None = None,
        decisions: dict[str, str] | None = None,
    ) -> None:
        self.capability = capability
        self.providers = list(providers)
        self.fallback_on = fallback_on
        self.retry = retry or RetryPolicy()
        self.health = health or HealthBoard()
        self.limits = limits or ConcurrencyLimits()
        self.decisions = decisions or {}
        self.id = "chain:" + ",".join(p.id for p in self.providers)
        self.model = None

    def unavailable_reason(self) -> str | None:
        reasons = [p.unavailable_reason() for p in self.providers]
        if all(reasons):
            return "; ".join(f"{p.id}: {r}" for p, r in zip(self.providers, reasons, strict=True)) or "empty chain"
        return None

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext, *,
                             finish: Finish | None = None) -> ProviderOutput:
        return await self._run(spec, out, ctx, finish)

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext, *,
                         finish: Finish | None = None) -> ProviderOutput:
        return await self._run(spec, out, ctx, finish)

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext, *,
                             finish: Finish | None = None) -> ProviderOutput:
        return await self._run(spec, out, ctx, finish)

    async def compose_music(self, spec: MusicSpec, out: Path, ctx: CallContext, *,
                            finish: Finish | None = None) -> ProviderOutput:
        return await self._run(spec, out, ctx, finish)

    async def _run(self, spec: Any, out: Path, ctx: CallContext, finish: Finish | None = None) -> ProviderOutput:
        method = CAPABILITY_METHODS[self.capability]
        secrets = ctx.settings.secrets()
        attempts: list[Attempt] = []
        remaining = ctx.budget_remaining_usd
        n = len(self.providers)
        for position, provider in enumerate(self.providers, 1):
            where = f"position {position} of {n} in the {self.capability} chain"
            if provider.id in self.decisions:
                where += f" ({self.decisions[provider.id]})"
            if ctx.cancel.is_set():
                raise OperationCancelled(f"{self.capability} generation cancelled")
            reason = provider.unavailable_reason()
            if reason:
                attempts.append(Attempt(provider=provider.id, outcome="skipped", reason=reason,
                                        error_code="not_configured", decision=where))
                continue
            cooling = self.health.cooling_down(provider.id)
            if cooling is not None:
                attempts.append(Attempt(
                    provider=provider.id, outcome="skipped", error_code="cooling_down", decision=where,
                    reason=f"cooling down until {cooling.cooldown_until_utc} after {self.health.threshold} "
                           f"consecutive failures (last: {cooling.last_error})"))
                continue
            hold: int | None = None
            spent_here = 0.0  # what this provider's tries cost: what its hold on the budget settles to
            if getattr(provider, "paid", False) and remaining is not None:
                estimate = float(provider.estimate_cost_usd(spec))  # type: ignore[attr-defined]
                left = remaining
                if ctx.hold_budget is not None:  # held against every concurrent job's spending, not just ours
                    hold, left = ctx.hold_budget(provider.id, estimate)
                if (hold is None and ctx.hold_budget is not None) or estimate > left + 1e-9:
                    attempts.append(Attempt(
                        provider=provider.id, outcome="skipped", error_code="budget_exceeded", decision=where,
                        reason=f"would cost ${estimate:.4f} with ${max(0.0, left):.4f} left of "
                               f"YTAP_BUDGET_USD=${ctx.settings.budget_usd:.2f} for this video"))
                    continue

            try_number = 0
            while True:
                try_number += 1
                decision = where if try_number == 1 else f"{where}; retry {try_number - 1}"
                ctx.progress(0.0, f"trying {provider.id}" + (f" (retry {try_number - 1})" if try_number > 1 else ""))
                started = time.monotonic()
                try:
                    output = await self._attempt(provider, method, spec, out, ctx, finish)
                except self.fallback_on as exc:
                    _remove(out)
                    cost = float(getattr(exc, "cost_usd", 0.0) or 0.0)
                    spent_here += cost
                    if remaining is not None:
                        remaining -= cost
                    cooled = self.health.record_failure(provider.id, exc)
                    delay = None
                    if not cooled and isinstance(exc, ProviderError):
                        delay = self.retry.delay_s(try_number, exc)
                    err = exc if isinstance(exc, YtapError) else None
                    text = scrub(str(exc) or type(exc).__name__, secrets)
                    if delay is not None:
                        text += f" (retrying in {delay:.2f} s)"
                    elif cooled:
                        text += f" (cooling down for {self.health.cooldown_s:.0f} s)"
                    attempts.append(Attempt(
                        provider=provider.id, outcome="failed", reason=text,
                        error_code=err.code if err else type(exc).__name__,
                        elapsed_s=round(time.monotonic() - started, 3), cost_usd=cost, decision=decision))
                    log.info("%s failed (%s)%s", provider.id, attempts[-1].error_code,
                             f", retry in {delay:.1f} s" if delay is not None else ", falling back")
                    if delay is None:
                        _settle(ctx, hold, spent_here)
                        break
                    await _sleep_unless_cancelled(delay, ctx)
                    continue
                except BaseException as exc:
                    _remove(out)
                    # Not a provider's fault: no point asking the next one. Keep what was tried.
                    if isinstance(exc, YtapError):
                        exc.attempts = attempts  # type: ignore[attr-defined]
                    raise
                self.health.record_success(provider.id)
                if output.note:
                    decision = f"{decision}; {scrub(output.note, secrets)}"
                _settle(ctx, hold, spent_here + output.cost_usd)
                output.attempts = attempts + [Attempt(
                    provider=provider.id, outcome="succeeded", elapsed_s=round(time.monotonic() - started, 3),
                    cost_usd=output.cost_usd, decision=decision)]
                return output
        raise ProvidersExhausted(self.capability, attempts)

    async def _attempt(self, provider: Provider, method: str, spec: Any, out: Path, ctx: CallContext,
                       finish: Finish | None) -> ProviderOutput:
        """One provider call and, when given, the finishing of its raw output into ``out``."""
        raw = out if finish is None else _raw_path(out)
        output: ProviderOutput | None = None
        try:
            async with self.limits.slot(provider.id):
                output = await getattr(provider, method)(spec, raw, ctx)
            if finish is not None:
                done = output
                done.finished = await anyio.to_thread.run_sync(lambda: finish(done, out, ctx))
                output.path = out
            return output
        except MediaError as exc:
            # The provider answered, but with media we cannot use: its failure (billed all the same).
            raise BadOutput(f"{provider.id}: the {self.capability} it returned is unusable: {exc.message}",
                            cost_usd=output.cost_usd if output is not None else 0.0) from exc
        except ProviderError as exc:
            if output is not None:  # the finishing refused a paid answer: the attempt still cost it
                exc.cost_usd = max(exc.cost_usd, output.cost_usd)
            raise
        finally:
            if raw != out:
                _remove(raw)
                if output is not None and output.speech is not None:  # the parts were the raw media
                    shutil.rmtree(output.speech.folder, ignore_errors=True)
                if output is not None and output.footage is not None:  # so were the stock clips
                    for clip in output.footage.clips:
                        _remove(clip)


def _settle(ctx: CallContext, hold: int | None, usd: float) -> None:
    if hold is not None and ctx.settle_budget is not None:
        ctx.settle_budget(hold, usd)


async def _sleep_unless_cancelled(delay_s: float, ctx: CallContext) -> None:
    deadline = time.monotonic() + delay_s
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancel.is_set():
            raise OperationCancelled("cancelled while waiting to retry")
        await anyio.sleep(min(0.1, left))


def _raw_path(out: Path) -> Path:
    """A hidden sibling of ``out`` for a provider's raw media, with ``out``'s media extension."""
    name = out.name.removesuffix(PART_SUFFIX)
    return part_path(out.with_name(name), "raw", Path(name).suffix)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
