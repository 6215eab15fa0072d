"""The cache store: the ``cache`` table, request keys -> the asset an identical request made.

What a key hashes and when a hit is trusted is the request cache's business
(``core.services.cache``); this store only keeps the entries and counts their hits.
"""

from __future__ import annotations

from core.assets.asset_store import AssetRow, AssetStore
from core.assets.db import Database, utc_now
from core.errors import AssetNotFound

__all__ = ["CacheStore"]


class CacheStore:
    def __init__(self, db: Database, assets: AssetStore) -> None:
        self._db = db
        self._assets = assets

    def get(self, request_key: str) -> tuple[AssetRow, str] | None:
        """The asset the key made and the SHA-256 its bytes had; None when unknown or its row is gone."""
        rows = self._db.query("SELECT asset_id, sha256 FROM cache WHERE request_key=?", (request_key,))
        if not rows:
            return None
        try:
            return self._assets.get(rows[0]["asset_id"]), rows[0]["sha256"]
        except AssetNotFound:
            return None

    def put(self, request_key: str, asset_id: str, sha256: str) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO cache (request_key, asset_id, sha256, hits, created_at) VALUES (?,?,?,0,?) "
                "ON CONFLICT(request_key) DO UPDATE SET asset_id=excluded.asset_id, sha256=excluded.sha256",
                (request_key, asset_id, sha256, utc_now()),
            )

    def hit(self, request_key: str) -> None:
        with self._db.tx() as db:
            db.execute("UPDATE cache SET hits = hits + 1 WHERE request_key=?", (request_key,))

    def forget(self, request_key: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM cache WHERE request_key=?", (request_key,))

    def stats(self) -> tuple[int, int]:
        """(entries, hits so far)."""
        row = self._db.query("SELECT COUNT(*) AS n, COALESCE(SUM(hits), 0) AS hits FROM cache")[0]
        return int(row["n"]), int(row["hits"])
