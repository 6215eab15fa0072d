"""OpenAI's wire format, scripted on a :class:`~tests.vendors.loopback.LoopbackServer`.

The SDK is pointed at ``server.url + "/v1"`` (``OPENAI_BASE_URL``), so these helpers build the
replies OpenAI itself sends: the JSON bodies of /images/generations and /videos, raw audio
from /audio/speech, MP4 bytes from /videos/{id}/content, and the ``{"error": {...}}`` envelope
with the ``type`` / ``code`` / headers OpenAI uses for rate limits, quota, bad keys, missing
models, server errors and safety refusals. Small real media (PCM, WAV, PNG, MP4) are made here
so the code under test decodes real bytes.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import math
import struct
import tempfile
import time
import wave
from functools import lru_cache
from pathlib import Path
from typing import Any

from tests.vendors.loopback import Reply, Request, json_reply

__all__ = [
    "SPEECH",
    "IMAGES",
    "VIDEOS",
    "VIDEO",
    "VIDEO_CONTENT",
    "error_reply",
    "rate_limit_reply",
    "quota_reply",
    "server_error_reply",
    "invalid_key_reply",
    "model_not_found_reply",
    "moderation_reply",
    "content_policy_reply",
    "invalid_request_reply",
    "speech_reply",
    "images_reply",
    "video_job",
    "video_reply",
    "video_content_reply",
    "multipart_fields",
    "pcm_bytes",
    "wav_bytes",
    "png_bytes",
    "mp4_bytes",
]

# Route regexes (LoopbackServer matches the full path).
SPEECH = r"/v1/audio/speech"
IMAGES = r"/v1/images/generations"
VIDEOS = r"/v1/videos"
VIDEO = r"/v1/videos/[^/]+"
VIDEO_CONTENT = r"/v1/videos/[^/]+/content"

_REQUEST_ID = "req_7f3c0a9e1b2d4c5e"


# --- the error envelope ----------------------------------------------------------------------


def error_reply(status: int, message: str, *, type_: str | None, code: str | None = None, param: str | None = None,
                headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    """``{"error": {"message", "type", "param", "code"}}`` as every OpenAI endpoint sends it."""
    error = {"message": message, "type": type_, "param": param, "code": code, **extra}
    return json_reply({"error": error}, status=status, headers={"x-request-id": _REQUEST_ID, **(headers or {})})


def rate_limit_reply(*, retry_after_s: float | None = None, retry_after_ms: float | None = None,
                     model: str = "gpt-4o-mini-tts") -> Reply:
    """429 rate_limit_exceeded, with OpenAI's x-ratelimit-* headers and optional Retry-After(-Ms)."""
    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "120ms"}
    if retry_after_s is not None:
        headers["retry-after"] = f"{retry_after_s:g}"
    if retry_after_ms is not None:
        headers["retry-after-ms"] = f"{retry_after_ms:g}"
    return error_reply(
        429,
        f"Rate limit reached for {model} in organization org-test on requests per min (RPM): Limit 500, Used 500, "
        "Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
        type_="requests", code="rate_limit_exceeded", headers=headers,
    )


def quota_reply() -> Reply:
    return error_reply(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type_="insufficient_quota", code="insufficient_quota",
    )


def server_error_reply(status: int = 500) -> Reply:
    if status == 503:
        return error_reply(503, "The engine is currently overloaded, please try again later.", type_="server_error")
    return error_reply(status, "The server had an error while processing your request. Sorry about that!",
                       type_="server_error")


def invalid_key_reply(key: str, status: int = 401) -> Reply:
    """OpenAI masks the key it echoes; a careless compatible server may not, so this echoes it whole."""
    return error_reply(status, f"Incorrect API key provided: {key}. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.",
                       type_="invalid_request_error", code="invalid_api_key")


def model_not_found_reply(model: str) -> Reply:
    return error_reply(404, f"The model `{model}` does not exist or you do not have access to it.",
                       type_="invalid_request_error", code="model_not_found")


