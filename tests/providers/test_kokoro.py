"""local:kokoro: the real loading and synthesis code (kokoro-onnx on onnxruntime, in its worker process)
on a tiny ONNX model this test builds with Kokoro's inputs and output, and the weights' fetch.

The tiny model takes what kokoro-v1.0.onnx takes (``input_ids`` int64 [1, n], ``style`` float32 [1, 256],
``speed`` float32 [1]) and answers ``waveform`` float32: 0.1 s of a tone per token, divided by the
speed, its pitch set by the style. The voices file is an .npz of (510, 1, 256) styles per voice name,
as voices-v1.0.bin is. With the real weights in YTAP_MODELS_DIR, the last test speaks with them.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import anyio
import numpy as np
import pytest

from core.config import Settings
from core.errors import BadOutput, Unavailable
from core.jobs import JobHandle
from core.media.probe import probe
from core.providers import kokoro
from core.providers.kokoro import LocalKokoroSpeechProvider, WeightFile, fetch_weights
from core.runtime import Runtime
from core.schemas import NarrationRequest
from core.services import narration
from tests.vendors.loopback import LoopbackServer, Reply

pytest.importorskip("kokoro_onnx")
onnx = pytest.importorskip("onnx")

VOICE_NAMES = ("af_heart", "bf_emma", "jf_alpha", "ef_dora", "ff_siwis")


def _tiny_model() -> bytes:
    from onnx import TensorProto, helper

    h = helper
    nodes = [
        h.make_node("Shape", ["input_ids"], ["shape"]),
        h.make_node("Gather", ["shape", "one"], ["n_i"], axis=0),
        h.make_node("Cast", ["n_i"], ["n"], to=TensorProto.FLOAT),
        h.make_node("Mul", ["n", "per_token"], ["len_1x"]),
        h.make_node("Div", ["len_1x", "speed"], ["len_v"]),
        h.make_node("Squeeze", ["len_v"], ["length"]),
        h.make_node("Range", ["zero", "length", "step"], ["t"]),
        h.make_node("ReduceMean", ["style"], ["style_mean"], keepdims=0),
        h.make_node("Add", ["style_mean", "one_f"], ["pitch"]),
        h.make_node("Mul", ["t", "omega"], ["phase0"]),
        h.make_node("Mul", ["phase0", "pitch"], ["phase"]),
        h.make_node("Sin", ["phase"], ["tone"]),
        h.make_node("Mul", ["tone", "gain"], ["waveform"]),
    ]
    inits = [
        h.make_tensor("one", TensorProto.INT64, [], [1]),
        h.make_tensor("per_token", TensorProto.FLOAT, [], [2400.0]),
        h.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        h.make_tensor("step", TensorProto.FLOAT, [], [1.0]),
        h.make_tensor("one_f", TensorProto.FLOAT, [], [1.0]),
        h.make_tensor("omega", TensorProto.FLOAT, [], [2 * np.pi * 220 / 24000]),
        h.make_tensor("gain", TensorProto.FLOAT, [], [0.3]),
    ]
    graph = h.make_graph(
        nodes, "tiny-kokoro",
        [h.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "n"]),
         h.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
         h.make_tensor_value_info("speed", TensorProto.FLOAT, [1])],
        [h.make_tensor_value_info("waveform", TensorProto.FLOAT, ["samples"])],
        inits,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _tiny_voices() -> bytes:
    import io

    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, **{name: rng.uniform(-0.2, 0.2, (510, 1, 256)).astype(np.float32) for name in VOICE_NAMES})
    return buf.getvalue()


def _pins(model: bytes, voices: bytes) -> tuple[WeightFile, ...]:
    return (WeightFile("kokoro-v1.0.onnx", hashlib.sha256(model).hexdigest(), len(model)),
            WeightFile("voices-v1.0.bin", hashlib.sha256(voices).hexdigest(), len(voices)))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    model, voices = _tiny_model(), _tiny_voices()
    monkeypatch.setattr(LocalKokoroSpeechProvider, "weights", _pins(model, voices))
    return model, voices


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_MODELS_DIR": str(tmp_path / "models"), **env})


def _place(tmp_path: Path, model: bytes, voices: bytes) -> None:
    folder = tmp_path / "models" / "kokoro"
    folder.mkdir(parents=True)
    (folder / "kokoro-v1.0.onnx").write_bytes(model)
    (folder / "voices-v1.0.bin").write_bytes(voices)


def _narrate(settings: Settings, req: NarrationRequest):
    rt = Runtime.create(settings)
    try:
        plan = narration.prepare(rt, req)
        return anyio.run(narration.synthesize_narration, rt, plan,
                         JobHandle(job_id="job_" + "k" * 20, kind="synthesize_narration"))
    finally:
        rt.close()


def test_kokoro_sits_between_the_paid_tiers_and_espeak() -> None:
    from core.providers.registry import DEFAULT_CHAINS

    assert DEFAULT_CHAINS["speech"][-2:] == ("local:kokoro", "local:espeak-ng")


def test_kokoro_without_weights_is_unavailable_saying_how_and_the_chain_moves_on_in_ms(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    provider = LocalKokoroSpeechProvider(settings)
    t0 = time.perf_counter()
    for _ in range(100):
        reason = provider.unavailable_reason()
    per_check_ms = (time.perf_counter() - t0) * 1000 / 100
    assert reason is not None and "ytap-mcp models fetch kokoro" in reason and str(tmp_path / "models") in reason
    assert per_check_ms < 5, per_check_ms
    result = _narrate(settings, NarrationRequest(video_id="v", text="Hello there.",
                                                 providers=["local:kokoro", "local:espeak-ng"]))
    skipped, won = result.attempts
    assert (skipped.provider, skipped.outcome, won.provider) == ("local:kokoro", "skipped", "local:espeak-ng")
    assert "ytap-mcp models fetch kokoro" in skipped.reason and skipped.elapsed_s < 0.05


def test_kokoro_speaks_through_the_narration_service_48k_stereo_speed_honoured_words_aligned(
        tmp_path: Path, tiny: tuple[bytes, bytes]) -> None:
    _place(tmp_path, *tiny)
    settings = _settings(tmp_path)
    assert LocalKokoroSpeechProvider(settings).unavailable_reason() is None
    text = "Le gardien du phare est monté dans les escaliers."
    normal = _narrate(settings, NarrationRequest(video_id="a", text=text, providers=["local:kokoro"]))
    fast = _narrate(settings, NarrationRequest(video_id="b", text=text, speed=2.0, providers=["local:kokoro"]))
    assert (normal.provider, normal.model, normal.language, normal.voice) == ("local:kokoro", "kokoro-v1.0", "fr",
                                                                               "ff_siwis")
    info = probe(Path(normal.path))
    assert info.audio is not None and (info.audio.sample_rate, info.audio.channels) == (48000, 2)
    # 0.1 s per phoneme token at speed 1 (the tiny model): a real length, and half of it at speed 2.
    assert 1.0 < normal.duration_s < 8.0
    assert fast.duration_s == pytest.approx(normal.duration_s / 2, rel=0.05)
    (segment,) = normal.segments
    assert [w.text for w in segment.words] == text.split()
    starts = [w.start_s for w in segment.words]
    assert starts == sorted(starts) and starts[-1] < segment.end_s


def test_kokoro_picks_a_voice_per_language_and_refuses_one_it_cannot_speak(tmp_path: Path,
                                                                          tiny: tuple[bytes, bytes]) -> None:
    _place(tmp_path, *tiny)
    settings = _settings(tmp_path)
    gb = _narrate(settings, NarrationRequest(video_id="a", text="The keeper climbed the stairs.", language="en-GB",
                                             providers=["local:kokoro"]))
    assert gb.voice == "bf_emma"
    named = _narrate(settings, NarrationRequest(video_id="b", text="Hola a todos.", voice="ef_dora",
                                                providers=["local:kokoro"]))
    assert named.voice == "ef_dora"
    korean = _narrate(settings, NarrationRequest(video_id="c", text="안녕하세요 여러분",
                                                 providers=["local:kokoro", "local:espeak-ng"]))
    failed, won = korean.attempts
    assert (failed.provider, failed.outcome, won.provider) == ("local:kokoro", "failed", "local:espeak-ng")
    assert "no voice for the language 'ko'" in failed.reason and korean.language == "ko"


def test_kokoro_reads_japanese_kanji_from_their_kana_reading(tmp_path: Path, tiny: tuple[bytes, bytes]) -> None:
    # The tiny model speaks 0.1 s per phoneme token, so the length tells what the phonemizer was given: the
    # kanji sentence as long as the same words in kana (its espeak-ng phonemizer said "Chinese letter"
    # for each kanji before: 21.3 s against 5.3 s).
    _place(tmp_path, *tiny)
    settings = _settings(tmp_path)
    kanji = _narrate(settings, NarrationRequest(video_id="a", text="東京の夜景は本当に美しいです。",
                                                providers=["local:kokoro"]))
    kana = _narrate(settings, NarrationRequest(video_id="b", text="とうきょうのやけいはほんとうにうつくしいです。",
                                               providers=["local:kokoro"]))
    assert (kanji.provider, kanji.language, kanji.voice) == ("local:kokoro", "ja", "jf_alpha")
    assert kanji.duration_s == pytest.approx(kana.duration_s, rel=0.15), (kanji.duration_s, kana.duration_s)
    assert kanji.segments[0].text == "東京の夜景は本当に美しいです。"  # captions keep the written text


def test_kokoro_weights_that_differ_from_the_pins_are_refused(tmp_path: Path, tiny: tuple[bytes, bytes]) -> None:
    model, voices = tiny
    _place(tmp_path, model[:-4] + b"\0\0\0\0", voices)  # same size, other bytes
    result = _narrate(_settings(tmp_path), NarrationRequest(video_id="v", text="Hello.",
                                                            providers=["local:kokoro", "local:espeak-ng"]))
    failed = result.attempts[0]
    assert failed.outcome == "failed" and "SHA-256 differs" in failed.reason


# --- fetching the weights -------------------------------------------------------------------------------


def test_fetch_weights_downloads_checks_and_reports_progress(tmp_path: Path, server: LoopbackServer,
                                                             tiny: tuple[bytes, bytes]) -> None:
    model, voices = tiny
    server.route("GET", r"/release/kokoro-v1\.0\.onnx", Reply(body=model))
    server.route("GET", r"/release/voices-v1\.0\.bin", Reply(body=voices))
    settings = _settings(tmp_path, YTAP_KOKORO_BASE_URL=server.url + "/release")
    seen: list[tuple[str, int, int]] = []
    paths = fetch_weights(settings, progress=lambda *a: seen.append(a), files=_pins(model, voices))
    assert [p.read_bytes() for p in paths] == [model, voices]
    assert seen[-1] == ("voices-v1.0.bin", len(voices), len(voices)) and ("kokoro-v1.0.onnx", len(model), len(model)) in seen
    # Already in place: nothing is downloaded again.
    fetch_weights(settings, files=_pins(model, voices))
    assert len(server.calls("GET", r"/release/kokoro-v1\.0\.onnx")) == 1


def test_fetch_weights_refuses_a_file_that_is_not_the_pinned_one_and_leaves_nothing(
        tmp_path: Path, server: LoopbackServer, tiny: tuple[bytes, bytes]) -> None:
    model, voices = tiny
    server.route("GET", r"/release/kokoro-v1\.0\.onnx", Reply(body=model[:-1] + b"x"))
    settings = _settings(tmp_path, YTAP_KOKORO_BASE_URL=server.url + "/release")
    with pytest.raises(BadOutput, match="SHA-256"):
        fetch_weights(settings, files=_pins(model, voices))
    assert list((tmp_path / "models" / "kokoro").iterdir()) == []
    server.route("GET", r"/release/kokoro-v1\.0\.onnx", Reply(status=404, body=b"Not Found"))
    with pytest.raises(Unavailable, match="HTTP 404"):
        fetch_weights(settings, files=_pins(model, voices))
    assert list((tmp_path / "models" / "kokoro").iterdir()) == []


def test_models_fetch_command_shows_a_progress_bar(tmp_path: Path, server: LoopbackServer, tiny: tuple[bytes, bytes],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    from ytap_mcp.cli import main

    model, voices = tiny
    server.route("GET", r"/release/kokoro-v1\.0\.onnx", Reply(body=model))
    server.route("GET", r"/release/voices-v1\.0\.bin", Reply(body=voices))
    monkeypatch.setattr(kokoro, "WEIGHTS", _pins(model, voices))
    monkeypatch.setenv("YTAP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("YTAP_KOKORO_BASE_URL", server.url + "/release")
    assert main(["models", "fetch", "kokoro"]) == 0
    out, err = capfd.readouterr()
    assert out == ""  # stdout is the MCP protocol's, even here
    assert "kokoro-v1.0.onnx" in err and "100%" in err and "SHA-256 checked" in err
    assert (tmp_path / "home" / "models" / "kokoro" / "voices-v1.0.bin").read_bytes() == voices


@pytest.mark.slow
def test_kokoro_real_weights_when_present() -> None:
    settings = Settings.from_env()
    provider = LocalKokoroSpeechProvider(settings)
    if provider.unavailable_reason():
        pytest.skip(f"the real Kokoro weights are not here: {provider.unavailable_reason()}")
    result = _narrate(settings.with_home(settings.home), NarrationRequest(
        video_id="kokoro-real-check", text="The keeper climbed the stairs at dawn.", providers=["local:kokoro"]))
    assert result.provider == "local:kokoro" and 1.0 < result.duration_s < 6.0
