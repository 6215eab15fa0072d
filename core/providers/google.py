"""Google through google-genai: Veo 3.1 video (Vertex AI), Gemini image, Gemini speech.

::

    google:veo-3.1                  models.generate_videos (enterprise mode only) -> operation polling
                                    -> inline video bytes, as Veo made them (the scene service normalises)
    google:gemini-3.1-flash-image   models.generate_content, IMAGE modality, 16:9 or 9:16 -> the picture as is
    google:gemini-3.8-flash-tts     models.generate_content, AUDIO modality, one call per segment
                                    -> the parts as sent (the narration joins them into the 48 kHz master)

How the SDK is driven, and why:

* **Async client** (``client.aio``). A job is cancelled from another thread (``ctx.cancel``)
  or by cancelling its task; with the async client either one aborts the HTTP request in
  flight at once. A blocking call in a worker thread could only be abandoned, holding a
  thread and a connection until its timeout. Media work (ffmpeg, Pillow) still runs in a
  worker thread and watches ``ctx.cancel`` itself.
* **Timeouts explicit, retries off.** The SDK defaults are no timeout and no retry; we set
  ``request_timeout_s`` on every client and ``HttpRetryOptions(attempts=1)``, because the
  chain retries every vendor the same way and honours Retry-After (core/providers/resilience.py).
  Setting retry options also stops the SDK's hidden sleep-and-retry on aiohttp connection errors.
* **One client per provider instance**, built on first use (importing the SDK costs about
  a second) and kept referenced: a temporary client is closed by the garbage collector
  while its requests may still run. The SDK keeps one connection pool per event loop.
* **Settings are the source of configuration.** The SDK also reads the process environment;
  the enterprise flag, key, project, location and base URL are passed explicitly so Settings
  wins (only the SDK's own extras, GOOGLE_GENAI_API_VERSION and GOOGLE_GENAI_HTTP_CLIENT, and
  google.auth's GOOGLE_APPLICATION_CREDENTIALS still come from the environment).
* **Auth.** The Gemini API takes the key in the ``x-goog-api-key`` header (never ``?key=``).
  Veo runs only in enterprise (Vertex AI) mode: with GOOGLE_CLOUD_PROJECT and
  GOOGLE_CLOUD_LOCATION it uses Application Default Credentials (a bearer token), else
  the same API key in express mode. Gemini image and speech follow
  GOOGLE_GENAI_USE_ENTERPRISE the way the SDK does.

Errors are translated here and nowhere else (``raise Mapped(...) from exc``)::

    google.genai.errors.APIError   429 -> RateLimited (Retry-After header, else RetryInfo.retryDelay)
                                   401/403, 400 API_KEY_INVALID -> NotConfigured
                                   400 naming safety/blocked/usage guidelines -> Refused
                                   404 -> Unavailable ("model or endpoint gone"), 408 -> TimedOut
                                   5xx -> Unavailable, any other status -> ProviderError
    httpx2/httpx TimeoutException  -> TimedOut
    RemoteProtocolError mid-body   -> BadOutput (the response was cut short)
    other transport errors         -> Unavailable (refused, dropped, reset)
    JSON / pydantic errors         -> BadOutput (malformed body, invalid base64)
    google.auth errors             -> NotConfigured (no Application Default Credentials)

Messages are scrubbed of every secret and never carry request headers or URLs.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread

from core.config import Settings
from core.errors import (
    BadOutput,
    JobFailed,
    NotConfigured,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
    YtapError,
)
from core.providers._vendor import check_image, part_path, retry_after_s, run_cancellable
from core.providers.base import CallContext, ImageSpec, ProviderOutput, SpeechParts, SpeechSpec, VideoSpec, scrub
from core.providers.pricing import cost_usd
from core.schemas import Capability

__all__ = ["GoogleVeoVideoProvider", "GeminiImageProvider", "GeminiSpeechProvider", "GEMINI_VOICES"]

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_NOT_SET = "GOOGLE_API_KEY (or GEMINI_API_KEY) not set"

# The 30 prebuilt voices of the Gemini TTS docs (speech-generation#voices). Names from other
# vendors ("alloy") fall back to the default voice instead of failing the whole chain.
GEMINI_VOICES: tuple[str, ...] = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe",
    "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi",
    "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi",
    "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)
DEFAULT_VOICE = "Kore"

# finish reasons / block reasons that mean "the content was refused", not "something broke".
_REFUSAL_REASONS = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "JAILBREAK", "MODEL_ARMOR", "LANGUAGE",
})
_SAFETY_WORDS = re.compile(
    r"safety|blocked|usage guidelines|responsible ai|prohibited|violat|sensitive words|harmful", re.I
)
_KEY_IN_URL = re.compile(r"([?&](?:key|api_key|access_token)=)[^&\s'\"]+", re.I)


# --------------------------------------------------------------------------- auth


@dataclass(frozen=True)
class _Auth:
    enterprise: bool
    project: str | None = None
    location: str | None = None

    @property
    def mode(self) -> str:
        if not self.enterprise:
            return "Gemini API"
        return f"Vertex AI project {self.project} ({self.location})" if self.project else "Vertex AI express mode"


def _resolve_auth(settings: Settings, *, enterprise_only: bool) -> _Auth | str:
    """How to reach Google with these settings, or why we cannot."""
    enterprise = enterprise_only or settings.google_use_enterprise
    project, location = settings.google_cloud_project, settings.google_cloud_location
    if enterprise and project and location:
        # A configured project is the deliberate choice; its credentials come from ADC.
        return _Auth(enterprise=True, project=project, location=location)
    if settings.google_api_key:
        return _Auth(enterprise=enterprise)
    if not enterprise:
        return KEY_NOT_SET
    missing = "GOOGLE_CLOUD_LOCATION" if project else "GOOGLE_CLOUD_PROJECT + GOOGLE_CLOUD_LOCATION"
    why = "Veo runs only on Vertex AI (enterprise mode)" if enterprise_only else "enterprise mode is on"
    return f"{KEY_NOT_SET} for express mode, and no {missing} for a Vertex AI project ({why})"


# --------------------------------------------------------------------------- base


class _GoogleProvider:
    key_env: ClassVar[str | None] = "GOOGLE_API_KEY"
    paid: ClassVar[bool] = True
    enterprise_only: ClassVar[bool] = False
    # Seconds per HTTP request (connect, write, read each). Instances may lower it before the
    # first call, which builds the client.
    request_timeout_s: float = 120.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None  # google.genai.Client, kept for the provider's lifetime
        self._client_lock = threading.Lock()

    # -- facts

    def unavailable_reason(self) -> str | None:
        auth = _resolve_auth(self.settings, enterprise_only=self.enterprise_only)
        return auth if isinstance(auth, str) else None

    def _require(self) -> _Auth:
        auth = _resolve_auth(self.settings, enterprise_only=self.enterprise_only)
        if isinstance(auth, str):
            raise NotConfigured(auth)
        return auth

    # -- the client

    def _genai(self) -> Any:
        """The SDK client, built once (lazily: importing google.genai takes about a second)."""
        with self._client_lock:
            if self._client is not None:
                return self._client
            auth = self._require()
            from google import genai
            from google.genai import types

            s = self.settings
            http_options = types.HttpOptions(
                base_url=(s.google_vertex_base_url if auth.enterprise else s.google_gemini_base_url) or None,
                timeout=max(1, round(self.request_timeout_s * 1000)),  # milliseconds
                retry_options=types.HttpRetryOptions(attempts=1),  # the chain retries, honouring Retry-After
            )
            kwargs: dict[str, Any] = {"enterprise": auth.enterprise, "http_options": http_options}
            if auth.project:
                kwargs.update(project=auth.project, location=auth.location)
            else:
                assert s.google_api_key is not None  # _resolve_auth checked it
                kwargs["api_key"] = s.google_api_key.get()
            try:
                self._client = genai.Client(**kwargs)
            except Exception as exc:  # ValueError for an unusable combination, auth errors
                raise NotConfigured(f"cannot set up the Google client ({auth.mode}): "
                                    f"{self._clean(str(exc))}") from exc
            log.debug("%s: google-genai client ready (%s)", self.id, auth.mode)  # type: ignore[attr-defined]
            return self._client

    async def aclose(self) -> None:
        """Close the client's connections (e.g. at shutdown); the next call builds a new client."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()
            client.close()

    # -- calls

    async def _call(self, ctx: CallContext, what: str, fn: Callable[[], Awaitable[T]], *,
                    cost_usd: float = 0.0) -> T:
        """Run one SDK call: cancellable through ctx.cancel, every failure translated."""
        try:
            return await run_cancellable(fn, ctx.cancel)
        except YtapError:
            raise
        except Exception as exc:
            mapped = self._translate(exc, what, cost_usd)
            if mapped is None:
                raise
            raise mapped from exc

    def _clean(self, text: str) -> str:
        return scrub(_KEY_IN_URL.sub(r"\1***", text), self.settings.secrets())

    def _translate(self, exc: Exception, what: str, cost: float) -> ProviderError | None:
        """A foreign exception -> our error tree; None for our own bugs (they propagate)."""
        from google.genai import errors as genai_errors

        who = f"{self.id} ({self.model})"  # type: ignore[attr-defined]
        if isinstance(exc, genai_errors.APIError):
            return self._translate_status(exc, what, cost)
        if isinstance(exc, json.JSONDecodeError | genai_errors.UnknownApiResponseError):
            return BadOutput(f"{who} sent a malformed response while {what} (not JSON)", cost_usd=cost)
        if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic"):
            first = exc.errors()[0] if hasattr(exc, "errors") and exc.errors() else {}  # type: ignore[attr-defined]
            where = ".".join(str(p) for p in first.get("loc", ())) or "the body"
            return BadOutput(f"{who} sent a response that does not parse while {what} "
                             f"({where}: {first.get('msg', 'invalid')})", cost_usd=cost)
        if _is_timeout(exc):
            return TimedOut(f"{who} did not answer within {self.request_timeout_s:g} s while {what}",
                            cost_usd=cost)
        if _is_transport_error(exc):
            text = self._clean(str(exc)) or type(exc).__name__
            if "complete message body" in text or "incomplete" in text.lower():
                return BadOutput(f"{who}'s response was cut short while {what} ({text})", cost_usd=cost)
            return Unavailable(f"{who} could not be reached while {what}: {text}", cost_usd=cost)
        module = type(exc).__module__
        if module.startswith("google.auth") or (module.startswith("google.genai") and isinstance(exc, RuntimeError)):
            return NotConfigured(
                f"no usable Google Cloud credentials for Vertex AI ({self._clean(str(exc))}); run "
                "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS, "
                "or use an API key (express mode)"
            )
        if module.split(".")[0] in {"google", "httpx", "httpx2", "httpcore", "aiohttp"}:
            return ProviderError(f"{who} failed while {what}: {type(exc).__name__}: {self._clean(str(exc))}",
                                 cost_usd=cost)
        return None

    def _translate_status(self, exc: Any, what: str, cost: float) -> ProviderError:
        code = int(exc.code or 0)
        status = exc.status or ""
        detail = self._clean(str(exc.message or "")) or "no message"
        reasons = _error_reasons(exc.details)
        label = f"{code} {status}".strip()
        who = f"{self.id} ({self.model})"  # type: ignore[attr-defined]
        if code == 429:
            retry_after = _retry_after_s(exc)
            wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return RateLimited(f"{who} is rate limited ({label}): {detail}{wait}", retry_after_s=retry_after,
                               cost_usd=cost)
        key_invalid = "API_KEY_INVALID" in reasons or "api key not valid" in detail.lower()
        if code in (401, 403) or (code == 400 and key_invalid):
            auth = _resolve_auth(self.settings, enterprise_only=self.enterprise_only)
            whose = ("the Google Cloud credentials were" if isinstance(auth, _Auth) and auth.project
                     else "GOOGLE_API_KEY was")
            return NotConfigured(f"{whose} rejected ({code}{' API_KEY_INVALID' if key_invalid else ''}) "
                                 f"while {what}: {detail}")
        if code == 404:
            return Unavailable(f"{who}: model or endpoint gone (404 {status or 'NOT_FOUND'}) while {what}: {detail}",
                               cost_usd=cost, retryable=False)
        if code == 400 and _SAFETY_WORDS.search(detail):
            return Refused(f"{who} refused the request ({label}): {detail}", reasons=[detail], cost_usd=cost)
        if code == 408:
            return TimedOut(f"{who} timed out on its side ({label}) while {what}: {detail}", cost_usd=cost)
        if code >= 500:
            return Unavailable(f"{who} is unavailable ({label}) while {what}: {detail}", cost_usd=cost)
        return ProviderError(f"{who} rejected the request ({label}) while {what}: {detail}", cost_usd=cost)


