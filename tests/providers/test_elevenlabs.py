"""ElevenLabs speech over the wire: the real SDK against a loopback server speaking ElevenLabs' format.

Every test reaches only 127.0.0.1 (tests/vendors/loopback.py); the audio served is a real
MP3 made by ffmpeg, so decoding, truncation and timings are checked on real media.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.media.probe import probe
from core.providers import CallContext, FallbackChain, ProviderOutput, SpeechSpec
from core.providers.elevenlabs import DEFAULT_VOICE_ID, ElevenLabsSpeechProvider, split_text, words_from_alignment
from core.providers.local import LocalEspeakSpeechProvider
from core.providers.pricing import price_for
from core.providers.resilience import RetryPolicy
from core.services.narration import finish_speech
from tests.vendors import elevenlabs_mock as el
from tests.vendors.loopback import LoopbackServer, Reply, Request, json_reply

KEY = "sk_test_4f1d9c77e2b8_DISTINCTIVE_FAKE_KEY"
PRICE = price_for("elevenlabs:eleven_multilingual_v2").usd_per_unit  # type: ignore[union-attr]
ONE = ("Hello there world.",)
GAP_S = 0.35  # core.media.audio.DEFAULT_GAP_S


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, server: LoopbackServer) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "ELEVENLABS_API_KEY": KEY,
                              "ELEVENLABS_BASE_URL": server.url})


@pytest.fixture
def provider(settings: Settings) -> ElevenLabsSpeechProvider:
    p = ElevenLabsSpeechProvider(settings)
    p.request_timeout_s = 5.0
    return p


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    d = tmp_path / "video"
    d.mkdir()
    return d


def _synth(target: Any, spec: SpeechSpec, out: Path, settings: Settings, cancel: threading.Event | None = None
           ) -> ProviderOutput:
    """A chain makes the master of its parts, as the narration service's does; a bare provider answers raw."""
    ctx = CallContext(settings=settings, cancel=cancel or threading.Event())
    if isinstance(target, FallbackChain):
        return anyio.run(functools.partial(target.synthesize, finish=finish_speech(spec)), spec, out, ctx)
    return anyio.run(target.synthesize, spec, out, ctx)


def _speak(provider: ElevenLabsSpeechProvider, spec: SpeechSpec, out: Path, settings: Settings) -> ProviderOutput:
    """The provider alone, its parts made into the master."""
    return _synth(FallbackChain("speech", [provider]), spec, out, settings)


def _chain(provider: ElevenLabsSpeechProvider, settings: Settings, retry: RetryPolicy | None = None) -> FallbackChain:
    return FallbackChain("speech", [provider, LocalEspeakSpeechProvider(settings)],
                         retry=retry or RetryPolicy(attempts=1))


def _tts_calls(server: LoopbackServer) -> list[Request]:
    return server.calls("POST", el.TTS_PATH)


# --- facts -------------------------------------------------------------------------------


def test_elevenlabs_states_its_facts(provider: ElevenLabsSpeechProvider) -> None:
    assert provider.id == "elevenlabs:eleven_multilingual_v2"
    assert (provider.capability, provider.model, provider.key_env, provider.paid) == (
        "speech", "eleven_multilingual_v2", "ELEVENLABS_API_KEY", True)
    assert provider.unavailable_reason() is None
    spec = SpeechSpec(segments=("Hello there world.", "Second scene."))
    assert provider.estimate_cost_usd(spec) == pytest.approx((18 + 13) * PRICE)


# --- success -----------------------------------------------------------------------------


