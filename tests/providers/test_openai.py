"""OpenAI providers against a loopback server speaking OpenAI's wire format (no internet).

The real SDK (``AsyncOpenAI`` on httpx2) is pointed at ``OPENAI_BASE_URL=<loopback>/v1``;
replies are scripted with tests/vendors/openai_mock.py. Media results are probed, never
trusted. Every failure is checked twice: the provider alone raises the mapped
``core.errors`` class, and a ``FallbackChain([openai, local])`` lets the local tier win
while recording the OpenAI attempt with its reason — with the key nowhere in either.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Settings
from core.errors import (
    BadOutput,
    InputError,
    JobFailed,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Refused,
    TimedOut,
    Unavailable,
)
from core.media.probe import probe
from core.providers import pricing
from core.providers.base import CallContext, ImageSpec, ProviderOutput, SpeechSpec, VideoSpec
from core.services.narration import finish_speech
from core.services.scenes import finish_clip
from core.providers.chain import FallbackChain
from core.providers.local import LocalEspeakSpeechProvider, LocalPillowImageProvider, LocalPlaceholderVideoProvider
from core.providers.openai import (
    OpenAIImageProvider,
    OpenAISpeechProvider,
    OpenAITTSHDSpeechProvider,
    OpenAIVideoProvider,
    _retry_after_s,
    split_for_speech,
)
from core.providers.resilience import RetryPolicy
from tests.vendors import openai_mock as om
from tests.vendors.loopback import LoopbackServer, Reply, json_reply

KEY = "FAKE-openai-Yt4pQ9distinctive-kEy-7w2m"
TIMEOUT_S = 10.0  # per-request client timeout: generous, the test machine may be busy
SHORT_TIMEOUT_S = 0.3  # for the timeout cases; the scripted reply sleeps well past it

SPEECH = SpeechSpec(segments=("Hello there, friends.", "The second scene speaks now."), voice="nova",
                    instructions="Warm, calm and unhurried.")
IMAGE = ImageSpec(prompt="Rust, fast: a quick tour", style="neon")
VIDEO = VideoSpec(prompt="a red fox running through fresh snow", scene_index=1, duration_s=1.5, width=320,
                  height=180, fps=12, style="cinematic", negative_prompt="text overlays")


@pytest.fixture
def settings(tmp_path: Path, server: LoopbackServer) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": KEY,
                              "OPENAI_BASE_URL": server.url + "/v1"})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "video"
    d.mkdir()
    return d


def _ctx(settings: Settings) -> CallContext:
    return CallContext(settings=settings)


def _speech(settings: Settings, timeout_s: float = TIMEOUT_S) -> OpenAISpeechProvider:
    return OpenAISpeechProvider(settings, timeout_s=timeout_s)


def _image(settings: Settings, timeout_s: float = TIMEOUT_S) -> OpenAIImageProvider:
    return OpenAIImageProvider(settings, timeout_s=timeout_s)


def _video(settings: Settings, timeout_s: float = TIMEOUT_S, **kw: float) -> OpenAIVideoProvider:
    kw.setdefault("poll_interval_s", 0.02)
    return OpenAIVideoProvider(settings, timeout_s=timeout_s, **kw)


def _call(provider: Any, spec: Any, out: Path, ctx: CallContext, finish: Any = None) -> ProviderOutput:
    method = getattr(provider, {"speech": "synthesize", "image": "generate_image",
                                "video": "generate_video"}[provider.capability])
    if finish is not None:  # a chain, finishing each attempt's raw output as a service would
        method = functools.partial(method, finish=finish)
    return anyio.run(method, spec, out, ctx)


def _speak(provider: Any, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
    """The provider's raw parts made into the master, as the narration service does (chain + finishing)."""
    return _call(FallbackChain("speech", [provider]), spec, out, ctx, finish_speech(spec))


def _auth(server: LoopbackServer) -> set[str]:
    return {r.headers.get("authorization", "") for r in server.requests}


def _leftovers(work: Path, keep: Path | None = None) -> list[str]:
    return sorted(p.name for p in work.iterdir() if p != keep)


