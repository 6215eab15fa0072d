"""Stock footage credits: what a video's scenes were cut from, and the lines its description must carry.

Each stock scene records its clips' credits on its asset (SceneProps.credits: author, source
page, licence and its URL, and whether the licence requires the credit: CC BY and BY-SA do;
Pexels and Pixabay only ask for one where possible, CC0 and public domain not at all). Here
they are read back for ``provider_report`` (the block to paste), ``assemble_video`` (a note
when the final video needs it) and the scene service (clips a video already uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.assets import VideoPaths
from core.assets.props import SceneProps
from core.runtime import Runtime
from core.schemas import Credit

__all__ = ["video_credits", "credit_lines", "credits_note"]

_HEADER = "Footage:"


def video_credits(rt: Runtime, workspace_id: str, video_id: str, scene_paths: Iterable[Path] | None = None
                  ) -> list[Credit]:
    """The credits of the video's current scenes (only those at ``scene_paths`` when given), in scene
    order, each clip once."""
    rows = rt.registry.assets.current(workspace_id, video_id, kind="scene")
    if scene_paths is not None:
        paths = rt.paths(workspace_id, video_id)
        wanted = {paths.relative(p) for p in scene_paths}
        rows = [r for r in rows if r.rel_path in wanted]
    seen: dict[str, Credit] = {}
    for r in rows:
        if isinstance(r.props, SceneProps):
            for c in r.props.credits:
                seen.setdefault(c.source_id, c)
    return list(seen.values())


def credit_lines(credits: list[Credit]) -> list[str]:
    """The block for the video's description: a heading, then one line per clip (empty without stock)."""
    if not credits:
        return []
    return [_HEADER, *(c.text for c in credits)]


def credits_note(paths: VideoPaths, credits: list[Credit]) -> str | None:
    """assemble_video's note: whether the description must carry credits (a licence requires them) or
    should (the source asks); None without stock footage."""
    if not credits:
        return None
    required = [c for c in credits if c.required]
    if required:
        licences = ", ".join(sorted({c.license for c in required}))
        return (f"credits required: {len(required)} of {len(credits)} stock clip(s) are under {licences}; paste "
                f"provider_report's credits (video_id={paths.video_id}) into the video description")
    return (f"credits: {len(credits)} stock clip(s); their sources ask for a credit where possible: paste "
            f"provider_report's credits (video_id={paths.video_id}) into the video description")