def test_elevenlabs_speaks_segments_with_word_timings_from_the_alignment(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path, tmp_path: Path
) -> None:
    first, second = "Hi there.", "Go on, now!"
    known = {
        first: {"characters": list(first),
                "character_start_times_seconds": [0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50],
                "character_end_times_seconds": [0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.62]},
        second: {"characters": list(second),
                 "character_start_times_seconds": [0.05, 0.11, 0.20, 0.26, 0.31, 0.37, 0.42, 0.50, 0.58, 0.66, 0.74],
                 "character_end_times_seconds": [0.11, 0.20, 0.26, 0.31, 0.37, 0.42, 0.50, 0.58, 0.66, 0.74, 0.81]},
    }
    server.route("POST", el.TTS_PATH, sticky=el.speaking(1.0, alignments=known))
    out = video_dir / "narration.wav"

    result = _speak(provider, SpeechSpec(segments=(first, second)), out, settings)

    # The master, probed: 48 kHz stereo, both parts plus the gap.
    info = probe(out)
    assert info.audio and info.audio.sample_rate == 48000 and info.audio.channels == 2
    served_s = _mp3_duration_s(el.sine_mp3(1.0), tmp_path)
    assert info.duration_s == pytest.approx(2 * served_s + GAP_S, abs=0.05)
    assert [p.name for p in video_dir.iterdir()] == ["narration.wav"]

    # Segment timings: absolute, ordered, the second after the first's length plus the gap.
    s1, s2 = result.segments or []
    assert (s1.index, s1.text, s2.index, s2.text) == (1, first, 2, second)
    assert s1.start_s == 0.0 and s1.end_s == pytest.approx(served_s, abs=0.03)
    assert s2.start_s == pytest.approx(s1.end_s + GAP_S, abs=0.002) and s2.end_s > s2.start_s
    # Word timings: first char start / last char end of each word, shifted by the segment's start.
    assert [(w.text, w.start_s, w.end_s) for w in s1.words] == [("Hi", 0.10, 0.20), ("there.", 0.25, 0.62)]
    assert [w.text for w in s2.words] == ["Go", "on,", "now!"]
    for w, (start, end) in zip(s2.words, [(0.05, 0.20), (0.26, 0.42), (0.50, 0.81)], strict=True):
        assert w.start_s == pytest.approx(s2.start_s + start, abs=0.0015)
        assert w.end_s == pytest.approx(s2.start_s + end, abs=0.0015)

    assert result.provider == "elevenlabs:eleven_multilingual_v2" and result.model == "eleven_multilingual_v2"
    assert result.cost_usd == pytest.approx((len(first) + len(second)) * PRICE)
    assert result.voice == f"George ({DEFAULT_VOICE_ID})"

    # The wire: one request per segment, the SDK's path, our key in xi-api-key, the body fields.
    calls = _tts_calls(server)
    assert len(calls) == 2
    for call, text in zip(calls, (first, second), strict=True):
        assert call.path == f"/v1/text-to-speech/{DEFAULT_VOICE_ID}/with-timestamps"
        assert "output_format=mp3_44100_128" in call.query.split("&")
        assert call.headers["xi-api-key"] == KEY
        body = call.json()
        assert body["text"] == text and body["model_id"] == "eleven_multilingual_v2"
        assert body["voice_settings"] == {"stability": 0.5, "similarity_boost": 0.75, "style": 0.0, "speed": 1.0,
                                          "use_speaker_boost": True}


def _mp3_duration_s(mp3: bytes, where: Path) -> float:
    path = where / "served.mp3"
    path.write_bytes(mp3)
    return probe(path).duration_s


def test_elevenlabs_voice_names_map_to_ids_and_unknown_names_fall_back(provider: ElevenLabsSpeechProvider) -> None:
    assert provider.resolve_voice(None) == (DEFAULT_VOICE_ID, f"George ({DEFAULT_VOICE_ID})")
    assert provider.resolve_voice("Sarah") == ("EXAVITQu4vr4xnSDxMaL", "Sarah (EXAVITQu4vr4xnSDxMaL)")
    assert provider.resolve_voice("george") == (DEFAULT_VOICE_ID, f"george ({DEFAULT_VOICE_ID})")
    assert provider.resolve_voice("AbCdEfGhIjKlMnOpQrSt") == ("AbCdEfGhIjKlMnOpQrSt", "AbCdEfGhIjKlMnOpQrSt")
    voice_id, label = provider.resolve_voice("alloy")
    assert voice_id == DEFAULT_VOICE_ID and "'alloy'" in label and "George" in label
    voice_id, label = provider.resolve_voice("Rachel")
    assert voice_id == DEFAULT_VOICE_ID and "retired" in label