def _assert_key_nowhere(*texts: object) -> None:
    for text in texts:
        assert KEY not in str(text)
        assert KEY[12:] not in str(text)  # not even the part after "FAKE-openai-"


# --- one table for what the three capabilities share ---------------------------------------


@dataclass(frozen=True)
class Capability:
    name: str
    make: Callable[[Settings], Any]
    local: type
    spec: Any
    out_name: str
    route: tuple[str, str]  # the first request each makes
    model: str

    def ok(self, server: LoopbackServer) -> None:
        """Script a full successful exchange."""
        if self.name == "speech":
            server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.4)))
        elif self.name == "image":
            server.route("POST", om.IMAGES, om.images_reply(om.png_bytes()))
        else:
            server.route("POST", om.VIDEOS, om.video_reply(status="queued", seconds="4"))
            server.route("GET", om.VIDEO, om.video_reply(status="in_progress", progress=40, seconds="4"),
                         om.video_reply(status="completed", progress=100, seconds="4"))
            server.route("GET", om.VIDEO_CONTENT, om.video_content_reply(om.mp4_bytes()))


CAPS = {
    "speech": Capability("speech", _speech, LocalEspeakSpeechProvider, SPEECH, "narration.wav",
                         ("POST", om.SPEECH), "gpt-4o-mini-tts"),
    "image": Capability("image", _image, LocalPillowImageProvider, IMAGE, "thumbnail.jpg",
                        ("POST", om.IMAGES), "gpt-image-2"),
    "video": Capability("video", _video, LocalPlaceholderVideoProvider, VIDEO, "scene_001.mp4",
                        ("POST", om.VIDEOS), "sora-2"),
}


def _chain(cap: Capability, settings: Settings, provider: Any = None) -> FallbackChain:
    # One try per provider: the chain's own retries are tested in tests/core/test_chain.py.
    return FallbackChain(cap.name, [provider or cap.make(settings), cap.local(settings)],  # type: ignore[arg-type]
                         retry=RetryPolicy(attempts=1))


def _expect_fallback(cap: Capability, settings: Settings, work: Path, error: type[ProviderError],
                     provider: Any = None, finish: Any = None) -> ProviderOutput:
    """The chain falls back to the local tier; the OpenAI attempt is recorded with its reason."""
    out = work / cap.out_name
    result = _call(_chain(cap, settings, provider), cap.spec, out, _ctx(settings), finish)
    assert result.provider == cap.local.id and out.exists()
    first = result.attempts[0]
    assert (first.provider, first.outcome, first.error_code) == (cap.make(settings).id, "failed", error.code)
    assert first.reason
    _assert_key_nowhere(first.reason, json.dumps([a.model_dump() for a in result.attempts]))
    assert _leftovers(work, keep=out) == []
    return result


def _expect_error(cap: Capability, settings: Settings, work: Path, error: type[ProviderError],
                  provider: Any = None) -> ProviderError:
    out = work / cap.out_name
    with pytest.raises(error) as info:
        _call(provider or cap.make(settings), cap.spec, out, _ctx(settings))
    # Nor in the chained SDK exception a log line would print.
    _assert_key_nowhere(info.value, info.value.message, repr(info.value),
                        "".join(traceback.format_exception(info.value)))
    assert _leftovers(work) == []
    return info.value


# --- speech ---------------------------------------------------------------------------------


