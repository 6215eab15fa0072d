"""The video aggregator: many vendors' text-to-video models behind one key, ``replicate:<model>``.

Why Replicate and not fal (issue 14 asks for the one whose official SDK can be pointed at a
loopback server): fal-client 1.0.3 builds its queue address at import time from the
environment (``https://{FAL_QUEUE_RUN_HOST}/``, the scheme fixed to https) and retries 429s
and 5xx itself, up to ten times with its own backoff; neither can be set per client, so it
cannot reach a plain-HTTP loopback server without changing the process's environment and
serving TLS, and it would retry behind the chain's back. replicate 1.0.7 takes ``base_url``
per ``Client`` (``REPLICATE_BASE_URL``, the SDK's own variable) and never retries a POST (it
retries status GETs on 429/503/504, bounded here by the poll deadline and ``ctx.cancel``).

One adapter, several models (each a class below: its Replicate name, the clip lengths and
sizes it makes, its price per second in core.providers.pricing):

    replicate:seedance-1-lite    bytedance/seedance-1-lite   720p, 5 or 10 s   the default: b-roll per dollar
    replicate:seedance-1-pro     bytedance/seedance-1-pro    1080p, 5 or 10 s  sharper, ~4x the price
    replicate:hailuo-02          minimax/hailuo-02           768p, 6 or 10 s   16:9 only (refused for 9:16)

A scene asks for the shortest clip at least as long as the scene (the scene finishing step
trims it, or holds the last frame past the longest). Wire format (``/v1``): ``POST
/models/{owner}/{name}/predictions`` ``{"input": {...}}`` -> a prediction
``{id, status: starting|processing|succeeded|failed|canceled, output, error, logs, urls}``;
``GET /predictions/{id}`` to poll (progress read from the logs' percentages); ``POST
/predictions/{id}/cancel``; the output is the URL of the MP4, downloaded here.

::

    replicate / httpx                              core.errors
    401 / 403                                 ->   NotConfigured ("REPLICATE_API_TOKEN was rejected")
    429 (Retry-After)                         ->   RateLimited(retry_after_s)
    402 (no credit), 404, 422                 ->   Unavailable(retryable=False)
    5xx, connection refused or dropped        ->   Unavailable
    timeout, poll deadline passed             ->   TimedOut (the prediction is cancelled)
    status failed, flagged as sensitive       ->   Refused
    status failed / canceled otherwise        ->   JobFailed
    malformed prediction, no output URL,
      download cut short                      ->   BadOutput (billed: the clip was made)
    ctx.cancel set                            ->   OperationCancelled (the prediction is cancelled)
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from core.config import Settings
from core.errors import (
    BadOutput,
    JobFailed,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.providers import pricing
from core.providers._vendor import cancel_on, retry_after_s
from core.providers.base import CallContext, ProviderOutput, VideoSpec, scrub
from core.schemas import Capability

if TYPE_CHECKING:
    import replicate

__all__ = ["ReplicateVideoProvider", "SeedanceLiteVideoProvider", "SeedanceProVideoProvider",
           "HailuoVideoProvider", "KEY_ENV"]

log = logging.getLogger(__name__)

KEY_ENV = "REPLICATE_API_TOKEN"
_MAX_CLIP_BYTES = 500 * 2**20
_REFUSAL_MARKS = ("sensitive", "e005", "nsfw", "safety", "moderat", "flagged")
# The headers of the last answer in this task: the SDK's ReplicateError drops them, and a 429's
# Retry-After is what the chain needs. Set by an httpx response hook, read when mapping the error.
_last_headers: contextvars.ContextVar[Any] = contextvars.ContextVar("replicate_last_headers", default=None)


async def _keep_headers(response: Any) -> None:
    _last_headers.set(response.headers)


class ReplicateVideoProvider:
    """One Replicate video model. Subclasses state the model's facts."""

    id: ClassVar[str]
    model: ClassVar[str | None]
    replicate_model: ClassVar[str]  # owner/name on Replicate
    clip_seconds: ClassVar[tuple[int, ...]]
    resolution: ClassVar[str]
    landscape_only: ClassVar[bool] = False
    capability: ClassVar[Capability] = "video"
    key_env: ClassVar[str | None] = KEY_ENV
    paid: ClassVar[bool] = True
    request_timeout_s: ClassVar[float] = 60.0
    poll_deadline_s: ClassVar[float] = 600.0
    poll_interval_s: ClassVar[float] = 5.0
    max_poll_failures: ClassVar[int] = 3
    cancel_timeout_s: ClassVar[float] = 5.0

    def __init__(self, settings: Settings, *, timeout_s: float | None = None, poll_interval_s: float | None = None,
                 poll_deadline_s: float | None = None) -> None:
        self.settings = settings
        self.timeout_s = timeout_s if timeout_s is not None else self.request_timeout_s
        if poll_interval_s is not None:
            self.poll_interval_s = poll_interval_s  # type: ignore[misc]
        if poll_deadline_s is not None:
            self.poll_deadline_s = poll_deadline_s  # type: ignore[misc]

    # --- facts ----------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        return None if self.settings.replicate_api_token else f"{KEY_ENV} not set"

    def seconds_for(self, spec: VideoSpec) -> int:
        """The clip length asked for: the shortest the model makes that covers the scene, else its longest."""
        return next((s for s in self.clip_seconds if s >= spec.duration_s), self.clip_seconds[-1])

    def estimate_cost_usd(self, spec: VideoSpec) -> float:
        return pricing.cost_usd(self.id, self.seconds_for(spec))

    def input_for(self, spec: VideoSpec) -> dict[str, Any]:
        prompt = spec.prompt.strip() + (f". Style: {spec.style.strip()}" if spec.style else "")
        return {"prompt": prompt, "duration": self.seconds_for(spec), "resolution": self.resolution,
                "aspect_ratio": spec.aspect_ratio}

    # --- the call -------------------------------------------------------------------------

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        import httpx
        import replicate

        token = self.settings.replicate_api_token
        if not token:
            raise NotConfigured(f"{KEY_ENV} not set")
        if self.landscape_only and spec.height > spec.width:
            raise Unavailable(f"{self.id} makes 16:9 clips only", retryable=False)
        cost = self.estimate_cost_usd(spec)
        timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        client = replicate.Client(api_token=token.get(), base_url=self.settings.replicate_base_url or None,
                                  timeout=timeout, event_hooks={"response": [_keep_headers]})
        prediction_id: str | None = None
        # A prediction submitted by an earlier run of this job (its worker died): resumed, not paid again.
        checkpoint = f"{self.id}:scene_{spec.scene_index}"
        try:
            async with cancel_on(ctx.cancel, "video generation cancelled"):
                prediction_id = ctx.resumed.get(checkpoint)
                if prediction_id:
                    ctx.progress(0.05, f"{self.id}: resuming prediction {prediction_id}")
                    with self._boundary("checking the job"), anyio.fail_after(self.timeout_s):
                        prediction = await client.predictions.async_get(prediction_id)
                else:
                    ctx.progress(0.02, f"{self.id}: submitting")
                    # The SDK sends its create request with timeout=None (no limit at all): bounded here.
                    with self._boundary("submitting the job"), anyio.fail_after(self.timeout_s):
                        prediction = await client.models.predictions.async_create(
                            model=self.replicate_model, input=self.input_for(spec))
                    prediction_id = prediction.id
                    ctx.checkpoint(checkpoint, prediction_id)  # before anything that can fail after it
                try:
                    prediction = await self._poll(client, prediction, ctx)
                except (JobFailed, Refused):
                    ctx.checkpoint(checkpoint, None)  # the vendor's job ended badly: a new attempt submits anew
                    raise
                url = _output_url(prediction.output, cost)
                ctx.progress(0.85, f"{self.id}: downloading the clip")
                await self._download(url, out, cost)
        except (OperationCancelled, TimedOut):
            out.unlink(missing_ok=True)
            if prediction_id is not None:
                await self._cancel(client, prediction_id)  # or it runs on, and is billed, for nobody
                ctx.checkpoint(checkpoint, None)
            raise
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                await client._async_client.aclose()
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=cost)

    async def _poll(self, client: replicate.Client, prediction: Any, ctx: CallContext) -> Any:
        deadline = time.monotonic() + self.poll_deadline_s
        failures = 0
        while prediction.status not in ("succeeded", "failed", "canceled"):
            if time.monotonic() > deadline:
                raise TimedOut(f"{self.id}: the job was not done after {self.poll_deadline_s:g} s")
            await anyio.sleep(self.poll_interval_s)
            try:
                with self._boundary("checking the job"), anyio.fail_after(self.timeout_s):
                    prediction = await client.predictions.async_get(prediction.id)
                failures = 0
            except (Unavailable, RateLimited, TimedOut) as exc:
                failures += 1  # one failed status check is not a failed job
                if failures >= self.max_poll_failures:
                    raise
                log.info("%s: status check failed (%s), polling on", self.id, exc.code)
                continue
            percent = _percent(prediction)
            ctx.progress(0.05 + 0.8 * percent, f"{self.id}: {prediction.status}"
                         + (f" {percent:.0%}" if percent else ""))
        if prediction.status == "succeeded":
            return prediction
        reason = scrub(str(prediction.error or prediction.status), self.settings.secrets())
        if any(mark in reason.lower() for mark in _REFUSAL_MARKS):
            raise Refused(f"{self.id} refused the prompt: {reason}", reasons=[reason])
        raise JobFailed(f"{self.id}: the job {prediction.status}: {reason}")

    async def _download(self, url: str, out: Path, cost: float) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), follow_redirects=True) as http:
                async with http.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise BadOutput(f"{self.id}: the clip could not be downloaded ({response.status_code})",
                                        cost_usd=cost)
                    size = 0
                    with out.open("wb") as f:
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > _MAX_CLIP_BYTES:
                                raise BadOutput(f"{self.id}: the clip is over {_MAX_CLIP_BYTES >> 20} MB",
                                                cost_usd=cost)
                            f.write(chunk)
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise BadOutput(f"{self.id}: the clip's download was cut short ({type(exc).__name__})",
                            cost_usd=cost) from None
        if size == 0:
            raise BadOutput(f"{self.id}: the clip downloaded empty", cost_usd=cost)

    async def _cancel(self, client: replicate.Client, prediction_id: str) -> None:
        with anyio.move_on_after(self.cancel_timeout_s, shield=True), contextlib.suppress(Exception):
            await client.predictions.async_cancel(prediction_id)

    @contextlib.contextmanager
    def _boundary(self, what: str):  # noqa: ANN202 - a context manager
        """Translate the SDK's and httpx's exceptions into core.errors; nothing above sees them."""
        import httpx
        import pydantic
        from replicate.exceptions import ReplicateError

        _last_headers.set(None)
        try:
            yield
        except ReplicateError as exc:
            raise self._status_error(exc, what) from None
        except (httpx.TimeoutException, TimeoutError):
            raise TimedOut(f"{self.id}: no answer within {self.timeout_s:g} s while {what}") from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.id}: Replicate could not be reached while {what} ({type(exc).__name__})") \
                from None
        except (ValueError, KeyError, TypeError, pydantic.ValidationError) as exc:
            raise BadOutput(f"{self.id}: Replicate answered with a malformed prediction while {what} "
                            f"({type(exc).__name__})") from None

    def _status_error(self, exc: Any, what: str) -> ProviderError:
        status = int(exc.status or 0)
        detail = scrub(str(exc.detail or exc.title or "no reason given"), self.settings.secrets())[:300]
        where = f"{self.id} ({self.replicate_model}) {what}"
        if status in (401, 403):
            return NotConfigured(f"{KEY_ENV} was rejected ({status}): {detail}")
        if status == 429:
            return RateLimited(f"{where}: rate limited (429): {detail}", retry_after_s=retry_after_s(_last_headers.get()))
        if status >= 500:
            return Unavailable(f"{where}: Replicate failed ({status}): {detail}")
        return Unavailable(f"{where}: refused the request ({status}): {detail}", retryable=False)


