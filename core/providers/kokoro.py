"""``local:kokoro``: Kokoro-82M (Apache-2.0), a neural voice run on this machine with kokoro-onnx on
onnxruntime (no torch), between the paid speech tiers and espeak-ng.

* **Install**: ``pip install 'ytap-mcp[kokoro]'`` (kokoro-onnx and onnxruntime). Nothing is imported
  until a narration is spoken; without the packages the provider is unavailable and says so.
* **Weights**: ``kokoro-v1.0.onnx`` and ``voices-v1.0.bin`` of the official kokoro-onnx release
  (``model-files-v1.0``, 354 MB in all), in ``$YTAP_MODELS_DIR/kokoro`` (default
  ``$YTAP_HOME/models/kokoro``). :func:`fetch_weights` (``ytap-mcp models fetch kokoro``) downloads
  them once, checks each against its pinned size and SHA-256 and renames it into place; a folder
  filled by hand works offline and is checked the same way on first use (once per process). They
  are never fetched at import time or during a narration: without them the provider is unavailable,
  its reason says how to get them, and the chain moves on at once (a few file stats).
* **Engine**: the model runs in a worker process (core.media.native_worker: onnxruntime and the
  espeak-ng phonemizer kokoro-onnx loads are native code; a crash fails one attempt, not the
  server), on at most two threads, loaded once and kept warm.
* **Voices per language**: :data:`VOICES` (the narration's language picks one); a Kokoro voice
  name (``af_bella``, ``jf_alpha``...) as ``voice`` is used as given, in its own language. A language
  Kokoro does not speak fails this attempt as NotConfigured (no retry, no cooldown: the next
  narration may be in a language it speaks), and the chain tries espeak-ng.
* **Speed** is Kokoro's own (0.5-2.0, the model re-times its phonemes); pitch is applied by the master.
  The parts are float32 24 kHz mono; the narration's finishing step makes the 48 kHz stereo master
  and aligns the words (Kokoro gives no word times: core.media.align).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio.to_thread

from core.config import Settings
from core.errors import BadOutput, InputError, NotConfigured, Unavailable
from core.media import japanese
from core.media.native_worker import NativeWorker
from core.providers._vendor import part_path
from core.providers.base import CallContext, ProviderOutput, SpeechParts, SpeechSpec
from core.schemas import Capability

__all__ = ["LocalKokoroSpeechProvider", "WeightFile", "WEIGHTS", "RELEASE_URL", "VOICES", "fetch_weights",
           "weights_folder"]

log = logging.getLogger(__name__)

RELEASE_URL = "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0"
SAMPLE_RATE = 24000
_THREADS = 2


@dataclass(frozen=True)
class WeightFile:
    name: str
    sha256: str
    size_bytes: int


# The official release's files (model-files-v1.0), pinned.
WEIGHTS: tuple[WeightFile, ...] = (
    WeightFile("kokoro-v1.0.onnx", "7d5df8ecf7d4b1878015a32686053fd0eebe2bc377234608764cc0ef3636a6c5", 325_532_387),
    WeightFile("voices-v1.0.bin", "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d", 28_214_398),
)

# BCP 47 language -> (Kokoro voice, the phonemizer's espeak-ng language). The full tag is tried first.
VOICES: dict[str, tuple[str, str]] = {
    "en": ("af_heart", "en-us"),
    "en-GB": ("bf_emma", "en-gb"),
    "ja": ("jf_alpha", "ja"),
    "zh": ("zf_xiaobei", "cmn"),
    "es": ("ef_dora", "es"),
    "fr": ("ff_siwis", "fr-fr"),
    "hi": ("hf_alpha", "hi"),
    "it": ("if_sara", "it"),
    "pt": ("pf_dora", "pt-br"),
}
# A Kokoro voice name's first letter is its language.
_VOICE_LANGUAGE = {"a": "en-us", "b": "en-gb", "j": "ja", "z": "cmn", "e": "es", "f": "fr-fr", "h": "hi", "i": "it",
                   "p": "pt-br"}


def weights_folder(settings: Settings) -> Path:
    return settings.models_path / "kokoro"


def _missing(folder: Path, files: tuple[WeightFile, ...]) -> list[WeightFile]:
    out = []
    for f in files:
        try:
            if (folder / f.name).stat().st_size == f.size_bytes:
                continue
        except OSError:
            pass
        out.append(f)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], bool] = {}
_verified_lock = threading.Lock()


def _check_weights(folder: Path, files: tuple[WeightFile, ...]) -> None:
    """Each file's SHA-256 against its pin, once per file version per process; NotConfigured if one differs."""
    for f in files:
        path = folder / f.name
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with _verified_lock:
            ok = _verified.get(key)
            if ok is None:
                ok = _verified[key] = _sha256(path) == f.sha256
        if not ok:
            raise NotConfigured(f"{path} is not the pinned kokoro-onnx release file (its SHA-256 differs): delete it "
                                "and run `ytap-mcp models fetch kokoro`")


