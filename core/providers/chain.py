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

"All failed" is one ``ProvidersExhausted`` carrying every attempt.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from core.errors import OperationCancelled, ProviderError, ProvidersExhausted, YtapError
from core.providers.base import (
    CAPABILITY_METHODS,
    CallContext,
    ImageSpec,
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

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._run(spec, out, ctx)

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._run(spec, out, ctx)

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._run(spec, out, ctx)

    async def _run(self, spec: Any, out: Path, ctx: CallContext) -> ProviderOutput:
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
            if getattr(provider, "paid", False) and remaining is not None:
                estimate = float(provider.estimate_cost_usd(spec))  # type: ignore[attr-defined]
                if estimate > remaining + 1e-9:
                    attempts.append(Attempt(
                        provider=provider.id, outcome="skipped", error_code="budget_exceeded", decision=where,
                        reason=f"would cost ${estimate:.4f} with ${max(0.0, remaining):.4f} left of "
                               f"YTAP_BUDGET_USD=${ctx.settings.budget_usd:.2f} for this video"))
                    continue

            try_number = 0
            while True:
                try_number += 1
                decision = where if try_number == 1 else f"{where}; retry {try_number - 1}"
                ctx.progress(0.0, f"trying {provider.id}" + (f" (retry {try_number - 1})" if try_number > 1 else ""))
                started = time.monotonic()
                try:
                    async with self.limits.slot(provider.id):
                        output: ProviderOutput = await getattr(provider, method)(spec, out, ctx)
                except self.fallback_on as exc:
                    _remove(out)
                    cost = float(getattr(exc, "cost_usd", 0.0) or 0.0)
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
                output.attempts = attempts + [Attempt(
                    provider=provider.id, outcome="succeeded", elapsed_s=round(time.monotonic() - started, 3),
                    cost_usd=output.cost_usd, decision=decision)]
                return output
        raise ProvidersExhausted(self.capability, attempts)


async def _sleep_unless_cancelled(delay_s: float, ctx: CallContext) -> None:
    deadline = time.monotonic() + delay_s
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancel.is_set():
            raise OperationCancelled("cancelled while waiting to retry")
        await anyio.sleep(min(0.1, left))


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