# --------------------------------------------------------------------------- Veo


class GoogleVeoVideoProvider(_GoogleProvider):
    """Veo 3.1 on Vertex AI: a long-running job, polled until done; its clip returned as Veo made it."""

    id: ClassVar[str] = "google:veo-3.1"
    capability: ClassVar[Capability] = "video"
    # The GA Vertex AI id (the preview id on the Gemini API is veo-3.1-generate-preview, which the
    # SDK cannot call there: generate_videos is enterprise-only in google-genai 3.4).
    model: ClassVar[str | None] = "veo-3.1-generate-001"
    enterprise_only: ClassVar[bool] = True
    durations_s: ClassVar[tuple[int, ...]] = (4, 6, 8)  # what Veo 3.x generates
    generates_audio: ClassVar[bool] = True  # Veo 3.x: dialogue, effects, ambience
    request_timeout_s: float = 120.0  # the finished operation carries the whole clip, base64
    poll_deadline_s: float = 600.0
    poll_interval_s: float = 10.0
    # Consecutive poll failures (5xx, timeouts, 429) tolerated before the job is given up:
    # the job runs and bills whatever one poll answer says.
    max_poll_failures: int = 3

    @classmethod
    def veo_duration_s(cls, requested_s: float) -> int:
        """The shortest Veo duration that covers the request, else the longest (the clip holds its last frame)."""
        return next((d for d in cls.durations_s if d >= requested_s - 1e-6), cls.durations_s[-1])

    @staticmethod
    def veo_aspect_ratio(spec: VideoSpec) -> str:
        if spec.aspect_ratio in ("16:9", "9:16"):
            return spec.aspect_ratio
        return "9:16" if spec.height > spec.width else "16:9"

    @classmethod
    def veo_resolution(cls, spec: VideoSpec) -> str:
        # 1080p is offered for 16:9 and costs the same per second; ask for it only when the contract
        # size would use the extra lines.
        if cls.veo_aspect_ratio(spec) == "16:9" and spec.height > 720:
            return "1080p"
        return "720p"

    def estimate_cost_usd(self, spec: VideoSpec) -> float:
        return cost_usd(self.id, self.veo_duration_s(spec.duration_s))

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        self._require()
        from google.genai import types

        duration = self.veo_duration_s(spec.duration_s)
        billed = cost_usd(self.id, duration)  # Veo bills the seconds it generates
        prompt = spec.prompt if not spec.style else f"{spec.prompt}\n\nVisual style: {spec.style}"
        config = types.GenerateVideosConfig(
            aspect_ratio=self.veo_aspect_ratio(spec),
            duration_seconds=duration,
            resolution=self.veo_resolution(spec),
            negative_prompt=spec.negative_prompt or None,
            number_of_videos=1,
            generate_audio=True if self.generates_audio else None,
        )
        client = self._genai()
        # An operation started by an earlier run of this job (its worker died): polled again, not paid again.
        checkpoint = f"{self.id}:scene_{spec.scene_index}"
        try:
            if ctx.resumed.get(checkpoint):
                ctx.progress(0.02, "resuming the Veo job started before")
                operation = types.GenerateVideosOperation(name=ctx.resumed[checkpoint])
            else:
                ctx.progress(0.01, f"asking Veo for a {duration} s clip")
                operation = await self._call(ctx, "starting the Veo job", lambda: client.aio.models.generate_videos(
                    model=self.model, source=types.GenerateVideosSource(prompt=prompt), config=config))
                if operation.name:
                    ctx.checkpoint(checkpoint, operation.name)  # before anything that can fail after it
            try:
                operation = await self._wait(client, operation, ctx, billed)
                video_bytes = self._video_bytes(operation, billed)
            except ProviderError:
                ctx.checkpoint(checkpoint, None)  # no clip from this operation: a new attempt starts anew
                raise
            with out.open("wb") as f:  # megabytes: written off the event loop the other jobs share
                await anyio.to_thread.run_sync(f.write, video_bytes)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=billed)

    async def _wait(self, client: Any, operation: Any, ctx: CallContext, billed: float) -> Any:
        """Poll the operation until done, the deadline, too many failed polls, or cancellation."""
        started = time.monotonic()
        deadline = started + self.poll_deadline_s
        failures = 0
        if not operation.done and not operation.name:
            raise BadOutput(f"{self.id}: Veo accepted the job but named no operation to poll", cost_usd=billed)
        while not operation.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The job is still running on Google's side and will most likely be billed.
                raise TimedOut(f"{self.id}: Veo did not finish within {self.poll_deadline_s:g} s",
                               cost_usd=billed)
            await self._call(ctx, "waiting for Veo", lambda: anyio.sleep(min(self.poll_interval_s, remaining)))
            op = operation
            try:
                operation = await self._call(ctx, "polling the Veo job", lambda: client.aio.operations.get(op),
                                             cost_usd=billed)
                failures = 0
            except (Unavailable, TimedOut, RateLimited) as exc:
                failures += 1
                if failures >= self.max_poll_failures:
                    raise
                log.info("%s: poll failed (%s), trying again", self.id, exc.code)
            elapsed = time.monotonic() - started
            ctx.progress(min(0.85, 0.05 + elapsed / 120.0), f"Veo is generating ({elapsed:.0f} s)")
        return operation

    def _video_bytes(self, operation: Any, billed: float) -> bytes:
        if operation.error:
            err = operation.error
            message = self._clean(str(err.get("message") or err))
            if _SAFETY_WORDS.search(message):
                raise Refused(f"{self.id}: Veo refused the prompt: {message}", reasons=[message])
            raise JobFailed(f"{self.id}: the Veo job failed (code {err.get('code', '?')}): {message}")
        response = operation.response or operation.result
        videos = list(getattr(response, "generated_videos", None) or [])
        if not videos:
            reasons = [self._clean(str(r)) for r in (getattr(response, "rai_media_filtered_reasons", None) or [])]
            if reasons or getattr(response, "rai_media_filtered_count", None):
                reasons = reasons or ["filtered by Veo's responsible-AI system (no reason given)"]
                # A filtered video is not billed.
                raise Refused(f"{self.id}: Veo's safety filter removed the video: {'; '.join(reasons)}",
                              reasons=reasons)
            raise BadOutput(f"{self.id}: the Veo job finished without a video")
        video = videos[0].video
        if video is not None and video.video_bytes:
            return bytes(video.video_bytes)
        uri = getattr(video, "uri", None)
        if uri:
            raise BadOutput(
                f"{self.id}: Veo returned only a Cloud Storage URI ({uri}), not the video bytes; "
                "ytap-mcp does not set output_gcs_uri and does not read gs:// buckets", cost_usd=billed)
        raise BadOutput(f"{self.id}: Veo returned a video entry without bytes", cost_usd=billed)


