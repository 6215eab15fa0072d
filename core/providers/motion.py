"""``motion:<image provider id>``: a scene from a still, moved by a slow camera (core.media.motion).

One video provider per image provider (``motion:openai:gpt-image-2``,
``motion:google:gemini-3.1-flash-image``, ``motion:sd:<model>``), built by the catalog around
that provider's instance; the local card (``local:pillow``) is not one: it is a designed
background, not a picture of the scene. It states its image provider's facts (key, paid,
availability), is priced as one image (core.providers.pricing resolves ``motion:<id>`` to the
image's price) and:

1. asks the image provider for a still of the scene's shape, at least the scene's size where
   the vendor offers it (prompt, style and negative prompt passed on; a seed from the scene
   index and prompt, for vendors that take one, so a re-run asks for the same picture);
2. moves it (core.media.motion.render_motion) with the move chosen from the scene index and
   prompt, in a worker thread, at most one render per core at a time across all motion providers.

The image provider's errors pass through as they are (a refusal is a refusal, a rate limit is
retried by the chain). A still that cannot be moved is this attempt's BadOutput carrying the
image's cost. The result's ``model`` names both steps: the image model and the move.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import ClassVar

import anyio.to_thread

from core.config import Settings
from core.errors import BadOutput, MediaError, ProviderError
from core.providers._vendor import part_path
from core.providers.base import CallContext, ImageProvider, ImageSpec, ProviderOutput, VideoSpec
from core.schemas import Capability

__all__ = ["MotionVideoProvider", "MOTION_PREFIX", "motion_id", "can_move"]

MOTION_PREFIX = "motion:"
# Rendering a motion clip is CPU-bound (mostly x264; the warp is ~1 ms a frame): one per core, whatever the
# chain's per-provider limits let through (those bound the image vendor's calls).
_RENDER_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 2))
_STILL_SHARE = 0.6  # of the attempt's progress: the picture, then the move


def motion_id(image_provider_id: str) -> str:
    return MOTION_PREFIX + image_provider_id


def can_move(image_provider_id: str) -> bool:
    """Whether an image provider's pictures can be a scene: not the local tier's designed card."""
    return not image_provider_id.startswith(("local:", MOTION_PREFIX))


class MotionVideoProvider:
    capability: ClassVar[Capability] = "video"

    def __init__(self, settings: Settings, image: ImageProvider) -> None:
        if not can_move(image.id):
            raise ValueError(f"{image.id} makes designed cards, not pictures of a scene: it cannot be put in motion")
        self.settings = settings
        self.image = image
        self.id = motion_id(image.id)
        self.model = image.model
        self.key_env = image.key_env
        self.paid = bool(getattr(image, "paid", False))

    def unavailable_reason(self) -> str | None:
        from core.media.motion import motion_supported

        return motion_supported() or self.image.unavailable_reason()

    @staticmethod
    def image_spec(spec: VideoSpec) -> ImageSpec:
        from core.media.motion import seed_for

        return ImageSpec(prompt=spec.prompt, width=spec.width, height=spec.height, style=spec.style,
                         negative_prompt=spec.negative_prompt, seed=seed_for(spec.scene_index, spec.prompt))

    def estimate_cost_usd(self, spec: VideoSpec) -> float:
        if not self.paid:
            return 0.0
        return float(self.image.estimate_cost_usd(self.image_spec(spec)))  # type: ignore[attr-defined]

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media.motion import choose_move, render_motion

        still = part_path(out, "still", ".img")
        image_ctx = CallContext(settings=ctx.settings, cancel=ctx.cancel, budget_remaining_usd=ctx.budget_remaining_usd,
                                progress=lambda f, m: ctx.progress(_STILL_SHARE * f, m))
        move = choose_move(spec.scene_index, spec.prompt, duration_s=spec.duration_s, width=spec.width,
                           height=spec.height)
        try:
            picture = await self.image.generate_image(self.image_spec(spec), still, image_ctx)
            cost = picture.cost_usd
            ctx.progress(_STILL_SHARE, f"{self.id}: moving the still ({move.kind.replace('_', ' ')})")

            def render() -> None:
                with _RENDER_SLOTS:
                    render_motion(still, out, move=move, duration_s=spec.duration_s, width=spec.width,
                                  height=spec.height, fps=spec.fps, cancel=ctx.cancel,
                                  on_progress=lambda f: ctx.progress(_STILL_SHARE + (0.9 - _STILL_SHARE) * f,
                                                                     f"{self.id}: moving the still"))

            try:
                await anyio.to_thread.run_sync(render)
            except MediaError as exc:
                raise BadOutput(f"{self.id}: the still from {self.image.id} could not be put in motion: "
                                f"{exc.message}", cost_usd=cost) from exc
            except ProviderError as exc:
                exc.cost_usd = max(exc.cost_usd, cost)
                raise
        finally:
            still.unlink(missing_ok=True)
        return ProviderOutput(path=out, provider=self.id, model=f"{picture.model or self.image.id} + {move.kind}",
                              cost_usd=cost)
