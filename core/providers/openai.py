"""OpenAI providers: speech (gpt-4o-mini-tts, tts-1-hd), image (gpt-image-2), video (sora-2).

Every call goes through the official SDK's ``AsyncOpenAI`` client with ``max_retries=0``:
the chain retries uniformly and honours Retry-After, so the SDK must not retry behind its
back. SDK and transport exceptions are translated here, at the boundary, into the
``core.errors`` tree; nothing above this module sees an ``openai`` exception. Messages
are scrubbed of every secret before they leave.

::

    openai / httpx2                              core.errors
    RateLimitError (429)                    ->   RateLimited(retry_after_s from retry-after-ms / retry-after)
      code insufficient_quota               ->   Unavailable (waiting does not refill a quota)
    InternalServerError (5xx)               ->   Unavailable
    APIConnectionError (refused, dropped)   ->   Unavailable
    APITimeoutError, read timeout           ->   TimedOut
    NotFoundError (404)                     ->   Unavailable ("endpoint or model is gone")
    BadRequestError, moderation code        ->   Refused(reasons=categories)
    BadRequestError, anything else          ->   Unavailable (our request shape: a bug, not the caller's input)
    AuthenticationError / PermissionDenied  ->   NotConfigured ("OPENAI_API_KEY was rejected (401)")
    malformed JSON, cut-short media,
      undecodable image                     ->   BadOutput (carrying the cost when the call was billed)
    (audio and video that do not decode fail in the finishing step the chain runs: BadOutput there)
    video job status "failed"               ->   JobFailed (Refused when the job was moderated)

Why the async client: cancellation. ``ctx.cancel`` is watched while the call runs and
cancels the awaiting scope, which closes the socket at once; a blocking SDK call in a
worker thread could only be abandoned, left running (and writing) until its timeout. The
price is that an httpx2 async pool belongs to the event loop that opened it (reusing one
from another loop raises "Event loop is closed"), so a provider keeps one client per
running loop — in the server that is the one job loop, so one client for its lifetime.
Blocking work (decoding a picture to check it) still runs in a worker thread.

The Sora API shut down on 2026-09-24 (the SDK marks every ``videos`` method deprecated);
``openai:sora-2`` stays for OpenAI-compatible video endpoints and is opt-in.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import shutil
import threading
import time
import typing
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    JobFailed,
    NotConfigured,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.providers import pricing
from core.providers._vendor import cancel_on, check_image, part_path, retry_after_s
from core.providers.base import CallContext, ImageSpec, ProviderOutput, SpeechParts, SpeechSpec, VideoSpec, scrub
from core.schemas import Capability

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "OpenAISpeechProvider",
    "OpenAITTSHDSpeechProvider",
    "OpenAIImageProvider",
    "OpenAIVideoProvider",
    "split_for_speech",
]

log = logging.getLogger(__name__)

_retry_after_s = retry_after_s  # the name tests/providers/test_openai.py imports

KEY_ENV = "OPENAI_API_KEY"
DEFAULT_VOICE = "alloy"
# Raw PCM from /audio/speech: 24 kHz, 16-bit signed little-endian, mono (OpenAI's TTS guide).
PCM_FORMAT: tuple[str, int, int] = ("s16le", 24000, 1)
# Error codes OpenAI uses when its safety system blocks a request or a generation.
_MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter",
                               "image_content_policy_violation", "safety_violation"})
# The SDK's voice list holds the gpt-4o-mini-tts voices; tts-1 / tts-1-hd speak only these.
_TTS1_VOICES = frozenset({"alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"})


# --- shared machinery ---------------------------------------------------------------------


class _OpenAIProvider:
    """Facts, the lazily built client and the error boundary shared by every OpenAI provider."""

    id: ClassVar[str]
    capability: ClassVar[Capability]
    model: ClassVar[str | None]
    key_env: ClassVar[str | None] = KEY_ENV
    paid: ClassVar[bool] = True
    #: per-request seconds (connect, read between bytes, write); a stalled vendor costs at most this
    request_timeout_s: ClassVar[float] = 60.0

    def __init__(self, settings: Settings, *, timeout_s: float | None = None) -> None:
        self.settings = settings
        self.timeout_s = float(timeout_s if timeout_s is not None else self.request_timeout_s)
        self._sdk: tuple[weakref.ref[Any], AsyncOpenAI] | None = None  # (its event loop, the client)
        self._sdk_lock = threading.Lock()

    def unavailable_reason(self) -> str | None:
        if not self.settings.openai_api_key:
            return f"{KEY_ENV} not set"
        return None

    # -- the client ------------------------------------------------------------------------

    def _client(self) -> AsyncOpenAI:
        """The SDK client for the running event loop, built on first use and kept."""
        import asyncio

        key = self.settings.openai_api_key
        if not key:
            raise NotConfigured(f"{KEY_ENV} not set")
        loop = asyncio.get_running_loop()
        with self._sdk_lock:
            if self._sdk is not None and self._sdk[0]() is loop:
                return self._sdk[1]
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                api_key=key.get(),
                base_url=self.settings.openai_base_url or None,
                # The chain retries, honouring Retry-After; an SDK retry would hide that.
                max_retries=0,
                timeout=self.timeout_s,
            )
            # One slot: a client for another (finished) loop is dropped, not kept alive with its loop.
            self._sdk = (weakref.ref(loop), client)
            return client

    # -- the error boundary ----------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return scrub(text, self.settings.secrets())

    @contextlib.contextmanager
    def _boundary(self, what: str, *, cost_usd: float | Callable[[], float] = 0.0,
                  answered_cost_usd: float | None = None) -> Iterator[None]:
        """Translate SDK and transport exceptions raised inside into ``core.errors``.

        ``cost_usd``: what was billed if the call failed before the vendor answered (refused,
        5xx, timeout); ``answered_cost_usd``: what was billed if it answered 200 and the body
        then proved broken (malformed, cut short) — the generation happened.
        """
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            before = cost_usd() if callable(cost_usd) else cost_usd
            after = before if answered_cost_usd is None else answered_cost_usd
            mapped = self._translate(exc, what, before, after)
            if mapped is None:
                raise
            # The original stays chained for logs; a server that echoes the key must not put it there.
            _scrub_chain(exc, self._scrub)
            raise mapped from exc

    def _translate(self, exc: BaseException, what: str, cost_usd: float, answered_cost_usd: float
                   ) -> ProviderError | None:
        import httpx2
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return TimedOut(f"OpenAI did not answer {what} within {self.timeout_s:g} s", cost_usd=cost_usd)
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            return Unavailable(self._scrub(f"OpenAI could not be reached for {what} ({cause}: the connection "
                                           f"was refused or dropped)"), cost_usd=cost_usd)
        if isinstance(exc, openai.APIResponseValidationError):
            return BadOutput(self._scrub(f"OpenAI's answer to {what} is not what the API promises: "
                                         f"{exc.message}"), cost_usd=answered_cost_usd)
        if isinstance(exc, openai.APIStatusError):
            return self._translate_status(exc, what, cost_usd)
        if isinstance(exc, json.JSONDecodeError):
            return BadOutput(f"OpenAI answered {what} with malformed JSON ({exc.msg} at byte {exc.pos})",
                             cost_usd=answered_cost_usd)
        # Raised while reading a streamed body, after the SDK handed a 200 response over.
        if isinstance(exc, httpx2.TimeoutException):
            return TimedOut(f"OpenAI stopped sending {what} for more than {self.timeout_s:g} s",
                            cost_usd=answered_cost_usd)
        if isinstance(exc, (httpx2.TransportError, httpx2.StreamError, anyio.EndOfStream)):
            return BadOutput(self._scrub(f"the {what} from OpenAI was cut short ({type(exc).__name__}: {exc})"),
                             cost_usd=answered_cost_usd)
        if isinstance(exc, openai.OpenAIError):
            return Unavailable(self._scrub(f"OpenAI SDK error during {what}: {exc}"), cost_usd=cost_usd)
        return None

    def _translate_status(self, exc: Any, what: str, cost_usd: float) -> ProviderError:
        import openai

        status: int = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        code = str(body.get("code") or "") or None
        message = self._scrub(_vendor_message(exc))
        if isinstance(exc, openai.RateLimitError):
            if code == "insufficient_quota":
                return Unavailable(f"OpenAI quota exhausted (429 insufficient_quota): {message}", cost_usd=cost_usd,
                                   retryable=False)
            retry_after = retry_after_s(exc.response.headers)
            hint = f", retry after {retry_after:g} s" if retry_after is not None else ""
            return RateLimited(f"OpenAI rate limit (429{hint}): {message}", retry_after_s=retry_after,
                               cost_usd=cost_usd)
        if status in (401, 403):
            return NotConfigured(f"{KEY_ENV} was rejected ({status}): {message}", cost_usd=cost_usd)
        if status == 404:
            return Unavailable(f"the OpenAI endpoint or model {self.model} is gone (404) for {what}: {message}",
                               cost_usd=cost_usd, retryable=False)
        if status == 400 and _is_moderation(body):
            return Refused(f"OpenAI's safety system refused {what}: {message}", reasons=_moderation_reasons(body),
                           cost_usd=cost_usd)
        if status >= 500:
            return Unavailable(f"OpenAI is unavailable ({status}) for {what}: {message}", cost_usd=cost_usd)
        # 400/409/413/422: the request we built was refused. Every caller would get the same
        # answer from this provider, but not from the next one, so it is a provider failure.
        return Unavailable(f"OpenAI rejected the {what} request ({status}): {message}", cost_usd=cost_usd)

    async def _stream_to_file(self, response: Any, dest: Path, what: str, *, cost_usd: float) -> int:
        """Write a streamed binary body to ``dest``; return its size. Transport errors propagate raw
        (the caller's boundary maps them); a body that is not media is BadOutput costing ``cost_usd``."""
        content_type = (response.headers.get("content-type") or "").lower()
        if "json" in content_type or content_type.startswith("text/"):
            raise BadOutput(f"OpenAI answered {what} with {content_type} instead of media", cost_usd=cost_usd)
        size = 0
        with dest.open("wb") as f:
            async for chunk in response.iter_bytes():
                f.write(chunk)
                size += len(chunk)
        if size == 0:
            raise BadOutput(f"OpenAI answered {what} with an empty body", cost_usd=cost_usd)
        return size


def _scrub_chain(exc: BaseException | None, scrub_text: Callable[[str], str]) -> None:
    """Scrub secrets from the text of ``exc`` and the exceptions it was raised from, in place."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.args = tuple(scrub_text(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(getattr(exc, "message", None), str):
            with contextlib.suppress(AttributeError):
                exc.message = scrub_text(exc.message)  # type: ignore[attr-defined]
        body = getattr(exc, "body", None)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            body["message"] = scrub_text(body["message"])
        exc = exc.__cause__ or exc.__context__


def _vendor_message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else None
    message = body.get("message") if body else None
    if isinstance(message, str) and message:
        return message
    return getattr(exc, "message", None) or str(exc)


def _is_moderation(body: dict[str, Any]) -> bool:
    return str(body.get("code") or "") in _MODERATION_CODES or bool(body.get("moderation_details"))


def _moderation_reasons(body: dict[str, Any]) -> list[str]:
    details = body.get("moderation_details")
    if isinstance(details, dict) and isinstance(details.get("categories"), list) and details["categories"]:
        return [str(c) for c in details["categories"]]
    found = re.search(r"safety_violations=\[([^\]]*)\]", str(body.get("message") or ""))
    if found:
        reasons = [r.strip(" '\"") for r in found.group(1).split(",") if r.strip(" '\"")]
        if reasons:
            return reasons
    return [str(body.get("code") or "content_policy")]


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def _quiet_sora() -> Iterator[None]:
    # The SDK marks every videos method deprecated (the Sora API shut down on 2026-09-24).
    # This provider is the deliberate opt-in for compatible endpoints; the warning adds nothing.
    # Only the synchronous call that builds the coroutine runs in here, never an await.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Sora API", category=DeprecationWarning)
        yield


# --- speech -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])")
_SOFT_BREAK = re.compile(r"[,;:\u2014\u3001\uff0c]\s*|\s+")


def split_for_speech(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into pieces of at most ``max_chars``, at sentence ends where possible.

    A sentence longer than the limit is cut at its last clause break or space before the
    limit, and only as a last resort mid-word. Sentences are packed greedily, so a text
    under the limit stays one piece.
    """
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > max_chars:
            cut = max((m.end() for m in _SOFT_BREAK.finditer(sentence, 0, max_chars + 1) if m.end() <= max_chars),
                      default=0)
            cut = cut if cut >= max_chars // 4 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _sdk_voices() -> frozenset[str]:
    """The built-in voices the installed SDK lists for /audio/speech."""
    from openai.types.audio import speech_create_params

    names: set[str] = set()
    for arg in typing.get_args(speech_create_params.Voice):
        if typing.get_origin(arg) is typing.Literal:
            names.update(str(a) for a in typing.get_args(arg))
    return frozenset(names) or _TTS1_VOICES


class OpenAISpeechProvider(_OpenAIProvider):
    """``/audio/speech``: one call per segment (segments map to scenes), longer ones split at
    sentence ends; the parts are returned raw (24 kHz PCM), the narration's finishing step
    joins them into the 48 kHz stereo master with pitch applied there (OpenAI has no pitch control). OpenAI announced the TTS models' shutdown for
    2027-01-06; they stay selectable until then."""

    id: ClassVar[str] = "openai:gpt-4o-mini-tts"
    capability: ClassVar[Capability] = "speech"
    model: ClassVar[str | None] = "gpt-4o-mini-tts"
    max_chars: ClassVar[int] = 4096  # per request (SDK: "The maximum length is 4096 characters")
    response_format: ClassVar[str] = "pcm"  # "pcm" (raw 24 kHz s16le mono) or "wav"
    supports_instructions: ClassVar[bool] = True
    supports_custom_voices: ClassVar[bool] = True  # {"id": "voice_..."} made from audio samples
    request_timeout_s: ClassVar[float] = 60.0

    def voices(self) -> frozenset[str]:
        return _sdk_voices()

    def estimate_cost_usd(self, spec: SpeechSpec) -> float:
        return pricing.cost_usd(self.id, sum(len(c) for seg in spec.segments
                                             for c in split_for_speech(seg, self.max_chars)))

    def _voice(self, requested: str | None) -> tuple[str | dict[str, str], str]:
        """(what to send, what to report). An unknown voice is not the caller's error: another
        provider may know it, so speak with the default voice and say so."""
        if not requested:
            return DEFAULT_VOICE, DEFAULT_VOICE
        name = requested.strip()
        if name.lower() in self.voices():
            return name.lower(), name.lower()
        if self.supports_custom_voices and re.fullmatch(r"voice_[A-Za-z0-9_-]+", name):
            return {"id": name}, name
        return DEFAULT_VOICE, f"{DEFAULT_VOICE} ({requested!r} is not an OpenAI voice for {self.model})"

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media.audio import SegmentAudio

        texts = [" ".join(s.split()) for s in spec.segments]
        if not texts or not all(texts):
            raise InputError("every narration segment needs some text")
        voice, voice_used = self._voice(spec.voice)
        plan = [(i, chunk) for i, text in enumerate(texts) for chunk in split_for_speech(text, self.max_chars)]
        client = self._client()
        suffix = ".pcm" if self.response_format == "pcm" else f".{self.response_format}"
        folder = part_path(out, "openai-tts", "")  # the parts, until the narration's master is made of them
        folder.mkdir()
        parts: list[SegmentAudio] = []
        billed_chars = 0

        def billed() -> float:
            return pricing.cost_usd(self.id, billed_chars)

        try:
            async with cancel_on(ctx.cancel, "speech synthesis cancelled"):
                for n, (segment, chunk) in enumerate(plan):
                    ctx.progress(0.9 * n / len(plan), f"{self.model}: segment {segment + 1} of {len(texts)}")
                    path = folder / f"part_{n + 1:03d}{suffix}"
                    kwargs: dict[str, Any] = dict(model=self.model, input=chunk, voice=voice,
                                                  response_format=self.response_format, speed=spec.speed)
                    if self.supports_instructions and spec.instructions:
                        kwargs["instructions"] = spec.instructions
                    what = f"speech for segment {segment + 1}"
                    with self._boundary(what, cost_usd=billed):
                        async with client.audio.speech.with_streaming_response.create(**kwargs) as response:
                            # The vendor answered 200: this chunk is billed whatever the body holds.
                            billed_chars += len(chunk)
                            await self._stream_to_file(response, path, what, cost_usd=billed())
                    if self.response_format == "pcm" and path.stat().st_size % 2:
                        raise BadOutput(f"the {what} is not 16-bit PCM (odd byte count)", cost_usd=billed())
                    parts.append(SegmentAudio(path=path, text=chunk,
                                              raw_format=PCM_FORMAT if suffix == ".pcm" else None))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # Pitch is left to the master (OpenAI has none); speed was spoken by OpenAI.
        raw = SpeechParts(parts=parts, folder=folder, speed=1.0, pitch_semitones=spec.pitch_semitones,
                          segment_of=[i for i, _ in plan] if len(plan) > len(texts) else None)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=billed(), voice=voice_used,
                              speech=raw)


