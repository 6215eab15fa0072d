"""ElevenLabs speech: ``elevenlabs:eleven_multilingual_v2`` through the official SDK.

One ``POST /v1/text-to-speech/{voice_id}/with-timestamps`` per segment (a segment longer
than :attr:`ElevenLabsSpeechProvider.max_chars_per_request` is split at sentence ends
and its pieces joined back into one part). The answer is JSON: the audio as base64 and a
per-character alignment, which becomes the per-word timings captions are cut from.

Choices, and why:

- **Async SDK client** (``AsyncElevenLabs`` on an ``httpx.AsyncClient`` built per call).
  The job runner cancels a job's task as well as setting ``ctx.cancel``; an awaited
  request is cut at once, where a request in a worker thread would run to its end. A
  watcher also cuts the request when only ``ctx.cancel`` is set. The client is built per
  call because an httpx async pool belongs to the event loop it was first used on.
- **The SDK never retries** (``max_retries=0`` on every request: its default is two
  retries that sleep up to 60 s on 429/5xx). The chain retries, the same way for every
  vendor (core/providers/resilience.py); this module only maps answers to errors.
- **Redirects are not followed**: the key travels in a custom ``xi-api-key`` header,
  which httpx would forward to whatever host a redirect names.
- **mp3_44100_128**: available on every plan (``pcm_44100`` needs Pro) and a sixth of
  the bytes of PCM inside the base64 JSON. Each answer is decoded here to 44.1 kHz mono
  s16le: ffmpeg tells corrupt data apart, the decoded length is exact (an MP3 header can
  announce the full length of a cut file), and a cut file shows as audio shorter than
  the alignment says was spoken. Parts are returned as raw PCM; the narration's master is made of them.
- **Speed**: ElevenLabs accepts 0.7-1.2 (``voice_settings.speed``) and speaks it more
  naturally than a tempo filter, so that part is done by the vendor and only the rest
  (1.5 -> 1.2 here x 1.25 when the master is made) by ffmpeg. Pitch always by ffmpeg.
- **Voices**: a voice id (20 letters and digits) is used as given; a few default-voice
  names map to their ids; any other name (one meant for another provider, "alloy")
  speaks with :attr:`default_voice_id` and ``ProviderOutput.voice`` says so: it is not
  an ``InputError``, the next provider may know the name.

Errors (``core.errors``, raised ``from`` the SDK exception; messages scrubbed of keys,
never carrying headers), by the ``detail.code`` (or legacy ``detail.status``) of the
body first, then the HTTP status:

- ``content_against_policy`` (403/400) -> ``Refused(reasons=[vendor message])``
- ``quota_exceeded`` (401), ``payment_required``/``paid_plan_required`` (402) ->
  ``Unavailable("ElevenLabs quota exceeded ...")``. Not a rate limit: no pause within a
  request's lifetime brings credits back (they return with the billing cycle or a
  purchase), and "rate_limited" in a provider report would send the reader looking at
  concurrency. (The chain's policy still retries an ``Unavailable`` on backoff: a couple
  of fast, unbilled refusals before it falls back and cools the provider down.)
- ``detected_unusual_activity`` (401, free tier blocked) -> ``Unavailable``
- other 401 -> ``NotConfigured("ELEVENLABS_API_KEY was rejected (401)")``; 403 -> ``NotConfigured``
- 429 (``too_many_concurrent_requests``/``concurrent_limit_exceeded``/``system_busy``/
  ``rate_limit_exceeded``) -> ``RateLimited(retry_after_s=Retry-After)``
- 404 (voice or endpoint gone), other 4xx, 5xx, connection refused/dropped -> ``Unavailable``
- httpx timeouts, or the per-call deadline -> ``TimedOut``
- a 2xx body that is not the expected JSON, no audio, undecodable or truncated audio ->
  ``BadOutput``

Every error carries ``cost_usd``: the characters of the requests ElevenLabs answered
with audio before it, the failing one included when it billed (a 200 with bad audio).

Voice cloning (``clone_voice``, ``delete_voice``; core/services/voices.py decides when):
``POST /v1/voices/add`` (instant voice clone: multipart name, files, description,
remove_background_noise; answers ``{"voice_id", "requires_verification"}``) and ``DELETE
/v1/voices/{voice_id}``. Same client, same discipline (no SDK retries, no redirects, key
scrubbed), and its own error mapping (:func:`_from_voice_api_error`), because the same code
means something else here: ``paid_plan_required`` or ``can_not_use_instant_voice_cloning``
is "this plan has no instant voice cloning", ``voice_limit_reached`` is "the account's
custom voices are all used", both ``Unavailable`` (not retryable) with a message saying what
to do; another 400/422 on ``voices/add`` is the sample's fault -> ``InputError`` with the
vendor's words; ``voice_not_found``/404 on delete means the voice is already gone (False).
A 2xx without a 20-character voice id -> ``BadOutput``: an id of another shape would not be
recognised as one when speaking, and the narration would silently use the default voice.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib.util
import logging
import math
import mimetypes
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    MediaError,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.providers._vendor import part_path, retry_after_s, run_cancellable
from core.providers.base import (
    CallContext,
    ClonedVoice,
    ProviderOutput,
    SpeechParts,
    SpeechSpec,
    scrub,
)
from core.providers.pricing import cost_usd
from core.schemas import Capability, WordTiming

if TYPE_CHECKING:
    from elevenlabs.client import AsyncElevenLabs

__all__ = ["ElevenLabsSpeechProvider", "DEFAULT_VOICE_ID", "PREMADE_VOICES",
           "words_from_alignment"]

log = logging.getLogger(__name__)

PRODUCTION_BASE_URL = "https://api.elevenlabs.io"  # no /v1: the SDK adds it to every path

# "George", the voice of ElevenLabs' own quickstart. ElevenLabs has announced that its
# Default voices leave the API on 2026-12-31 (the replacements are Voice Library voices,
# which free-tier keys may not use through the API): revisit this id then.
DEFAULT_VOICE_ID = "JBFqnCBsd6RMkjVDRZzb"

# Default ("premade") voices by name, lower-cased.
PREMADE_VOICES: dict[str, str] = {
    "george": DEFAULT_VOICE_ID,
    "sarah": "EXAVITQu4vr4xnSDxMaL",
    "laura": "FGY2WhTYpPnrIDTdsKH5",
    "charlie": "IKne3meq5aSn9XLyUdCD",
    "river": "SAz9YHcvj6GT2YYXdXww",
    "liam": "TX3LPaxmHKxFdv7VOQHJ",
    "alice": "Xb7hH8MSUJpSbSDYk0k2",
    "eric": "cjVigY5qzO86Huf0OWal",
    "brian": "nPczCjzI2devNBz1zQrb",
    "daniel": "onwK4e9ZLuTAKqWW03F9",
}
# The 2023 premade voices that older examples name. They were made legacy and Rachel
# (21m00Tcm4TlvDq8ikWAM) was retired on 2026-02-28 (calls answer 404); asking for them
# by name speaks with the default voice instead of failing the whole narration over.
RETIRED_VOICES: dict[str, str] = {"rachel": "21m00Tcm4TlvDq8ikWAM", "adam": "pNInz6obpgDQGcFmaJgB"}

_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"')\]\u201d\u2019]*\s+")

# ElevenLabs' codes (``detail.code``, or the legacy ``detail.status``) that decide the mapping.
_REFUSAL_CODES = frozenset({"content_against_policy", "famous_voice_not_permitted"})
_QUOTA_CODES = frozenset({"quota_exceeded", "payment_required", "paid_plan_required", "insufficient_credits"})
_BLOCKED_CODES = frozenset({"detected_unusual_activity", "unusual_activity_detected", "user_in_probation"})
# Voice cloning: the plan has no instant voice cloning / every custom voice slot is taken / the voice is gone.
_CLONE_PLAN_CODES = frozenset({"can_not_use_instant_voice_cloning", "paid_plan_required", "payment_required"})
_VOICE_LIMIT_CODES = frozenset({"voice_limit_reached", "voice_add_edit_limit_reached"})
_VOICE_GONE_CODES = frozenset({"voice_not_found", "voice_does_not_exist"})

# What ffmpeg turns each answer into, and what join_segments is told the parts are.
_PCM_RATE = 44100
_PCM_FORMAT = ("s16le", _PCM_RATE, 1)
_PCM_BYTES_PER_S = 2 * _PCM_RATE


class ElevenLabsSpeechProvider:
    id: ClassVar[str] = "elevenlabs:eleven_multilingual_v2"
    capability: ClassVar[Capability] = "speech"
    model: ClassVar[str | None] = "eleven_multilingual_v2"
    key_env: ClassVar[str | None] = "ELEVENLABS_API_KEY"
    paid: ClassVar[bool] = True

    output_format: ClassVar[str] = "mp3_44100_128"
    # Multilingual v2 accepts up to 10,000 characters a request; shorter requests keep a
    # failure (and its retry) cheap and each answer's JSON small.
    max_chars_per_request: int = 5000
    # The whole of one request, connection to last byte. A 5,000-character request takes
    # well under a minute; instances (tests) may lower it.
    request_timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    # Voice settings sent with every request (ElevenLabs' own defaults for v2 voices).
    stability: float = 0.5
    similarity_boost: float = 0.75
    style: float = 0.0
    use_speaker_boost: bool = True
    speed_range: ClassVar[tuple[float, float]] = (0.7, 1.2)
    # Decoded audio may end this much before the alignment's last character and still
    # count as whole (MP3 frames are 26 ms; the alignment is rounded).
    truncation_tolerance_s: float = 0.25
    default_voice_id: str = DEFAULT_VOICE_ID

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- facts ----------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        if not self.settings.elevenlabs_api_key:
            return "ELEVENLABS_API_KEY not set"
        if importlib.util.find_spec("elevenlabs") is None:
            return "the elevenlabs package is not installed"
        return None

    def estimate_cost_usd(self, spec: SpeechSpec) -> float:
        return cost_usd(self.id, sum(len(s.strip()) for s in spec.segments))

    # --- the call -------------------------------------------------------------------

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        texts = [s.strip() for s in spec.segments]
        if not texts:
            raise InputError("no speech segments to synthesize")
        for i, text in enumerate(texts, 1):
            if not text:
                raise InputError(f"segment {i} is empty")
        if not 0.5 <= spec.speed <= 2.0:  # what join_segments can apply; checked before anything is billed
            raise InputError("speed must be within 0.5-2.0")
        voice_id, voice_label = self.resolve_voice(spec.voice)
        vendor_speed, rest_speed = self.split_speed(spec.speed)
        if spec.instructions:
            log.debug("%s has no instruction input; the tone instructions are not sent", self.id)
        secrets = _secrets(self.settings, ctx.settings)
        billed_chars = 0

        def charge(n: int) -> None:
            nonlocal billed_chars
            billed_chars += n

        from core.media.audio import SegmentAudio

        # The parts stay here until the narration's master is made of them (swept at the next start
        # if a kill skips the cleanup).
        folder = part_path(out, "elevenlabs", "")
        folder.mkdir()
        parts: list[SegmentAudio] = []
        try:
            async with self._client() as client:
                for i, text in enumerate(texts, 1):
                    if ctx.cancel.is_set():
                        raise OperationCancelled("speech synthesis cancelled")
                    ctx.progress(0.9 * (i - 1) / len(texts), f"ElevenLabs: segment {i} of {len(texts)}")
                    pcm_path = folder / f"segment_{i:03d}.pcm"
                    words = await self._speak_segment(
                        client, text, pcm_path, voice_id=voice_id, speed=vendor_speed, ctx=ctx,
                        charge=charge, secrets=secrets, tmp=folder,
                    )
                    parts.append(SegmentAudio(path=pcm_path, text=text, words=tuple(words), raw_format=_PCM_FORMAT))
        except ProviderError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            # Whatever ElevenLabs answered with audio was billed, even if the narration failed.
            exc.cost_usd = max(exc.cost_usd, cost_usd(self.id, billed_chars))
            exc.message = scrub(exc.message, secrets)
            exc.args = (exc.message,)
            raise
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            if billed_chars:
                log.info("%s stopped after %d billed characters", self.id, billed_chars)
            raise
        log.info("%s: %d segment(s), %d characters, voice %s", self.id, len(texts), billed_chars, voice_id)
        raw = SpeechParts(parts=parts, folder=folder, speed=rest_speed, pitch_semitones=spec.pitch_semitones)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost_usd(self.id, billed_chars),
                              voice=voice_label, speech=raw)

    async def _speak_segment(
        self,
        client: AsyncElevenLabs,
        text: str,
        pcm_path: Path,
        *,
        voice_id: str,
        speed: float,
        ctx: CallContext,
        charge: Callable[[int], None],
        secrets: list[str],
        tmp: Path,
    ) -> list[WordTiming]:
        """Speak one segment (one or more requests) into ``pcm_path``; its words relative to its start."""
        words: list[WordTiming] = []
        offset_s = 0.0
        with pcm_path.open("wb") as pcm:
            for n, chunk in enumerate(split_text(text, self.max_chars_per_request)):
                if n and ctx.cancel.is_set():
                    raise OperationCancelled("speech synthesis cancelled")
                try:
                    response = await self._request(client, voice_id, chunk, speed, ctx, secrets)
                except BadOutput:
                    charge(len(chunk))  # only a 2xx answer maps to BadOutput here: it was billed
                    raise
                charge(len(chunk))  # a 2xx answer is billed whatever its body holds
                audio = _audio_bytes(response)
                data = await anyio.to_thread.run_sync(lambda: _decode_mp3(audio, tmp, ctx.cancel))
                duration_s = len(data) / _PCM_BYTES_PER_S
                alignment = _alignment_of(response)
                chunk_words = words_from_alignment(*alignment, offset_s=offset_s) if alignment else None
                if alignment:
                    spoken_s = max(alignment[2], default=0.0)
                    if duration_s + self.truncation_tolerance_s < spoken_s:
                        raise BadOutput(f"ElevenLabs sent truncated audio: {duration_s:.2f} s decoded, "
                                        f"the alignment runs to {spoken_s:.2f} s")
                if chunk_words is None:
                    log.warning("%s sent no usable alignment; word timings are spread evenly", self.id)
                    from core.media.srt import spread_words

                    chunk_words = spread_words(chunk, offset_s, offset_s + duration_s)
                words += chunk_words
                pcm.write(data)
                offset_s += duration_s
        return words

    async def _request(
        self, client: AsyncElevenLabs, voice_id: str, text: str, speed: float, ctx: CallContext, secrets: list[str]
    ) -> Any:
        import httpx
        from elevenlabs.core.api_error import ApiError
        from elevenlabs.core.parse_error import ParsingError
        from elevenlabs.types import VoiceSettings

        settings = VoiceSettings(stability=self.stability, similarity_boost=self.similarity_boost, style=self.style,
                                 speed=speed, use_speaker_boost=self.use_speaker_boost)

        async def call() -> Any:
            with anyio.fail_after(self.request_timeout_s):
                return await client.text_to_speech.convert_with_timestamps(
                    voice_id,
                    text=text,
                    model_id=self.model,
                    output_format=self.output_format,  # type: ignore[arg-type]
                    voice_settings=settings,
                    request_options={"max_retries": 0},
                )

        try:
            return await run_cancellable(call, ctx.cancel, "speech synthesis cancelled")
        except ApiError as exc:
            raise _from_api_error(exc, secrets) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TimedOut(f"ElevenLabs did not answer within {self.request_timeout_s:g} s") from exc
        except httpx.HTTPError as exc:  # refused, reset, dropped, a body cut short
            raise Unavailable(f"ElevenLabs could not be reached ({type(exc).__name__})") from exc
        except (ParsingError, ValueError, TypeError) as exc:  # a 2xx body the response model cannot hold
            raise BadOutput("ElevenLabs answered with a body that is not the expected JSON") from exc

    @contextlib.asynccontextmanager
    async def _client(self, timeout_s: float | None = None) -> Any:
        import httpx
        from elevenlabs.client import AsyncElevenLabs

        key = self.settings.elevenlabs_api_key
        assert key is not None  # unavailable_reason() checked it
        total_s = timeout_s or self.request_timeout_s
        timeout = httpx.Timeout(total_s, connect=min(self.connect_timeout_s, total_s))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            # Key and base URL always explicit: the SDK's defaults read the environment at import time.
            yield AsyncElevenLabs(api_key=key.get(), base_url=self.settings.elevenlabs_base_url or PRODUCTION_BASE_URL,
                                  timeout=total_s, httpx_client=http)

    # --- voices: instant voice cloning ------------------------------------------------------

    # One clone request, upload included (clone_voice runs as a job). Deleting is quick, and
    # delete_voice answers within the 50 s a tool call may take, a retry included.
    clone_timeout_s: float = 40.0
    delete_timeout_s: float = 15.0

    async def clone_voice(self, name: str, sample: Path, ctx: CallContext, *, description: str | None = None,
                          remove_background_noise: bool = False) -> ClonedVoice:
        """An instant voice clone of the speaker in ``sample`` (``POST /v1/voices/add``), named ``name``
        in the ElevenLabs account. Not billed per call (the plan includes it), so nothing is priced."""
        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        secrets = _secrets(self.settings, ctx.settings)
        data = await anyio.to_thread.run_sync(sample.read_bytes)
        mime = mimetypes.guess_type(sample.name)[0] or "application/octet-stream"
        extra: dict[str, Any] = {"remove_background_noise": remove_background_noise}
        if description:
            extra["description"] = description
        try:
            async with self._client(self.clone_timeout_s) as client:

                async def call() -> Any:
                    with anyio.fail_after(self.clone_timeout_s):
                        return await client.voices.ivc.create(
                            name=name, files=[(sample.name, data, mime)], request_options={"max_retries": 0}, **extra)

                response = await self._voice_call(call, ctx, secrets, action="clone", timeout_s=self.clone_timeout_s)
        except ProviderError as exc:
            exc.message = scrub(exc.message, secrets)
            exc.args = (exc.message,)
            raise
        voice_id = getattr(response, "voice_id", None)
        if not isinstance(voice_id, str) or not _VOICE_ID.fullmatch(voice_id):
            raise BadOutput("ElevenLabs answered the clone without a usable voice_id")
        notes: list[str] = []
        verify = getattr(response, "requires_verification", False) is True
        if verify:
            notes.append("ElevenLabs requires this voice to be verified before it speaks (its voice page in the "
                         "ElevenLabs app)")
        if getattr(response, "library_voice_match", None) is not None:
            notes.append("ElevenLabs found that the sample matches a protected voice of its Voice Library")
        log.info("%s: cloned a voice (%d bytes of sample)%s", self.id, len(data), "; needs verification" if verify else "")
        return ClonedVoice(voice_id=voice_id, requires_verification=verify, notes=tuple(notes))

    async def delete_voice(self, voice_id: str, ctx: CallContext) -> bool:
        """Delete a voice of the account (``DELETE /v1/voices/{voice_id}``); False when ElevenLabs has no such voice."""
        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        if not _VOICE_ID.fullmatch(voice_id):  # it goes into the URL path
            raise InputError(f"{voice_id[:40]!r} is not an ElevenLabs voice id")
        secrets = _secrets(self.settings, ctx.settings)
        try:
            async with self._client(self.delete_timeout_s) as client:

                async def call() -> Any:
                    with anyio.fail_after(self.delete_timeout_s):
                        return await client.voices.delete(voice_id, request_options={"max_retries": 0})

                await self._voice_call(call, ctx, secrets, action="delete", timeout_s=self.delete_timeout_s)
        except _VoiceGone:
            return False
        except ProviderError as exc:
            exc.message = scrub(exc.message, secrets)
            exc.args = (exc.message,)
            raise
        return True

    async def _voice_call(self, call: Callable[[], Any], ctx: CallContext, secrets: list[str], *, action: str,
                          timeout_s: float) -> Any:
        import httpx
        from elevenlabs.core.api_error import ApiError
        from elevenlabs.core.parse_error import ParsingError

        try:
            return await run_cancellable(call, ctx.cancel, f"voice {action} cancelled")
        except ApiError as exc:
            raise _from_voice_api_error(exc, secrets, action=action) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TimedOut(f"ElevenLabs did not answer within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"ElevenLabs could not be reached ({type(exc).__name__})") from exc
        except (ParsingError, ValueError, TypeError) as exc:
            raise BadOutput("ElevenLabs answered with a body that is not the expected JSON") from exc

    # --- small decisions, public for tests and the doctor --------------------------------

    def resolve_voice(self, voice: str | None) -> tuple[str, str]:
        """(voice id to send, how to describe the voice used)."""
        default = f"George ({self.default_voice_id})" if self.default_voice_id == DEFAULT_VOICE_ID \
            else self.default_voice_id
        if not voice or not voice.strip():
            return self.default_voice_id, default
        v = voice.strip()
        if _VOICE_ID.fullmatch(v):
            return v, v
        name = v.lower()
        if name in PREMADE_VOICES:
            return PREMADE_VOICES[name], f"{v} ({PREMADE_VOICES[name]})"
        if name in RETIRED_VOICES:
            return self.default_voice_id, f"{default}; ElevenLabs retired the voice {v!r}"
        return self.default_voice_id, f"{default}; {v!r} is not an ElevenLabs voice id or default voice name"

    @classmethod
    def split_speed(cls, speed: float) -> tuple[float, float]:
        """(speed ElevenLabs speaks at, the rest for join_segments); their product is ``speed``."""
        lo, hi = cls.speed_range
        vendor = min(max(speed, lo), hi)
        rest = speed / vendor
        return vendor, 1.0 if math.isclose(rest, 1.0, abs_tol=1e-9) else rest


# --- helpers --------------------------------------------------------------------------


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a sentence if one ends
    in the second half of the window, else at the last space, else hard."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window) if m.end() <= limit), default=0)
        if cut < limit // 2:
            space = window.rfind(" ", 0, limit)
            cut = space + 1 if space > 0 else limit
        head, rest = rest[:cut].strip(), rest[cut:].strip()
        if head:
            pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces


def words_from_alignment(
    characters: Sequence[str], starts_s: Sequence[float], ends_s: Sequence[float], *, offset_s: float = 0.0
) -> list[WordTiming] | None:
    """Whitespace-separated words with the start of their first character and the end of
    their last, shifted by ``offset_s``; None when the alignment is not usable."""
    if not (len(characters) == len(starts_s) == len(ends_s)):
        return None
    words: list[WordTiming] = []
    text: list[str] = []
    start = end = 0.0
    for ch, s, e in zip(characters, starts_s, ends_s, strict=True):
        if not isinstance(ch, str) or not _finite(s) or not _finite(e):
            return None
        if ch.isspace() or not ch:
            if text:
                words.append(WordTiming(text="".join(text), start_s=offset_s + start, end_s=offset_s + max(end, start)))
                text = []
            continue
        if not text:
            start = float(s)
        text.append(ch)
        end = float(e)
    if text:
        words.append(WordTiming(text="".join(text), start_s=offset_s + start, end_s=offset_s + max(end, start)))
    return words


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _alignment_of(response: Any) -> tuple[list[str], list[float], list[float]] | None:
    """The alignment of the text as written, else of the normalized text (numbers spelled out)."""
    for name in ("alignment", "normalized_alignment"):
        a = getattr(response, name, None)
        chars = getattr(a, "characters", None)
        starts = getattr(a, "character_start_times_seconds", None)
        ends = getattr(a, "character_end_times_seconds", None)
        if isinstance(chars, list) and isinstance(starts, list) and isinstance(ends, list) and chars:
            if len(chars) == len(starts) == len(ends) and all(map(_finite, starts)) and all(map(_finite, ends)):
                return chars, starts, ends
    return None


def _audio_bytes(response: Any) -> bytes:
    b64 = getattr(response, "audio_base_64", None)
    if not isinstance(b64, str) or not b64.strip():
        raise BadOutput("ElevenLabs answered without audio")
    try:
        audio = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadOutput("ElevenLabs sent audio that is not valid base64") from exc
    if not audio:
        raise BadOutput("ElevenLabs answered without audio")
    return audio


def _decode_mp3(audio: bytes, tmp: Path, cancel: threading.Event) -> bytes:
    """The answer's MP3 as 44.1 kHz mono s16le (blocking: run it in a worker thread)."""
    from core.media.ffmpeg import run_ffmpeg

    src = Path(tempfile.mkstemp(suffix=".mp3", dir=tmp)[1])
    dst = src.with_suffix(".pcm")
    try:
        src.write_bytes(audio)
        try:
            run_ffmpeg(["-i", str(src), "-vn", "-map", "0:a:0", "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1",
                        "-ar", str(_PCM_RATE), str(dst)], timeout_s=120, cancel=cancel,
                       what="decoding the ElevenLabs audio")
        except MediaError as exc:
            raise BadOutput("ElevenLabs sent audio that cannot be decoded") from exc
        data = dst.read_bytes() if dst.exists() else b""
    finally:
        _unlink(src)
        _unlink(dst)
    if len(data) < _PCM_BYTES_PER_S // 100:  # under 10 ms: nothing was decoded
        raise BadOutput("ElevenLabs sent audio that decodes to nothing")
    return data


