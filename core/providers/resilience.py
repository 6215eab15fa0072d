"""Retries, backoff and per-provider cooldowns, shared by every chain.

Vendor adapters never sleep or retry themselves (their SDK retries are off): they map the
vendor's answer to ``RateLimited(retry_after_s=...)``, ``Unavailable`` or ``TimedOut`` and
the chain decides here, the same way for every vendor. Retry-After is honoured up to a
cap; beyond it the chain moves on to the next provider at once instead of holding a job
for minutes. A provider that keeps failing is cooled down for a while, so a dead vendor
costs one timeout per cooldown period instead of one per request.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from datetime import UTC, datetime, timedelta

from core.errors import BadOutput, JobFailed, ProviderError, RateLimited, TimedOut, Unavailable

__all__ = ["RetryPolicy", "ProviderHealth", "HealthBoard", "ConcurrencyLimits", "RETRYABLE", "HEALTH_FAILURES",
           "DEFAULT_CONCURRENCY"]

# Worth asking the same provider again after a pause.
RETRYABLE: tuple[type[ProviderError], ...] = (RateLimited, Unavailable, TimedOut)
# Count against a provider's health (a refusal is about the content, a missing key about set-up).
HEALTH_FAILURES: tuple[type[ProviderError], ...] = (RateLimited, Unavailable, TimedOut, BadOutput, JobFailed)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries per provider per request, the first included
    base_delay_s: float = 1.0
    max_delay_s: float = 10.0
    retry_after_cap_s: float = 20.0  # a longer Retry-After means: fall back now
    jitter: float = 0.25  # +-25 %: spread the retries of parallel jobs

    def delay_s(self, retry_number: int, exc: ProviderError, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based), or None to give up on this provider."""
        if retry_number >= self.attempts or not isinstance(exc, RETRYABLE) or not exc.retryable:
            return None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            if exc.retry_after_s > self.retry_after_cap_s:
                return None
            return max(0.0, exc.retry_after_s)
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (retry_number - 1))
        r = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return round(backoff * r, 3)


@dataclass
class ProviderHealth:
    consecutive_failures: int = 0
    cooldown_until: float = 0.0  # time.monotonic()
    cooldown_until_utc: str | None = None
    last_error: str | None = None


@dataclass
class HealthBoard:
    """Per-provider failure streaks and cooldowns for one runtime (thread-safe)."""

    threshold: int = 3
    cooldown_s: float = 120.0
    _state: dict[str, ProviderHealth] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cooling_down(self, provider_id: str) -> ProviderHealth | None:
        with self._lock:
            h = self._state.get(provider_id)
            if h and h.cooldown_until > time.monotonic():
                return h
            return None

    def record_success(self, provider_id: str) -> None:
        with self._lock:
            self._state[provider_id] = ProviderHealth()

    def record_failure(self, provider_id: str, exc: BaseException) -> bool:
        """Count a failure; return True when it starts a cooldown."""
        if not isinstance(exc, HEALTH_FAILURES):
            return False
        with self._lock:
            h = self._state.setdefault(provider_id, ProviderHealth())
            h.consecutive_failures += 1
            h.last_error = getattr(exc, "code", type(exc).__name__)
            if h.consecutive_failures >= self.threshold:
                h.cooldown_until = time.monotonic() + self.cooldown_s
                until = datetime.now(UTC) + timedelta(seconds=self.cooldown_s)
                h.cooldown_until_utc = until.isoformat(timespec="seconds").replace("+00:00", "Z")
                h.consecutive_failures = 0
                return True
            return False

    def snapshot(self, provider_id: str) -> ProviderHealth:
        with self._lock:
            h = self._state.get(provider_id) or ProviderHealth()
            return ProviderHealth(h.consecutive_failures, h.cooldown_until, h.cooldown_until_utc
                                  if h.cooldown_until > time.monotonic() else None, h.last_error)


# Calls in flight per provider. Vendors: within their documented default quotas (Vertex Veo
# allows a handful of concurrent long-running requests per project; OpenAI and ElevenLabs
# tiers start at a few concurrent TTS requests). Local tiers: one per core, since each is
# CPU-bound (ffmpeg, espeak, Pillow). Override per id with YTAP_PROVIDER_CONCURRENCY.
DEFAULT_CONCURRENCY: dict[str, int] = {
    "google:veo-3.1": 4,
    "openai:sora-2": 2,
    "openai:gpt-4o-mini-tts": 4,
    "openai:tts-1-hd": 4,
    "elevenlabs:eleven_multilingual_v2": 3,
    "google:gemini-3.8-flash-tts": 4,
    "openai:gpt-image-2": 4,
    "google:gemini-3.1-flash-image": 4,
}
_OTHER_REMOTE = 8


@dataclass
class ConcurrencyLimits:
    """A semaphore per provider (and event loop): jobs run in parallel, each vendor within its limit."""

    overrides: Mapping[str, int] = field(default_factory=dict)
    local: int = max(1, os.cpu_count() or 2)
    _sems: dict[tuple[int, str], asyncio.Semaphore] = field(default_factory=dict)
    # Limits that also hold across processes (core.scaleout.slots, on a PostgreSQL registry): an object
    # with ``slot(provider_id, limit)``, an async context manager; local engines stay per machine.
    shared: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def limit_for(self, provider_id: str) -> int:
        if provider_id in self.overrides:
            return max(1, int(self.overrides[provider_id]))
        if provider_id.startswith("sd:"):
            return 1  # the user's one GPU makes one image at a time; more in flight would only queue into timeouts
        if provider_id.startswith("local:"):
            return self.local
        return DEFAULT_CONCURRENCY.get(provider_id, _OTHER_REMOTE)

    @asynccontextmanager
    async def slot(self, provider_id: str) -> AsyncIterator[None]:
        key = (id(asyncio.get_running_loop()), provider_id)
        with self._lock:
            sem = self._sems.get(key)
            if sem is None:
                sem = self._sems[key] = asyncio.Semaphore(self.limit_for(provider_id))
        async with sem:
            if self.shared is None or provider_id.startswith("local:"):
                yield
            else:
                async with self.shared.slot(provider_id, self.limit_for(provider_id)):
                    yield
