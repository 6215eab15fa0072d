"""Scripted test doubles, shipped in the package so every test (and plug-in author) uses the same ones.

A :class:`ScriptedProvider` plays a queue of canned outcomes — an exception to raise or
a callable that writes the output file — and keeps a history of the calls it received.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from core.providers.base import CallContext, ProviderOutput
from core.schemas import Capability, SegmentTiming

__all__ = ["ScriptedProvider", "Call", "write_bytes"]

Writer = Callable[[Any, Path], "list[SegmentTiming] | None"]
Outcome = BaseException | Writer


def write_bytes(data: bytes) -> Writer:
    """An outcome that writes ``data`` to the output path."""

    def _write(spec: Any, out: Path) -> None:
        out.write_bytes(data)
        return None

    return _write


@dataclass
class Call:
    spec: Any
    out: Path


@dataclass
class ScriptedProvider:
    id: str
    capability: Capability
    outcomes: Iterable[Outcome] = ()
    model: str | None = "scripted"
    key_env: str | None = None
    paid: bool = False
    cost_usd: float = 0.0
    unavailable: str | None = None
    latency_s: float = 0.0
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Outcome] = deque(self.outcomes)
        self._lock = threading.Lock()

    def unavailable_reason(self) -> str | None:
        return self.unavailable

    async def _play(self, spec: Any, out: Path, ctx: CallContext) -> ProviderOutput:
        with self._lock:
            self.calls.append(Call(spec, out))
            if not self._queue:
                raise AssertionError(f"{self.id}: called more times than scripted")
            outcome = self._queue.popleft()
        if self.latency_s:
            await anyio.sleep(self.latency_s)
        if isinstance(outcome, BaseException):
            raise outcome
        segments = await anyio.to_thread.run_sync(outcome, spec, out)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=self.cost_usd, segments=segments)

    async def generate_video(self, spec: Any, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._play(spec, out, ctx)

    async def synthesize(self, spec: Any, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._play(spec, out, ctx)

    async def generate_image(self, spec: Any, out: Path, ctx: CallContext) -> ProviderOutput:
        return await self._play(spec, out, ctx)
