"""Thumbnails: a 1280x720 JPEG under 2 MB from the image chain, checked and registered.

Every image provider finishes its picture with core.media.thumbnail, which draws the title
in the request's font (core.services.fonts), handed to it as ``ImageSpec.font``. The cache
key holds the font's bytes (sha256), not its name or path: a different file imported under
the same name misses, and the default font's key does not depend on where it is installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import anyio.to_thread

from core.assets.atomic import staged
from core.errors import BadOutput
from core.jobs import JobHandle
from core.providers.base import ImageSpec
from core.runtime import Runtime
from core.schemas import ThumbnailRequest, ThumbnailResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure
from core.services.fonts import ResolvedFont, resolve_font

__all__ = ["make_thumbnail", "cached_thumbnail", "THUMBNAIL_SIZE", "THUMBNAIL_MAX_BYTES", "DEFAULT_TITLE_FONT"]

THUMBNAIL_SIZE = (1280, 720)
THUMBNAIL_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_TITLE_FONT = "inter-display-black"


def _check_jpeg(path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt, size = im.format, im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise BadOutput(f"the thumbnail is not a readable image: {exc}") from exc
    if fmt != "JPEG" or size != THUMBNAIL_SIZE:
        raise BadOutput(f"the thumbnail is {fmt} {size[0]}x{size[1]}, not a 1280x720 JPEG")
    if path.stat().st_size >= THUMBNAIL_MAX_BYTES:
        raise BadOutput("the thumbnail is 2 MB or more")
    return size


def _spec(req: ThumbnailRequest, font: ResolvedFont | None = None) -> ImageSpec:
    return ImageSpec(title=req.title, subtitle=req.subtitle, prompt=req.prompt, style=req.style,
                     font=font.path if font is not None else None, negative_prompt=req.negative_prompt, seed=req.seed)


@dataclass(frozen=True)
class _FontedSpec(ImageSpec):
    """The cache key's spec with a font other than the default: the font's bytes, by hash."""

    font_sha256: str = ""


def _font(rt: Runtime, req: ThumbnailRequest) -> ResolvedFont:
    paths = rt.paths(req.workspace_id, req.video_id)
    return resolve_font(rt, paths, req.font or DEFAULT_TITLE_FONT, what="font")


def _key(rt: Runtime, req: ThumbnailRequest, font: ResolvedFont) -> str:
    spec = _spec(req)  # no font path: the key names the font by its bytes
    if font.name != DEFAULT_TITLE_FONT:  # the default keeps the key it always had
        spec = _FontedSpec(**asdict(spec), font_sha256=font.sha256)
    return cache.request_key("image", rt.catalog.chain_ids("image", req.providers), spec)


def cached_thumbnail(rt: Runtime, req: ThumbnailRequest, job_id: str | None = None) -> ThumbnailResult | None:
    """The cached thumbnail for an identical request, or None. Refuses a font that cannot be used."""
    return _cached(rt, req, _font(rt, req), job_id)


def _cached(rt: Runtime, req: ThumbnailRequest, font: ResolvedFont, job_id: str | None) -> ThumbnailResult | None:
    if req.fresh:
        return None
    hit = cache.lookup(rt, _key(rt, req, font))
    if hit is None or hit.row.kind != "thumbnail":
        return None
    paths = rt.paths(req.workspace_id, req.video_id)
    row, attempts = cache.place_copy(rt, hit, paths, paths.thumbnail, capability="image", scene_index=None,
                                     job_id=job_id)
    return ThumbnailResult(**asset_fields(paths, row, attempts, cached=True), title=req.title, font=font.name)


async def make_thumbnail(rt: Runtime, req: ThumbnailRequest, handle: JobHandle) -> ThumbnailResult:
    paths = rt.paths(req.workspace_id, req.video_id)
    chain = rt.catalog.chain("image", req.providers)
    font = _font(rt, req)
    if (hit := _cached(rt, req, font, handle.job_id)) is not None:
        return hit
    paths.ensure()
    spec = _spec(req, font)
    handle.progress(0.01, "making the thumbnail")
    with staged(paths.thumbnail) as tmp:
        try:
            output = await chain.generate_image(spec, tmp, call_context(rt, handle, paths, span=0.95))
            width, height = _check_jpeg(tmp)
        except Exception as exc:
            record_failure(rt, paths, "image", exc, handle.job_id)
            raise
        # Renamed onto thumbnail.jpg inside the registration's transaction (fsync, hashing: off the loop).
        row = await anyio.to_thread.run_sync(lambda: rt.registry.add_asset(
            paths,
            kind="thumbnail",
            path=paths.thumbnail,
            staged=tmp,
            provider=output.provider,
            model=output.model,
            cost_usd=output.cost_usd,
            props={"width": width, "height": height, "format": "JPEG", "title": req.title, "subtitle": req.subtitle,
                   "font": font.record()},
            attempts=output.attempts,
            capability="image",
            job_id=handle.job_id,
        ))
    cache.remember(rt, _key(rt, req, font), row, paths.thumbnail)
    return ThumbnailResult(**asset_fields(paths, row, output.attempts), title=req.title, font=font.name)