def _from_api_error(exc: Any, secrets: list[str]) -> ProviderError:
    """Map the SDK's ApiError (status, headers, body) to our tree. Never quotes headers."""
    status = exc.status_code or 0
    code, message = _detail(exc.body)
    said = scrub(message or code or "", secrets)[:300]
    suffix = f": {said}" if said else ""
    if 200 <= status < 300:
        return BadOutput(f"ElevenLabs answered {status} with a body that is not the expected JSON")
    if code in _REFUSAL_CODES or "against_policy" in code:
        return Refused(f"ElevenLabs refused the text ({code})", reasons=[said or code])
    if code in _QUOTA_CODES or status == 402:
        return Unavailable(f"ElevenLabs quota exceeded ({code or status}){suffix}", retryable=False)
    if code in _BLOCKED_CODES:
        return Unavailable(f"ElevenLabs blocked this account ({code}){suffix}", retryable=False)
    if status == 401:
        return NotConfigured("ELEVENLABS_API_KEY was rejected (401)" + (f": {code}" if code else ""))
    if status == 403:
        return NotConfigured(f"ELEVENLABS_API_KEY may not use text to speech (403){suffix}")
    if status == 429:
        return RateLimited(f"ElevenLabs rate limit (429, {code or 'too many requests'}){suffix}",
                           retry_after_s=retry_after_s(exc.headers))
    if status == 404:
        return Unavailable(f"ElevenLabs voice or endpoint not found (404){suffix}", retryable=False)
    if status >= 500:
        return Unavailable(f"ElevenLabs server error ({status}){suffix}")
    return Unavailable(f"ElevenLabs rejected the request ({status}{', ' + code if code else ''}){suffix}")


