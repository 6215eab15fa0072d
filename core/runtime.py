"""Runtime: the long-lived objects one server (or one test) works with, built from Settings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.assets import Registry, VideoPaths, sweep_partials
from core.config import Settings
from core.jobs import JobRunner
from core.providers.base import Provider
from core.providers.registry import ProviderCatalog

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    registry: Registry = field(init=False)
    catalog: ProviderCatalog = field(init=False)
    jobs: JobRunner = field(init=False)

    @classmethod
    def create(cls, settings: Settings, *, extra_providers: Iterable[Provider] = ()) -> Runtime:
        rt = cls(settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        removed = sweep_partials(settings.workspaces_root)
        if removed:
            log.info("removed %d partial file(s) left by an interrupted run", removed)
        rt.registry = Registry(settings.db_path, settings.workspaces_root)
        rt.catalog = ProviderCatalog(settings, extra_providers)
        rt.jobs = JobRunner(rt.registry, settings.secrets())
        if rt.jobs.interrupted_at_start:
            log.info("%d job(s) interrupted by a previous stop are now reported as failed", rt.jobs.interrupted_at_start)
        return rt

    def paths(self, workspace_id: str, video_id: str) -> VideoPaths:
        return VideoPaths(self.settings.workspaces_root, workspace_id, video_id)

    def close(self) -> None:
        self.jobs.shutdown()
        self.registry.close()