def _percent(prediction: Any) -> float:
    with contextlib.suppress(Exception):
        progress = prediction.progress
        if progress is not None:
            return max(0.0, min(1.0, float(progress.percentage)))
    return 0.0


def _output_url(output: Any, cost: float) -> str:
    url = output[0] if isinstance(output, list) and output else output
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BadOutput(f"Replicate's finished job holds no clip URL (output: {str(output)[:100]})", cost_usd=cost)
    return url


class SeedanceLiteVideoProvider(ReplicateVideoProvider):
    id: ClassVar[str] = "replicate:seedance-1-lite"
    model: ClassVar[str | None] = "seedance-1-lite"
    replicate_model: ClassVar[str] = "bytedance/seedance-1-lite"
    clip_seconds: ClassVar[tuple[int, ...]] = (5, 10)
    resolution: ClassVar[str] = "720p"


class SeedanceProVideoProvider(ReplicateVideoProvider):
    id: ClassVar[str] = "replicate:seedance-1-pro"
    model: ClassVar[str | None] = "seedance-1-pro"
    replicate_model: ClassVar[str] = "bytedance/seedance-1-pro"
    clip_seconds: ClassVar[tuple[int, ...]] = (5, 10)
    resolution: ClassVar[str] = "1080p"


class HailuoVideoProvider(ReplicateVideoProvider):
    id: ClassVar[str] = "replicate:hailuo-02"
    model: ClassVar[str | None] = "hailuo-02"
    replicate_model: ClassVar[str] = "minimax/hailuo-02"
    clip_seconds: ClassVar[tuple[int, ...]] = (6, 10)
    resolution: ClassVar[str] = "768p"
    landscape_only: ClassVar[bool] = True

    def input_for(self, spec: VideoSpec) -> dict[str, Any]:
        body = super().input_for(spec)
        body.pop("aspect_ratio")
        return {**body, "prompt_optimizer": False}