def test_speech_master_is_48k_stereo_with_one_timing_per_segment(server: LoopbackServer, settings: Settings,
                                                                   work: Path) -> None:
    server.route("POST", om.SPEECH, om.speech_reply(om.pcm_bytes(0.5)), om.speech_reply(om.pcm_bytes(0.8)))
    out = work / "narration.wav"
    spec = SpeechSpec(segments=SPEECH.segments, voice="nova", instructions=SPEECH.instructions, speed=1.25,
                      pitch_semitones=2)
    result = _speak(_speech(settings), spec, out, _ctx(settings))

    info = probe(out)
    assert info.audio is not None and (info.audio.codec, info.audio.sample_rate, info.audio.channels) == \
        ("pcm_s16le", 48000, 2)
    # Speed is the vendor's (sent as speed=1.25), so the master is 0.5 + gap + 0.8 s long.
    assert info.duration_s == pytest.approx(0.5 + 0.35 + 0.8, abs=0.02)
    assert [s.index for s in result.segments or []] == [1, 2]
    first, second = result.segments or []
    assert (first.text, first.start_s, first.end_s) == (SPEECH.segments[0], 0.0, pytest.approx(0.5, abs=0.01))
    assert second.start_s == pytest.approx(0.85, abs=0.01) and second.end_s == pytest.approx(1.65, abs=0.02)
    assert [w.text for w in first.words] == ["Hello", "there,", "friends."]
    assert (result.provider, result.model, result.voice) == ("openai:gpt-4o-mini-tts", "gpt-4o-mini-tts", "nova")
    assert result.cost_usd == pricing.cost_usd("openai:gpt-4o-mini-tts", sum(map(len, SPEECH.segments)))

    bodies = [r.json() for r in server.calls("POST", om.SPEECH)]
    assert bodies == [{"model": "gpt-4o-mini-tts", "input": text, "voice": "nova", "instructions": SPEECH.instructions,
                       "response_format": "pcm", "speed": 1.25} for text in SPEECH.segments]
    assert _auth(server) == {f"Bearer {KEY}"}
    assert _leftovers(work, keep=out) == []


def test_speech_wav_answers_decode_too(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.wav_bytes(0.3), fmt="wav"))
    provider = _speech(settings)
    provider.response_format = "wav"  # type: ignore[misc]
    result = _speak(provider, SPEECH, work / "n.wav", _ctx(settings))
    assert probe(work / "n.wav").duration_s == pytest.approx(0.3 + 0.35 + 0.3, abs=0.02)
    assert len(result.segments or []) == 2
    assert {r.json()["response_format"] for r in server.requests} == {"wav"}


def test_speech_long_segment_is_split_at_sentence_ends_and_timed_as_one(server: LoopbackServer, settings: Settings,
                                                                         work: Path) -> None:
    sentence = "This sentence is about fifty characters long, okay. "
    long_text = (sentence * 100).strip()  # ~5200 characters: two requests
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.3)))
    result = _speak(_speech(settings), SpeechSpec(segments=(long_text, "Short one.")), work / "n.wav", _ctx(settings))

    inputs = [r.json()["input"] for r in server.calls("POST", om.SPEECH)]
    assert len(inputs) == 3 and all(len(i) <= 4096 for i in inputs)
    assert inputs[0].endswith("okay.") and " ".join(inputs[:2]) == long_text
    timings = result.segments or []
    assert [(t.index, t.text) for t in timings] == [(1, long_text), (2, "Short one.")]
    assert timings[0].end_s == pytest.approx(0.3 + 0.35 + 0.3, abs=0.02)  # both parts, one segment
    assert len(timings[0].words) == len(long_text.split())
    assert result.cost_usd == pricing.cost_usd("openai:gpt-4o-mini-tts", sum(map(len, inputs)))
    assert result.cost_usd == _speech(settings).estimate_cost_usd(SpeechSpec(segments=(long_text, "Short one.")))


def test_split_for_speech_keeps_text_and_limits() -> None:
    text = "One. Two is a longer sentence! Three? " * 40 + "x" * 130
    pieces = split_for_speech(text, 100)
    assert all(0 < len(p) <= 100 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert pieces[0].endswith(("!", ".", "?"))
    assert split_for_speech("  short   text ", 100) == ["short text"]
    assert split_for_speech("文一。文二。文三。", 4) == ["文一。", "文二。", "文三。"]


def test_speech_unknown_voice_speaks_default_and_says_so(server: LoopbackServer, settings: Settings,
                                                          work: Path) -> None:
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.2)))
    result = _call(_speech(settings), SpeechSpec(segments=("Hi.",), voice="en-us+f3"), work / "n.wav",
                   _ctx(settings))
    assert server.requests[-1].json()["voice"] == "alloy"
    assert result.voice is not None and result.voice.startswith("alloy") and "en-us+f3" in result.voice


