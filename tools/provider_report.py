from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import ProviderReport, WorkspaceId, default_of
from core.services.tracking import provider_report as provider_report_service
from tools._common import ProgressSink


async def provider_report(
    rt: Runtime,
    progress: ProgressSink | None,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
    video_id: Annotated[str, Field(description="Empty: every video.",
                                   pattern=r"^([a-z0-9][a-z0-9_-]{0,63})?$", max_length=64)] = "",
) -> ProviderReport:
    """Providers (configured or not, why), calls, failures, cost; each asset's maker, attempts and state; totals; voices."""
    return provider_report_service(rt, workspace_id, video_id or None)
