"""Google providers (Veo, Gemini image, Gemini TTS) through the real google-genai SDK over loopback HTTP.

Every request goes to a LoopbackServer on 127.0.0.1 that speaks the Gemini API / Vertex AI
wire format (tests/vendors/google_mock.py), reached through the SDK's base-URL settings.
Media served is real (MP4 from ffmpeg, PNG from Pillow, PCM/WAV from the stdlib) and
results are checked by probing the files.
"""

from __future__ import annotations

import array
import io
import json
import math
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

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
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.providers.base import CAPABILITY_METHODS, CallContext, ImageSpec, ProviderOutput, SpeechSpec, VideoSpec
from core.services.narration import finish_speech
from core.services.scenes import finish_clip
from core.providers.chain import FallbackChain
from core.providers.google import GeminiImageProvider, GeminiSpeechProvider, GoogleVeoVideoProvider
from core.providers.local import LocalEspeakSpeechProvider, LocalPillowImageProvider, LocalPlaceholderVideoProvider
from core.providers.pricing import cost_usd
from core.providers.resilience import RetryPolicy
from tests.vendors.google_mock import (
    GoogleMock,
    api_error,
    audio_reply,
    blocked_prompt_reply,
    fetch_path,
    generate_content_path,
    google_mock,
    image_reply,
    operation_done,
    operation_failed,
    operation_filtered,
    operation_gcs_only,
    operation_name,
    operation_running,
    operation_started,
    predict_path,
    stopped_reply,
    text_reply,
    voice_name,
)
from tests.vendors.loopback import Reply, json_reply

KEY = "FAKE-google-ytap-test-7c1e5d0b9a42"  # distinctive: searched for in every error and attempt
VEO = GoogleVeoVideoProvider.model
IMAGE = GeminiImageProvider.model
TTS = GeminiSpeechProvider.model
assert VEO and IMAGE and TTS

VIDEO_SPEC = VideoSpec(prompt="A lighthouse at dusk, waves rolling in", scene_index=1, duration_s=1.5, width=320,
                       height=180, fps=24, negative_prompt="blurry, text overlays")
IMAGE_SPEC = ImageSpec(prompt="Maine lighthouses", style="warm")
SPEECH_SPEC = SpeechSpec(segments=("Hello there.", "Welcome to the coast."))
SPEC = {"video": VIDEO_SPEC, "image": IMAGE_SPEC, "speech": SPEECH_SPEC}
OUT_NAME = {"video": "scene_001.mp4", "image": "thumbnail.jpg", "speech": "narration.wav"}
LOCAL = {"video": LocalPlaceholderVideoProvider, "image": LocalPillowImageProvider, "speech": LocalEspeakSpeechProvider}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _sdk_sees_no_developer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-genai also reads os.environ; keep a developer's real keys and endpoints out of the tests."""
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GEMINI_BASE_URL",
                 "GOOGLE_VERTEX_BASE_URL", "GOOGLE_GENAI_API_VERSION", "GOOGLE_GENAI_HTTP_CLIENT",
                 "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_API_USE_MTLS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def mock() -> Iterator[GoogleMock]:
    with google_mock() as m:
        yield m


@dataclass(frozen=True)
class Media:
    mp4: bytes  # 320x180, 24 fps, 1.5 s, a 440 Hz tone; moov at the end like a plain ffmpeg mux
    png: bytes  # 640x360
    pcm24k: bytes  # 0.6 s, s16le mono at 24 kHz (Gemini's audio/L16)
    pcm16k: bytes  # 0.5 s at 16 kHz
    wav: bytes  # 0.5 s, 24 kHz mono WAV


def _tone(rate: int, seconds: float, freq: float = 330.0) -> bytes:
    n = round(rate * seconds)
    samples = array.array("h", (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    d = tmp_path_factory.mktemp("google-media")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=1.5",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.5",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                "-f", "mp4", str(d / "veo.mp4")])
    png = io.BytesIO()
    Image.linear_gradient("L").resize((640, 360)).convert("RGB").save(png, "PNG")
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(_tone(24000, 0.5, 220.0))
    return Media(mp4=(d / "veo.mp4").read_bytes(), png=png.getvalue(), pcm24k=_tone(24000, 0.6),
                 pcm16k=_tone(16000, 0.5), wav=wav.getvalue())


def gemini_settings(tmp_path: Path, mock: GoogleMock, **env: str) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_API_KEY": KEY,
                              "GOOGLE_GEMINI_BASE_URL": mock.url, **env})


def vertex_settings(tmp_path: Path, mock: GoogleMock, **env: str) -> Settings:
    """Express mode: an API key, enterprise on, no project (what the SDK needs for Veo without ADC)."""
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_API_KEY": KEY,
                              "GOOGLE_GENAI_USE_ENTERPRISE": "true", "GOOGLE_VERTEX_BASE_URL": mock.url, **env})