def test_elevenlabs_unknown_voice_speaks_with_the_default_and_says_so(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    server.route("POST", el.TTS_PATH, sticky=el.speaking(1.0))
    result = _synth(provider, SpeechSpec(segments=ONE, voice="alloy"), video_dir / "n.wav", settings)
    assert _tts_calls(server)[0].path == f"/v1/text-to-speech/{DEFAULT_VOICE_ID}/with-timestamps"
    assert result.voice and "'alloy' is not an ElevenLabs voice" in result.voice


@pytest.mark.parametrize(("speed", "sent", "rest"), [(0.9, 0.9, 1.0), (1.5, 1.2, 1.25), (0.5, 0.7, 0.5 / 0.7)])
def test_elevenlabs_speed_in_range_is_sent_and_the_rest_applied_when_joining(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path,
    speed: float, sent: float, rest: float,
) -> None:
    assert ElevenLabsSpeechProvider.split_speed(speed) == (pytest.approx(sent), pytest.approx(rest))
    server.route("POST", el.TTS_PATH, sticky=el.speaking(1.0))
    result = _speak(provider, SpeechSpec(segments=ONE, speed=speed), video_dir / "n.wav", settings)
    assert _tts_calls(server)[0].json()["voice_settings"]["speed"] == pytest.approx(sent)
    # The vendor already spoke at ``sent`` (the served tone stays 1 s): only ``rest`` changes its length here.
    seg = (result.segments or [])[0]
    assert seg.end_s == pytest.approx(1.0 / rest, abs=0.04)
    assert probe(video_dir / "n.wav").duration_s == pytest.approx(1.0 / rest, abs=0.06)


def test_elevenlabs_long_segment_is_requested_in_pieces_and_joined_as_one(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    provider.max_chars_per_request = 40
    text = "The first sentence is here. A second one follows it. And then a third, to finish."
    server.route("POST", el.TTS_PATH, sticky=el.speaking(1.0))
    result = _speak(provider, SpeechSpec(segments=(text,)), video_dir / "n.wav", settings)

    sent = [c.json()["text"] for c in _tts_calls(server)]
    assert sent == ["The first sentence is here.", "A second one follows it.", "And then a third, to finish."]
    (seg,) = result.segments or []
    assert seg.text == text and seg.end_s == pytest.approx(3.0, abs=0.05)
    assert [w.text for w in seg.words] == text.split()
    starts = [w.start_s for w in seg.words]
    assert starts == sorted(starts) and seg.words[-1].end_s <= seg.end_s
    assert result.cost_usd == pytest.approx(sum(map(len, sent)) * PRICE)


# --- failures: each mapped, each leaving the chain to espeak -------------------------------


@dataclass
class Case:
    reply: Reply | Callable[[Request], Reply]
    error: type[ProviderError]
    code: str
    says: str  # part of the message
    billed: bool = False  # ElevenLabs answered 2xx, so the characters were billed
    timeout_s: float | None = None
    check: Callable[[Any], None] = field(default=lambda exc: None)


def _retry_after(seconds: float) -> Callable[[Any], None]:
    def check(exc: Any) -> None:
        assert exc.retry_after_s == seconds

    return check


def _refusal(exc: Any) -> None:
    assert exc.reasons and "Terms of Service" in exc.reasons[0]


CASES: dict[str, Case] = {
    "429 too_many_concurrent_requests with Retry-After": Case(
        el.rate_limited("7"), RateLimited, "rate_limited", "too_many_concurrent_requests", check=_retry_after(7.0)),
    "429 concurrent_limit_exceeded, current error shape": Case(
        el.rate_limited("2", "concurrent_limit_exceeded", legacy=False), RateLimited, "rate_limited",
        "concurrent_limit_exceeded", check=_retry_after(2.0)),
    "500": Case(el.server_error(500), Unavailable, "unavailable", "server error (500)"),
    "503 from the load balancer, not JSON": Case(el.server_error(503), Unavailable, "unavailable",
                                                 "server error (503)"),
    "timeout": Case(Reply(delay_s=1.5), TimedOut, "timed_out", "did not answer within 0.3 s", timeout_s=0.3),
    "dropped connection": Case(Reply(drop=True), Unavailable, "unavailable", "could not be reached"),
    "body cut short": Case(Reply(status=200, body=json.dumps(el.speech_body(el.sine_mp3(1.0), ONE[0], 1.0)).encode(),
                                 headers={"content-type": "application/json"}, truncate_to=100),
                           Unavailable, "unavailable", "could not be reached"),
    "malformed body": Case(Reply(status=200, body=b'{"audio_base64": "SUQz',
                                 headers={"content-type": "application/json"}),
                           BadOutput, "bad_output", "not the expected JSON", billed=True),
    "no audio": Case(json_reply({"alignment": None, "normalized_alignment": None}), BadOutput, "bad_output",
                     "without audio", billed=True),
    "truncated media": Case(el.speech_reply(el.sine_mp3(1.0)[:4000], ONE[0], 1.0), BadOutput, "bad_output",
                            "truncated audio", billed=True),
    "undecodable media": Case(el.speech_reply(b"\x00not an mp3 " * 400, ONE[0], 1.0), BadOutput, "bad_output",
                              "cannot be decoded", billed=True),
    "content refused (403, legacy shape)": Case(el.content_against_policy(), Refused, "refused",
                                                "content_against_policy", check=_refusal),
    "content refused (400, current shape)": Case(el.content_against_policy(400, legacy=False), Refused, "refused",
                                                 "content_against_policy", check=_refusal),
    "endpoint gone (404)": Case(el.not_found(), Unavailable, "unavailable", "not found (404)"),
    "voice gone (404 voice_not_found)": Case(el.not_found("voice_not_found"), Unavailable, "unavailable",
                                             "not found (404)"),
    "quota exceeded (401 quota_exceeded)": Case(el.quota_exceeded(), Unavailable, "unavailable", "quota exceeded"),
    "paid plan required (402)": Case(el.paid_plan_required(), Unavailable, "unavailable", "quota exceeded"),
    "free tier blocked (401 detected_unusual_activity)": Case(el.unusual_activity(), Unavailable, "unavailable",
                                                              "detected_unusual_activity"),
    "key rejected (401)": Case(el.invalid_api_key(), NotConfigured, "not_configured",
                               "ELEVENLABS_API_KEY was rejected (401)"),
    "request rejected (422)": Case(el.validation_error(), Unavailable, "unavailable", "rejected the request (422"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_elevenlabs_failure_is_mapped_and_espeak_takes_over(
    name: str, provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    case = CASES[name]
    if case.timeout_s is not None:
        provider.request_timeout_s = case.timeout_s
    server.route("POST", el.TTS_PATH, sticky=case.reply)
    out = video_dir / "narration.wav"
    billed = round(len(ONE[0]) * PRICE, 6) if case.billed else 0.0

    # The provider alone: the mapped error, its cost, no file left behind, no key in sight.
    with pytest.raises(case.error) as info:
        _synth(provider, SpeechSpec(segments=ONE), out, settings)
    exc = info.value
    assert type(exc) is case.error and exc.code == case.code
    assert case.says in exc.message, exc.message
    assert exc.cost_usd == pytest.approx(billed)
    case.check(exc)
    assert KEY not in str(exc) and KEY not in repr(exc.args) and KEY not in json.dumps(exc.to_dict())
    assert list(video_dir.iterdir()) == []
    assert len(_tts_calls(server)) == 1

    # Through the chain: ElevenLabs fails with the reason recorded, espeak-ng speaks.
    result = _synth(_chain(provider, settings), SpeechSpec(segments=ONE), out, settings)
    assert result.provider == "local:espeak-ng"
    failed, won = result.attempts
    assert (failed.provider, failed.outcome, failed.error_code) == (provider.id, "failed", case.code)
    assert failed.reason and case.says in failed.reason
    assert failed.cost_usd == pytest.approx(billed)
    assert (won.provider, won.outcome) == ("local:espeak-ng", "succeeded")
    assert all(KEY not in a.model_dump_json() for a in result.attempts)
    assert [p.name for p in video_dir.iterdir()] == ["narration.wav"]
    assert probe(out).audio is not None


def test_elevenlabs_without_a_key_is_skipped_and_makes_no_request(
    tmp_path: Path, server: LoopbackServer, video_dir: Path
) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "ELEVENLABS_BASE_URL": server.url})
    provider = ElevenLabsSpeechProvider(settings)
    assert provider.unavailable_reason() == "ELEVENLABS_API_KEY not set"
    out = video_dir / "narration.wav"
    with pytest.raises(NotConfigured, match="ELEVENLABS_API_KEY not set"):
        _synth(provider, SpeechSpec(segments=ONE), out, settings)

    result = _synth(_chain(provider, settings), SpeechSpec(segments=ONE), out, settings)
    assert result.provider == "local:espeak-ng"
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome, skipped.reason) == (provider.id, "skipped", "ELEVENLABS_API_KEY not set")
    assert server.requests == []


def test_elevenlabs_input_no_provider_could_serve_fails_before_any_request(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    for spec in (SpeechSpec(segments=()), SpeechSpec(segments=("One.", "  ")), SpeechSpec(segments=ONE, speed=3.0)):
        with pytest.raises(InputError):
            _synth(provider, spec, video_dir / "n.wav", settings)
    assert server.requests == [] and list(video_dir.iterdir()) == []


def test_elevenlabs_retry_after_is_honoured_by_the_chain(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    server.route("POST", el.TTS_PATH, el.rate_limited("1"), sticky=el.speaking(1.0))
    started = time.monotonic()
    result = _synth(_chain(provider, settings, RetryPolicy(attempts=2)), SpeechSpec(segments=ONE),
                    video_dir / "narration.wav", settings)
    assert result.provider == provider.id
    first, second = result.attempts
    assert (first.outcome, first.error_code) == ("failed", "rate_limited")
    assert "retrying in 1.00 s" in (first.reason or "")
    assert second.outcome == "succeeded" and "retry 1" in (second.decision or "")
    # The adapter itself never slept: the one-second pause is the chain's.
    assert time.monotonic() - started >= 1.0
    assert len(_tts_calls(server)) == 2


def test_elevenlabs_cancel_stops_between_segments(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    cancel = threading.Event()
    speak = el.speaking(1.0)

    def speak_then_cancel(req: Request) -> Reply:
        cancel.set()
        return speak(req)

    server.route("POST", el.TTS_PATH, sticky=speak_then_cancel)
    with pytest.raises(OperationCancelled):
        _synth(provider, SpeechSpec(segments=("One.", "Two.", "Three.")), video_dir / "n.wav", settings, cancel)
    assert len(_tts_calls(server)) == 1
    assert list(video_dir.iterdir()) == []


def test_elevenlabs_cancel_cuts_a_pending_request_short(
    provider: ElevenLabsSpeechProvider, settings: Settings, server: LoopbackServer, video_dir: Path
) -> None:
    server.route("POST", el.TTS_PATH, sticky=Reply(delay_s=3.0))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        _synth(provider, SpeechSpec(segments=ONE), video_dir / "n.wav", settings, cancel)
    assert time.monotonic() - started < 1.5
    assert list(video_dir.iterdir()) == []


# --- pure helpers --------------------------------------------------------------------------


def test_elevenlabs_words_from_alignment_groups_characters_by_whitespace() -> None:
    chars = list(" Hi,  you ")
    starts = [0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8]
    ends = [0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    words = words_from_alignment(chars, starts, ends, offset_s=2.0)
    assert [(w.text, w.start_s, w.end_s) for w in words or []] == [("Hi,", 2.1, 2.35), ("you", 2.5, 2.8)]
    assert words_from_alignment(["a"], [0.0, 0.1], [0.1]) is None
    assert words_from_alignment(["a"], [float("nan")], [0.1]) is None


def test_elevenlabs_split_text_prefers_sentence_ends_then_spaces() -> None:
    assert split_text("Short.", 40) == ["Short."]
    assert split_text("One two three. Four five six seven.", 20) == ["One two three.", "Four five six seven."]
    assert split_text("One two. Three four five six seven.", 20) == ["One two. Three four", "five six seven."]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert all(len(p) <= 30 for p in split_text("Word " * 200, 30))