def fetch_weights(settings: Settings, *, progress: Callable[[str, int, int], None] | None = None,
                  files: tuple[WeightFile, ...] | None = None) -> list[Path]:
    """Download the weights that are not yet in place, each checked against its size and SHA-256 before
    it is renamed into place (a partial or wrong download leaves nothing behind). ``progress(name, done,
    total)`` is told as bytes arrive. Returns every weight file's path."""
    import httpx

    files = WEIGHTS if files is None else files
    folder = weights_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    base = (settings.kokoro_base_url or RELEASE_URL).rstrip("/")
    for f in _missing(folder, files):
        final = folder / f.name
        part = folder / f".{f.name}.part"
        digest, done = hashlib.sha256(), 0
        try:
            with httpx.stream("GET", f"{base}/{f.name}", follow_redirects=True, timeout=60.0) as reply:
                if reply.status_code != 200:
                    raise Unavailable(f"downloading {f.name}: HTTP {reply.status_code} from {base}")
                with part.open("wb") as out:
                    for chunk in reply.iter_bytes(1 << 20):
                        done += len(chunk)
                        if done > f.size_bytes:
                            raise BadOutput(f"{f.name}: the download is larger than the pinned {f.size_bytes} bytes")
                        digest.update(chunk)
                        out.write(chunk)
                        if progress:
                            progress(f.name, done, f.size_bytes)
            if done != f.size_bytes or digest.hexdigest() != f.sha256:
                raise BadOutput(f"{f.name}: {done} bytes with SHA-256 {digest.hexdigest()}; the pinned file is "
                                f"{f.size_bytes} bytes with SHA-256 {f.sha256}")
            os.replace(part, final)
        except httpx.HTTPError as exc:
            raise Unavailable(f"downloading {f.name} from {base} failed: {type(exc).__name__}") from None
        finally:
            part.unlink(missing_ok=True)
    _check_weights(folder, files)
    return [folder / f.name for f in files]


def _voice_for(requested: str | None, language: str | None, known: list[str] | None) -> tuple[str, str, str]:
    """(Kokoro voice, phonemizer language, voice reported)."""
    if requested and requested[:1] in _VOICE_LANGUAGE and "_" in requested and (known is None or requested in known):
        return requested, _VOICE_LANGUAGE[requested[0]], requested
    tag = language or "en"
    entry = VOICES.get(tag) or VOICES.get(tag.split("-")[0].lower())
    if entry is None:
        raise NotConfigured(f"Kokoro has no voice for the language {tag!r} (it speaks {', '.join(VOICES)})")
    voice, lang = entry
    if known is not None and voice not in known:
        raise NotConfigured(f"the Kokoro voices file has no {voice!r} voice")
    reported = voice if not requested else f"{voice} ({requested!r} is not a Kokoro voice)"
    return voice, lang, reported


