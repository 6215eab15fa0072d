"""ElevenLabs' text-to-speech wire format, scripted on a :class:`LoopbackServer`.

What the real service speaks (SDK elevenlabs 2.78, raw_client.convert_with_timestamps;
https://elevenlabs.io/docs/eleven-api/resources/errors; help.elevenlabs.io articles on
400/401 and 429 errors; read 2026-11-24):

Request::

    POST /v1/text-to-speech/{voice_id}/with-timestamps?output_format=mp3_44100_128
    xi-api-key: <key>
    {"text": "...", "model_id": "eleven_multilingual_v2",
     "voice_settings": {"stability": .., "similarity_boost": .., "style": .., "speed": .., "use_speaker_boost": ..}}

Success (200, application/json)::

    {"audio_base64": "<mp3>",
     "alignment": {"characters": ["H", "i", " ", ...],
                   "character_start_times_seconds": [...], "character_end_times_seconds": [...]},
     "normalized_alignment": {... same shape, for the normalized text ...}}

Errors: ``{"detail": {"type", "code", "message", "status" (legacy, same as code),
"request_id", "param"}}``; older answers carry only ``{"detail": {"status", "message"}}``;
request validation is FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``. Seen in the field:
401 ``invalid_api_key``, 401 ``quota_exceeded``, 401 ``detected_unusual_activity``,
402 ``paid_plan_required``, 403 ``content_against_policy``, 404 ``voice_not_found``,
429 ``too_many_concurrent_requests`` / ``system_busy`` (legacy) and
``concurrent_limit_exceeded`` / ``rate_limit_exceeded`` (current).
"""

from __future__ import annotations

import base64
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.media.ffmpeg import run_ffmpeg
from tests.vendors.loopback import Handler, Reply, Request, json_reply

__all__ = [
    "TTS_PATH",
    "sine_mp3",
    "alignment_for",
    "speech_body",
    "speech_reply",
    "speaking",
    "api_error",
    "invalid_api_key",
    "quota_exceeded",
    "paid_plan_required",
    "unusual_activity",
    "content_against_policy",
    "rate_limited",
    "server_error",
    "not_found",
    "validation_error",
]

TTS_PATH = r"/v1/text-to-speech/[^/]+/with-timestamps"


@lru_cache(maxsize=8)
def sine_mp3(duration_s: float = 1.0, freq_hz: int = 440) -> bytes:
    """A real MP3 (44.1 kHz mono, 128 kb/s, as ``mp3_44100_128``) of a sine tone."""
    with tempfile.TemporaryDirectory(prefix="ytap-test-mp3-") as tmp:
        path = Path(tmp) / "tone.mp3"
        run_ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq_hz}:sample_rate=44100:duration={duration_s}",
                    "-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", str(path)], what="making a test mp3")
        return path.read_bytes()


def alignment_for(text: str, duration_s: float, *, lead_s: float = 0.05) -> dict[str, list[Any]]:
    """A plausible character alignment: every character (spaces too) gets an equal slot
    between ``lead_s`` and ``duration_s - lead_s``, times rounded to milliseconds."""
    chars = list(text)
    span = max(0.0, duration_s - 2 * lead_s)
    slot = span / max(1, len(chars))
    starts = [round(lead_s + i * slot, 3) for i in range(len(chars))]
    ends = [round(lead_s + (i + 1) * slot, 3) for i in range(len(chars))]
    return {"characters": chars, "character_start_times_seconds": starts, "character_end_times_seconds": ends}


def speech_body(audio: bytes, text: str, duration_s: float, *, alignment: dict[str, list[Any]] | None = None
                ) -> dict[str, Any]:
    a = alignment if alignment is not None else alignment_for(text, duration_s)
    return {"audio_base64": base64.b64encode(audio).decode("ascii"), "alignment": a, "normalized_alignment": a}


def speech_reply(audio: bytes, text: str, duration_s: float, **kw: Any) -> Reply:
    return json_reply(speech_body(audio, text, duration_s, **kw))


def speaking(duration_s: float = 1.0, *, audio: bytes | None = None,
             alignments: dict[str, dict[str, list[Any]]] | None = None) -> Handler:
    """A handler that answers any text with ``audio`` (default: a sine of ``duration_s``)
    and an alignment of that very text (``alignments[text]`` when given)."""

    def handle(req: Request) -> Reply:
        text = req.json()["text"]
        data = audio if audio is not None else sine_mp3(duration_s)
        return speech_reply(data, text, duration_s, alignment=(alignments or {}).get(text))

    return handle


def api_error(status: int, code: str, message: str, *, legacy: bool = False, headers: dict[str, str] | None = None,
              type_: str = "invalid_request", param: str | None = None) -> Reply:
    if legacy:
        detail: dict[str, Any] = {"status": code, "message": message}
    else:
        detail = {"type": type_, "code": code, "message": message, "status": code,
                  "request_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "param": param}
    return json_reply({"detail": detail}, status=status, headers=headers)


def invalid_api_key() -> Handler:
    """401 ``invalid_api_key``, quoting the key it was sent (as some services do) so tests see it scrubbed."""

    def handle(req: Request) -> Reply:
        key = req.headers.get("xi-api-key", "")
        return api_error(401, "invalid_api_key", f"Invalid API key: {key}", type_="authentication_error")

    return handle


def quota_exceeded() -> Reply:
    return api_error(401, "quota_exceeded", "This request exceeds your quota of 10000. You have 23 credits "
                     "remaining, while 45 credits are required for this request.", legacy=True)


def paid_plan_required() -> Reply:
    return json_reply({"detail": {"code": "paid_plan_required", "message": "Free users cannot use library voices "
                                  "via the API. Please upgrade your subscription to use this voice."}}, status=402)


def unusual_activity() -> Reply:
    return api_error(401, "detected_unusual_activity", "Unusual activity detected. Free Tier usage disabled. "
                     "If you are using a proxy/VPN you might need to purchase a Paid Plan to not trigger our "
                     "abuse detectors.", legacy=True)


def content_against_policy(status: int = 403, *, legacy: bool = True) -> Reply:
    return api_error(status, "content_against_policy", "We are sorry but text you are trying to use may violate "
                     "our Terms of Service and has been blocked.", legacy=legacy)


def rate_limited(retry_after: str | None = "3", code: str = "too_many_concurrent_requests", *,
                 legacy: bool = True) -> Reply:
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return api_error(429, code, "You have too many concurrent requests. Your subscription allows 2.",
                     legacy=legacy, headers=headers, type_="rate_limit_error")


def server_error(status: int = 500) -> Reply:
    if status == 503:  # what a load balancer in front of the API says: not JSON
        return Reply(status=503, body=b"upstream connect error or disconnect/reset before headers",
                     headers={"content-type": "text/plain"})
    return json_reply({"detail": {"status": "internal_error", "message": "An internal error occurred."}},
                      status=status)


def not_found(code: str | None = None) -> Reply:
    """404: ``{"detail": "Not Found"}`` for a path the API does not have, or a coded ``voice_not_found``."""
    if code:
        return api_error(404, code, "A voice with the voice_id you provided was not found.", param="voice_id")
    return json_reply({"detail": "Not Found"}, status=404)


def validation_error() -> Reply:
    return json_reply({"detail": [{"loc": ["body", "voice_settings", "speed"], "msg": "Input should be less "
                                   "than or equal to 1.2", "type": "less_than_equal"}]}, status=422)
