"""Thumbnails: a 1280x720 JPEG under 2 MB, the title drawn over the image chain's picture.

:func:`prepare` resolves a request once (the font, chain ids, spec, cache key, a cache hit)
before any job starts. Image providers return a picture without text; :func:`finish_thumbnail`, run
by the chain inside each provider's attempt, draws the title and subtitle over it in the
request's font (core.media.thumbnail.render_thumbnail): the one place a title is drawn,
whichever provider made the picture. A picture that cannot be used fails that attempt and
the next provider is tried.

The cache key holds the font's bytes (sha256), not its name or path: a different file
imported under the same name misses, and the default font's key does not depend on where
it is installed. It holds the title and subtitle too, which the providers never see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from core.assets import VideoPaths
from core.assets.atomic import staged
from core.errors import BadOutput
from core.assets.props import ThumbnailProps
from core.jobs import JobHandle
from core.media.formats import THUMBNAIL_MAX_BYTES, THUMBNAIL_SIZE
from core.media.fonts import face_for, font_facts
from core.media.text import as_written, notes_for
from core.media.thumbnail import render_thumbnail
from core.providers.base import CallContext, Finish, ImageSpec, ProviderOutput
from core.runtime import Runtime
from core.schemas import ThumbnailRequest, ThumbnailResult
from core.services import cache
from core.services.common import asset_fields, call_context, record_failure, register_output
from core.services.fonts import ResolvedFont, resolve_font

__all__ = ["ThumbnailPlan", "prepare", "from_cache", "finish_thumbnail", "background_prompt", "make_thumbnail",
           "DEFAULT_TITLE_FONT"]

DEFAULT_TITLE_FONT = "inter-display-black"


@dataclass(frozen=True)
class ThumbnailPlan:
    """A thumbnail request resolved once: the title's font, the picture to ask for, the chain, the cache."""

    request: ThumbnailRequest
    paths: VideoPaths
    font: ResolvedFont
    chain_ids: tuple[str, ...]
    spec: ImageSpec
    key: str
    hit: cache.CacheHit | None  # None on a miss or with ``fresh``


@dataclass(frozen=True)
class _Key:
    """What the cache key hashes: everything the thumbnail depends on (the fields it always had)."""

    title: str
    subtitle: str | None
    prompt: str | None
    style: str | None
    font: None  # the default font's key names no font; another font adds its bytes' hash (``_FontedKey``)
    negative_prompt: str | None
    seed: int | None


@dataclass(frozen=True)
class _FontedKey(_Key):
    font_sha256: str = ""


def background_prompt(req: ThumbnailRequest) -> str:
    """The picture to ask an image provider for: the caller's prompt, else one made from the title."""
    if req.prompt:
        return req.prompt
    about = f"“{req.title}”" + (f" — {req.subtitle}" if req.subtitle else "")
    return (f"A striking background image for a YouTube video thumbnail about {about}. One bold, instantly "
            "readable subject, dramatic lighting, rich saturated colours, high contrast, wide 16:9 composition with "
            "the subject to one side and calm space for a headline on the other.")


def prepare(rt: Runtime, req: ThumbnailRequest) -> ThumbnailPlan:
    """Resolve ``req`` before any job starts. Raises what to fix: an unusable font, an unknown provider."""
    paths = rt.paths(req.workspace_id, req.video_id)
    font = resolve_font(rt, paths, req.font or DEFAULT_TITLE_FONT, what="font")
    ids = tuple(rt.catalog.chain_ids("image", req.providers))
    width, height = THUMBNAIL_SIZE
    spec = ImageSpec(prompt=background_prompt(req), width=width, height=height, style=req.style,
                     negative_prompt=req.negative_prompt, seed=req.seed)
    keyed = _Key(title=req.title, subtitle=req.subtitle, prompt=req.prompt, style=req.style, font=None,
                 negative_prompt=req.negative_prompt, seed=req.seed)
    if font.name != DEFAULT_TITLE_FONT:  # the default keeps the key it always had
        keyed = _FontedKey(**asdict(keyed), font_sha256=font.sha256)
    key = cache.request_key("image", list(ids), keyed)
    hit = None if req.fresh else cache.lookup(rt, key, kind="thumbnail")
    return ThumbnailPlan(req, paths, font, ids, spec, key, hit)


def from_cache(rt: Runtime, plan: ThumbnailPlan, job_id: str | None = None) -> ThumbnailResult:
    """The plan's cache hit, placed as this video's thumbnail (cost 0, no provider call)."""
    if plan.hit is None:
        raise ValueError("the plan holds no cache hit")
    paths = plan.paths
    row, attempts = cache.place_copy(rt, plan.hit, paths, paths.thumbnail, capability="image", scene_index=None,
                                     job_id=job_id)
    return ThumbnailResult(**asset_fields(paths, row, attempts, cached=True, into=ThumbnailResult), title=plan.request.title,
                           font=plan.font.name, notes=_notes(plan.request, plan.font))


def _check_jpeg(path: Path) -> tuple[int, int]:
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


def finish_thumbnail(plan: ThumbnailPlan) -> Finish:
    """The title and subtitle drawn over the provider's picture, as the contract JPEG."""
    req = plan.request

    def finish(output: ProviderOutput, out: Path, ctx: CallContext) -> tuple[int, int]:
        ctx.progress(0.9, "drawing the title")
        # A designed card (local:pillow) was seeded by the prompt: the title's colours come from the same palette.
        render_thumbnail(out, title=req.title, subtitle=req.subtitle, style=req.style, background=output.path,
                         font=plan.font.path, designed=output.designed, palette_key=plan.spec.prompt)
        return _check_jpeg(out)

    return finish


async def make_thumbnail(rt: Runtime, plan: ThumbnailPlan, handle: JobHandle) -> ThumbnailResult:
    if plan.hit is not None:
        return from_cache(rt, plan, handle.job_id)
    req, paths, font = plan.request, plan.paths, plan.font
    chain = rt.catalog.chain("image", req.providers, resolved=plan.chain_ids)
    paths.ensure()
    handle.progress(0.01, "making the thumbnail")
    with staged(paths.thumbnail) as tmp:
        try:
            output = await chain.generate_image(plan.spec, tmp, call_context(rt, handle, paths, span=0.95),
                                                finish=finish_thumbnail(plan))
        except Exception as exc:
            record_failure(rt, paths, "image", exc, handle.job_id)
            raise
        width, height = output.finished
        props = ThumbnailProps(width=width, height=height, format="JPEG", title=req.title, subtitle=req.subtitle,
                               font=font.record())
        row = await register_output(rt, paths, output, handle, kind="thumbnail", path=paths.thumbnail, staged=tmp,
                                    props=props, capability="image")
    cache.remember(rt, plan.key, row, paths.thumbnail)
    return ThumbnailResult(**asset_fields(paths, row, output.attempts, into=ThumbnailResult), title=req.title, font=font.name,
                           notes=_notes(req, font))


def _notes(req: ThumbnailRequest, font: ResolvedFont) -> list[str]:
    """What the result says about the title as drawn: the text notes, and the face it is drawn in when that
    is a bundled fallback (a script ``font`` has no glyphs for), so ``font`` is never taken for it."""
    notes = notes_for(req.title, req.subtitle, font=font.path)
    written = as_written(req.title, font=font.path).text
    face = face_for(written, font.path) if written else font.path
    if face != font.path:
        notes.append(f"the title is drawn in the bundled {font_facts(face).family.removesuffix(' ytap')}: "
                     f"{font.name} has no glyphs for its script")
    return notes