class LocalKokoroSpeechProvider:
    id: ClassVar[str] = "local:kokoro"
    capability: ClassVar[Capability] = "speech"
    model: ClassVar[str | None] = "kokoro-v1.0"
    key_env: ClassVar[str | None] = None
    paid: ClassVar[bool] = False
    weights: ClassVar[tuple[WeightFile, ...]] = WEIGHTS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = weights_folder(settings)

    def unavailable_reason(self) -> str | None:
        if not _installed():
            return "kokoro-onnx is not installed: pip install 'ytap-mcp[kokoro]'"
        missing = _missing(self.folder, self.weights)
        if missing:
            mb = sum(f.size_bytes for f in missing) / 1e6
            return (f"its weights are not in {self.folder}: run `ytap-mcp models fetch kokoro` (downloads {mb:.0f} MB "
                    f"once from the official kokoro-onnx release), or copy {', '.join(f.name for f in missing)} there")
        return None

    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        from core.media.audio import SegmentAudio

        texts = [" ".join(s.split()) for s in spec.segments]
        if not texts or not all(texts):
            raise InputError("every narration segment needs some text")
        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        model, voices = (str(self.folder / f.name) for f in self.weights)

        def work() -> ProviderOutput:
            _check_weights(self.folder, self.weights)
            known, _ = _WORKER.call("voices", {"model": model, "voices": voices, "threads": _THREADS},
                                    timeout_s=120, cancel=ctx.cancel)
            voice, lang, reported = _voice_for(spec.voice, spec.language, known["voices"])
            folder = part_path(out, "kokoro", "")
            folder.mkdir()
            parts: list[SegmentAudio] = []
            try:
                for n, text in enumerate(texts):
                    ctx.progress(0.9 * n / len(texts), f"kokoro: segment {n + 1} of {len(texts)}")
                    # Its phonemizer is espeak-ng, which reads no kanji: Japanese goes in as its kana reading.
                    reading = japanese.reading_for(text) if lang == "ja" else None
                    said = reading.text if reading else text
                    result, blob = _WORKER.call("speak", {"model": model, "voices": voices, "threads": _THREADS,
                                                          "text": said, "voice": voice, "lang": lang,
                                                          "speed": spec.speed},
                                                timeout_s=600, cancel=ctx.cancel)
                    if not blob or len(blob) % 4:
                        raise BadOutput(f"Kokoro returned no audio for segment {n + 1}")
                    path = folder / f"part_{n + 1:03d}.f32"
                    path.write_bytes(blob)
                    parts.append(SegmentAudio(path=path, text=text, raw_format=("f32le", int(result["sample_rate"]), 1)))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            raw = SpeechParts(parts=parts, folder=folder, speed=1.0, pitch_semitones=spec.pitch_semitones)
            return ProviderOutput(path=out, provider=self.id, model=self.model, voice=reported, speech=raw)

        return await anyio.to_thread.run_sync(work)


def _installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("kokoro_onnx", "onnxruntime"))


_WORKER = NativeWorker("kokoro", "core.providers.kokoro:_worker_handle")

# --- in the worker process -------------------------------------------------------------------------

_engine: tuple[tuple[str, str], Any] | None = None


def _load(model: str, voices: str, threads: int) -> Any:
    """The Kokoro engine for these files, loaded once (the worker keeps it while it lives)."""
    global _engine
    key = (model, voices)
    if _engine is None or _engine[0] != key:
        try:
            import onnxruntime
            from kokoro_onnx import Kokoro
        except ImportError as exc:
            raise NotConfigured(f"kokoro-onnx cannot be imported: {exc}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            _engine = (key, Kokoro.from_session(session, voices))
        except Exception as exc:  # onnxruntime's and numpy's load errors: the files are unusable
            raise NotConfigured(f"the Kokoro weights do not load ({type(exc).__name__}: {exc})") from None
    return _engine[1]


def _worker_handle(op: str, args: dict[str, Any]) -> tuple[Any, bytes]:
    import numpy as np

    kokoro = _load(str(args["model"]), str(args["voices"]), int(args["threads"]))
    if op == "voices":
        return {"voices": list(kokoro.get_voices())}, b""
    if op == "speak":
        try:
            audio, rate = kokoro.create(str(args["text"]), voice=str(args["voice"]), speed=float(args["speed"]),
                                        lang=str(args["lang"]))
        except ValueError as exc:  # no phonemes, an unknown voice: this engine cannot speak it (asking again won't help)
            raise NotConfigured(f"Kokoro cannot speak this: {exc}") from None
        samples = np.asarray(audio, dtype="<f4").ravel()
        if not np.isfinite(samples).all():
            raise BadOutput("Kokoro returned samples that are not numbers")
        return {"sample_rate": int(rate)}, samples.tobytes()
    raise ValueError(f"unknown op {op!r}")