class OpenAITTSHDSpeechProvider(OpenAISpeechProvider):
    """``tts-1-hd``: billed per character, no ``instructions``, the nine classic voices."""

    id: ClassVar[str] = "openai:tts-1-hd"
    model: ClassVar[str | None] = "tts-1-hd"
    supports_instructions: ClassVar[bool] = False
    supports_custom_voices: ClassVar[bool] = False

    def voices(self) -> frozenset[str]:
        return _sdk_voices() & _TTS1_VOICES or _TTS1_VOICES


# --- image --------------------------------------------------------------------------------


class OpenAIImageProvider(_OpenAIProvider):
    """``/images/generations`` with gpt-image-2: a picture without text, as OpenAI made it."""

    id: ClassVar[str] = "openai:gpt-image-2"
    capability: ClassVar[Capability] = "image"
    model: ClassVar[str | None] = "gpt-image-2"
    # The standard GPT-image sizes by shape: the widest for a landscape request (the caller cover-fits it).
    sizes: ClassVar[dict[str, str]] = {"landscape": "1536x1024", "portrait": "1024x1536", "square": "1024x1024"}
    # Sent explicitly: the price in core.providers.pricing is for this quality ("auto" may pick high).
    quality: ClassVar[str] = "medium"
    # Generation takes tens of seconds and the answer (base64) only starts when it is done.
    request_timeout_s: ClassVar[float] = 180.0

    def estimate_cost_usd(self, spec: ImageSpec) -> float:
        return pricing.cost_usd(self.id, 1)

    @classmethod
    def size_for(cls, spec: ImageSpec) -> str:
        shape = "landscape" if spec.width > spec.height else "portrait" if spec.height > spec.width else "square"
        return cls.sizes[shape]

    @staticmethod
    def prompt_for(spec: ImageSpec) -> str:
        style = f"\n\nVisual style: {spec.style.strip()}." if spec.style else ""
        return (f"{spec.prompt.strip()}{style}\n\nDo not draw any text, letters, numbers, captions, logos or "
                "watermarks: any text is added afterwards.")

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        client = self._client()
        cost = self.estimate_cost_usd(spec)
        try:
            async with cancel_on(ctx.cancel, "image generation cancelled"):
                ctx.progress(0.05, f"{self.model}: generating the picture")
                # Streamed, so that a body cut short after a 200 (billed) is told apart from a
                # connection that failed before any answer (not billed).
                with self._boundary("the image", answered_cost_usd=cost):
                    async with client.images.with_streaming_response.generate(
                        model=self.model, prompt=self.prompt_for(spec), size=self.size_for(spec),
                        quality=self.quality, n=1,
                    ) as response:
                        await response.read()
                        result = await response.parse()
                data = _b64_image(result, cost)
                await anyio.to_thread.run_sync(lambda: check_image(data, "OpenAI's image", cost_usd=cost))
                out.write_bytes(data)
        except BaseException:
            _remove(out)
            raise
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost)