def moderation_reply(categories: tuple[str, ...] = ("violence",), stage: str = "input") -> Reply:
    """The GPT-image safety refusal (400 moderation_blocked, image_generation_user_error)."""
    return error_reply(
        400,
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        f"help.openai.com and include the request ID {_REQUEST_ID}. safety_violations=[{', '.join(categories)}].",
        type_="image_generation_user_error", code="moderation_blocked",
        moderation_details={"categories": list(categories), "moderation_stage": stage},
    )


def content_policy_reply() -> Reply:
    """The older safety refusal shape (DALL-E era, still sent by compatible endpoints)."""
    return error_reply(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system.",
        type_="invalid_request_error", code="content_policy_violation",
    )


def invalid_request_reply(param: str, message: str) -> Reply:
    return error_reply(400, message, type_="invalid_request_error", code="invalid_value", param=param)


# --- success bodies --------------------------------------------------------------------------


def speech_reply(audio: bytes, fmt: str = "pcm", **kw: Any) -> Reply:
    content_type = {"pcm": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg"}[fmt]
    return Reply(body=audio, headers={"content-type": content_type, "x-request-id": _REQUEST_ID}, **kw)


def images_reply(image: bytes, *, size: str = "1536x1024", **kw: Any) -> Reply:
    return json_reply({
        "created": int(time.time()),
        "background": "opaque",
        "data": [{"b64_json": base64.b64encode(image).decode("ascii")}],
        "output_format": "png",
        "quality": "medium",
        "size": size,
        "usage": {"input_tokens": 52, "input_tokens_details": {"image_tokens": 0, "text_tokens": 52},
                  "output_tokens": 1372, "total_tokens": 1424,
                  "output_tokens_details": {"image_tokens": 1372, "text_tokens": 0}},
    }, headers={"x-request-id": _REQUEST_ID}, **kw)


def video_job(video_id: str = "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5", status: str = "queued", *,
              progress: int = 0, seconds: str = "8", size: str = "1280x720", model: str = "sora-2",
              error: dict[str, Any] | None = None, prompt: str | None = None) -> dict[str, Any]:
    """A ``video`` object as /videos and /videos/{id} return it."""
    now = int(time.time())
    return {
        "id": video_id,
        "object": "video",
        "model": model,
        "status": status,
        "progress": progress,
        "created_at": now,
        "completed_at": now if status == "completed" else None,
        "expires_at": now + 3600 if status == "completed" else None,
        "prompt": prompt,
        "remixed_from_video_id": None,
        "seconds": seconds,
        "size": size,
        "error": error,
    }


def video_reply(**job: Any) -> Reply:
    return json_reply(video_job(**job), headers={"x-request-id": _REQUEST_ID, "openai-poll-after-ms": "5000"})


def video_content_reply(mp4: bytes, **kw: Any) -> Reply:
    return Reply(body=mp4, headers={"content-type": "video/mp4", "x-request-id": _REQUEST_ID}, **kw)


def multipart_fields(request: Request) -> dict[str, str]:
    """The text fields of a multipart/form-data request body (what ``videos.create`` sends)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = part.get_content().strip() if part.get_content_maintype() == "text" else ""
    return fields


# --- small real media ------------------------------------------------------------------------


def pcm_bytes(seconds: float, rate: int = 24000, freq_hz: float = 440.0) -> bytes:
    """Raw s16le mono, as /audio/speech sends for ``response_format="pcm"``."""
    n = round(seconds * rate)
    return struct.pack(f"<{n}h", *(round(8000 * math.sin(2 * math.pi * freq_hz * i / rate)) for i in range(n)))


def wav_bytes(seconds: float, rate: int = 24000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm_bytes(seconds, rate))
    return buf.getvalue()


def png_bytes(width: int = 192, height: int = 128) -> bytes:
    from PIL import Image

    im = Image.new("RGB", (width, height))
    im.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@lru_cache(maxsize=4)
def mp4_bytes(seconds: float = 1.0, width: int = 320, height: int = 180, fps: int = 24) -> bytes:
    """A small H.264/AAC MP4 with picture and sound, like a Sora clip but tiny."""
    from core.media.ffmpeg import run_ffmpeg

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "clip.mp4"
        run_ffmpeg([
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            "-movflags", "+faststart", str(out),
        ], what="making a test clip")
        return out.read_bytes()
