"""Self-hosted Stable Diffusion (AUTOMATIC1111 / Forge web UI API) for the image chain: ``sd:<model>``.

``POST {YTAP_SD_BASE_URL}/sdapi/v1/txt2img`` with a JSON body (prompt, negative_prompt, a
16:9 size, steps, cfg_scale, seed, sampler) answers ``{"images": [base64 PNG], "parameters",
"info"}``; the first image is returned as it is (the caller draws any title). ``<model>`` is
``YTAP_SD_MODEL`` (a checkpoint name, sent as ``override_settings.sd_model_checkpoint``) or
``default``: whatever checkpoint the server has loaded. The server is the user's own: the
provider is free (no entry in core.providers.pricing) and runs one image at a time.

There is no vendor SDK for this API, so it is spoken with httpx directly (imported when the
first call is made), with explicit timeouts and without the environment's proxies: the
server is the user's own machine or LAN. Basic auth (``--api-auth``) goes in the URL
(``http://user:pass@host:7860``); the credentials are never shown in a message.

::

    httpx / HTTP                                  core.errors
    ConnectError (refused, no route, DNS)    ->   Unavailable
    dropped before an answer                 ->   Unavailable
    5xx (out of GPU memory, crashed)         ->   Unavailable
    TimeoutException (connect, read, ...)    ->   TimedOut (and the server is told to stop: /sdapi/v1/interrupt)
    404 of the endpoint itself               ->   Unavailable(retryable=False): started without --api
    404 "Sampler not found", other 4xx       ->   Unavailable(retryable=False): our request does not fit that server
    401 / 403                                ->   NotConfigured (--api-auth: credentials in YTAP_SD_BASE_URL)
    429 (a proxy in front)                   ->   RateLimited(retry_after_s)
    malformed JSON, no image, bad base64,
      not an image, body cut short           ->   BadOutput
    ctx.cancel set                           ->   OperationCancelled (and /sdapi/v1/interrupt)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread

from core.config import Settings
from core.errors import (
    BadOutput,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    TimedOut,
    Unavailable,
)
from core.providers._vendor import cancel_on, check_image, retry_after_s
from core.providers.base import CallContext, ImageSpec, ProviderOutput
from core.schemas import Capability

if TYPE_CHECKING:
    import httpx

__all__ = ["StableDiffusionImageProvider", "sd_provider_id", "TXT2IMG_PATH", "INTERRUPT_PATH"]

log = logging.getLogger(__name__)

TXT2IMG_PATH = "/sdapi/v1/txt2img"
INTERRUPT_PATH = "/sdapi/v1/interrupt"
_MAX_ANSWER_BYTES = 64 * 2**20  # a 1344x768 PNG in base64 is 2-4 MB; anything near this is not an answer


def sd_provider_id(settings: Settings) -> str:
    """``sd:<model>``: the checkpoint named in YTAP_SD_MODEL, or ``sd:default``."""
    return f"sd:{settings.sd_model or 'default'}"


class StableDiffusionImageProvider:
    """A picture from the user's own AUTOMATIC1111/Forge server (``--api``)."""

    id: ClassVar[str] = "sd:default"  # the instance's id names its model: see __init__
    capability: ClassVar[Capability] = "image"
    model: ClassVar[str | None] = "default"
    key_env: ClassVar[str | None] = None  # no key: an endpoint
    endpoint_env: ClassVar[str] = "YTAP_SD_BASE_URL"
    paid: ClassVar[bool] = False
    # 16:9 at SDXL's native pixel count (a trained bucket, both sides multiples of 64); the
    # thumbnail's composer cover-fits it to 1280x720, cropping 1.5 % of the width.
    width: ClassVar[int] = 1344
    height: ClassVar[int] = 768
    steps: ClassVar[int] = 25
    cfg_scale: ClassVar[float] = 6.0
    sampler_name: ClassVar[str] = "DPM++ 2M"
    scheduler: ClassVar[str] = "Karras"  # A1111 >= 1.9 and Forge; older servers ignore the field
    negative_prompt: ClassVar[str] = ("text, letters, words, typography, caption, title, watermark, logo, signature, "
                                      "border, frame, blurry, lowres, jpeg artifacts, deformed, disfigured")
    # A consumer GPU makes an SDXL image in 5-60 s; a busy server queues us behind others.
    request_timeout_s: ClassVar[float] = 300.0
    connect_timeout_s: ClassVar[float] = 5.0
    interrupt_timeout_s: ClassVar[float] = 2.0

    def __init__(self, settings: Settings, *, timeout_s: float | None = None, seed: int | None = None) -> None:
        self.settings = settings
        self.id = sd_provider_id(settings)  # type: ignore[misc]
        self.model = settings.sd_model or "default"  # type: ignore[misc]
        self.seed = seed  # None: a random seed (-1) on every call
        if timeout_s is not None:
            self.request_timeout_s = timeout_s  # type: ignore[misc]

    # --- facts ----------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        base = self.settings.sd_base_url
        if not base:
            return "YTAP_SD_BASE_URL not set"
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "YTAP_SD_BASE_URL must be an http:// or https:// URL, e.g. http://127.0.0.1:7860"
        return None

    @property
    def base_url(self) -> str:
        return (self.settings.sd_base_url or "").rstrip("/")

    @property
    def shown_url(self) -> str:
        """The base URL as messages show it: without the user:password of --api-auth."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def request_body(self, spec: ImageSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": self.prompt_for(spec),
            "negative_prompt": self.negative_prompt_for(spec),
            "width": self.size_for(spec)[0],
            "height": self.size_for(spec)[1],
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed_for(spec),
            "sampler_name": self.sampler_name,
            "scheduler": self.scheduler,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        if self.model != "default":
            # Loads the checkpoint for this request; the server puts its own back afterwards.
            body["override_settings"] = {"sd_model_checkpoint": self.model}
        return body

    def size_for(self, spec: ImageSpec) -> tuple[int, int]:
        """The provider's 16:9 size, turned upright for a portrait request."""
        return (self.height, self.width) if spec.height > spec.width else (self.width, self.height)

    def negative_prompt_for(self, spec: ImageSpec) -> str:
        """The caller's negative prompt after ours: any title is drawn later, so no text in the picture, ever."""
        extra = (spec.negative_prompt or "").strip()
        return f"{self.negative_prompt}, {extra}" if extra else self.negative_prompt

    def seed_for(self, spec: ImageSpec) -> int:
        """The request's seed, else the provider's, else -1 (the server draws one; the answer says which)."""
        if spec.seed is not None:
            return spec.seed
        return -1 if self.seed is None else self.seed

    @staticmethod
    def prompt_for(spec: ImageSpec) -> str:
        """The caller's prompt, with the style after a comma as SD prompts are written."""
        prompt = spec.prompt.strip()
        if spec.style:
            prompt += f", {spec.style.strip()}"
        return prompt

    # --- the call -------------------------------------------------------------------------

    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        import httpx

        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        timeout = httpx.Timeout(self.request_timeout_s, connect=self.connect_timeout_s)
        try:
            async with httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
                ctx.progress(0.05, f"{self.id}: generating the picture on {self.shown_url}")
                try:
                    async with cancel_on(ctx.cancel, "image generation cancelled"):
                        answer = await self._txt2img(client, self.request_body(spec))
                except (OperationCancelled, TimedOut):
                    await self._interrupt(client)  # or the GPU keeps working on an image nobody will use
                    raise
            data = _first_image(answer, self.shown_url)
            await anyio.to_thread.run_sync(lambda: check_image(data, "the Stable Diffusion image"))
            out.write_bytes(data)
        except BaseException:
            _remove(out)
            raise
        log.info("%s made a %dx%d picture (seed %s)", self.id, *self.size_for(spec), _seed_of(answer))
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=0.0)

    async def _txt2img(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Any:
        import httpx

        url = self.base_url + TXT2IMG_PATH
        answered = False
        try:
            async with client.stream("POST", url, json=body) as response:
                answered = True
                if response.status_code != 200:
                    text = (await response.aread())[:4000].decode("utf-8", "replace")
                    raise self._status_error(response.status_code, text, response.headers)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > _MAX_ANSWER_BYTES:
                        raise BadOutput(f"the Stable Diffusion server at {self.shown_url} sent more than "
                                        f"{_MAX_ANSWER_BYTES // 2**20} MB for one image")
                    chunks.append(chunk)
        except ProviderError:
            raise
        except httpx.TimeoutException as exc:
            raise TimedOut(f"the Stable Diffusion server at {self.shown_url} did not answer within "
                           f"{self.request_timeout_s:g} s ({type(exc).__name__})") from None
        except httpx.ConnectError:
            raise Unavailable(f"the Stable Diffusion server at {self.shown_url} cannot be reached (connection "
                              "refused or no route): is it running?") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise NotConfigured("YTAP_SD_BASE_URL is not a usable http(s) URL") from None
        except httpx.HTTPError as exc:
            if answered:
                raise BadOutput(f"the Stable Diffusion server's answer was cut short ({type(exc).__name__})") from None
            raise Unavailable(f"the connection to the Stable Diffusion server at {self.shown_url} was dropped "
                              f"before it answered ({type(exc).__name__})") from None
        try:
            return json.loads(b"".join(chunks))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadOutput(f"the Stable Diffusion server answered with malformed JSON ({exc})") from None

    def _status_error(self, status: int, text: str, headers: Any) -> ProviderError:
        detail = _detail(text)
        where = f"the Stable Diffusion server at {self.shown_url}"
        if status == 404 and detail.lower() in ("not found", ""):
            return Unavailable(f"{where} has no {TXT2IMG_PATH} (404): start it with --api (AUTOMATIC1111/Forge: add "
                               "--api to COMMANDLINE_ARGS), and check YTAP_SD_BASE_URL is the web UI's address",
                               retryable=False)
        if status in (401, 403):
            return NotConfigured(f"{where} refused us ({status}: {detail or 'unauthorised'}): with --api-auth, put "
                                 "user:password in YTAP_SD_BASE_URL (http://user:password@host:7860)")
        if status == 429:
            return RateLimited(f"{where} is busy (429)", retry_after_s=retry_after_s(headers))
        if status >= 500:
            return Unavailable(f"{where} failed ({status}): {detail or 'internal error'}")
        return Unavailable(f"{where} rejected the request ({status}): {detail or 'no reason given'} "
                           f"(sampler {self.sampler_name!r}, model {self.model!r})", retryable=False)

    async def _interrupt(self, client: httpx.AsyncClient) -> None:
        """Best effort: ask the server to stop the generation we no longer wait for."""
        with anyio.move_on_after(self.interrupt_timeout_s, shield=True), contextlib.suppress(Exception):
            await client.post(self.base_url + INTERRUPT_PATH)


def _detail(text: str) -> str:
    """The reason in an A1111 error body: FastAPI's ``detail``, or its own ``error``/``errors`` fields."""
    try:
        body = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if not isinstance(body, dict):
        return ""
    parts = []
    for key in ("detail", "error", "errors"):
        value = body.get(key)
        if isinstance(value, list):  # a 422: [{"loc": [...], "msg": "..."}]
            value = "; ".join(str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in value)
        if value:
            parts.append(str(value))
    return ": ".join(dict.fromkeys(parts))[:300]


def _first_image(answer: Any, where: str) -> bytes:
    images = answer.get("images") if isinstance(answer, dict) else None
    b64 = images[0] if isinstance(images, list) and images else None
    if not isinstance(b64, str) or not b64:
        raise BadOutput(f"the Stable Diffusion server at {where} answered without an image (no images[0])")
    if b64.startswith("data:"):  # some forks answer data URLs
        b64 = b64.partition(",")[2]
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadOutput(f"the Stable Diffusion image is not valid base64: {exc}") from None




def _seed_of(answer: Any) -> Any:
    with contextlib.suppress(Exception):
        return json.loads(answer["info"])["seed"]
    return "?"


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
