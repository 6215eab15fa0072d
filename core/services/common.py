"""Pieces every service shares: the provider call context, result fields, failure recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

from core.assets import AssetRow, VideoPaths
from core.errors import ProvidersExhausted, YtapError
from core.jobs import JobHandle
from core.assets.props import AssetProps
from core.providers.base import CallContext, ProviderOutput
from core.runtime import Runtime
from core.schemas import AssetResult, Attempt

__all__ = ["call_context", "asset_fields", "record_failure", "register_output"]


def call_context(
    rt: Runtime, handle: JobHandle, paths: VideoPaths, *, start: float = 0.0, span: float = 1.0
) -> CallContext:
    """A provider context whose progress maps onto [start, start+span] of the job, with the video's budget."""

    def progress(fraction: float, message: str) -> None:
        handle.progress(start + span * max(0.0, min(1.0, fraction)), message)

    assets, budget = rt.registry.assets, rt.settings.budget_usd
    if budget is None:
        return CallContext(settings=rt.settings, cancel=handle.cancel, progress=progress,
                           resumed=handle.checkpoints, checkpoint=handle.checkpoint)

    def hold(provider_id: str, usd: float) -> tuple[int | None, float]:
        return assets.hold_budget(handle.job_id, paths.workspace_id, paths.video_id, provider_id, usd, budget)

    return CallContext(settings=rt.settings, cancel=handle.cancel, progress=progress,
                       budget_remaining_usd=budget - assets.spent_usd(paths.workspace_id, paths.video_id),
                       resumed=handle.checkpoints, checkpoint=handle.checkpoint, hold_budget=hold,
                       settle_budget=assets.settle_hold)


def asset_fields(paths: VideoPaths, row: AssetRow, attempts: list[Attempt], *, cached: bool = False,
                 into: type[BaseModel] = AssetResult) -> dict[str, Any]:
    """The fields of ``into`` (an asset result class) that every registered asset has: the media properties
    only where that kind declares them."""
    p = row.props
    path = paths.root / row.rel_path
    fields = {
        "asset_id": row.asset_id,
        "kind": row.kind,
        "workspace_id": row.workspace_id,
        "video_id": row.video_id,
        "path": str(path.resolve()),
        "uri": paths.uri(path),
        "provider": row.provider,
        "model": row.model,
        "cost_usd": round(sum(a.cost_usd for a in attempts), 6),
        "bytes": row.bytes,
        "duration_s": p.duration_s,
        "width": p.width,
        "height": p.height,
        "fps": p.fps,
        "sample_rate": p.sample_rate,
        "channels": p.channels,
        "cached": cached,
        "created_at": row.created_at,
        "state": row.state,
        "attempts": attempts,
    }
    return {name: value for name, value in fields.items() if name in into.model_fields}


def record_failure(rt: Runtime, paths: VideoPaths, capability: str, exc: BaseException, job_id: str) -> None:
    """Put the attempts of a failed generation on the record before the error goes up."""
    attempts: list[Attempt] = []
    if isinstance(exc, ProvidersExhausted):
        attempts = exc.attempts
    elif isinstance(exc, YtapError):
        attempts = list(getattr(exc, "attempts", []) or [])
    if attempts:
        rt.registry.assets.record_attempts(paths, capability=capability, attempts=attempts, job_id=job_id)


async def register_output(rt: Runtime, paths: VideoPaths, output: ProviderOutput, handle: JobHandle, *, kind: str,
                          path: Path, staged: Path, props: AssetProps, capability: str, **extra: Any) -> AssetRow:
    """A chain's output registered as the video's asset of ``kind``: ``staged`` is renamed onto ``path`` (and
    ``extra``'s sidecars onto theirs) inside the registration's transaction, hashing and fsync off the loop."""
    return await anyio.to_thread.run_sync(lambda: rt.registry.assets.add(
        paths, kind=kind, path=path, staged=staged, provider=output.provider, model=output.model,
        cost_usd=output.cost_usd, props=props, attempts=output.attempts, capability=capability,
        job_id=handle.job_id, **extra))