class _VoiceGone(Exception):
    """ElevenLabs has no such voice (any more): for delete_voice, the wanted state already."""


def _from_voice_api_error(exc: Any, secrets: list[str], *, action: str) -> Exception:
    """Map an ApiError of ``voices/add`` (action "clone") or ``DELETE voices/{id}`` ("delete"). Never quotes headers."""
    status = exc.status_code or 0
    code, message = _detail(exc.body)
    codes = {code, _legacy_status(exc.body)} - {""}
    said = scrub(message or code or "", secrets)[:300]
    suffix = f": {said}" if said else ""
    if 200 <= status < 300:
        return BadOutput(f"ElevenLabs answered {status} with a body that is not the expected JSON")
    if action == "delete" and (codes & _VOICE_GONE_CODES or status == 404):
        return _VoiceGone()
    if codes & _CLONE_PLAN_CODES or (action == "clone" and status == 402):
        return Unavailable("the ElevenLabs plan of ELEVENLABS_API_KEY does not include instant voice cloning "
                           f"(a paid plan, Starter or higher, does){suffix}", retryable=False)
    if codes & _VOICE_LIMIT_CODES:
        return Unavailable("the ElevenLabs account has no custom voice slot left: delete a voice (delete_voice, or "
                           f"in the ElevenLabs app) or upgrade the plan{suffix}", retryable=False)
    if codes & _REFUSAL_CODES or "against_policy" in code:
        return Refused(f"ElevenLabs refused to clone this voice ({code})", reasons=[said or code])
    if codes & _QUOTA_CODES:
        return Unavailable(f"ElevenLabs quota exceeded ({code}){suffix}", retryable=False)
    if codes & _BLOCKED_CODES:
        return Unavailable(f"ElevenLabs blocked this account ({code}){suffix}", retryable=False)
    if status in (401, 403):
        if "missing_permissions" in codes or status == 403:
            return NotConfigured(f"ELEVENLABS_API_KEY may not manage voices ({status}): give the key the "
                                 f"Voices write permission in ElevenLabs{suffix}")
        return NotConfigured(f"ELEVENLABS_API_KEY was rejected ({status})" + (f": {code}" if code else ""))
    if status == 429:
        return RateLimited(f"ElevenLabs rate limit (429, {code or 'too many requests'}){suffix}",
                           retry_after_s=retry_after_s(exc.headers))
    if action == "clone" and status in (400, 413, 415, 422):
        why = said.rstrip(". ")
        return InputError(f"ElevenLabs could not clone a voice from this sample ({status}"
                          f"{', ' + code if code else ''}){': ' + why if why else ''}; a clean recording of one "
                          "speaker without music works best")
    if status >= 500:
        return Unavailable(f"ElevenLabs server error ({status}){suffix}")
    return Unavailable(f"ElevenLabs rejected the voice {action} ({status}{', ' + code if code else ''}){suffix}")


def _legacy_status(body: Any) -> str:
    """``detail.status`` when it differs from ``detail.code`` (``{"code": "paid_plan_required", "status":
    "can_not_use_instant_voice_cloning"}`` is one answer seen in the field)."""
    detail = body.get("detail") if isinstance(body, Mapping) else None
    return str(detail.get("status") or "").strip().lower() if isinstance(detail, Mapping) else ""


def _detail(body: Any) -> tuple[str, str]:
    """(code, message) from ``{"detail": {...}}`` in its current, legacy and validation shapes."""
    detail = body.get("detail", body) if isinstance(body, Mapping) else body
    if isinstance(detail, Mapping):
        code = detail.get("code") or detail.get("status") or ""
        message = detail.get("message") or detail.get("msg") or ""
        return str(code).strip().lower(), str(message)
    if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": "...", "type": "..."}]
        msgs = [str(d.get("msg")) for d in detail if isinstance(d, Mapping) and d.get("msg")]
        return "validation_error", "; ".join(msgs)
    if isinstance(detail, str):
        return "", detail.strip()
    return "", ""


def _secrets(*settings: Settings) -> list[str]:
    return list(dict.fromkeys(s for st in settings for s in st.secrets()))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        path.unlink()