def test_speech_custom_voice_id_is_sent_as_object(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.2)))
    result = _call(_speech(settings), SpeechSpec(segments=("Hi.",), voice="voice_1234abcd"), work / "n.wav",
                   _ctx(settings))
    assert server.requests[-1].json()["voice"] == {"id": "voice_1234abcd"} and result.voice == "voice_1234abcd"


def test_tts_hd_sends_no_instructions_and_only_its_voices(server: LoopbackServer, settings: Settings,
                                                           work: Path) -> None:
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.2)))
    provider = OpenAITTSHDSpeechProvider(settings, timeout_s=TIMEOUT_S)
    result = _call(provider, SpeechSpec(segments=("Hi.",), voice="marin", instructions="whisper"), work / "n.wav",
                   _ctx(settings))
    body = server.requests[-1].json()
    assert body["model"] == "tts-1-hd" and "instructions" not in body and body["voice"] == "alloy"
    assert (result.provider, result.cost_usd) == ("openai:tts-1-hd", pricing.cost_usd("openai:tts-1-hd", 3))
    server.route("POST", om.SPEECH, om.speech_reply(om.pcm_bytes(0.2)))
    _call(provider, SpeechSpec(segments=("Hi.",), voice="Onyx"), work / "n.wav", _ctx(settings))
    assert server.requests[-1].json()["voice"] == "onyx"


def test_speech_blank_segment_is_an_input_error(settings: Settings, server: LoopbackServer, work: Path) -> None:
    with pytest.raises(InputError):
        _call(_speech(settings), SpeechSpec(segments=("Hi.", "   ")), work / "n.wav", _ctx(settings))
    assert server.requests == []


def test_speech_truncated_audio_is_bad_output_billed(server: LoopbackServer, settings: Settings, work: Path) -> None:
    for _ in range(2):  # the provider alone, then through the chain
        server.route("POST", om.SPEECH, om.speech_reply(om.pcm_bytes(0.4)),
                     om.speech_reply(om.pcm_bytes(0.4), truncate_to=1001))
    err = _expect_error(CAPS["speech"], settings, work, BadOutput)
    assert "cut short" in err.message
    # Both segments were answered 200: both are billed although the second is unusable.
    assert err.cost_usd == pricing.cost_usd("openai:gpt-4o-mini-tts", sum(map(len, SPEECH.segments)))
    result = _expect_fallback(CAPS["speech"], settings, work, BadOutput)
    assert result.attempts[0].cost_usd == err.cost_usd


def test_speech_json_instead_of_audio_is_bad_output(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.SPEECH, sticky=json_reply({"object": "list", "data": []}))
    err = _expect_error(CAPS["speech"], settings, work, BadOutput)
    assert "application/json" in err.message
    _expect_fallback(CAPS["speech"], settings, work, BadOutput)


# --- image ----------------------------------------------------------------------------------


def test_image_is_returned_as_made(server: LoopbackServer, settings: Settings, work: Path) -> None:
    """Raw media: OpenAI's picture byte for byte (no title drawn; the thumbnail service does that)."""
    server.route("POST", om.IMAGES, om.images_reply(om.png_bytes()))
    out = work / "thumbnail.jpg"
    result = _call(_image(settings), IMAGE, out, _ctx(settings))

    assert out.read_bytes() == om.png_bytes()
    assert (result.provider, result.model, result.cost_usd) == \
        ("openai:gpt-image-2", "gpt-image-2", pricing.cost_usd("openai:gpt-image-2", 1))
    body = server.requests[-1].json()
    assert {k: body[k] for k in ("model", "size", "quality", "n")} == \
        {"model": "gpt-image-2", "size": "1536x1024", "quality": "medium", "n": 1}
    assert "response_format" not in body  # GPT image models always answer base64; the legacy knob is refused
    assert "Rust, fast" in body["prompt"] and "neon" in body["prompt"]
    assert "Do not draw any text" in body["prompt"]
    assert OpenAIImageProvider.size_for(ImageSpec(prompt="p", width=1080, height=1920)) == "1024x1536"
    assert _auth(server) == {f"Bearer {KEY}"}
    assert _leftovers(work, keep=out) == []


