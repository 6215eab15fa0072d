"""Word times aligned to the audio (core.media.align), and the narration path that uses them.

Known-time speech: every word spoken on its own by another espeak-ng voice (a Klatt variant at
another rate, never the aligner's en-us reference), trimmed, laid end to end with random gaps,
a noise floor added, at 24 kHz s16le mono (what OpenAI's ``pcm`` answer is). A word's known
start is where its own audio begins. benchmarks/alignment.py measures more shapes and lengths.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest

from core.config import Settings
from core.jobs import JobHandle
from core.media import espeak
from core.media.align import align_words, read_mono
from core.media.srt import spread_words
from core.runtime import Runtime
from core.schemas import NarrationRequest
from core.services import narration
from tests.vendors import openai_mock as om
from tests.vendors.loopback import LoopbackServer, loopback_server

RATE = 24000
TEXT = ("The keeper climbed the stairs at dawn. Every morning he counted the ships that passed the rocky point, "
        "and wrote their names in a small blue book.")


def _known_speech(text: str, seed: int = 5) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    pieces, starts, at = [np.zeros(int(0.25 * RATE), np.float32)], [], int(0.25 * RATE)
    for token in text.split():
        pcm, sr, _ = espeak.speak_reference(token, voice="en-gb-scotland+klatt3", speed=0.9)
        x = np.frombuffer(pcm.tobytes(), dtype=np.int16).astype(np.float32) / 32768.0
        loud = np.flatnonzero(np.abs(x) > 200 / 32768)
        x = x[loud[0]: loud[-1] + 1]
        x = np.interp(np.arange(int(len(x) * RATE / sr)) * sr / RATE, np.arange(len(x)), x).astype(np.float32)
        gap = int((rng.uniform(0.45, 0.7) if token[-1] in ".,;" else rng.uniform(0.04, 0.25)) * RATE)
        starts.append(at / RATE)
        pieces += [x, np.zeros(gap, np.float32)]
        at += len(x) + gap
    audio = np.concatenate(pieces) + rng.normal(0, 1e-3, at).astype(np.float32)
    return np.clip(audio, -1, 1), starts


def _errors_ms(got: list[float], truth: list[float]) -> list[float]:
    return sorted(abs(g - t) * 1000 for g, t in zip(got, truth, strict=True))


def test_align_words_finds_known_word_starts_where_an_even_spread_misses_them() -> None:
    audio, truth = _known_speech(TEXT)
    words = align_words(audio, RATE, TEXT, offset_s=10.0)
    assert [w.text for w in words] == TEXT.split()
    after = _errors_ms([w.start_s - 10.0 for w in words], truth)
    before = _errors_ms([w.start_s for w in spread_words(TEXT, truth[0], len(audio) / RATE)], truth)
    p90 = lambda ms: ms[int(0.9 * (len(ms) - 1))]  # noqa: E731
    assert statistics.median(after) <= 80 and p90(after) <= 200, after
    assert statistics.median(before) > 150  # the test speech is one an even spread gets wrong
    # Every word starts on sound (never in a pause) and ends no later than the next starts.
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(words, words[1:]))
    assert all(w.start_s <= w.end_s for w in words)


def test_align_words_on_silence_shares_the_span_and_on_no_words_is_empty() -> None:
    silent = np.zeros(RATE, np.float32)
    words = align_words(silent, RATE, "two words")
    assert [w.text for w in words] == ["two", "words"] and 0.0 <= words[0].start_s <= words[1].start_s <= 1.0
    assert align_words(silent, RATE, "   ") == []


def test_read_mono_reads_only_the_span(tmp_path: Path) -> None:
    import wave

    samples = (np.arange(48000 * 2) % 1000).astype("<i2")
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.repeat(samples, 2).tobytes())
    part, sr = read_mono(tmp_path / "a.wav", 0.5, 0.75)
    assert sr == 16000 and len(part) == 4000  # a quarter second, at the rate the features need
    assert part[0] == pytest.approx(samples[24000:24003].mean() / 32768.0)
    whole, _ = read_mono(tmp_path / "a.wav")
    assert len(whole) == 32000 and whole[8000] == pytest.approx(part[0])


# --- through the narration service: OpenAI speech (no word times) -> aligned words -> .srt ----------


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as s:
        yield s


def _narrate(tmp_path: Path, server: LoopbackServer, req: NarrationRequest):
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": "sk-test-align",
                                  "OPENAI_BASE_URL": server.url + "/v1"})
    rt = Runtime.create(settings)
    try:
        plan = narration.prepare(rt, req)
        return plan, anyio.run(narration.synthesize_narration, rt, plan,
                               JobHandle(job_id="job_" + "a" * 20, kind="synthesize_narration"))
    finally:
        rt.close()


def test_narration_words_and_srt_follow_the_audio_for_openai_speech(tmp_path: Path, server: LoopbackServer) -> None:
    audio, truth = _known_speech(TEXT)
    pcm = (audio * 32767).astype("<i2").tobytes()
    server.route("POST", om.SPEECH, om.speech_reply(pcm))
    plan, result = _narrate(tmp_path, server, NarrationRequest(video_id="v", text=TEXT,
                                                               providers=["openai:gpt-4o-mini-tts"]))
    assert result.provider == "openai:gpt-4o-mini-tts" and result.language == "en" and plan.spec.language == "en"
    (segment,) = result.segments
    errors = _errors_ms([w.start_s for w in segment.words], truth)
    assert statistics.median(errors) <= 80 and errors[int(0.9 * (len(errors) - 1))] <= 200, errors
    # The .srt's cues start when their first word is spoken (the aligned time, to the millisecond).
    srt = Path(result.srt_path).read_text("utf-8")
    starts = [line.split(" --> ")[0] for line in srt.splitlines() if " --> " in line]
    first_word_ms = round(segment.words[0].start_s * 1000)
    assert starts[0] == f"00:00:{first_word_ms // 1000:02d},{first_word_ms % 1000:03d}"
    assert starts[1] != starts[0]
    second_cue = next(w for w in segment.words if w.text == "Every")  # the second sentence is the second cue
    ms = round(second_cue.start_s * 1000)
    assert starts[1] == f"00:00:{ms // 1000:02d},{ms % 1000:03d}"
    assert abs(second_cue.start_s - truth[TEXT.split().index("Every")]) < 0.15
    # The first cue leaves when "dawn." has been said, not when "Every" starts: the pause between shows nothing.
    dawn = segment.words[TEXT.split().index("dawn.")]
    assert dawn.end_s < truth[TEXT.split().index("Every")] - 0.2
    first_end = srt.splitlines()[1].split(" --> ")[1]
    assert first_end == f"00:00:0{int(dawn.end_s)},{round(dawn.end_s * 1000) % 1000:03d}"


def test_narration_language_given_is_kept_and_an_unknown_espeak_language_keeps_the_spread(
        tmp_path: Path, server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    server.route("POST", om.SPEECH, sticky=om.speech_reply(om.pcm_bytes(1.0)))
    _, result = _narrate(tmp_path, server, NarrationRequest(video_id="v", text="Sawubona bangane bami",
                                                            language="zu-ZA", providers=["openai:gpt-4o-mini-tts"]))
    assert result.language == "zu-ZA"
    assert [w.start_s for w in result.segments[0].words] == [w.start_s for w in spread_words(
        "Sawubona bangane bami", 0.0, result.segments[0].end_s)]
    assert "no zu-ZA voice" in caplog.text


def test_narration_language_is_a_bcp47_tag() -> None:
    assert NarrationRequest(video_id="v", text="x", language="pt_br").language == "pt-BR"
    assert NarrationRequest(video_id="v", text="x", language="").language is None
    with pytest.raises(ValueError, match="BCP 47"):
        NarrationRequest(video_id="v", text="x", language="japanese please")


def test_an_imported_recording_with_its_transcript_gets_aligned_words(tmp_path: Path) -> None:
    import wave

    from core.services import imports

    audio, truth = _known_speech(TEXT, seed=9)
    root = tmp_path / "in"
    root.mkdir()
    with wave.open(str(root / "voice.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((audio * 32767).astype("<i2").tobytes())
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(root)}))
    try:
        plan = imports.prepare(rt, imports.ImportRequest(workspace_id="default", video_id="v", source=str(root / "voice.wav"),
                                                         kind="narration", transcript=TEXT))
        result = anyio.run(imports.import_asset, rt, plan, JobHandle(job_id="job_" + "b" * 20, kind="import_asset"))
    finally:
        rt.close()
    (segment,) = result.segments
    errors = _errors_ms([w.start_s for w in segment.words], truth)
    assert statistics.median(errors) <= 80 and errors[int(0.9 * (len(errors) - 1))] <= 200, errors


def test_gemini_speech_through_its_sdk_gets_aligned_words_in_every_segment(tmp_path: Path) -> None:
    from core.providers.google import GeminiSpeechProvider
    from tests.vendors.google_mock import audio_reply, google_mock

    second = "Nobody remembers when the first lamp was lit, or who lit it."
    (a, truth_a), (b, truth_b) = _known_speech(TEXT, seed=3), _known_speech(second, seed=4)
    quiet = lambda x: (x * 0.35 * 32767).astype("<i2").tobytes()  # noqa: E731  (Gemini speaks ~9 dB lower)
    with google_mock() as mock:
        mock.generate_content(GeminiSpeechProvider.model, audio_reply(quiet(a)), audio_reply(quiet(b)))
        settings = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "GOOGLE_API_KEY": "AIza-test-align",
                                      "GOOGLE_GEMINI_BASE_URL": mock.url})
        rt = Runtime.create(settings)
        try:
            plan = narration.prepare(rt, NarrationRequest(video_id="g", segments=[TEXT, second],
                                                          providers=["google:gemini-3.8-flash-tts"]))
            result = anyio.run(narration.synthesize_narration, rt, plan,
                               JobHandle(job_id="job_" + "c" * 20, kind="synthesize_narration"))
        finally:
            rt.close()
    assert result.provider == "google:gemini-3.8-flash-tts"
    for segment, truth in zip(result.segments, (truth_a, truth_b), strict=True):
        errors = _errors_ms([w.start_s - segment.start_s for w in segment.words], truth)
        assert statistics.median(errors) <= 80 and errors[int(0.9 * (len(errors) - 1))] <= 200, errors