def _b64_image(response: Any, cost: float) -> bytes:
    items = getattr(response, "data", None) or []
    b64 = getattr(items[0], "b64_json", None) if items else None
    if not isinstance(b64, str) or not b64:
        raise BadOutput("OpenAI's image answer holds no base64 image (data[0].b64_json)", cost_usd=cost)
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadOutput(f"OpenAI's image is not valid base64: {exc}", cost_usd=cost) from exc


# --- video --------------------------------------------------------------------------------


class OpenAIVideoProvider(_OpenAIProvider):
    """``/videos`` (Sora 2): create the job (multipart form), poll it ourselves with a deadline
    and ``ctx.cancel``, download the MP4 to ``out`` as Sora made it (4/8/12 s, 720p): the
    scene service's finishing step puts it in the contract format."""

    id: ClassVar[str] = "openai:sora-2"
    capability: ClassVar[Capability] = "video"
    model: ClassVar[str | None] = "sora-2"
    clip_seconds: ClassVar[tuple[int, ...]] = (4, 8, 12)
    poll_deadline_s: ClassVar[float] = 600.0
    poll_interval_s: ClassVar[float] = 5.0
    #: consecutive failed status checks (5xx, dropped, 429) tolerated before giving the job up
    max_poll_failures: ClassVar[int] = 3
    request_timeout_s: ClassVar[float] = 60.0

    def __init__(self, settings: Settings, *, timeout_s: float | None = None, poll_interval_s: float | None = None,
                 poll_deadline_s: float | None = None) -> None:
        super().__init__(settings, timeout_s=timeout_s)
        if poll_interval_s is not None:
            self.poll_interval_s = poll_interval_s  # type: ignore[misc]
        if poll_deadline_s is not None:
            self.poll_deadline_s = poll_deadline_s  # type: ignore[misc]

    def seconds_for(self, duration_s: float) -> int:
        """The shortest clip Sora makes that covers ``duration_s`` (else the longest)."""
        return next((s for s in self.clip_seconds if s >= duration_s - 1e-6), self.clip_seconds[-1])

    @staticmethod
    def size_for(spec: VideoSpec) -> str:
        portrait = spec.aspect_ratio == "9:16" or spec.height > spec.width
        return "720x1280" if portrait else "1280x720"

    def estimate_cost_usd(self, spec: VideoSpec) -> float:
        return pricing.cost_usd(self.id, self.seconds_for(spec.duration_s))

    @staticmethod
    def prompt_for(spec: VideoSpec) -> str:
        prompt = spec.prompt.strip()
        if spec.style:
            prompt += f"\nStyle: {spec.style.strip()}"
        if spec.negative_prompt:  # Sora has no negative-prompt parameter
            prompt += f"\nAvoid: {spec.negative_prompt.strip()}"
        return prompt

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        client = self._client()
        seconds = self.seconds_for(spec.duration_s)
        cost = self.estimate_cost_usd(spec)
        try:
            async with cancel_on(ctx.cancel, f"scene {spec.scene_index} generation cancelled"):
                # A job id recorded by an earlier run of this job (its worker died): resumed, not paid again.
                checkpoint = f"{self.id}:scene_{spec.scene_index}"
                video_id = ctx.resumed.get(checkpoint)
                if video_id:
                    ctx.progress(0.05, f"{self.model}: resuming video job {video_id}")
                    with self._boundary("the video job status"), _quiet_sora():
                        checking = client.videos.retrieve(video_id)
                    with self._boundary("the video job status"):
                        job = await checking
                else:
                    ctx.progress(0.02, f"{self.model}: submitting a {seconds} s clip")
                    form: dict[str, Any] = dict(model=self.model, prompt=self.prompt_for(spec), seconds=str(seconds),
                                                size=self.size_for(spec))
                    with self._boundary("the video job"), _quiet_sora():
                        creating = client.videos.create(**form)  # multipart/form-data, as the SDK sends it
                    with self._boundary("the video job"):
                        job = await creating
                    video_id = getattr(job, "id", None)
                    if not video_id:
                        raise BadOutput("OpenAI's video job answer has no id")
                    ctx.checkpoint(checkpoint, video_id)  # before anything that can fail after it
                try:
                    await self._wait_for(client, job, ctx, cost)
                except ProviderError:
                    ctx.checkpoint(checkpoint, None)  # the vendor's job failed: a new attempt submits anew
                    raise

                ctx.progress(0.8, f"{self.model}: downloading the clip")
                what = "video download"
                with self._boundary(what, cost_usd=cost), _quiet_sora():
                    downloading = client.videos.with_streaming_response.download_content(video_id, variant="video")
                with self._boundary(what, cost_usd=cost):
                    async with downloading as response:
                        await self._stream_to_file(response, out, what, cost_usd=cost)
        except BaseException:
            _remove(out)  # a half-written clip never survives under the name we were given
            raise
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost)

    async def _wait_for(self, client: AsyncOpenAI, job: Any, ctx: CallContext, cost: float) -> None:
        """Poll until the job completes; raise for failure, deadline and persistent errors."""
        deadline = time.monotonic() + self.poll_deadline_s
        failures = 0
        while True:
            status = getattr(job, "status", None)
            if status == "completed":
                return
            if status == "failed" or status not in ("queued", "in_progress"):
                raise _job_failure(self._scrub, job)
            progress = getattr(job, "progress", 0) or 0
            ctx.progress(0.05 + 0.75 * min(100, max(0, progress)) / 100, f"{self.model}: {status} ({progress}%)")
            wait_s = self.poll_interval_s
            if time.monotonic() + wait_s > deadline:
                raise TimedOut(
                    f"the {self.model} job {job.id} did not finish within {self.poll_deadline_s:g} s "
                    f"(last status {status}, {progress}%); it may still finish and be billed",
                    cost_usd=cost,
                )
            await anyio.sleep(wait_s)
            try:
                with self._boundary("the video job status"), _quiet_sora():
                    checking = client.videos.retrieve(job.id)
                with self._boundary("the video job status"):
                    job = await checking
                failures = 0
            except (Unavailable, TimedOut, RateLimited) as exc:
                # The job runs on the vendor's side whatever happened to one status check.
                failures += 1
                if failures >= self.max_poll_failures:
                    raise type(exc)(f"{exc.message} ({failures} status checks in a row failed)",
                                    cost_usd=cost) from exc
                log.info("status check of %s failed (%s), polling on", job.id, exc.code)


def _job_failure(scrub_text: Callable[[str], str], job: Any) -> ProviderError:
    error = getattr(job, "error", None)
    code = str(getattr(error, "code", "") or "") or None
    message = scrub_text(str(getattr(error, "message", "") or "no reason given"))
    status = getattr(job, "status", None)
    if code in _MODERATION_CODES:
        return Refused(f"OpenAI's safety system blocked video job {job.id}: {message}", reasons=[code])
    what = "failed" if status == "failed" else f"ended with status {status!r}"
    return JobFailed(f"OpenAI video job {job.id} {what}" + (f" ({code})" if code else "") + f": {message}")
