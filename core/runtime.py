"""Runtime: the long-lived objects one server (or one test) works with, built from Settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.assets import Registry, VideoPaths, sweep_partials
from core.config import Settings
from core.jobs import JobRunner
from core.media.ffmpeg import configure_ffmpeg
from core.providers.base import Provider
from core.providers.registry import ProviderCatalog

__all__ = ["Runtime"]

log = logging.getLogger(__name__)

ChunkRunner = Callable[..., list]  # core.media.chunks.render_chunk's signature, with a ``parallel`` attribute


@dataclass
class Runtime:
    settings: Settings
    registry: Registry = field(init=False)
    catalog: ProviderCatalog = field(init=False)
    jobs: JobRunner = field(init=False)
    # Renders the chunks of an assembly's picture somewhere else (a worker's Temporal fan-out,
    # core.scaleout.temporal.TemporalChunks); None: in this process. Its ``parallel`` is how many
    # chunks one assembly keeps in flight.
    chunk_runner: ChunkRunner | None = None

    @classmethod
    def create(cls, settings: Settings, *, extra_providers: Iterable[Provider] = (), worker: bool = False) -> Runtime:
        """``worker``: the runtime of ``ytap-mcp worker`` (jobs run in its Temporal activities)."""
        rt = cls(settings)
        configure_ffmpeg(settings.ffmpeg)
        settings.home.mkdir(parents=True, exist_ok=True)
        removed = sweep_partials(settings.workspaces_root)
        if removed:
            log.info("removed %d partial file(s) left by an interrupted run", removed)
        rt.registry = Registry(settings.db_path, settings.workspaces_root,
                               settings.database_url.get() if settings.database_url else None)
        rt.catalog = ProviderCatalog(settings, extra_providers)
        if settings.database_url:  # every server and worker on this registry shares the vendors' limits
            from core.scaleout.slots import PostgresSlots

            rt.catalog.limits.shared = PostgresSlots(settings.database_url.get())
        rt.jobs = _job_backend(settings, rt.registry, worker)
        if rt.jobs.interrupted_at_start:
            log.info("%d job(s) interrupted by a previous stop are now reported as failed", rt.jobs.interrupted_at_start)
        if rt.registry.assets.drop_stale_holds():
            log.info("dropped the budget holds of jobs that ended without recording their costs")
        return rt

    def paths(self, workspace_id: str, video_id: str) -> VideoPaths:
        return VideoPaths(self.settings.workspaces_root, workspace_id, video_id)

    def close(self) -> None:
        self.jobs.shutdown()
        self.registry.close()


def _job_backend(settings: Settings, registry: Registry, worker: bool) -> JobRunner:
    """In this process (the default), or Temporal's (YTAP_TEMPORAL_ADDRESS): a replica starts workflows,
    a worker runs them."""
    if settings.temporal_address is None:
        return JobRunner(registry.jobs, settings.secrets())
    from core.scaleout.temporal import ActivityJobs, TemporalJobs

    if worker:
        return ActivityJobs(registry.jobs, settings.secrets())
    return TemporalJobs(registry.jobs, settings.secrets(), address=settings.temporal_address,
                        namespace=settings.temporal_namespace, task_queue=settings.temporal_task_queue)
