"""The content-addressed request cache: an identical request returns the asset it made before.

The key is a hash of what determines the output: the capability, the provider chain, and
every parameter of the spec the providers receive (prompt, duration, size, voice...). A hit
is only trusted while the file it points at still exists with the same SHA-256; a hit for
another video or slot copies the file there (cost 0, no provider call). ``fresh=True``
skips the lookup. The cache lives in the registry, so it survives restarts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from core.assets import AssetRow, VideoPaths
from core.assets.atomic import copy_hashing, file_sha256, staged
from core.runtime import Runtime
from core.schemas import Attempt

__all__ = ["request_key", "file_sha256", "lookup", "remember", "place_copy", "CacheHit"]


def request_key(capability: str, chain_ids: list[str], spec: Any) -> str:
    payload = {"capability": capability, "chain": chain_ids, "spec": dataclasses.asdict(spec)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class CacheHit:
    row: AssetRow
    path: Path
    key: str


def lookup(rt: Runtime, key: str, *, kind: str | None = None) -> CacheHit | None:
    """The asset an identical request made (of ``kind``, when given), while its file still holds those bytes."""
    found = rt.registry.cache.get(key)
    if found is None:
        return None
    row, sha = found
    if kind is not None and row.kind != kind:
        return None
    path = rt.paths(row.workspace_id, row.video_id).root / row.rel_path
    if not path.is_file() or file_sha256(path) != sha:
        rt.registry.cache.forget(key)  # the file changed or went away: the entry no longer says the truth
        return None
    return CacheHit(row, path, key)


def remember(rt: Runtime, key: str, row: AssetRow, path: Path) -> None:
    # The row's hash is of the bytes it registered; ``path`` is hashed only for a row without one.
    rt.registry.cache.put(key, row.asset_id, row.sha256 or file_sha256(path))


def place_copy(rt: Runtime, hit: CacheHit, paths: VideoPaths, final: Path, *, capability: str,
               scene_index: int | None, job_id: str | None, extra_files: dict[Path, Path] | None = None
               ) -> tuple[AssetRow, list[Attempt]]:
    """The hit as the asset of ``final``'s slot: the same row when it already is, else a registered copy."""
    rt.registry.cache.hit(hit.key)
    attempts = [Attempt(provider=hit.row.provider, outcome="succeeded", decision=f"cache hit: identical request made "
                        f"{hit.row.asset_id} ({hit.row.workspace_id}/{hit.row.video_id}/{hit.row.rel_path})")]
    if final.resolve() == hit.path.resolve():
        current = rt.registry.assets.by_path(paths, final)
        if current is not None and current.asset_id == hit.row.asset_id:
            return current, attempts
    paths.ensure()
    with ExitStack() as stack:
        # Copied to temporary names, hashed on the way; the registration renames them into place with its row.
        moves: dict[Path, Path] = {}
        sha: str | None = None
        for src, dst in {hit.path: final, **(extra_files or {})}.items():
            if src.resolve() != dst.resolve():
                tmp = stack.enter_context(staged(dst))
                digest = copy_hashing(src, tmp)
                moves[tmp] = dst
                if dst == final:
                    sha = digest
        main = next((tmp for tmp, dst in moves.items() if dst == final), None)
        row = rt.registry.assets.add(
            paths, kind=hit.row.kind, path=final, provider=hit.row.provider, model=hit.row.model, cost_usd=0.0,
            props=hit.row.props, attempts=attempts, capability=capability, scene_index=scene_index, job_id=job_id,
            staged=main, sha256=sha, sidecars={tmp: dst for tmp, dst in moves.items() if dst != final},
        )
    return row, attempts