def make(capability: str, settings: Settings, *, timeout_s: float = 5.0) -> Any:
    cls = {"video": GoogleVeoVideoProvider, "image": GeminiImageProvider, "speech": GeminiSpeechProvider}[capability]
    provider = cls(settings)
    provider.request_timeout_s = timeout_s
    if isinstance(provider, GoogleVeoVideoProvider):
        provider.poll_interval_s = 0.01
    return provider


def settings_for(capability: str, tmp_path: Path, mock: GoogleMock) -> Settings:
    return (vertex_settings if capability == "video" else gemini_settings)(tmp_path, mock)


def script(mock: GoogleMock, capability: str, reply: Reply) -> None:
    """Make the capability's first request answer ``reply``, every time."""
    if capability == "video":
        mock.veo_submit(VEO, sticky=reply)
    else:
        mock.generate_content(IMAGE if capability == "image" else TTS, sticky=reply)


def call(provider: Any, capability: str, spec: Any, out: Path, ctx: CallContext, finish: Any = None) -> ProviderOutput:
    """Run one call on a fresh event loop, closing the SDK's connections for that loop afterwards.
    ``finish``: run through a chain that finishes the raw output, as the services do."""
    if finish is not None and not isinstance(provider, FallbackChain):
        provider = FallbackChain(capability, [provider])

    async def run() -> ProviderOutput:
        try:
            method = getattr(provider, CAPABILITY_METHODS[capability])
            if finish is not None:
                return await method(spec, out, ctx, finish=finish)  # type: ignore[no-any-return]
            return await method(spec, out, ctx)  # type: ignore[no-any-return]
        finally:
            for p in getattr(provider, "providers", [provider]):
                if hasattr(p, "aclose"):
                    await p.aclose()

    return anyio.run(run)


def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir(exist_ok=True)
    return d


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def assert_falls_back(capability: str, provider: Any, settings: Settings, d: Path, expected: type[ProviderError],
                      reason_has: str = "") -> ProviderOutput:
    """Through FallbackChain([google, local]): the local tier wins and the failure is recorded.
    Scene and speech chains finish each attempt's raw output, as the services do."""
    # One try per provider: the chain's retry policy has its own tests; here the mapping is under test.
    chain = FallbackChain(capability, [provider, LOCAL[capability](settings)],  # type: ignore[arg-type, list-item]
                          retry=RetryPolicy(attempts=1))
    out = d / OUT_NAME[capability]
    finish = {"video": finish_clip(VIDEO_SPEC), "speech": finish_speech(SPEECH_SPEC)}.get(capability)
    result = call(chain, capability, SPEC[capability], out, CallContext(settings=settings), finish)
    assert result.provider == LOCAL[capability].id and out.exists()
    first, last = result.attempts
    assert (first.provider, first.outcome, first.error_code) == (provider.id, "failed", expected.code)
    assert first.reason and reason_has in first.reason
    assert (last.provider, last.outcome) == (LOCAL[capability].id, "succeeded")
    assert KEY not in json.dumps([a.model_dump(mode="json") for a in result.attempts])
    out.unlink()
    assert leftovers(d) == []
    return result


def no_key_leak(mock: GoogleMock) -> None:
    """The key travels in the x-goog-api-key header and nowhere else."""
    assert mock.requests
    for r in mock.requests:
        assert r.headers.get("x-goog-api-key") == KEY
        assert KEY not in r.path and KEY not in r.query and "key=" not in r.query
        assert KEY.encode() not in r.body


def audio_peak(path: Path) -> float:
    import av
    import numpy as np

    with av.open(str(path)) as c:
        return max(float(np.abs(f.to_ndarray()).max()) for f in c.decode(audio=0))


# --------------------------------------------------------------------------- Veo


