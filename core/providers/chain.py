"""FallbackChain: a list of providers that is itself a provider.

Callers never know whether they hold one provider or a chain. Each provider is tried in
order; a provider that is not configured is skipped with the reason; a ``ProviderError``
falls through to the next one; any other error (an ``InputError`` every provider would
reject, a cancellation) propagates at once. Every attempt is recorded — provider,
outcome, reason, elapsed time, cost — and "all failed" is one ``ProvidersExhausted``
carrying them all.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    ) -> None:
        self.capability = capability
        self.providers = list(providers)
        self.fallback_on = fallback_on
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
        for position, provider in enumerate(self.providers, 1):
            decision = f"position {position} of {len(self.providers)} in the {self.capability} chain"
            if ctx.cancel.is_set():
                raise OperationCancelled(f"{self.capability} generation cancelled")
            reason = provider.unavailable_reason()
            if reason:
                attempts.append(
                    Attempt(provider=provider.id, outcome="skipped", reason=reason, error_code="not_configured",
                            decision=decision)
                )
                continue
            ctx.progress(0.0, f"trying {provider.id}")
            started = time.monotonic()
            try:
                output: ProviderOutput = await getattr(provider, method)(spec, out, ctx)
            except self.fallback_on as exc:
                _remove(out)
                err = exc if isinstance(exc, YtapError) else None
                attempts.append(
                    Attempt(
                        provider=provider.id,
                        outcome="failed",
                        reason=scrub(str(exc) or type(exc).__name__, secrets),
                        error_code=err.code if err else type(exc).__name__,
                        elapsed_s=round(time.monotonic() - started, 3),
                        cost_usd=getattr(exc, "cost_usd", 0.0),
                        decision=decision,
                    )
                )
                log.info("%s failed (%s), falling back", provider.id, attempts[-1].error_code)
                continue
            except BaseException as exc:
                _remove(out)
                # Not a provider's fault: no point asking the next one. Keep what was tried.
                if isinstance(exc, YtapError):
                    exc.attempts = attempts  # type: ignore[attr-defined]
                raise
            output.attempts = attempts + [
                Attempt(
                    provider=provider.id,
                    outcome="succeeded",
                    elapsed_s=round(time.monotonic() - started, 3),
                    cost_usd=output.cost_usd,
                    decision=decision,
                )
            ]
            return output
        raise ProvidersExhausted(self.capability, attempts)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
