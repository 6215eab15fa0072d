"""Tracking: which provider made what, every attempt, what it cost, who is configured and why not,
and the workspace's cloned voices."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from core.assets import AssetRow, validate_id
from core.runtime import Runtime
from core.schemas import ProviderReport, ProviderStatus, ReportTotals
from core.services.credits import credit_lines, video_credits
from core.services.voices import list_voices

__all__ = ["provider_report"]

_CAPABILITIES = ("video", "speech", "image", "music")


def provider_report(rt: Runtime, workspace_id: str = "default", video_id: str | None = None) -> ProviderReport:
    validate_id("workspace_id", workspace_id)
    if video_id is not None:
        validate_id("video_id", video_id)
    attempts = rt.registry.assets.attempt_rows(workspace_id, video_id)

    calls: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    cost_by_provider: dict[str, float] = defaultdict(float)
    cost_by_capability: dict[str, float] = defaultdict(float)
    cost_by_video: dict[str, float] = defaultdict(float)
    for a in attempts:
        if a["outcome"] != "skipped":
            calls[a["provider"]] += 1
        if a["outcome"] == "failed":
            failures[a["provider"]] += 1
        cost_by_provider[a["provider"]] += a["cost_usd"]
        cost_by_capability[a["capability"]] += a["cost_usd"]
        cost_by_video[a["video_id"]] += a["cost_usd"]

    providers: list[ProviderStatus] = []
    for capability in _CAPABILITIES:
        in_chain = set(rt.catalog.chain_ids(capability))
        for pid in rt.catalog.known_ids(capability):
            reason = rt.catalog.get(pid).unavailable_reason()
            providers.append(
                ProviderStatus(
                    id=pid,
                    capability=capability,
                    configured=reason is None,
                    reason=reason,
                    in_chain=pid in in_chain,
                    calls=calls.get(pid, 0),
                    failures=failures.get(pid, 0),
                    cost_usd=round(cost_by_provider.get(pid, 0.0), 6),
                    cooling_down_until=rt.catalog.health.snapshot(pid).cooldown_until_utc,
                    **(_video_tier(rt, pid) if capability == "video" else {}),
                )
            )

    videos = [video_id] if video_id else rt.registry.assets.videos(workspace_id)
    assets = []
    for vid in videos:
        root = rt.paths(workspace_id, vid).root
        for row in rt.registry.assets.current(workspace_id, vid):
            if row.state == "ok" and not (root / row.rel_path).is_file():
                # Gone while the server runs (the registry checks files when it opens): say so now.
                row = replace(row, state="missing")
            tried = rt.registry.assets.attempts_for(row.asset_id)
            assets.append(
                {
                    "asset_id": row.asset_id,
                    "video_id": vid,
                    "kind": row.kind,
                    "scene_index": row.scene_index,
                    "uri": f"ytap://{workspace_id}/{vid}/{row.rel_path}",
                    "provider": row.provider,
                    "model": row.model,
                    "cost_usd": round(sum(t.cost_usd for t in tried), 6),
                    "created_at": row.created_at,
                    "state": row.state,
                    **_state_notes(workspace_id, row),
                    "attempts": [t.model_dump() for t in tried],
                }
            )

    def rounded(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 6) for k, v in sorted(d.items())}

    cache_entries, cache_hits = rt.registry.cache.stats()
    return ProviderReport(
        workspace_id=workspace_id,
        video_id=video_id,
        providers=providers,
        assets=assets,
        totals=ReportTotals(
            cost_usd=round(sum(a["cost_usd"] for a in attempts), 6),
            assets=len(assets),
            attempts=len(attempts),
            failed_attempts=sum(1 for a in attempts if a["outcome"] == "failed"),
            by_provider=rounded(cost_by_provider),
            by_capability=rounded(cost_by_capability),
            by_video=rounded(cost_by_video),
            cache_entries=cache_entries,
            cache_hits=cache_hits,
        ),
        voices=list_voices(rt, workspace_id),
        credits=credit_lines([c for vid in videos for c in video_credits(rt, workspace_id, vid)]),
    )


def _video_tier(rt: Runtime, pid: str) -> dict[str, Any]:
    """A video provider's tier and the price of one 8 s 1080p scene, as it would bill it (a model that
    makes 5 or 10 s clips bills 10): what an agent mixes within a budget."""
    from core.media.formats import SCENE_FPS, scene_size
    from core.providers.base import VideoSpec
    from core.providers.pricing import scene_cost_usd
    from core.providers.registry import video_tier

    provider = rt.catalog.get(pid)
    if getattr(provider, "paid", False) and hasattr(provider, "estimate_cost_usd"):
        width, height = scene_size("16:9")
        spec = VideoSpec(prompt="-", scene_index=1, duration_s=8.0, width=width, height=height, fps=SCENE_FPS)
        price = round(float(provider.estimate_cost_usd(spec)), 6)
    else:
        price = scene_cost_usd(pid, 8.0)
    return {"tier": video_tier(pid), "scene_8s_usd": price}


def _remake(row: AssetRow) -> str:
    """How an agent makes the asset of ``row``'s slot again."""
    if row.kind == "scene":
        return (f"call generate_scene again with scene_index={row.scene_index} (or import_asset kind=scene, "
                f"scene_index={row.scene_index})")
    return {
        "narration": "call synthesize_narration again (or import_asset kind=narration)",
        "thumbnail": "call make_thumbnail again",
        "final_video": "call assemble_video again",
    }.get(row.kind, f"import it again with import_asset kind={row.kind}")


def _state_notes(workspace_id: str, row: AssetRow) -> dict[str, Any]:
    """For an asset whose file is not the registered one: what happened to it and what to do."""
    if row.state == "damaged":
        return {"action": "its file is not the one that was made (changed outside the server, or an interrupted "
                          f"write): {_remake(row)}"}
    if row.state == "missing":
        return {"action": f"its file is gone: {_remake(row)}"}
    if row.state == "archived" and row.archive_path:
        uri = f"ytap://{workspace_id}/{row.video_id}/{row.archive_path}"
        return {"archive_uri": uri,
                "action": f"archived into {uri} (archive_video): extract {row.rel_path} from it back into the video's "
                          f"folder to use it again, or {_remake(row)}"}
    if row.state == "archived":
        return {"action": f"dropped by archive_video: {_remake(row)}"}
    return {}