def test_veo_express_mode_generates_a_contract_clip_keeping_veos_audio(tmp_path: Path, mock: GoogleMock,
                                                                       media: Media) -> None:
    name = operation_name(VEO)
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, operation_running(name), operation_done(name, media.mp4))
    settings = vertex_settings(tmp_path, mock)
    provider = make("video", settings)
    d = workdir(tmp_path)
    progress: list[float] = []
    result = call(provider, "video", VIDEO_SPEC, d / "scene_001.mp4",
                  CallContext(settings=settings, progress=lambda f, m: progress.append(f)), finish_clip(VIDEO_SPEC))

    assert (result.provider, result.model) == ("google:veo-3.1", "veo-3.1-generate-001")
    assert result.cost_usd == cost_usd("google:veo-3.1", 4) == provider.estimate_cost_usd(VIDEO_SPEC)
    info = probe(result.path, count_frames=True)
    assert info.video and (info.video.codec, info.video.profile, info.video.pix_fmt) == ("h264", "High", "yuv420p")
    assert (info.video.width, info.video.height, info.video.fps, info.video.frames) == (320, 180, 24, 36)
    assert info.audio and (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)
    assert audio_peak(result.path) > 0.1  # Veo's tone, not the silence of a clip without sound
    assert leftovers(d) == ["scene_001.mp4"] and progress and max(progress) <= 1.0

    submit, = mock.calls(predict_path(VEO))
    # Express mode: no project in the path, the key in the header.
    assert submit.path == f"/v1beta1/publishers/google/models/{VEO}:predictLongRunning"
    body = submit.json()
    assert body["instances"] == [{"prompt": VIDEO_SPEC.prompt}]
    assert body["parameters"] == {"aspectRatio": "16:9", "durationSeconds": 4, "resolution": "720p",
                                  "negativePrompt": "blurry, text overlays", "sampleCount": 1, "generateAudio": True}
    polls = mock.calls(fetch_path(VEO))
    assert len(polls) == 2 and all(p.json() == {"operationName": name} for p in polls)
    assert polls[0].path == f"/v1beta1/projects/123456789012/locations/us-central1/publishers/google/models/{VEO}" \
                            ":fetchPredictOperation"
    no_key_leak(mock)


@pytest.mark.parametrize(("requested", "veo"), [(1, 4), (4, 4), (4.5, 6), (6, 6), (7.9, 8), (8, 8), (30, 8)])
def test_veo_duration_is_the_shortest_that_covers_the_request(requested: float, veo: int) -> None:
    assert GoogleVeoVideoProvider.veo_duration_s(requested) == veo


@pytest.mark.parametrize(("aspect", "size", "resolution"), [
    ("16:9", (1920, 1080), "1080p"), ("16:9", (1280, 720), "720p"), ("9:16", (1080, 1920), "720p"),
])
def test_veo_asks_1080p_only_for_16x9_scenes_that_use_it(aspect: str, size: tuple[int, int], resolution: str,
                                                         settings: Settings) -> None:
    spec = VideoSpec(prompt="x", scene_index=1, duration_s=8, width=size[0], height=size[1], aspect_ratio=aspect)
    assert GoogleVeoVideoProvider.veo_aspect_ratio(spec) == aspect
    assert GoogleVeoVideoProvider.veo_resolution(spec) == resolution
    assert GoogleVeoVideoProvider(settings).estimate_cost_usd(spec) == cost_usd("google:veo-3.1", 8)


def test_veo_project_mode_uses_adc_bearer_token_and_the_project_path(tmp_path: Path, mock: GoogleMock, media: Media,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    class FakeCredentials:
        token, expired, quota_project_id = "ya29.test-token", False, None

    monkeypatch.setattr(google.auth, "default", lambda **kw: (FakeCredentials(), "my-project"))
    name = operation_name(VEO, project="my-project", location="europe-west4")
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, operation_done(name, media.mp4))
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_CLOUD_PROJECT": "my-project",
                                  "GOOGLE_CLOUD_LOCATION": "europe-west4", "GOOGLE_VERTEX_BASE_URL": mock.url})
    provider = make("video", settings)
    assert provider.unavailable_reason() is None
    result = call(provider, "video", VIDEO_SPEC, workdir(tmp_path) / "scene_001.mp4", CallContext(settings=settings))
    assert result.path.exists()
    submit, = mock.calls(predict_path(VEO))
    assert submit.path == f"/v1beta1/projects/my-project/locations/europe-west4/publishers/google/models/{VEO}" \
                          ":predictLongRunning"
    assert submit.headers["authorization"] == "Bearer ya29.test-token" and "x-goog-api-key" not in submit.headers


def test_veo_project_mode_without_credentials_is_not_configured(tmp_path: Path, mock: GoogleMock,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    import google.auth.exceptions

    def no_adc(**kw: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_CLOUD_PROJECT": "my-project",
                                  "GOOGLE_CLOUD_LOCATION": "us-central1", "GOOGLE_VERTEX_BASE_URL": mock.url})
    d = workdir(tmp_path)
    provider = make("video", settings)
    with pytest.raises(NotConfigured, match="application-default login"):
        call(provider, "video", VIDEO_SPEC, d / "scene_001.mp4", CallContext(settings=settings))
    assert leftovers(d) == [] and mock.requests == []
    assert_falls_back("video", provider, settings, d, NotConfigured, "credentials")


