"""The Gemini API and Vertex AI wire formats, scripted on a :class:`LoopbackServer`.

google-genai reaches these routes through its own base-URL settings
(GOOGLE_GEMINI_BASE_URL, GOOGLE_VERTEX_BASE_URL), so tests exercise the real SDK over HTTP.

Routes (``{v}`` is the API version the SDK picks: ``v1`` for the Gemini API, ``v1beta1`` for
Vertex AI; any ``v1*`` is accepted)::

    POST /{v}/models/{model}:generateContent                          Gemini API
    POST /{v}/[projects/{p}/locations/{l}/]publishers/google/models/{model}:generateContent
                                                                      Vertex AI (project or express mode)
    POST /{v}/[projects/{p}/locations/{l}/]publishers/google/models/{model}:predictLongRunning
         body {"instances": [{"prompt": ...}], "parameters": {"aspectRatio", "durationSeconds",
               "resolution", "negativePrompt", "sampleCount", "generateAudio"}}
         -> {"name": "projects/{p}/locations/{l}/publishers/google/models/{model}/operations/{id}"}
    POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}:fetchPredictOperation
         body {"operationName": ...}
         -> {"name", "done": true, "response": {"@type": ...GenerateVideoResponse,
             "raiMediaFilteredCount", "raiMediaFilteredReasons", "videos": [{"bytesBase64Encoded",
             "gcsUri", "mimeType"}]}}   or  {"name", "done": true, "error": {"code", "message"}}

Errors are google.rpc.Status bodies: ``{"error": {"code", "message", "status", "details"}}``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.vendors.loopback import Handler, LoopbackServer, Reply, Request, json_reply

__all__ = [
    "GoogleMock",
    "google_mock",
    "generate_content_path",
    "predict_path",
    "fetch_path",
    "operation_name",
    "image_reply",
    "audio_reply",
    "blocked_prompt_reply",
    "stopped_reply",
    "text_reply",
    "api_error",
    "operation_started",
    "operation_running",
    "operation_done",
    "operation_gcs_only",
    "operation_filtered",
    "operation_failed",
    "voice_name",
]

_VERSION = r"/v1[a-z0-9]*/"
_VERTEX_PREFIX = r"(?:projects/[^/]+/locations/[^/]+/)?publishers/google/"
PROJECT_NUMBER = "123456789012"
LOCATION = "us-central1"


def generate_content_path(model: str) -> str:
    return _VERSION + rf"(?:{_VERTEX_PREFIX})?models/{re.escape(model)}:generateContent"


def predict_path(model: str) -> str:
    return _VERSION + _VERTEX_PREFIX + rf"models/{re.escape(model)}:predictLongRunning"


def fetch_path(model: str) -> str:
    return _VERSION + _VERTEX_PREFIX + rf"models/{re.escape(model)}:fetchPredictOperation"


def operation_name(model: str, op_id: str = "9d2fc0b5-5bdf-4b5f-9a41-82970515e20b",
                   project: str = PROJECT_NUMBER, location: str = LOCATION) -> str:
    # Vertex names the operation under the project even in express mode (the key's project).
    return f"projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{op_id}"


# --------------------------------------------------------------------------- generateContent


def _usage(output_tokens: int, modality: str) -> dict[str, Any]:
    return {
        "promptTokenCount": 12,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": 12 + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        "candidatesTokensDetails": [{"modality": modality, "tokenCount": output_tokens}],
    }


def _content_reply(parts: list[dict[str, Any]], *, finish: str = "STOP", model: str = "gemini",
                   usage: dict[str, Any] | None = None, **kw: Any) -> Reply:
    body: dict[str, Any] = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "modelVersion": model,
        "responseId": "rsp-0001",
    }
    if usage:
        body["usageMetadata"] = usage
    return json_reply(body, **kw)


def image_reply(data: bytes, mime: str = "image/png", *, raw_b64: str | None = None, **kw: Any) -> Reply:
    """A generated image, inline and base64 (``raw_b64`` sends a given string instead: invalid base64)."""
    b64 = raw_b64 if raw_b64 is not None else base64.b64encode(data).decode()
    return _content_reply([{"inlineData": {"mimeType": mime, "data": b64}}], model="gemini-3.1-flash-image",
                          usage=_usage(1120, "IMAGE"), **kw)


def audio_reply(data: bytes, mime: str = "audio/L16;codec=pcm;rate=24000", **kw: Any) -> Reply:
    """Speech as Gemini TTS sends it: raw 16-bit little-endian PCM (or WAV), base64."""
    return _content_reply([{"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode()}}],
                          model="gemini-3.8-flash-tts", usage=_usage(25, "AUDIO"), **kw)


def blocked_prompt_reply(reason: str = "PROHIBITED_CONTENT", message: str | None = None) -> Reply:
    """The prompt itself was blocked: no candidates, promptFeedback.blockReason."""
    feedback: dict[str, Any] = {"blockReason": reason}
    if message:
        feedback["blockReasonMessage"] = message
    return json_reply({"promptFeedback": feedback, "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                       "modelVersion": "gemini", "responseId": "rsp-0002"})


def stopped_reply(finish: str = "IMAGE_SAFETY", message: str | None = None) -> Reply:
    """A candidate that stopped for safety without any media part."""
    candidate: dict[str, Any] = {
        "content": {"role": "model"},
        "finishReason": finish,
        "index": 0,
        "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        ],
    }
    if message:
        candidate["finishMessage"] = message
    return json_reply({"candidates": [candidate], "modelVersion": "gemini", "responseId": "rsp-0003"})


def text_reply(text: str) -> Reply:
    return _content_reply([{"text": text}], usage=_usage(20, "TEXT"))


def api_error(status: int, code_name: str, message: str, *, headers: dict[str, str] | None = None,
              details: list[dict[str, Any]] | None = None, **kw: Any) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": code_name}
    if details:
        error["details"] = details
    return json_reply({"error": error}, status=status, headers=headers, **kw)


# --------------------------------------------------------------------------- Veo operations


def operation_started(name: str) -> Reply:
    return json_reply({"name": name})


def operation_running(name: str) -> Reply:
    # Vertex leaves "done" out while the job runs.
    return json_reply({"name": name})


def _done(name: str, response: dict[str, Any], **kw: Any) -> Reply:
    return json_reply({
        "name": name,
        "done": True,
        "response": {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse", **response},
    }, **kw)


def operation_done(name: str, video: bytes, mime: str = "video/mp4", **kw: Any) -> Reply:
    return _done(name, {"raiMediaFilteredCount": 0,
                        "videos": [{"bytesBase64Encoded": base64.b64encode(video).decode(), "mimeType": mime}]}, **kw)


def operation_gcs_only(name: str, uri: str = "gs://veo-bucket/sample_0.mp4") -> Reply:
    return _done(name, {"raiMediaFilteredCount": 0, "videos": [{"gcsUri": uri, "mimeType": "video/mp4"}]})


def operation_filtered(name: str, reasons: list[str]) -> Reply:
    return _done(name, {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": reasons})


def operation_failed(name: str, code: int = 13, message: str = "Internal error while generating the video.") -> Reply:
    return json_reply({"name": name, "done": True, "error": {"code": code, "message": message}})


# --------------------------------------------------------------------------- requests


def voice_name(body: dict[str, Any]) -> str | None:
    """The prebuilt voice of a generateContent body (the SDK sends speechConfig's inner keys in snake_case)."""
    speech = body.get("generationConfig", {}).get("speechConfig", {})
    voice = speech.get("voiceConfig") or speech.get("voice_config") or {}
    prebuilt = voice.get("prebuiltVoiceConfig") or voice.get("prebuilt_voice_config") or {}
    return prebuilt.get("voiceName") or prebuilt.get("voice_name")


class GoogleMock:
    """A LoopbackServer with the Google routes named."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def generate_content(self, model: str, *replies: Reply | Handler, sticky: Reply | Handler | None = None) -> None:
        self.server.route("POST", generate_content_path(model), *replies, sticky=sticky)

    def veo_submit(self, model: str, *replies: Reply | Handler, sticky: Reply | Handler | None = None) -> None:
        self.server.route("POST", predict_path(model), *replies, sticky=sticky)

    def veo_poll(self, model: str, *replies: Reply | Handler, sticky: Reply | Handler | None = None) -> None:
        self.server.route("POST", fetch_path(model), *replies, sticky=sticky)

    def calls(self, path_regex: str) -> list[Request]:
        return self.server.calls("POST", path_regex)


@contextmanager
def google_mock() -> Iterator[GoogleMock]:
    server = LoopbackServer().start()
    try:
        yield GoogleMock(server)
    finally:
        server.stop()