# --------------------------------------------------------------------------- Gemini image


class GeminiImageProvider(_GoogleProvider):
    """A 16:9 (or 9:16) picture from Gemini, without text: the caller draws any title itself."""

    id: ClassVar[str] = "google:gemini-3.1-flash-image"
    capability: ClassVar[Capability] = "image"
    model: ClassVar[str | None] = "gemini-3.1-flash-image"
    request_timeout_s: float = 120.0

    def estimate_cost_usd(self, spec: ImageSpec) -> float:
        return cost_usd(self.id, 1)

    @staticmethod
    def image_prompt(spec: ImageSpec) -> str:
        style = f" Style: {spec.style}." if spec.style else ""
        return f"{spec.prompt.strip()}{style} No text, no letters, no words, no logos, no watermarks."

    @staticmethod
    def aspect_ratio(spec: ImageSpec) -> str:
        return "9:16" if spec.height > spec.width else "16:9"

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        self._require()
        from google.genai import types

        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=self.aspect_ratio(spec)),
        )
        client = self._genai()
        prompt = self.image_prompt(spec)
        ctx.progress(0.05, "asking Gemini for the picture")
        try:
            response = await self._call(ctx, "generating the image", lambda: client.aio.models.generate_content(
                model=self.model, contents=prompt, config=config))
            blob = _first_inline(response, "image/")
            if blob is None:
                raise _no_media(self, response, "an image")
            billed = cost_usd(self.id, 1)
            data = bytes(blob.data)
            await anyio.to_thread.run_sync(lambda: check_image(data, f"{self.id}: Gemini's image", cost_usd=billed))
            out.write_bytes(data)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=billed)


