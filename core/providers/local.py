"""The local tier: real media made on this machine, offline, free, always available.

``local:placeholder`` an animated title card (ffmpeg), ``local:espeak-ng`` speech from
the espeak-ng library shipped on PyPI, ``local:pillow`` a designed background (no text:
the thumbnail service draws the title over it, as over any provider's picture),
``local:ambient`` a music bed synthesised for the mood (core/media/ambient.py). The work
is blocking (a subprocess, a C library, image drawing), so it runs in a worker thread;
cancellation reaches it through ``ctx.cancel``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import anyio.to_thread

from core.providers.base import CallContext, ImageSpec, MusicFacts, MusicSpec, ProviderOutput, SpeechSpec, VideoSpec
from core.schemas import Capability

__all__ = ["LocalPlaceholderVideoProvider", "LocalEspeakSpeechProvider", "LocalPillowImageProvider",
           "LocalAmbientMusicProvider"]


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
        from core.media.language import espeak_voice

        def work() -> ProviderOutput:
            # A voice named for another provider ("alloy") must not stop the last-resort tier:
            # speak with the default voice and say so in the result.
            # No voice named: the narration's language picks one (espeak-ng has a voice for about 100).
            voice = spec.voice or espeak_voice(spec.language)
            used = voice or espeak.DEFAULT_VOICE
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
        from core.media.thumbnail import render_background, title_align

        def work() -> None:
            # Seeded by the prompt, with the glow on the side away from where the style puts the title.
            img = render_background(spec.prompt, spec.style, align=title_align(spec.style))
            img.save(out, format="PNG", compress_level=1)  # lossless: it is encoded once, as the JPEG

        await anyio.to_thread.run_sync(work)
        return ProviderOutput(path=out, provider=self.id, model=self.model, designed=True)


class LocalAmbientMusicProvider(_Local):
    id: ClassVar[str] = "local:ambient"
    capability: ClassVar[Capability] = "music"
    model: ClassVar[str | None] = "ambient-pads"

    # One loop is at most this long; a longer bed is that loop repeated (the music service does it),
    # so memory stays flat up to 10 minutes.
    max_loop_s: ClassVar[float] = 120.0

    async def compose_music(self, spec: MusicSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        import math

        from core.media.ambient import render_ambient
        from core.media.musicbed import write_wav

        def work() -> ProviderOutput:
            ctx.progress(0.1, "composing the ambient bed")
            loops = max(1, math.ceil(spec.duration_s / self.max_loop_s))
            bed = render_ambient(spec.mood, spec.duration_s / loops, cancel=ctx.cancel)
            write_wav(out, bed.samples)
            facts = MusicFacts(seamless=True, bpm=bed.bpm, beats_per_bar=bed.beats_per_bar, bars=bed.bars,
                               chords=bed.chords, profile=bed.profile, key=bed.key)
            return ProviderOutput(path=out, provider=self.id, model=self.model, music=facts)

        return await anyio.to_thread.run_sync(work)
