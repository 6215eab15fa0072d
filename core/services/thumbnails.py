"""Thumbnails: a 1280x720 JPEG under 2 MB from the image chain, checked and registered."""

from __future__ import annotations

from core.assets import atomic_target
from core.errors import BadOutput
from core.jobs import JobHandle
from core.providers.base import ImageSpec
from core.runtime import Runtime
from core.schemas import ThumbnailRequest, ThumbnailResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure

__all__ = ["make_thumbnail", "cached_thumbnail", "THUMBNAIL_SIZE", "THUMBNAIL_MAX_BYTES"]

THUMBNAIL_SIZE = (1280, 720)
THUMBNAIL_MAX_BYTES = 2 * 1024 * 1024


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


def _spec(req: ThumbnailRequest) -> ImageSpec:
    return ImageSpec(title=req.title, subtitle=req.subtitle, prompt=req.prompt, style=req.style)


def _key(rt: Runtime, req: ThumbnailRequest) -> str:
    return cache.request_key("image", rt.catalog.chain_ids("image", req.providers), _spec(req))


def cached_thumbnail(rt: Runtime, req: ThumbnailRequest, job_id: str | None = None) -> ThumbnailResult | None:
    if req.fresh:
        return None
    hit = cache.lookup(rt, _key(rt, req))
    if hit is None or hit.row.kind != "thumbnail":
        return None
    paths = rt.paths(req.workspace_id, req.video_id)
    row, attempts = cache.place_copy(rt, hit, paths, paths.thumbnail, capability="image", scene_index=None,
                                     job_id=job_id)
    return ThumbnailResult(**asset_fields(paths, row, attempts, cached=True), title=req.title)


async def make_thumbnail(rt: Runtime, req: ThumbnailRequest, handle: JobHandle) -> ThumbnailResult:
    paths = rt.paths(req.workspace_id, req.video_id)
    chain = rt.catalog.chain("image", req.providers)
    if (hit := cached_thumbnail(rt, req, handle.job_id)) is not None:
        return hit
    paths.ensure()
    spec = _spec(req)
    handle.progress(0.01, "making the thumbnail")
    try:
        with atomic_target(paths.thumbnail) as tmp:
            output = await chain.generate_image(spec, tmp, call_context(rt, handle, paths, span=0.95))
            width, height = _check_jpeg(tmp)
    except Exception as exc:
        record_failure(rt, paths, "image", exc, handle.job_id)
        raise
    row = rt.registry.add_asset(
        paths,
        kind="thumbnail",
        path=paths.thumbnail,
        provider=output.provider,
        model=output.model,
        cost_usd=output.cost_usd,
        props={"width": width, "height": height, "format": "JPEG", "title": req.title, "subtitle": req.subtitle},
        attempts=output.attempts,
        capability="image",
        job_id=handle.job_id,
    )
    cache.remember(rt, _key(rt, req), row, paths.thumbnail)
    return ThumbnailResult(**asset_fields(paths, row, output.attempts), title=req.title)