# --------------------------------------------------------------------------- Gemini speech


class GeminiSpeechProvider(_GoogleProvider):
    """Gemini TTS, one call per segment; the parts are returned raw (the narration's master is made of them)."""

    id: ClassVar[str] = "google:gemini-3.8-flash-tts"
    capability: ClassVar[Capability] = "speech"
    # The GA id of Gemini 3.8 Flash TTS (google-genai 3.4 lists it; no "-preview" suffix).
    model: ClassVar[str | None] = "gemini-3.8-flash-tts"
    default_voice: ClassVar[str] = DEFAULT_VOICE
    request_timeout_s: float = 90.0

    def estimate_cost_usd(self, spec: SpeechSpec) -> float:
        return cost_usd(self.id, sum(len(s) for s in spec.segments))

    @classmethod
    def resolve_voice(cls, requested: str | None) -> tuple[str, str]:
        """(voice sent, voice reported). Unknown names fall back to the default and say so."""
        if not requested:
            return cls.default_voice, cls.default_voice
        for name in GEMINI_VOICES:
            if name.lower() == requested.strip().lower():
                return name, name
        return cls.default_voice, f"{cls.default_voice} ({requested!r} is not a Gemini prebuilt voice)"

    @staticmethod
    def speech_prompt(text: str, instructions: str | None) -> str:
        # The documented way to steer Gemini TTS is a spoken-style direction before the text
        # ("Say cheerfully: ..."); the model performs it rather than reading it out.
        if not instructions or not instructions.strip():
            return text
        return f"Say the following in this style ({instructions.strip().rstrip('.:')}):\n{text}"

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        self._require()
        from google.genai import types

        from core.media.audio import SegmentAudio

        voice, reported = self.resolve_voice(spec.voice)
        config = types.GenerateContentConfig(
            response_modalities=["AUDIO"],
            speech_config=types.SpeechConfig(
                voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice))
            ),
        )
        client = self._genai()
        work_dir = part_path(out, "gemini-tts", "")
        work_dir.mkdir()
        billed_chars = 0
        parts: list[SegmentAudio] = []
        n = len(spec.segments)
        try:
            for i, text in enumerate(spec.segments, 1):
                prompt = self.speech_prompt(text, spec.instructions)
                ctx.progress(0.9 * (i - 1) / n, f"Gemini is speaking segment {i} of {n}")
                before = cost_usd(self.id, billed_chars)  # the segments already spoken stay billed
                response = await self._call(
                    ctx, f"synthesizing segment {i} of {n}",
                    lambda p=prompt: client.aio.models.generate_content(model=self.model, contents=p, config=config),
                    cost_usd=before)
                blob = _first_inline(response, "audio/")
                if blob is None:
                    raise _no_media(self, response, "audio", cost=before)
                billed_chars += len(text)  # audio came back: billed, whatever it turns out to be worth
                parts.append(self._write_part(blob, work_dir, i, text, cost_usd(self.id, billed_chars)))
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        # Gemini has no speed or pitch control: the master applies both.
        raw = SpeechParts(parts=parts, folder=work_dir, speed=spec.speed, pitch_semitones=spec.pitch_semitones)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost_usd(self.id, billed_chars),
                              voice=reported, speech=raw)

    def _write_part(self, blob: Any, work_dir: Path, index: int, text: str, billed: float) -> Any:
        from core.media.audio import SegmentAudio

        data: bytes = blob.data
        mime = blob.mime_type or ""
        suffix, raw_format = _audio_format(mime)
        if raw_format is None and suffix is None:
            raise BadOutput(f"{self.id}: segment {index} came back as {mime!r}, not audio", cost_usd=billed)
        if raw_format is not None:
            frame = 2 * raw_format[2]
            if not data or len(data) % frame:
                raise BadOutput(f"{self.id}: segment {index}'s PCM audio is cut short "
                                f"({len(data)} bytes, not a whole number of {frame}-byte frames)", cost_usd=billed)
        path = work_dir / f"segment_{index:03d}{suffix or '.pcm'}"
        path.write_bytes(data)
        return SegmentAudio(path=path, text=text, raw_format=raw_format)


