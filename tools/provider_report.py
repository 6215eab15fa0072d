from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.runtime import Runtime
from core.schemas import ProviderReport
from core.services.tracking import provider_report as provider_report_service
from tools._common import ProgressSink, WorkspaceId


async def provider_report(
    rt: Runtime,
    progress: ProgressSink | None,
    *,
    workspace_id: WorkspaceId = "default",
    video_id: Annotated[str, Field(description="One video's report. Empty: every video of the workspace.",
                                   pattern=r"^([a-z0-9][a-z0-9_-]{0,63})?$", max_length=64)] = "",
) -> ProviderReport:
    """Which providers are configured (and why not), their calls, failures and cost; every asset with the provider and model that made it, every attempt, and its state (ok, damaged, missing, archived; an asset that is not ok says what to do); totals by provider, capability and video."""
    return provider_report_service(rt, workspace_id, video_id or None)