def test_image_uses_the_callers_prompt(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.IMAGES, om.images_reply(om.png_bytes()))
    _call(_image(settings), ImageSpec(prompt="a lighthouse at dusk"), work / "t.jpg", _ctx(settings))
    prompt = server.requests[-1].json()["prompt"]
    assert prompt.startswith("a lighthouse at dusk") and "Do not draw any text" in prompt


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (lambda: Reply(body=b'{"created": 1761, "data": [{"b64_json": "iVBOR', headers={
            "content-type": "application/json"}), "malformed JSON"),
        (lambda: om.images_reply(b"this is not an image, just text"), "does not decode as an image"),
        (lambda: json_reply({"created": 1761, "data": [{"b64_json": "@@not base64@@"}]}), "not valid base64"),
        (lambda: json_reply({"created": 1761, "data": []}), "no base64 image"),
        (lambda: om.images_reply(om.png_bytes(), truncate_to=300), "cut short"),
    ],
    ids=["malformed-json", "not-an-image", "bad-base64", "no-data", "truncated"],
)
def test_image_broken_answers_are_bad_output_billed(server: LoopbackServer, settings: Settings, work: Path,
                                                    reply: Callable[[], Reply], words: str) -> None:
    server.route("POST", om.IMAGES, reply(), reply())
    err = _expect_error(CAPS["image"], settings, work, BadOutput)
    assert words in err.message and err.cost_usd == pricing.cost_usd("openai:gpt-image-2", 1)
    _expect_fallback(CAPS["image"], settings, work, BadOutput)


@pytest.mark.parametrize(("reply", "reasons"), [(lambda: om.moderation_reply(("violence", "gore")),
                                                 ["violence", "gore"]),
                                                (om.content_policy_reply, ["content_policy_violation"])],
                         ids=["moderation_blocked", "content_policy_violation"])
def test_image_refusal_is_refused_with_reasons(server: LoopbackServer, settings: Settings, work: Path,
                                               reply: Callable[[], Reply], reasons: list[str]) -> None:
    server.route("POST", om.IMAGES, reply(), reply())
    err = _expect_error(CAPS["image"], settings, work, Refused)
    assert isinstance(err, Refused) and err.reasons == reasons and "safety" in err.message
    assert err.cost_usd == 0.0
    result = _expect_fallback(CAPS["image"], settings, work, Refused)
    assert "safety system" in (result.attempts[0].reason or "")


def test_image_other_bad_request_is_unavailable_not_input(server: LoopbackServer, settings: Settings,
                                                          work: Path) -> None:
    reply = om.invalid_request_reply("size", "Invalid value: '1536x1024'. Supported values are: 'auto'.")
    server.route("POST", om.IMAGES, reply, reply)
    err = _expect_error(CAPS["image"], settings, work, Unavailable)
    assert "rejected" in err.message and "400" in err.message and "Supported values" in err.message
    _expect_fallback(CAPS["image"], settings, work, Unavailable)


# --- video ----------------------------------------------------------------------------------


def test_video_job_is_polled_downloaded_and_normalised(server: LoopbackServer, settings: Settings,
                                                       work: Path) -> None:
    """Sora's raw clip, put in the scene format by the scene service's finishing step inside the chain."""
    CAPS["video"].ok(server)
    out = work / "scene_001.mp4"
    progress: list[float] = []
    ctx = CallContext(settings=settings, progress=lambda f, m: progress.append(f))
    result = _call(FallbackChain("video", [_video(settings)]), VIDEO, out, ctx, finish_clip(VIDEO))

    info = probe(out, count_frames=True)
    v, a = info.video, info.audio
    assert v is not None and (v.codec, v.profile, v.pix_fmt, v.width, v.height, v.fps) == \
        ("h264", "High", "yuv420p", 320, 180, 12.0)
    assert v.frames == 18  # exactly duration_s * fps: the 1 s clip had its last frame held
    assert a is not None and (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 2)
    assert (result.provider, result.model, result.cost_usd) == \
        ("openai:sora-2", "sora-2", pricing.cost_usd("openai:sora-2", 4))

    create = server.calls("POST", om.VIDEOS)[0]
    assert create.headers["content-type"].startswith("multipart/form-data")
    fields = om.multipart_fields(create)
    assert {k: fields[k] for k in ("model", "seconds", "size")} == {"model": "sora-2", "seconds": "4",
                                                                      "size": "1280x720"}
    assert fields["prompt"] == "a red fox running through fresh snow\nStyle: cinematic\nAvoid: text overlays"
    assert len(server.calls("GET", om.VIDEO)) == 2
    assert server.calls("GET", om.VIDEO_CONTENT)[0].query == "variant=video"
    assert _auth(server) == {f"Bearer {KEY}"}
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert _leftovers(work, keep=out) == []