# --------------------------------------------------------------------------- helpers


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    for mod in ("httpx2", "httpx"):
        m = _loaded(mod)
        if m is not None and isinstance(exc, m.TimeoutException):
            return True
    aiohttp = _loaded("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ServerTimeoutError)


def _is_transport_error(exc: BaseException) -> bool:
    for mod in ("httpx2", "httpx"):
        m = _loaded(mod)
        if m is not None and isinstance(exc, m.TransportError):
            return True
    aiohttp = _loaded("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def _loaded(name: str) -> Any:
    """A module if something already imported it (the SDK did, if its exception is here)."""
    import sys

    return sys.modules.get(name)


def _error_reasons(details: Any) -> set[str]:
    """ErrorInfo.reason values of a google.rpc.Status body (e.g. API_KEY_INVALID)."""
    found: set[str] = set()
    error = details.get("error", details) if isinstance(details, dict) else {}
    for d in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(d, dict) and d.get("reason"):
            found.add(str(d["reason"]))
    return found


def _retry_after_s(exc: Any) -> float | None:
    """Retry-After (:func:`~core.providers._vendor.retry_after_s`) if the response had it, else
    RetryInfo.retryDelay ("37s") from the google.rpc.Status body."""
    from_header = retry_after_s(getattr(getattr(exc, "response", None), "headers", None))
    if from_header is not None:
        return from_header
    error = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    for d in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*", str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


def _first_inline(response: Any, mime_prefix: str) -> Any:
    """The first inline blob of the given kind in the first candidate, else None."""
    for candidate in (getattr(response, "candidates", None) or [])[:1]:
        content = getattr(candidate, "content", None)
        for part in (getattr(content, "parts", None) or []):
            blob = getattr(part, "inline_data", None)
            if blob is not None and blob.data and (blob.mime_type or "").lower().startswith(mime_prefix):
                return blob
    return None


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str) or "")


