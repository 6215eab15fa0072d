"""Pieces every service shares: the provider call context, result fields, failure recording."""

from __future__ import annotations

from typing import Any

from core.assets import AssetRow, VideoPaths
from core.errors import ProvidersExhausted, YtapError
from core.jobs import JobHandle
from core.providers.base import CallContext
from core.runtime import Runtime
from core.schemas import Attempt

__all__ = ["call_context", "asset_fields", "record_failure"]


def call_context(
    rt: Runtime, handle: JobHandle, paths: VideoPaths, *, start: float = 0.0, span: float = 1.0
) -> CallContext:
    """A provider context whose progress maps onto [start, start+span] of the job, with the video's budget."""

    def progress(fraction: float, message: str) -> None:
        handle.progress(start + span * max(0.0, min(1.0, fraction)), message)

    remaining = None
    if rt.settings.budget_usd is not None:
        remaining = rt.settings.budget_usd - rt.registry.spent_usd(paths.workspace_id, paths.video_id)
    return CallContext(settings=rt.settings, cancel=handle.cancel, progress=progress, budget_remaining_usd=remaining)


def asset_fields(paths: VideoPaths, row: AssetRow, attempts: list[Attempt], *, cached: bool = False) -> dict[str, Any]:
    """The AssetResult fields of a registered asset."""
    p = row.props
    path = paths.root / row.rel_path
    return {
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
        "duration_s": p.get("duration_s"),
        "width": p.get("width"),
        "height": p.get("height"),
        "fps": p.get("fps"),
        "sample_rate": p.get("sample_rate"),
        "channels": p.get("channels"),
        "cached": cached,
        "created_at": row.created_at,
        "state": row.state,
        "attempts": attempts,
    }


def record_failure(rt: Runtime, paths: VideoPaths, capability: str, exc: BaseException, job_id: str) -> None:
    """Put the attempts of a failed generation on the record before the error goes up."""
    attempts: list[Attempt] = []
    if isinstance(exc, ProvidersExhausted):
        attempts = exc.attempts
    elif isinstance(exc, YtapError):
        attempts = list(getattr(exc, "attempts", []) or [])
    if attempts:
        rt.registry.record_attempts(paths, capability=capability, attempts=attempts, job_id=job_id)