def _veo_failure(tmp_path: Path, mock: GoogleMock, done: Reply, expected: type[ProviderError]) -> ProviderError:
    name = operation_name(VEO)
    mock.veo_submit(VEO, sticky=operation_started(name))
    mock.veo_poll(VEO, sticky=done)
    settings = vertex_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("video", settings)
    with pytest.raises(expected) as info:
        call(provider, "video", VIDEO_SPEC, d / "scene_001.mp4", CallContext(settings=settings))
    assert leftovers(d) == [] and KEY not in str(info.value)
    assert_falls_back("video", provider, settings, d, expected)
    return info.value


def test_veo_safety_filtered_result_is_refused_with_veos_reasons_and_not_billed(tmp_path: Path,
                                                                               mock: GoogleMock) -> None:
    reasons = ["Unable to generate videos because the prompt may violate our policies. Support codes: 58061214"]
    err = _veo_failure(tmp_path, mock, operation_filtered(operation_name(VEO), reasons), Refused)
    assert isinstance(err, Refused) and err.reasons == reasons and err.cost_usd == 0.0


def test_veo_failed_operation_is_a_failed_job(tmp_path: Path, mock: GoogleMock) -> None:
    err = _veo_failure(tmp_path, mock, operation_failed(operation_name(VEO)), JobFailed)
    assert "code 13" in err.message and err.cost_usd == 0.0


def test_veo_result_with_only_a_gcs_uri_is_bad_output_and_billed(tmp_path: Path, mock: GoogleMock) -> None:
    err = _veo_failure(tmp_path, mock, operation_gcs_only(operation_name(VEO)), BadOutput)
    assert "gs://veo-bucket/sample_0.mp4" in err.message and "output_gcs_uri" in err.message
    assert err.cost_usd == cost_usd("google:veo-3.1", 4)