def test_video_seconds_and_size_follow_the_spec(settings: Settings) -> None:
    p = _video(settings)
    assert [p.seconds_for(d) for d in (1, 4, 4.5, 8, 8.01, 12, 30)] == [4, 4, 8, 8, 12, 12, 12]
    assert p.size_for(VIDEO) == "1280x720"
    assert p.size_for(VideoSpec(prompt="p", scene_index=1, duration_s=8, width=1080, height=1920,
                                aspect_ratio="9:16")) == "720x1280"
    assert p.estimate_cost_usd(VideoSpec(prompt="p", scene_index=1, duration_s=10, width=1920, height=1080)) == \
        pytest.approx(1.2)
    assert (OpenAIVideoProvider.poll_deadline_s, OpenAIVideoProvider.poll_interval_s) == (600.0, 5.0)


def test_video_failed_job_is_job_failed_with_vendor_message(server: LoopbackServer, settings: Settings,
                                                            work: Path) -> None:
    failed = om.video_reply(status="failed", progress=12, error={
        "code": "video_generation_failed", "message": "Video generation failed due to an internal error."})
    for _ in range(2):
        server.route("POST", om.VIDEOS, om.video_reply(status="queued"))
        server.route("GET", om.VIDEO, om.video_reply(status="in_progress", progress=5), failed)
    err = _expect_error(CAPS["video"], settings, work, JobFailed)
    assert "Video generation failed due to an internal error." in err.message and err.cost_usd == 0.0
    result = _expect_fallback(CAPS["video"], settings, work, JobFailed)
    assert "internal error" in (result.attempts[0].reason or "")


