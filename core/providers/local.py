"""The local tier: real media made on this machine, offline, free, always available.

``local:placeholder`` an animated title card (ffmpeg), ``local:espeak-ng`` speech from
the espeak-ng library shipped on PyPI, ``local:pillow`` a designed thumbnail. The work
is blocking (a subprocess, a C library, image drawing), so it runs in a worker thread;
cancellation reaches it through ``ctx.cancel``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import anyio.to_thread

from core.providers.base import CallContext, ImageSpec, ProviderOutput, SpeechSpec, VideoSpec
from core.schemas import Capability

__all__ = ["LocalPlaceholderVideoProvider", "LocalEspeakSpeechProvider", "LocalPillowImageProvider"]


class _Local:
    key_env: ClassVar[str | None] = None
    paid: ClassVar[bool] = False

    def __init__(self, settings: object | None = None) -> None:
        self.settings = settings

    def unavailable_reason(self) -> str | None:
        return None


class LocalPlaceholderVideoProvider(_Local):
    id: ClassVar[str] = "local:placeholder"
    capability: ClassVar[Capability] = "video"
    model: ClassVar[str | None] = "title-card"

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media.placeholder import render_title_card

        def work() -> None:
            render_title_card(
                out,
                prompt=spec.prompt,
                scene_index=spec.scene_index,
                duration_s=spec.duration_s,
                width=spec.width,
                height=spec.height,
                fps=spec.fps,
                style=spec.style,
                on_progress=lambda f: ctx.progress(f, "rendering the title card"),
                cancel=ctx.cancel,
            )

        await anyio.to_thread.run_sync(work)
        return ProviderOutput(path=out, provider=self.id, model=self.model)


class LocalEspeakSpeechProvider(_Local):
    id: ClassVar[str] = "local:espeak-ng"
    capability: ClassVar[Capability] = "speech"
    model: ClassVar[str | None] = "espeak-ng"

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media import espeak

        def work() -> ProviderOutput:
            # A voice named for another provider ("alloy") must not stop the last-resort tier:
            # speak with the default voice and say so in the result.
            voice, used = spec.voice, spec.voice or espeak.DEFAULT_VOICE
            if voice and not espeak.is_voice(voice):
                voice, used = None, f"{espeak.DEFAULT_VOICE} ({voice!r} is not an espeak-ng voice)"
            segments = espeak.synthesize(
                list(spec.segments),
                out,
                voice=voice,
                speed=spec.speed,
                pitch_semitones=spec.pitch_semitones,
                cancel=ctx.cancel,
            )
            return ProviderOutput(
                path=out, provider=self.id, model=self.model, segments=segments, voice=used
            )

        return await anyio.to_thread.run_sync(work)


class LocalPillowImageProvider(_Local):
    id: ClassVar[str] = "local:pillow"
    capability: ClassVar[Capability] = "image"
    model: ClassVar[str | None] = "title-card"

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media.thumbnail import render_thumbnail

        def work() -> None:
            render_thumbnail(out, title=spec.title, subtitle=spec.subtitle, style=spec.style, font=spec.font)

        await anyio.to_thread.run_sync(work)
        return ProviderOutput(path=out, provider=self.id, model=self.model)
