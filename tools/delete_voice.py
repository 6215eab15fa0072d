from __future__ import annotations

from core.runtime import Runtime
from core.schemas import DeleteVoiceResult, WorkspaceId, default_of
from core.services import voices
from tools._common import ProgressSink, VoiceName


async def delete_voice(
    rt: Runtime,
    progress: ProgressSink | None,
    name: VoiceName,
    *,
    workspace_id: WorkspaceId = default_of(WorkspaceId),
) -> DeleteVoiceResult:
    """Delete a clone_voice voice from ElevenLabs and the workspace; narrations already made keep their audio."""
    if progress is not None:
        await progress(0.0, f"deleting voice {name!r} of workspace {workspace_id!r}")
    return await voices.delete_voice(rt, workspace_id, name)