def test_veo_truncated_video_bytes_are_bad_output_and_billed(tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    """Veo answers; its clip fails the finishing step inside the attempt: that attempt's failure, billed."""
    name = operation_name(VEO)
    mock.veo_submit(VEO, sticky=operation_started(name))
    mock.veo_poll(VEO, sticky=operation_done(name, media.mp4[: len(media.mp4) // 2]))
    settings = vertex_settings(tmp_path, mock)
    result = assert_falls_back("video", make("video", settings), settings, workdir(tmp_path), BadOutput,
                               reason_has="unusable")
    assert result.attempts[0].cost_usd == cost_usd("google:veo-3.1", 4)


def test_veo_poll_deadline_times_out_and_counts_the_running_job(tmp_path: Path, mock: GoogleMock) -> None:
    name = operation_name(VEO)
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, sticky=operation_running(name))
    settings = vertex_settings(tmp_path, mock)
    provider = make("video", settings)
    provider.poll_deadline_s = 0.3
    d = workdir(tmp_path)
    with pytest.raises(TimedOut, match="did not finish within 0.3 s") as info:
        call(provider, "video", VIDEO_SPEC, d / "scene_001.mp4", CallContext(settings=settings))
    assert info.value.cost_usd == cost_usd("google:veo-3.1", 4) and leftovers(d) == []


def test_veo_rides_out_a_failed_poll_but_gives_up_after_several(tmp_path: Path, mock: GoogleMock,
                                                                media: Media) -> None:
    name = operation_name(VEO)
    hiccup = api_error(503, "UNAVAILABLE", "The service is currently unavailable.")
    mock.veo_submit(VEO, operation_started(name), operation_started(name))
    mock.veo_poll(VEO, hiccup, operation_done(name, media.mp4), hiccup, hiccup, hiccup)
    settings = vertex_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("video", settings)
    assert call(provider, "video", VIDEO_SPEC, d / "a.mp4", CallContext(settings=settings)).path.exists()
    with pytest.raises(Unavailable, match="503 UNAVAILABLE") as info:
        call(provider, "video", VIDEO_SPEC, d / "b.mp4", CallContext(settings=settings))
    assert info.value.cost_usd == cost_usd("google:veo-3.1", 4)  # the job ran on; it is most likely billed
    assert leftovers(d) == ["a.mp4"]


def test_veo_cancel_stops_polling_at_once(tmp_path: Path, mock: GoogleMock) -> None:
    name = operation_name(VEO)
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, sticky=operation_running(name))
    settings = vertex_settings(tmp_path, mock)
    provider = make("video", settings)
    provider.poll_interval_s = 30.0  # cancellation must not wait for the next poll
    ctx = CallContext(settings=settings)
    threading.Timer(0.3, ctx.cancel.set).start()
    d = workdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        call(provider, "video", VIDEO_SPEC, d / "scene_001.mp4", ctx)
    assert time.monotonic() - started < 2.0 and leftovers(d) == []


@pytest.mark.parametrize("capability", ["video", "image", "speech"])
def test_cancel_aborts_a_request_in_flight(capability: str, tmp_path: Path, mock: GoogleMock) -> None:
    script(mock, capability, json_reply({}, delay_s=3.0))
    settings = settings_for(capability, tmp_path, mock)
    ctx = CallContext(settings=settings)
    threading.Timer(0.3, ctx.cancel.set).start()
    d = workdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        call(make(capability, settings, timeout_s=10), capability, SPEC[capability], d / OUT_NAME[capability], ctx)
    assert time.monotonic() - started < 1.5 and leftovers(d) == []


# --------------------------------------------------------------------------- Gemini image


def test_gemini_image_is_returned_as_made(tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    """Raw media: Gemini's picture byte for byte (no title drawn; the thumbnail service does that)."""
    mock.generate_content(IMAGE, image_reply(media.png))
    settings = gemini_settings(tmp_path, mock)
    provider = make("image", settings)
    d = workdir(tmp_path)
    result = call(provider, "image", IMAGE_SPEC, d / "thumbnail.jpg", CallContext(settings=settings))

    assert (result.provider, result.model) == ("google:gemini-3.1-flash-image", "gemini-3.1-flash-image")
    assert result.cost_usd == cost_usd("google:gemini-3.1-flash-image", 1) == provider.estimate_cost_usd(IMAGE_SPEC)
    assert result.path.read_bytes() == media.png and leftovers(d) == ["thumbnail.jpg"]
    assert GeminiImageProvider.aspect_ratio(ImageSpec(prompt="p", width=1080, height=1920)) == "9:16"

    request, = mock.calls(generate_content_path(IMAGE))
    assert request.path == f"/v1/models/{IMAGE}:generateContent"
    body = request.json()
    assert body["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    prompt = body["contents"][0]["parts"][0]["text"]
    assert "Maine lighthouses" in prompt and "warm" in prompt and "No text" in prompt
    no_key_leak(mock)


def test_gemini_image_sends_the_callers_prompt_first(tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    mock.generate_content(IMAGE, image_reply(media.png))
    settings = gemini_settings(tmp_path, mock)
    spec = ImageSpec(prompt="An aerial photo of a red lighthouse on granite rocks")
    call(make("image", settings), "image", spec, workdir(tmp_path) / "t.jpg", CallContext(settings=settings))
    sent = mock.requests[0].json()["contents"][0]["parts"][0]["text"]
    assert sent.startswith(spec.prompt) and "No text" in sent


@pytest.mark.parametrize(("reply", "reason"), [
    (blocked_prompt_reply("PROHIBITED_CONTENT", "The prompt was blocked."), "PROHIBITED_CONTENT"),
    (stopped_reply("IMAGE_SAFETY", "Unable to show the generated image."), "IMAGE_SAFETY"),
])
def test_gemini_image_refusal_is_refused_with_the_reason(reply: Reply, reason: str, tmp_path: Path,
                                                         mock: GoogleMock) -> None:
    mock.generate_content(IMAGE, sticky=reply)
    settings = gemini_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("image", settings)
    with pytest.raises(Refused) as info:
        call(provider, "image", IMAGE_SPEC, d / "thumbnail.jpg", CallContext(settings=settings))
    assert reason in info.value.reasons and info.value.cost_usd == 0.0 and leftovers(d) == []
    assert_falls_back("image", provider, settings, d, Refused, reason)


@pytest.mark.parametrize("bad", ["truncated", "not_base64"])
def test_gemini_image_unreadable_picture_is_bad_output(bad: str, tmp_path: Path, mock: GoogleMock,
                                                       media: Media) -> None:
    reply = image_reply(media.png[:200]) if bad == "truncated" else image_reply(b"", raw_b64="!!not*base64!!")
    mock.generate_content(IMAGE, sticky=reply)
    settings = gemini_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("image", settings)
    with pytest.raises(BadOutput) as info:
        call(provider, "image", IMAGE_SPEC, d / "thumbnail.jpg", CallContext(settings=settings))
    # A picture that arrived was generated, so billed; a body that does not parse cannot be counted.
    assert info.value.cost_usd == (cost_usd("google:gemini-3.1-flash-image", 1) if bad == "truncated" else 0.0)
    assert leftovers(d) == []
    assert_falls_back("image", provider, settings, d, BadOutput)


def test_gemini_image_answering_with_text_only_is_bad_output(tmp_path: Path, mock: GoogleMock) -> None:
    mock.generate_content(IMAGE, text_reply("I can describe a lighthouse instead."))
    settings = gemini_settings(tmp_path, mock)
    with pytest.raises(BadOutput, match="describe a lighthouse"):
        call(make("image", settings), "image", IMAGE_SPEC, workdir(tmp_path) / "t.jpg", CallContext(settings=settings))


# --------------------------------------------------------------------------- Gemini speech


def test_gemini_speech_joins_pcm_and_wav_segments_into_the_master(tmp_path: Path, mock: GoogleMock,
                                                                  media: Media) -> None:
    mock.generate_content(TTS, audio_reply(media.pcm24k), audio_reply(media.wav, "audio/wav"))
    settings = gemini_settings(tmp_path, mock)
    provider = make("speech", settings)
    spec = SpeechSpec(segments=("Hello there.", "Welcome to the coast."), voice="puck", instructions="warm and calm")
    d = workdir(tmp_path)
    result = call(provider, "speech", spec, d / "narration.wav", CallContext(settings=settings), finish_speech(spec))

    assert (result.provider, result.model, result.voice) == ("google:gemini-3.8-flash-tts", "gemini-3.8-flash-tts",
                                                             "Puck")
    chars = len("Hello there.") + len("Welcome to the coast.")
    assert result.cost_usd == cost_usd("google:gemini-3.8-flash-tts", chars) == provider.estimate_cost_usd(spec)
    info = probe(result.path)
    assert info.audio and (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("pcm_s16le", 48000, 2)
    first, second = result.segments or []
    assert (first.index, first.start_s, first.end_s) == (1, 0.0, 0.6)  # 28,800 bytes at 24 kHz s16 mono
    assert second.start_s == pytest.approx(0.95, abs=0.002) and second.end_s == pytest.approx(1.45, abs=0.002)
    assert info.duration_s == pytest.approx(1.45, abs=0.02) and first.words
    assert leftovers(d) == ["narration.wav"]

    bodies = [r.json() for r in mock.calls(generate_content_path(TTS))]
    assert len(bodies) == 2
    for body, text in zip(bodies, spec.segments, strict=True):
        assert body["generationConfig"]["responseModalities"] == ["AUDIO"]
        assert voice_name(body) == "Puck"
        prompt = body["contents"][0]["parts"][0]["text"]
        assert prompt.index("warm and calm") < prompt.index(text)
    no_key_leak(mock)


def test_gemini_speech_honours_the_rate_in_the_mime_type(tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    mock.generate_content(TTS, audio_reply(media.pcm16k, "audio/L16;codec=pcm;rate=16000"))
    settings = gemini_settings(tmp_path, mock)
    spec = SpeechSpec(segments=("Hi.",))
    result = call(make("speech", settings), "speech", spec, workdir(tmp_path) / "n.wav",
                  CallContext(settings=settings), finish_speech(spec))
    assert result.segments and result.segments[0].end_s == 0.5
    assert probe(result.path).duration_s == pytest.approx(0.5, abs=0.01)


def test_gemini_speech_unknown_voice_falls_back_to_the_default_and_says_so(tmp_path: Path, mock: GoogleMock,
                                                                           media: Media) -> None:
    mock.generate_content(TTS, audio_reply(media.pcm24k))
    settings = gemini_settings(tmp_path, mock)
    result = call(make("speech", settings), "speech", SpeechSpec(segments=("Hi.",), voice="alloy"),
                  workdir(tmp_path) / "n.wav", CallContext(settings=settings))
    assert result.voice and result.voice.startswith("Kore") and "alloy" in result.voice
    assert voice_name(mock.requests[0].json()) == "Kore"


def test_gemini_speech_blocked_prompt_is_refused(tmp_path: Path, mock: GoogleMock) -> None:
    mock.generate_content(TTS, sticky=blocked_prompt_reply("SAFETY"))
    settings = gemini_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("speech", settings)
    with pytest.raises(Refused) as info:
        call(provider, "speech", SPEECH_SPEC, d / "narration.wav", CallContext(settings=settings))
    assert info.value.reasons == ["SAFETY"] and leftovers(d) == []
    assert_falls_back("speech", provider, settings, d, Refused, "SAFETY")


@pytest.mark.parametrize("bad", ["truncated_wav", "odd_pcm"])
def test_gemini_speech_truncated_audio_is_bad_output(bad: str, tmp_path: Path, mock: GoogleMock,
                                                     media: Media) -> None:
    reply = audio_reply(media.wav[:30], "audio/wav") if bad == "truncated_wav" else audio_reply(media.pcm24k[:-1])
    mock.generate_content(TTS, sticky=reply)
    settings = gemini_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("speech", settings)
    if bad == "odd_pcm":  # seen by the provider itself
        with pytest.raises(BadOutput) as info:
            call(provider, "speech", SPEECH_SPEC, d / "narration.wav", CallContext(settings=settings))
        assert info.value.cost_usd > 0 and leftovers(d) == []  # the speech was generated, so billed
    # A WAV that does not decode fails when the master is made, inside the same attempt: billed all the same.
    result = assert_falls_back("speech", provider, settings, d, BadOutput)
    assert result.attempts[0].cost_usd > 0


def test_gemini_speech_failure_midway_keeps_the_cost_of_the_segments_already_spoken(
    tmp_path: Path, mock: GoogleMock, media: Media
) -> None:
    mock.generate_content(TTS, audio_reply(media.pcm24k),
                          api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers={"Retry-After": "3"}))
    settings = gemini_settings(tmp_path, mock)
    d = workdir(tmp_path)
    provider = make("speech", settings)
    with pytest.raises(RateLimited) as info:
        call(provider, "speech", SPEECH_SPEC, d / "narration.wav", CallContext(settings=settings))
    assert info.value.retry_after_s == 3.0
    assert info.value.cost_usd == cost_usd("google:gemini-3.8-flash-tts", len(SPEECH_SPEC.segments[0]))
    assert leftovers(d) == []


def test_rate_limit_without_retry_after_reads_google_retry_info(tmp_path: Path, mock: GoogleMock) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    mock.generate_content(IMAGE, api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", details=[retry_info]),
                          api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded."))
    settings = gemini_settings(tmp_path, mock)
    provider = make("image", settings)
    with pytest.raises(RateLimited) as first:
        call(provider, "image", IMAGE_SPEC, workdir(tmp_path) / "t.jpg", CallContext(settings=settings))
    with pytest.raises(RateLimited) as second:
        call(provider, "image", IMAGE_SPEC, workdir(tmp_path) / "t.jpg", CallContext(settings=settings))
    assert (first.value.retry_after_s, second.value.retry_after_s) == (37.0, None)


def test_chain_retries_google_after_its_retry_after(tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    limited = api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers={"Retry-After": "0.2"})
    mock.generate_content(IMAGE, limited, image_reply(media.png))
    settings = gemini_settings(tmp_path, mock)
    chain = FallbackChain("image", [make("image", settings), LocalPillowImageProvider(settings)],
                          retry=RetryPolicy(attempts=2))
    result = call(chain, "image", IMAGE_SPEC, workdir(tmp_path) / "t.jpg", CallContext(settings=settings))
    limited, won = result.attempts
    assert (limited.error_code, won.provider) == ("rate_limited", "google:gemini-3.1-flash-image")
    assert "retrying in 0.20 s" in (limited.reason or "")


# --------------------------------------------------------------------------- every capability, every failure

_KEY_INVALID = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}]
FAILURES: dict[str, tuple[Callable[[], Reply], type[ProviderError], str]] = {
    "429_retry_after": (lambda: api_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                                          headers={"Retry-After": "7"}), RateLimited, "429"),
    "500": (lambda: api_error(500, "INTERNAL", "An internal error has occurred."), Unavailable, "500 INTERNAL"),
    "503": (lambda: api_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), Unavailable,
            "503 UNAVAILABLE"),
    "timeout": (lambda: json_reply({}, delay_s=1.0), TimedOut, "did not answer within 0.25 s"),
    "dropped": (lambda: Reply(drop=True), Unavailable, "could not be reached"),
    "malformed": (lambda: Reply(body=b'{"candidates": [{"content": ', headers={"content-type": "application/json"}),
                  BadOutput, "malformed"),
    "cut_short": (lambda: json_reply({"candidates": [], "modelVersion": "x" * 200}, truncate_to=40), BadOutput,
                  "cut short"),
    "404_gone": (lambda: api_error(404, "NOT_FOUND", "models/x is not found for API version v1."), Unavailable,
                 "model or endpoint gone"),
    "403_key": (lambda: api_error(403, "PERMISSION_DENIED", "Permission denied on the API key."), NotConfigured,
                "GOOGLE_API_KEY was rejected (403"),
    "400_key_invalid": (lambda: api_error(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}. Pass a valid API key.",
                                          details=_KEY_INVALID), NotConfigured, "GOOGLE_API_KEY was rejected (400"),
    "400_refused": (lambda: api_error(400, "INVALID_ARGUMENT", "The prompt could not be submitted. This prompt "
                                      "contains sensitive words that violate Google's Responsible AI practices."),
                    Refused, "Responsible AI"),
}


@pytest.mark.parametrize("capability", ["video", "image", "speech"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_failure_is_mapped_and_the_local_tier_wins(failure: str, capability: str, tmp_path: Path,
                                                   mock: GoogleMock) -> None:
    reply, expected, says = FAILURES[failure]
    script(mock, capability, reply())
    settings = settings_for(capability, tmp_path, mock)
    timeout_s = 0.25 if failure == "timeout" else 5.0
    d = workdir(tmp_path)
    provider = make(capability, settings, timeout_s=timeout_s)
    with pytest.raises(expected) as info:
        call(provider, capability, SPEC[capability], d / OUT_NAME[capability], CallContext(settings=settings))
    err = info.value
    assert type(err) is expected and says in err.message, err.message
    assert KEY not in str(err) and KEY not in repr(err.to_dict()) and "key=" not in str(err)
    assert err.cost_usd == 0.0  # nothing was generated
    if failure == "429_retry_after":
        assert isinstance(err, RateLimited) and err.retry_after_s == 7.0
    if failure == "400_refused":
        assert isinstance(err, Refused) and err.reasons and "Responsible AI" in err.reasons[0]
    assert leftovers(d) == []
    assert_falls_back(capability, provider, settings, d, expected, says)


@pytest.mark.parametrize("capability", ["video", "image", "speech"])
def test_missing_key_is_not_configured_and_no_request_is_made(capability: str, tmp_path: Path,
                                                             mock: GoogleMock) -> None:
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_GEMINI_BASE_URL": mock.url,
                                  "GOOGLE_VERTEX_BASE_URL": mock.url})
    provider = make(capability, settings)
    reason = provider.unavailable_reason()
    assert reason and reason.startswith("GOOGLE_API_KEY (or GEMINI_API_KEY) not set")
    if capability == "video":
        assert "GOOGLE_CLOUD_PROJECT + GOOGLE_CLOUD_LOCATION" in reason and "Vertex AI" in reason
    d = workdir(tmp_path)
    with pytest.raises(NotConfigured, match="GOOGLE_API_KEY"):
        call(provider, capability, SPEC[capability], d / OUT_NAME[capability], CallContext(settings=settings))
    chain = FallbackChain(capability, [provider, LOCAL[capability](settings)],  # type: ignore[arg-type, list-item]
                          retry=RetryPolicy(attempts=1))
    result = call(chain, capability, SPEC[capability], d / OUT_NAME[capability], CallContext(settings=settings))
    skipped, won = result.attempts
    assert (skipped.outcome, skipped.error_code, skipped.reason) == ("skipped", "not_configured", reason)
    assert won.provider == LOCAL[capability].id and mock.requests == []


def test_providers_state_their_facts(settings: Settings) -> None:
    for cls, capability in ((GoogleVeoVideoProvider, "video"), (GeminiImageProvider, "image"),
                            (GeminiSpeechProvider, "speech")):
        assert cls.capability == capability and cls.key_env == "GOOGLE_API_KEY" and cls.paid is True
        assert cls.id.startswith("google:") and cls.model
        assert cost_usd(cls.id, 1) > 0  # priced in the one table
    assert GoogleVeoVideoProvider(settings).poll_deadline_s == 600


def test_veo_records_its_operation_and_a_resumed_job_polls_it_instead_of_paying_again(
        tmp_path: Path, mock: GoogleMock, media: Media) -> None:
    """The operation's name is a checkpoint of the job, recorded as soon as Veo accepts the job: a worker
    that dies while Veo works leaves it, and the next attempt polls that operation (no second submit)."""
    name = operation_name(VEO)
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, operation_running(name), operation_done(name, media.mp4))
    settings = vertex_settings(tmp_path, mock)
    saved: dict = {}
    first = call(make("video", settings), "video", VIDEO_SPEC, workdir(tmp_path) / "scene_001.mp4",
                 CallContext(settings=settings, progress=lambda f, m: None, checkpoint=saved.__setitem__),
                 finish_clip(VIDEO_SPEC))
    assert saved == {"google:veo-3.1:scene_1": name} and first.cost_usd > 0

    mock.veo_poll(VEO, operation_done(name, media.mp4))
    said: list[str] = []
    (tmp_path / "again").mkdir()
    again = call(make("video", settings), "video", VIDEO_SPEC, workdir(tmp_path / "again") / "scene_001.mp4",
                 CallContext(settings=settings, progress=lambda f, m: said.append(m), resumed=dict(saved),
                             checkpoint=saved.__setitem__), finish_clip(VIDEO_SPEC))
    assert len(mock.calls(predict_path(VEO))) == 1  # submitted once, for both runs
    assert mock.calls(fetch_path(VEO))[-1].json() == {"operationName": name}
    assert "resuming the Veo job started before" in said
    assert probe(again.path).video is not None


def test_veo_a_failed_operation_is_forgotten_so_the_next_attempt_submits_anew(tmp_path: Path,
                                                                            mock: GoogleMock) -> None:
    name = operation_name(VEO)
    mock.veo_submit(VEO, operation_started(name))
    mock.veo_poll(VEO, operation_failed(name, 13, "internal error"))
    settings = vertex_settings(tmp_path, mock)
    recorded: list = []
    with pytest.raises(JobFailed):
        call(make("video", settings), "video", VIDEO_SPEC, workdir(tmp_path) / "scene_001.mp4",
             CallContext(settings=settings, progress=lambda f, m: None,
                         checkpoint=lambda k, v: recorded.append((k, v))))
    assert recorded == [("google:veo-3.1:scene_1", name), ("google:veo-3.1:scene_1", None)]
