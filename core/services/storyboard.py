"""The storyboard of a video: what a person looks at before shipping it (review_video, the storyboard app).

Facts come from the registry and provider_report (who made what, its state, what it cost);
pictures are small files written beside the video under ``previews/``, named after the asset
they show, so a remade scene gets new names and a stale picture is never shown for it. They
are served as ``ytap://`` files like any other file of the video: nothing here is inline
media, and the final video is offered as a light rendition, never the file itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.assets import AssetRow, VideoPaths
from core.assets.atomic import atomic_target, atomic_write_bytes
from core.assets.props import FinalVideoProps, MusicProps, NarrationProps, SceneProps, ThumbnailProps
from core.errors import AssetNotFound, MediaError
from core.media import previews
from core.runtime import Runtime
from core.schemas import Storyboard
from core.services.tracking import provider_report

__all__ = ["storyboard", "PREVIEWS_DIR", "FRAME_WIDTH_PX", "FRAME_NAMES", "PREVIEW_WIDTH_PX"]

log = logging.getLogger(__name__)

PREVIEWS_DIR = "previews"
FRAME_WIDTH_PX = 320
FRAME_NAMES = ("first", "middle", "last")
PREVIEW_WIDTH_PX = 640  # the final video's rendition: light enough to send, sharp enough in a chat column
_CAPABILITIES = ("video", "speech", "image")


def storyboard(rt: Runtime, workspace_id: str, video_id: str, *, preview_width: int = PREVIEW_WIDTH_PX) -> Storyboard:
    """The video's scenes in order with their frames and narration, the thumbnail, the music, the final
    video's preview, the credits and the report's totals. Blocking (it may decode frames and encode
    the preview rendition once per asset)."""
    report = provider_report(rt, workspace_id, video_id)  # validates the ids
    paths = rt.paths(workspace_id, video_id)
    paths.check_folders()
    rows = rt.registry.assets.current(workspace_id, video_id)
    if not rows:
        raise AssetNotFound(f"video {workspace_id}/{video_id} has no assets yet: make its scenes with "
                            "generate_scene first")
    reported = {a["asset_id"]: a for a in report.assets}
    by_kind: dict[str, list[AssetRow]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)

    def facts(row: AssetRow) -> dict[str, Any]:
        a = reported.get(row.asset_id, {})
        out = {"asset_id": row.asset_id, "uri": a.get("uri") or paths.uri(paths.root / row.rel_path),
               "provider": row.provider, "model": row.model, "cost_usd": a.get("cost_usd", 0.0),
               "state": a.get("state", row.state), "duration_s": row.props.duration_s,
               "width": row.props.width, "height": row.props.height}
        if a.get("action"):
            out["action"] = a["action"]
        return out

    narration = _one(by_kind, "narration")
    segments = list(narration.props_of(NarrationProps).segments) if narration else []
    scenes = []
    for row in sorted(by_kind.get("scene", []), key=lambda r: r.scene_index or 0):
        props = row.props_of(SceneProps)
        segment = next((s for s in segments if s.index == row.scene_index), None)
        scenes.append({
            "index": row.scene_index, **facts(row), "prompt": props.prompt, "aspect_ratio": props.aspect_ratio,
            "frames": _scene_frames(paths, row) if _usable(paths, row) else [],
            "narration": segment.model_dump(mode="json") if segment else None,
        })
    scene_indexes = {s["index"] for s in scenes}

    narration_out = None
    if narration:
        props = narration.props_of(NarrationProps)
        narration_out = {**facts(narration), "voice": props.voice,
                         "srt_uri": paths.uri(paths.root / props.srt) if props.srt else None,
                         "segments": [s.model_dump(mode="json") for s in segments],
                         "unplaced_segments": [s.index for s in segments if s.index not in scene_indexes]}

    thumbnail = _one(by_kind, "thumbnail")
    thumbnail_out = None
    if thumbnail:
        props = thumbnail.props_of(ThumbnailProps)
        thumbnail_out = {**facts(thumbnail), "title": props.title, "subtitle": props.subtitle}

    music = _one(by_kind, "music")
    music_out = {**facts(music), "codec": music.props_of(MusicProps).audio_codec} if music else None

    final = _one(by_kind, "final_video")
    final_out = None
    if final:
        props = final.props_of(FinalVideoProps)
        changed = _made_after(final, rows)
        final_out = {**facts(final), "scenes": list(props.scenes),
                     "youtube_ready": props.youtube_readiness.ready if props.youtube_readiness else None,
                     "deviations": props.youtube_readiness.deviations if props.youtube_readiness else [],
                     "stale": bool(changed), "stale_because": changed}
        if _usable(paths, final):
            final_out |= _rendition(paths, final, preview_width)

    return Storyboard(
        scenes=scenes,
        narration=narration_out or {},
        thumbnail=thumbnail_out or {},
        music=music_out or {},
        final_video=final_out or {},
        credits=_credits(report),
        totals=report.totals.model_dump(mode="json"),
        providers={cap: [p.id for p in report.providers if p.capability == cap and p.configured]
                   for cap in _CAPABILITIES},
    )


def _one(by_kind: dict[str, list[AssetRow]], kind: str) -> AssetRow | None:
    rows = by_kind.get(kind) or []
    return rows[-1] if rows else None


def _made_after(final: AssetRow, rows: list[AssetRow]) -> list[str]:
    """The parts of the video made after its final video ("scene 2", "narration", "music"): it does not show
    them until it is assembled again."""
    newer = [row for row in rows if row.kind in ("scene", "narration", "music") and row.created_at > final.created_at]
    newer.sort(key=lambda row: (row.kind != "scene", row.kind, row.scene_index or 0))  # scenes first, in order
    return [f"scene {row.scene_index}" if row.kind == "scene" else row.kind for row in newer]


def _usable(paths: VideoPaths, row: AssetRow) -> bool:
    return row.state == "ok" and (paths.root / row.rel_path).is_file()


def _credits(report: Any) -> list[str]:
    """The report's credits block (stock footage's authors and licences), as lines; none without stock."""
    credits = getattr(report, "credits", None)  # provider_report owns the credits: shown as it gives them
    if not credits:
        return []
    if isinstance(credits, str):
        return [line for line in credits.splitlines() if line.strip()]
    return [c if isinstance(c, str) else str(c.get("text") or c) for c in credits]


def _preview_path(paths: VideoPaths, name: str) -> Path:
    return paths.confine(paths.root / PREVIEWS_DIR / name)


def _drop_stale(paths: VideoPaths, pattern: str, keep: set[str]) -> None:
    folder = paths.root / PREVIEWS_DIR
    for old in folder.glob(pattern):
        if old.name not in keep and not old.is_symlink():
            old.unlink(missing_ok=True)


def _scene_frames(paths: VideoPaths, row: AssetRow) -> list[dict[str, str]]:
    """First, middle and last frame of the scene as ``previews/scene_NNN.<asset>.<which>.jpg``, made once."""
    stem = f"scene_{row.scene_index:03d}.{row.asset_id.removeprefix('ast_')}"
    targets = [_preview_path(paths, f"{stem}.{name}.jpg") for name in FRAME_NAMES]
    if not all(t.is_file() for t in targets):
        try:
            jpegs = previews.scene_frames(paths.root / row.rel_path, width=FRAME_WIDTH_PX)
        except MediaError as exc:  # a preview is a courtesy: the storyboard still shows the scene's facts
            log.warning("no frames for scene %s of %s: %s", row.scene_index, paths.video_id, exc.message)
            return []
        for target, jpeg in zip(targets, jpegs, strict=False):
            atomic_write_bytes(target, jpeg)
        _drop_stale(paths, f"scene_{row.scene_index:03d}.*.jpg", {t.name for t in targets})
    return [{"at": name, "uri": paths.uri(t)} for name, t in zip(FRAME_NAMES, targets, strict=True) if t.is_file()]


def _rendition(paths: VideoPaths, row: AssetRow, width: int) -> dict[str, Any]:
    """The final video's light rendition, ``previews/final_video.<asset>.<width>.mp4``, made once per width."""
    width = min(width, row.props.width or width)
    width -= width % 2
    target = _preview_path(paths, f"final_video.{row.asset_id.removeprefix('ast_')}.{width}.mp4")
    if not target.is_file():
        with atomic_target(target) as tmp:
            previews.video_rendition(paths.root / row.rel_path, tmp, width=width, duration_s=row.props.duration_s)
        _drop_stale(paths, "final_video.*.mp4", {target.name})
    return {"preview_uri": paths.uri(target), "preview_width": width, "preview_bytes": target.stat().st_size}