def _no_media(provider: _GoogleProvider, response: Any, kind: str, *, cost: float = 0.0) -> ProviderError:
    """Why a response carried no media: a refusal (blocked prompt, safety stop) or bad output.

    ``cost``: what earlier calls of the same request already cost (a call without media adds nothing).
    """
    who = provider.id  # type: ignore[attr-defined]
    clean = provider._clean
    feedback = getattr(response, "prompt_feedback", None)
    block = _value(getattr(feedback, "block_reason", None))
    if block and block != "BLOCKED_REASON_UNSPECIFIED":
        message = clean(str(getattr(feedback, "block_reason_message", None) or ""))
        reasons = [block] + ([message] if message else [])
        # A blocked prompt produces no output: nothing billed beyond earlier calls (and the prompt's tokens).
        return Refused(f"{who}: Gemini blocked the prompt ({block}{': ' + message if message else ''})",
                       reasons=reasons, cost_usd=cost)
    candidates = getattr(response, "candidates", None) or []
    candidate = candidates[0] if candidates else None
    finish = _value(getattr(candidate, "finish_reason", None))
    finish_message = clean(str(getattr(candidate, "finish_message", None) or ""))
    if finish in _REFUSAL_REASONS:
        ratings = getattr(candidate, "safety_ratings", None) or []
        flagged = [_value(r.category) for r in ratings if getattr(r, "blocked", False)]
        reasons = [finish] + flagged + ([finish_message] if finish_message else [])
        return Refused(f"{who}: Gemini stopped without {kind} ({finish}"
                       f"{': ' + finish_message if finish_message else ''})", reasons=reasons, cost_usd=cost)
    texts = [
        p.text for p in (getattr(getattr(candidate, "content", None), "parts", None) or []) if getattr(p, "text", None)
    ]
    said = f"; it answered with text: {clean(' '.join(texts))[:200]!r}" if texts else ""
    return BadOutput(f"{who}: Gemini returned no {kind} (finish reason {finish or 'none'}){said}", cost_usd=cost)


