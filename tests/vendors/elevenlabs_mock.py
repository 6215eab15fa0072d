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

Voices (SDK elevenlabs 2.78, voices/ivc/raw_client.create and voices/raw_client.delete)::

    POST /v1/voices/add            multipart/form-data: name, files (one part per sample, with a
                                   filename and content type), description, remove_background_noise,
                                   labels (JSON text; "null" when not given)
    -> 200 {"voice_id": "<20 letters and digits>", "requires_verification": false}
    DELETE /v1/voices/{voice_id}   -> 200 {"status": "ok"}

Errors seen in the field for these: 400 ``{"detail": {"status": "voice_limit_reached", ...}}``
(every custom voice slot taken), 400 ``{"detail": {"code": "paid_plan_required", "status":
"can_not_use_instant_voice_cloning", ...}}`` (a plan without instant cloning), 404
``voice_not_found`` (a voice the account does not have). What ElevenLabs says about an
unusable sample is not documented; :func:`bad_sample` answers 422 with a coded detail, the
shape of its other errors.
"""

from __future__ import annotations

import base64
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import email.parser
import email.policy
import itertools
import string
from dataclasses import dataclass

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
    "VOICES_ADD_PATH",
    "VOICE_PATH",
    "Part",
    "multipart",
    "cloning",
    "voice_deleted",
    "bad_sample",
    "voice_limit_reached",
    "cloning_not_in_plan",
]

TTS_PATH = r"/v1/text-to-speech/[^/]+/with-timestamps"
VOICES_ADD_PATH = r"/v1/voices/add"
VOICE_PATH = r"/v1/voices/[A-Za-z0-9]+"


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


# --- voices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def multipart(req: Request) -> list[Part]:
    """The parts of a multipart/form-data request body, in order."""
    content_type = req.headers.get("content-type", "")
    assert content_type.startswith("multipart/form-data"), content_type
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body)
    return [Part(name=part.get_param("name", header="content-disposition"), filename=part.get_filename(),
                 content_type=part.get_content_type(), data=part.get_payload(decode=True) or b"")
            for part in message.iter_parts()]


def cloning(*, requires_verification: bool = False, prefix: str = "cLoNe") -> Handler:
    """Answers every well-formed ``voices/add`` with a new voice id (``prefix`` + a number, 20 characters);
    a request without a name or a sample file gets the 422 FastAPI would give."""
    numbers = itertools.count(1)
    alphabet = string.ascii_letters + string.digits
    assert len(prefix) < 20 and all(c in alphabet for c in prefix)

    def handle(req: Request) -> Reply:
        parts = multipart(req)
        names = [p for p in parts if p.name == "name" and p.text.strip()]
        files = [p for p in parts if p.name == "files" and p.filename and p.data]
        if not names or not files:
            missing = "name" if not names else "files"
            return json_reply({"detail": [{"loc": ["body", missing], "msg": "Field required", "type": "missing"}]},
                              status=422)
        voice_id = f"{prefix}{next(numbers):0{20 - len(prefix)}d}"
        return json_reply({"voice_id": voice_id, "requires_verification": requires_verification})

    return handle


def voice_deleted() -> Reply:
    return json_reply({"status": "ok"})


def bad_sample(status: int = 422) -> Reply:
    return api_error(status, "invalid_voice_sample", "The uploaded sample could not be processed: no speech was "
                     "detected in the audio.", param="files")


def voice_limit_reached() -> Reply:
    return api_error(400, "voice_limit_reached", "You have reached your maximum amount of custom voices (10 / 10). "
                     "You can upgrade your subscription to increase your custom voice limit.", legacy=True)


def cloning_not_in_plan() -> Reply:
    return json_reply({"detail": {"type": "payment_required", "code": "paid_plan_required", "message": "Your "
                                  "subscription does not include instant voice cloning. Please upgrade your plan.",
                                  "status": "can_not_use_instant_voice_cloning",
                                  "request_id": "7185e9dfc60a80a303c3b287f243188b"}}, status=400)


# --- music (SDK elevenlabs 2.x, music/raw_client.compose; the music quickstart's "Copyrighted material") ---
#
#     POST /v1/music?output_format=mp3_44100_128
#     xi-api-key: <key>
#     {"prompt": "...", "music_length_ms": 32000, "model_id": "music_v1", "force_instrumental": true}
#     -> 200, the audio itself (audio/mpeg), streamed
#
# A prompt naming an artist, a band or a song is refused with ``bad_prompt`` and a rewording in
# ``detail.data.prompt_suggestion`` (a composition plan: ``bad_composition_plan`` and
# ``composition_plan_suggestion``).

MUSIC_PATH = r"/v1/music"


@lru_cache(maxsize=4)
def music_mp3(duration_s: float = 12.0, mood: str = "upbeat, happy") -> bytes:
    """A real MP3 (44.1 kHz stereo, 128 kb/s, as ``mp3_44100_128``) of music: a local:ambient bed cut
    from a longer one, so it does not loop by itself."""
    from core.media.ambient import render_ambient
    from core.media.musicbed import write_wav

    bed = render_ambient(mood, duration_s * 1.5)
    with tempfile.TemporaryDirectory(prefix="ytap-test-music-") as tmp:
        wav, mp3 = Path(tmp) / "m.wav", Path(tmp) / "m.mp3"
        write_wav(wav, bed.samples[: int(duration_s * 48000)])
        run_ffmpeg(["-i", str(wav), "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)],
                   what="making a test mp3")
        return mp3.read_bytes()


def composing(duration_s: float = 12.0, **kw: Any) -> Reply:
    return Reply(body=music_mp3(duration_s), headers={"content-type": "audio/mpeg"}, **kw)


def bad_prompt(suggestion: str = "An upbeat pop track with bright synths and a driving beat", *,
               status: int = 400) -> Reply:
    """The refusal of a prompt naming an artist (the status is not documented: 400 here, 422 also tested,
    which the SDK raises as its UnprocessableEntityError)."""
    return json_reply({"detail": {"status": "bad_prompt", "message": "The prompt contains copyrighted material.",
                                  "data": {"prompt_suggestion": suggestion}}}, status=status)
