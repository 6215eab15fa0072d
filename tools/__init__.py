"""One module per MCP tool: SDK-free async functions. ``TOOLS`` is what the server registers.

Each tool takes the runtime and a progress sink first (the server supplies them) and
the agent's parameters after; its docstring is the description the agent reads.
"""

from tools._common import ToolInfo
from tools.archive_video import archive_video
from tools.assemble_video import assemble_video
from tools.clone_voice import clone_voice
from tools.delete_voice import delete_voice
from tools.generate_music import generate_music
from tools.generate_scene import generate_scene
from tools.import_asset import import_asset
from tools.jobs import cancel_job, job_status
from tools.make_thumbnail import make_thumbnail
from tools.provider_report import provider_report
from tools.review_video import review_video
from tools.synthesize_narration import synthesize_narration

__all__ = ["TOOLS", "ToolInfo"]

TOOLS: tuple[ToolInfo, ...] = (
    # Generators call outside services (open world) and replace the file of their slot (destructive).
    ToolInfo(generate_scene, "Generate a scene clip", open_world=True, destructive=True),
    ToolInfo(synthesize_narration, "Synthesize the narration", open_world=True, destructive=True),
    ToolInfo(make_thumbnail, "Make the thumbnail", open_world=True, destructive=True),
    ToolInfo(generate_music, "Generate the background music", open_world=True, destructive=True),
    ToolInfo(assemble_video, "Assemble the final video", destructive=True, idempotent=True),
    ToolInfo(provider_report, "Provider and cost report", read_only=True, idempotent=True),
    ToolInfo(import_asset, "Import a file of the user's", destructive=True, idempotent=True),
    ToolInfo(job_status, "Job status", read_only=True, idempotent=True),
    ToolInfo(cancel_job, "Cancel a job", destructive=True, idempotent=True),
    ToolInfo(archive_video, "Archive a finished video", destructive=True, idempotent=True),
    # A clone lives in the vendor's account (open world); cloning adds a voice, deleting removes one for good.
    ToolInfo(clone_voice, "Clone a voice from a recording", open_world=True),
    ToolInfo(delete_voice, "Delete a cloned voice", open_world=True, destructive=True, idempotent=True),
    # Reads the video; the preview pictures it writes under previews/ are derived, made once per asset.
    ToolInfo(review_video, "Storyboard", read_only=True, idempotent=True),
)
