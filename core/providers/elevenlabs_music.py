"""ElevenLabs' music (Eleven Music): the ``elevenlabs:music`` provider, on the speech provider's client,
key and error mapping (core/providers/elevenlabs.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio

from core.config import Settings
from core.errors import BadOutput, NotConfigured, ProviderError, Refused, TimedOut, Unavailable
from core.providers._vendor import run_cancellable
from core.providers.base import CallContext, MusicFacts, MusicSpec, ProviderOutput, scrub
from core.providers.elevenlabs import ElevenLabsSpeechProvider, _detail, _from_api_error, _secrets
from core.providers.pricing import cost_usd
from core.schemas import Capability

__all__ = ["ElevenLabsMusicProvider"]

log = logging.getLogger(__name__)


class ElevenLabsMusicProvider:
    """``elevenlabs:music``: Eleven Music through the SDK's ``music.compose`` (``POST /v1/music``).

    Instrumental only (``force_instrumental``: a bed under a narration must not sing). The
    API makes 3-600 s (older documentation: 10-300 s); a track of
    ``min(duration + crossfade, max_request_s)`` is asked for, within both, and the music
    service loops it out to the duration on bar lines (core/media/musicbed.py), so a
    10-minute bed costs a 5-minute track. The answer is the audio itself, streamed
    (``mp3_44100_128``, on every plan). Billed per second asked for
    (core/providers/pricing.py), on a 2xx answer.

    Errors as the speech provider's (``_from_api_error``), plus the music API's own:
    ``bad_prompt`` (a prompt naming an artist, a band or a song; its ``data.prompt_suggestion``
    offers a rewording) and ``bad_composition_plan`` -> ``Refused`` with ElevenLabs' words
    and the suggestion, so the agent can rephrase the mood.
    """

    id: ClassVar[str] = "elevenlabs:music"
    capability: ClassVar[Capability] = "music"
    model: ClassVar[str | None] = "music_v1"
    key_env: ClassVar[str | None] = "ELEVENLABS_API_KEY"
    paid: ClassVar[bool] = True

    output_format: ClassVar[str] = "mp3_44100_128"
    min_request_s: ClassVar[float] = 10.0
    max_request_s: float = 300.0
    crossfade_s: ClassVar[float] = 2.0  # core.media.musicbed.MAX_CROSSFADE_S: the loop eats it
    # Composing takes about real time or less; a 5-minute track within a job's patience.
    request_timeout_s: float = 300.0
    connect_timeout_s: float = 10.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def unavailable_reason(self) -> str | None:
        return ElevenLabsSpeechProvider.unavailable_reason(self)  # type: ignore[arg-type]

    def request_s(self, spec: MusicSpec) -> float:
        return round(min(self.max_request_s, max(self.min_request_s, spec.duration_s + self.crossfade_s)), 3)

    def estimate_cost_usd(self, spec: MusicSpec) -> float:
        return cost_usd(self.id, self.request_s(spec))

    _client = ElevenLabsSpeechProvider._client

    async def compose_music(self, spec: MusicSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        import httpx
        from elevenlabs.core.api_error import ApiError

        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        secrets = _secrets(self.settings, ctx.settings)
        length_s = self.request_s(spec)
        ctx.progress(0.05, f"ElevenLabs: composing {length_s:g} s of music")
        received = 0

        async def call() -> None:
            nonlocal received
            with anyio.fail_after(self.request_timeout_s):
                async with self._client() as client:
                    with out.open("wb") as f:
                        async for chunk in client.music.compose(
                            prompt=spec.mood,
                            music_length_ms=int(length_s * 1000),
                            model_id=self.model,
                            force_instrumental=True,
                            output_format=self.output_format,  # type: ignore[arg-type]
                            request_options={"max_retries": 0},
                        ):
                            f.write(chunk)
                            received += len(chunk)

        billed = 0.0
        try:
            await run_cancellable(call, ctx.cancel, "music generation cancelled")
        except ApiError as exc:
            raise _from_music_api_error(exc, secrets) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            billed = cost_usd(self.id, length_s) if received else 0.0
            raise TimedOut(f"ElevenLabs did not finish the music within {self.request_timeout_s:g} s",
                           cost_usd=billed) from exc
        except httpx.HTTPError as exc:  # refused, reset, dropped, a stream cut short
            billed = cost_usd(self.id, length_s) if received else 0.0
            raise Unavailable(f"ElevenLabs could not be reached or cut the music short ({type(exc).__name__})",
                              cost_usd=billed) from exc
        if received == 0:
            raise BadOutput("ElevenLabs answered without audio", cost_usd=cost_usd(self.id, length_s))
        log.info("%s: %.0f s asked for, %d bytes", self.id, length_s, received)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost_usd(self.id, length_s),
                              music=MusicFacts(seamless=False, length_s=length_s))


def _from_music_api_error(exc: Any, secrets: list[str]) -> ProviderError:
    """The music API's refusals (``bad_prompt``, ``bad_composition_plan``), else the speech API's mapping."""
    code, message = _detail(exc.body)
    if code in ("bad_prompt", "bad_composition_plan"):
        detail = exc.body.get("detail") if isinstance(exc.body, Mapping) else None
        data = detail.get("data") if isinstance(detail, Mapping) else None
        suggestion = ""
        if isinstance(data, Mapping):
            suggestion = str(data.get("prompt_suggestion") or data.get("composition_plan_suggestion") or "")
        said = scrub(message or code, secrets)[:300]
        reasons = [said] + ([f"ElevenLabs suggests: {scrub(suggestion, secrets)[:300]}"] if suggestion else [])
        return Refused(f"ElevenLabs refused the music prompt ({code}): {said}"
                       + (f" — it suggests: {scrub(suggestion, secrets)[:200]}" if suggestion else ""),
                       reasons=reasons)
    return _from_api_error(exc, secrets)
