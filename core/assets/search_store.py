"""The search store: the ``searches`` table, a stock provider's answer to one query, kept for a while.

Pixabay asks that search results be cached for 24 hours; Pexels allows 200 searches an hour.
A stock provider (core.providers.stock) reads an answer younger than ``max_age_s`` instead
of asking again, and stores each new one. Old rows are removed when a new answer is stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.assets.db import Database, utc_now

__all__ = ["SearchStore", "SEARCH_TTL_S"]

SEARCH_TTL_S = 24 * 3600.0


class SearchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, search_key: str, max_age_s: float = SEARCH_TTL_S) -> Any | None:
        """The answer stored under ``search_key`` if it is younger than ``max_age_s``; else None."""
        rows = self._db.query("SELECT body_json FROM searches WHERE search_key=? AND created_at>?",
                              (search_key, _ago(max_age_s)))
        return json.loads(rows[0]["body_json"]) if rows else None

    def put(self, search_key: str, body: Any, max_age_s: float = SEARCH_TTL_S) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM searches WHERE created_at<=?", (_ago(max_age_s),))
            db.execute(
                "INSERT INTO searches (search_key, body_json, created_at) VALUES (?,?,?) "
                "ON CONFLICT(search_key) DO UPDATE SET body_json=excluded.body_json, created_at=excluded.created_at",
                (search_key, json.dumps(body, separators=(",", ":")), utc_now()),
            )


def _ago(seconds: float) -> str:
    """``utc_now()``'s format, ``seconds`` ago (the strings sort as the times do)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
