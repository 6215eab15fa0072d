"""ElevenLabs voice cloning over the wire: the real SDK against a loopback server speaking ElevenLabs' format.

``POST /v1/voices/add`` (multipart) and ``DELETE /v1/voices/{id}``, success and every failure
the mock knows; only 127.0.0.1 is reached (tests/vendors/loopback.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    NotConfigured,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
    YtapError,
)
from core.media.ffmpeg import run_ffmpeg
from core.providers import CallContext
from core.providers.base import ClonedVoice, VoiceCloningProvider
from core.providers.elevenlabs import ElevenLabsSpeechProvider
from tests.vendors import elevenlabs_mock as el
from tests.vendors.loopback import LoopbackServer, Reply, json_reply

KEY = "sk_test_9a7e5c3b1d_VOICES_FAKE_KEY"
VOICE_ID = "AbCdEfGhIjKlMnOpQrSt"


@pytest.fixture
def settings(tmp_path: Path, server: LoopbackServer) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "ELEVENLABS_API_KEY": KEY,
                              "ELEVENLABS_BASE_URL": server.url})


@pytest.fixture
def provider(settings: Settings) -> ElevenLabsSpeechProvider:
    p = ElevenLabsSpeechProvider(settings)
    p.clone_timeout_s = p.delete_timeout_s = 5.0
    return p


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("voice_sample") / "host.mp3"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=180:sample_rate=44100:duration=2", "-ac", "1",
                "-c:a", "libmp3lame", "-b:a", "192k", str(path)])
    return path


def _ctx(settings: Settings) -> CallContext:
    return CallContext(settings=settings, cancel=threading.Event())


def _clone(provider: ElevenLabsSpeechProvider, sample: Path, settings: Settings, **kw: Any) -> ClonedVoice:
    async def main() -> ClonedVoice:
        return await provider.clone_voice("host (ytap default)", sample, _ctx(settings), **kw)

    return anyio.run(main)


def _delete(provider: ElevenLabsSpeechProvider, voice_id: str, settings: Settings) -> bool:
    async def main() -> bool:
        return await provider.delete_voice(voice_id, _ctx(settings))

    return anyio.run(main)


def _error(fn: Any, *args: Any) -> YtapError:
    with pytest.raises(YtapError) as info:
        fn(*args)
    return info.value


# --- success -------------------------------------------------------------------------------------


def test_elevenlabs_voices_provider_is_a_voice_cloner(provider: ElevenLabsSpeechProvider) -> None:
    assert isinstance(provider, VoiceCloningProvider)


def test_elevenlabs_voices_clone_sends_the_sample_as_multipart(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path
) -> None:
    server.route("POST", el.VOICES_ADD_PATH, el.cloning())
    voice = _clone(provider, sample, settings, description="The host, warm and calm")

    assert voice == ClonedVoice(voice_id="cLoNe000000000000001", requires_verification=False, notes=())
    (call,) = server.calls("POST", el.VOICES_ADD_PATH)
    assert call.headers["xi-api-key"] == KEY
    parts = {p.name: p for p in el.multipart(call)}
    assert parts["name"].text == "host (ytap default)"
    assert parts["description"].text == "The host, warm and calm"
    assert parts["remove_background_noise"].text.lower() == "false"
    files = parts["files"]
    assert (files.filename, files.content_type, files.data) == ("host.mp3", "audio/mpeg", sample.read_bytes())


def test_elevenlabs_voices_clone_without_description_sends_none_and_flags_verification(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path
) -> None:
    server.route("POST", el.VOICES_ADD_PATH, el.cloning(requires_verification=True))
    voice = _clone(provider, sample, settings, remove_background_noise=True)
    assert voice.requires_verification and "verified" in voice.notes[0]
    parts = {p.name: p for p in el.multipart(server.calls("POST", el.VOICES_ADD_PATH)[0])}
    assert "description" not in parts and parts["remove_background_noise"].text.lower() == "true"


def test_elevenlabs_voices_delete_sends_the_voice_id_in_the_path(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer
) -> None:
    server.route("DELETE", el.VOICE_PATH, el.voice_deleted())
    assert _delete(provider, VOICE_ID, settings) is True
    (call,) = server.calls("DELETE", el.VOICE_PATH)
    assert call.path == f"/v1/voices/{VOICE_ID}" and call.headers["xi-api-key"] == KEY


@pytest.mark.parametrize("reply", [el.not_found("voice_not_found"), el.not_found(),
                                   el.api_error(400, "voice_does_not_exist", "A voice with that id does not exist.")])
def test_elevenlabs_voices_delete_of_a_voice_elevenlabs_lacks_answers_false(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, reply: Reply
) -> None:
    server.route("DELETE", el.VOICE_PATH, reply)
    assert _delete(provider, VOICE_ID, settings) is False


def test_elevenlabs_voices_delete_refuses_an_id_that_is_not_one(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer
) -> None:
    err = _error(_delete, provider, "../../v1/user", settings)
    assert isinstance(err, InputError) and server.requests == []


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "needles"),
    [
        (el.rate_limited("3"), RateLimited, ["429"]),
        (el.server_error(500), Unavailable, ["500"]),
        (el.server_error(503), Unavailable, ["503"]),
        (el.bad_sample(), InputError, ["could not clone a voice from this sample", "no speech was detected"]),
        (el.bad_sample(400), InputError, ["400", "no speech was detected"]),
        (el.voice_limit_reached(), Unavailable, ["no custom voice slot left", "delete_voice", "10 / 10"]),
        (el.cloning_not_in_plan(), Unavailable, ["does not include instant voice cloning", "ELEVENLABS_API_KEY"]),
        (el.paid_plan_required(), Unavailable, ["does not include instant voice cloning"]),
        (el.api_error(400, "famous_voice_not_permitted", "This voice belongs to a public figure."), Refused,
         ["refused to clone"]),
        (el.api_error(401, "missing_permissions", "The API key lacks the permission voices_write."), NotConfigured,
         ["may not manage voices", "voices_write"]),
        (el.quota_exceeded(), Unavailable, ["quota"]),
        (json_reply({"unexpected": True}), BadOutput, ["voice_id"]),
        (json_reply({"voice_id": "../../escape", "requires_verification": False}), BadOutput, ["voice_id"]),
        (Reply(status=200, body=b"<html>not json</html>", headers={"content-type": "text/html"}), BadOutput,
         ["not the expected JSON"]),
    ],
)
def test_elevenlabs_voices_clone_failures_map_to_the_error_tree(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path,
    reply: Reply, kind: type[YtapError], needles: list[str],
) -> None:
    server.route("POST", el.VOICES_ADD_PATH, reply)
    err = _error(_clone, provider, sample, settings)
    assert type(err) is kind, err
    for needle in needles:
        assert needle in err.message, err.message
    assert KEY not in err.message
    assert len(server.calls("POST", el.VOICES_ADD_PATH)) == 1  # the SDK never retries on its own
    if isinstance(err, RateLimited):
        assert err.retry_after_s == 3.0
    if isinstance(err, Unavailable) and ("slot" in err.message or "plan" in err.message):
        assert err.retryable is False


def test_elevenlabs_voices_rejected_key_is_not_configured_and_never_quoted(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path
) -> None:
    server.route("POST", el.VOICES_ADD_PATH, el.invalid_api_key())
    server.route("DELETE", el.VOICE_PATH, el.invalid_api_key())
    for err in (_error(_clone, provider, sample, settings), _error(_delete, provider, VOICE_ID, settings)):
        assert isinstance(err, NotConfigured) and "ELEVENLABS_API_KEY was rejected (401)" in err.message
        assert KEY not in err.message and KEY not in str(err)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [(el.rate_limited("2"), RateLimited), (el.server_error(502), Unavailable),
     (json_reply({"status": "ok"}, status=403), NotConfigured)],
)
def test_elevenlabs_voices_delete_failures_map_to_the_error_tree(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, reply: Reply,
    kind: type[ProviderError],
) -> None:
    server.route("DELETE", el.VOICE_PATH, reply)
    err = _error(_delete, provider, VOICE_ID, settings)
    assert type(err) is kind, err


def test_elevenlabs_voices_without_a_key_nothing_is_sent(
    tmp_path: Path, server: LoopbackServer, sample: Path
) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "ELEVENLABS_BASE_URL": server.url})
    provider = ElevenLabsSpeechProvider(settings)
    for err in (_error(_clone, provider, sample, settings), _error(_delete, provider, VOICE_ID, settings)):
        assert isinstance(err, NotConfigured) and "ELEVENLABS_API_KEY not set" in err.message
    assert server.requests == []


def test_elevenlabs_voices_slow_answer_times_out(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path
) -> None:
    provider.clone_timeout_s = 0.5
    server.route("POST", el.VOICES_ADD_PATH, Reply(status=200, body=b"{}", delay_s=2.0))
    err = _error(_clone, provider, sample, settings)
    assert isinstance(err, TimedOut) and "0.5 s" in err.message


def test_elevenlabs_voices_dropped_connection_is_unavailable(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, sample: Path
) -> None:
    server.route("POST", el.VOICES_ADD_PATH, Reply(drop=True))
    err = _error(_clone, provider, sample, settings)
    assert isinstance(err, Unavailable) and "could not be reached" in err.message