def _audio_format(mime: str) -> tuple[str | None, tuple[str, int, int] | None]:
    """(file suffix, raw PCM format) for an audio mime type; (None, None) if it is not audio.

    Gemini TTS answers ``audio/L16;codec=pcm;rate=24000``: headerless 16-bit mono PCM. L16 is
    big-endian by its RFC, but Gemini sends little-endian samples (what its docs decode), so s16le.
    """
    base, _, rest = mime.partition(";")
    base = base.strip().lower()
    params = {}
    for item in rest.split(";"):
        k, _, v = item.partition("=")
        if k.strip():
            params[k.strip().lower()] = v.strip().strip('"').lower()
    if base in ("audio/l16", "audio/pcm", "audio/raw") or params.get("codec") == "pcm":
        try:
            rate = int(params.get("rate", "24000"))
            channels = int(params.get("channels", "1"))
        except ValueError:
            return None, None
        if rate <= 0 or channels <= 0:
            return None, None
        return None, ("s16le", rate, channels)
    known = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
             "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/ogg": ".ogg", "audio/opus": ".opus",
             "audio/flac": ".flac", "audio/aac": ".aac"}
    if base in known:
        return known[base], None
    if base.startswith("audio/"):
        return ".audio", None  # ffmpeg identifies it by its content
    return None, None
