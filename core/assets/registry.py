"""The registry: one database (``$YTAP_HOME/ytap.db``, or PostgreSQL at ``YTAP_DATABASE_URL``) and a store per table group.

- :mod:`core.assets.db`: the connection, schema, migrations and transactions (everything
  that depends on which database it is);
- ``registry.assets`` (:mod:`core.assets.asset_store`): assets, their attempts and cost,
  ``manifest.json``, the check of every file against its row;
- ``registry.jobs`` (:mod:`core.assets.job_store`): jobs, so a restart reports an
  interrupted one as failed;
- ``registry.voices`` (:mod:`core.assets.voice_store`): a workspace's cloned voices;
- ``registry.cache`` (:mod:`core.assets.cache_store`): the request cache;
- ``registry.searches`` (:mod:`core.assets.search_store`): stock footage searches, kept 24 h.

A module that needs a table asks the store that owns it; only the stores hold SQL.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.assets.asset_store import AssetRow, AssetStore
from core.assets.cache_store import CacheStore
from core.assets.db import Database, utc_now
from core.assets.job_store import JobRow, JobStore
from core.assets.search_store import SearchStore
from core.assets.voice_store import VoiceRow, VoiceStore

__all__ = ["Registry", "AssetRow", "JobRow", "VoiceRow", "utc_now"]

log = logging.getLogger(__name__)


class Registry:
    def __init__(self, db_path: Path, workspaces_root: Path, database_url: str | None = None) -> None:
        self.db = Database(db_path, database_url)
        self.workspaces_root = workspaces_root
        self.assets = AssetStore(self.db, workspaces_root)
        self.jobs = JobStore(self.db)
        self.voices = VoiceStore(self.db)
        self.cache = CacheStore(self.db, self.assets)
        self.searches = SearchStore(self.db)
        try:
            self.assets.verify()
        except (*self.db.errors, OSError) as exc:  # the registry still serves; the log says what went unchecked
            log.warning("could not check the registered assets' files at start-up: %s", exc)

    def close(self) -> None:
        self.db.close()
