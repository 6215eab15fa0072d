"""The voice store: the ``voices`` table, a workspace's names for voices cloned in vendor accounts.

A deleted voice keeps its row (``deleted_at`` set) so a narration asking for it is told it
was deleted rather than that it never existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.assets.db import Database, Row, utc_now

__all__ = ["VoiceRow", "VoiceStore"]


@dataclass(frozen=True)
class VoiceRow:
    workspace_id: str
    name: str
    provider: str
    vendor_voice_id: str
    description: str | None
    sample_uri: str
    sample_asset_id: str | None
    props: dict[str, Any]
    created_at: str
    deleted_at: str | None


class VoiceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        workspace_id: str,
        name: str,
        *,
        provider: str,
        vendor_voice_id: str,
        sample_uri: str,
        sample_asset_id: str | None,
        description: str | None,
        props: dict[str, Any],
    ) -> VoiceRow | None:
        """Register a cloned voice under ``name``; None (nothing written) when a live voice already has the
        name. A deleted voice of that name is replaced."""
        with self._db.tx() as db:
            taken = db.execute("SELECT deleted_at FROM voices WHERE workspace_id=? AND name=?",
                               (workspace_id, name)).fetchone()
            if taken is not None and taken["deleted_at"] is None:
                return None
            if taken is not None:
                db.execute("DELETE FROM voices WHERE workspace_id=? AND name=?", (workspace_id, name))
            db.execute(
                "INSERT INTO voices (workspace_id, name, provider, vendor_voice_id, description, sample_uri,"
                " sample_asset_id, props_json, created_at, deleted_at) VALUES (?,?,?,?,?,?,?,?,?,NULL)",
                (workspace_id, name, provider, vendor_voice_id, description, sample_uri, sample_asset_id,
                 json.dumps(props, sort_keys=True), utc_now()),
            )
        return self.get(workspace_id, name)

    def get(self, workspace_id: str, name: str, *, include_deleted: bool = False) -> VoiceRow | None:
        rows = self._db.query("SELECT * FROM voices WHERE workspace_id=? AND name=?"
                              + ("" if include_deleted else " AND deleted_at IS NULL"), (workspace_id, name))
        return _voice(rows[0]) if rows else None

    def list(self, workspace_id: str, *, include_deleted: bool = False) -> list[VoiceRow]:
        rows = self._db.query("SELECT * FROM voices WHERE workspace_id=?"
                              + ("" if include_deleted else " AND deleted_at IS NULL") + " ORDER BY name",
                              (workspace_id,))
        return [_voice(r) for r in rows]

    def mark_deleted(self, workspace_id: str, name: str) -> VoiceRow | None:
        """Set ``deleted_at`` on the live voice ``name``; None when there is none."""
        with self._db.tx() as db:
            cur = db.execute("UPDATE voices SET deleted_at=? WHERE workspace_id=? AND name=? AND deleted_at IS NULL",
                             (utc_now(), workspace_id, name))
            if cur.rowcount == 0:
                return None
        return self.get(workspace_id, name, include_deleted=True)


def _voice(r: Row) -> VoiceRow:
    return VoiceRow(
        workspace_id=r["workspace_id"],
        name=r["name"],
        provider=r["provider"],
        vendor_voice_id=r["vendor_voice_id"],
        description=r["description"],
        sample_uri=r["sample_uri"],
        sample_asset_id=r["sample_asset_id"],
        props=json.loads(r["props_json"] or "{}"),
        created_at=r["created_at"],
        deleted_at=r["deleted_at"],
    )
