from __future__ import annotations

from core.runtime import Runtime
from core.schemas import DeleteVoiceResult
from core.services import voices
from tools._common import ProgressSink, VoiceName, WorkspaceId


async def delete_voice(
    rt: Runtime,
    progress: ProgressSink | None,
    name: VoiceName,
    *,
    workspace_id: WorkspaceId = "default",
) -> DeleteVoiceResult:
    """Delete a voice made with clone_voice: first from the ElevenLabs account that holds it, then from the workspace (if ElevenLabs no longer has it, the entry is removed all the same and the result says so). Narrations already made keep their audio; asking for the voice afterwards is refused."""
    if progress is not None:
        await progress(0.0, f"deleting voice {name!r} of workspace {workspace_id!r}")
    return await voices.delete_voice(rt, workspace_id, name)