def test_video_moderated_job_is_refused(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.VIDEOS, om.video_reply(status="queued"))
    server.route("GET", om.VIDEO, om.video_reply(status="failed", error={
        "code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}))
    err = _expect_error(CAPS["video"], settings, work, Refused)
    assert isinstance(err, Refused) and err.reasons == ["moderation_blocked"]


@pytest.mark.parametrize(("content", "words"), [
    (lambda: om.video_content_reply(om.mp4_bytes(), truncate_to=4000), "cut short"),
    (lambda: om.video_content_reply(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 5000), "unusable"),
], ids=["truncated", "undecodable"])
def test_video_broken_download_is_bad_output_billed(server: LoopbackServer, settings: Settings, work: Path,
                                                    content: Callable[[], Reply], words: str) -> None:
    for _ in range(2):
        server.route("POST", om.VIDEOS, om.video_reply(status="queued", seconds="4"))
        server.route("GET", om.VIDEO, om.video_reply(status="completed", progress=100, seconds="4"))
        server.route("GET", om.VIDEO_CONTENT, content())
    if words == "cut short":  # the transport's failure, the provider's own error
        err = _expect_error(CAPS["video"], settings, work, BadOutput)
        assert words in err.message and err.cost_usd == pricing.cost_usd("openai:sora-2", 4)
    # A clip that downloads but does not decode fails in the finishing step, inside the same attempt.
    result = _expect_fallback(CAPS["video"], settings, work, BadOutput, finish=finish_clip(VIDEO))
    assert words in (result.attempts[0].reason or "")
    assert result.attempts[0].cost_usd == pricing.cost_usd("openai:sora-2", 4)


def test_video_malformed_job_answer_is_bad_output(server: LoopbackServer, settings: Settings, work: Path) -> None:
    broken = Reply(body=b'{"id": "video_1", "status": ', headers={"content-type": "application/json"})
    server.route("POST", om.VIDEOS, broken, broken)
    err = _expect_error(CAPS["video"], settings, work, BadOutput)
    assert "malformed JSON" in err.message
    _expect_fallback(CAPS["video"], settings, work, BadOutput)


def test_video_polling_deadline_is_timed_out(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.VIDEOS, om.video_reply(status="queued"))
    server.route("GET", om.VIDEO, sticky=om.video_reply(status="in_progress", progress=30))
    started = time.monotonic()
    err = _expect_error(CAPS["video"], settings, work, TimedOut, provider=_video(settings, poll_deadline_s=0.3))
    assert time.monotonic() - started < 3.0
    assert "did not finish within 0.3 s" in err.message and "in_progress" in err.message


def test_video_survives_a_failed_status_check(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.VIDEOS, om.video_reply(status="queued", seconds="4"))
    server.route("GET", om.VIDEO, om.server_error_reply(503), Reply(drop=True),
                 om.video_reply(status="completed", progress=100, seconds="4"))
    server.route("GET", om.VIDEO_CONTENT, om.video_content_reply(om.mp4_bytes()))
    result = _call(_video(settings), VIDEO, work / "s.mp4", _ctx(settings))
    assert result.provider == "openai:sora-2" and len(server.calls("GET", om.VIDEO)) == 3


def test_video_gives_up_after_repeated_status_failures(server: LoopbackServer, settings: Settings,
                                                       work: Path) -> None:
    server.route("POST", om.VIDEOS, om.video_reply(status="queued"))
    server.route("GET", om.VIDEO, sticky=om.server_error_reply(500))
    err = _expect_error(CAPS["video"], settings, work, Unavailable)
    assert "3 status checks in a row failed" in err.message and len(server.calls("GET", om.VIDEO)) == 3


def test_video_cancel_stops_polling_promptly(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.VIDEOS, om.video_reply(status="queued"))
    server.route("GET", om.VIDEO, sticky=om.video_reply(status="in_progress", progress=10))
    ctx = _ctx(settings)
    threading.Timer(0.3, ctx.cancel.set).start()
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        # Through the chain: a cancellation is not a provider failure, nothing falls back.
        _call(_chain(CAPS["video"], settings, _video(settings, poll_interval_s=0.5)), VIDEO,
              work / "scene_001.mp4", ctx)
    assert time.monotonic() - started < 2.0  # not the 600 s polling deadline
    assert _leftovers(work) == []


def test_speech_cancel_interrupts_a_waiting_request(server: LoopbackServer, settings: Settings, work: Path) -> None:
    server.route("POST", om.SPEECH, om.speech_reply(om.pcm_bytes(0.2), delay_s=5))
    ctx = _ctx(settings)
    threading.Timer(0.2, ctx.cancel.set).start()
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        _call(OpenAISpeechProvider(settings, timeout_s=10), SPEECH, work / "n.wav", ctx)
    assert time.monotonic() - started < 2.5  # the socket wait was cut, not the 5 s reply or 10 s timeout
    assert _leftovers(work) == []


# --- what every capability shares -----------------------------------------------------------


FAILURES: dict[str, tuple[Callable[[str], Reply], type[ProviderError], str]] = {
    "429-retry-after": (lambda m: om.rate_limit_reply(retry_after_s=7, model=m), RateLimited, "429"),
    "500": (lambda m: om.server_error_reply(500), Unavailable, "500"),
    "503": (lambda m: om.server_error_reply(503), Unavailable, "503"),
    "timeout": (lambda m: Reply(delay_s=SHORT_TIMEOUT_S + 1.5), TimedOut, f"within {SHORT_TIMEOUT_S:g} s"),
    "dropped": (lambda m: Reply(drop=True), Unavailable, "could not be reached"),
    "404-gone": (lambda m: om.model_not_found_reply(m), Unavailable, "is gone (404)"),
    "401-key-rejected": (lambda m: om.invalid_key_reply(KEY), NotConfigured, "OPENAI_API_KEY was rejected (401)"),
    "403-forbidden": (lambda m: om.invalid_key_reply(KEY, status=403), NotConfigured,
                      "OPENAI_API_KEY was rejected (403)"),
    "429-quota": (lambda m: om.quota_reply(), Unavailable, "quota exhausted"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("capability", list(CAPS))
def test_failure_is_mapped_and_the_local_tier_wins(server: LoopbackServer, settings: Settings, work: Path,
                                                   capability: str, failure: str) -> None:
    cap = CAPS[capability]
    make_reply, error, words = FAILURES[failure]
    server.route(*cap.route, make_reply(cap.model), make_reply(cap.model))
    provider = cap.make(settings, SHORT_TIMEOUT_S if failure == "timeout" else TIMEOUT_S)
    err = _expect_error(cap, settings, work, error, provider)
    assert words in err.message
    assert err.cost_usd == 0.0  # refused before anything was generated
    assert len(server.calls(*cap.route)) == 1  # the SDK did not retry behind the chain's back
    if isinstance(err, RateLimited):
        assert err.retry_after_s == 7
    result = _expect_fallback(cap, settings, work, error, provider)
    assert words in (result.attempts[0].reason or "")


@pytest.mark.parametrize("capability", list(CAPS))
def test_missing_key_skips_without_a_request(server: LoopbackServer, tmp_path: Path, work: Path,
                                             capability: str) -> None:
    cap = CAPS[capability]
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "OPENAI_BASE_URL": server.url + "/v1"})
    assert cap.make(settings).unavailable_reason() == "OPENAI_API_KEY not set"
    result = _call(_chain(cap, settings), cap.spec, work / cap.out_name, _ctx(settings))
    assert result.provider == cap.local.id
    assert (result.attempts[0].outcome, result.attempts[0].reason) == ("skipped", "OPENAI_API_KEY not set")
    assert server.requests == []


def test_every_provider_states_its_facts(settings: Settings) -> None:
    for cls, cap, model in [(OpenAISpeechProvider, "speech", "gpt-4o-mini-tts"),
                            (OpenAITTSHDSpeechProvider, "speech", "tts-1-hd"),
                            (OpenAIImageProvider, "image", "gpt-image-2"), (OpenAIVideoProvider, "video", "sora-2")]:
        assert (cls.id, cls.capability, cls.model, cls.key_env, cls.paid) == \
            (f"openai:{model}", cap, model, "OPENAI_API_KEY", True)
        assert pricing.price_for(cls.id) is not None and cls(settings).unavailable_reason() is None


def test_rate_limit_retry_after_ms_and_the_chain_honours_it(server: LoopbackServer, settings: Settings,
                                                            work: Path) -> None:
    server.route("POST", om.IMAGES, om.rate_limit_reply(retry_after_ms=150, retry_after_s=1),
                 om.images_reply(om.png_bytes()))
    chain = FallbackChain("image", [_image(settings), LocalPillowImageProvider(settings)],
                          retry=RetryPolicy(attempts=2))
    started = time.monotonic()
    result = _call(chain, IMAGE, work / "t.jpg", _ctx(settings))
    assert result.provider == "openai:gpt-image-2" and time.monotonic() - started >= 0.15
    assert [a.outcome for a in result.attempts] == ["failed", "succeeded"]
    assert "retry after 0.15 s" in (result.attempts[0].reason or "")


def test_retry_after_parsing() -> None:
    assert _retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert _retry_after_s({"retry-after": "12"}) == 12.0
    assert _retry_after_s({}) is None and _retry_after_s({"retry-after": "soon"}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (_retry_after_s({"retry-after": date}) or 0) <= 31


def test_one_client_per_provider_and_loop(server: LoopbackServer, settings: Settings, work: Path) -> None:
    provider = _speech(settings)
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(0.2)))

    async def twice() -> tuple[Any, Any]:
        await provider.synthesize(SpeechSpec(segments=("One.",)), work / "a.wav", _ctx(settings))
        first = provider._client()
        await provider.synthesize(SpeechSpec(segments=("Two.",)), work / "b.wav", _ctx(settings))
        return first, provider._client()

    first, second = anyio.run(twice)
    assert first is second and first.max_retries == 0
    # A later event loop (a test, a restarted runner) gets its own client: httpx2 pools are loop-bound.
    _call(provider, SpeechSpec(segments=("Three.",)), work / "c.wav", _ctx(settings))
    assert len(server.requests) == 3
