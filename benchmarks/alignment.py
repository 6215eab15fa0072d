"""Caption timing benchmark (BENCHMARKS.md, "caption timing"): word starts aligned to speech
whose word times are known, before (even spread) and after (core.media.align).

    python benchmarks/alignment.py [--seed N] [--languages] [--long-minutes M]

Known-time speech, built two ways, never with the aligner's own reference voice (espeak-ng
``en-us`` at 175 wpm, the Klatt-free default):

* ``words``: every word spoken on its own by another espeak-ng voice and synthesiser
  (a Klatt variant, another rate), its silence trimmed, the words laid end to end with
  random gaps (40-300 ms, 450-750 ms after a sentence's end). A word's known start is
  where its own audio begins.
* ``warp``: the whole segment spoken continuously by another voice and rate, then
  time-warped by a known random piecewise-linear map (local rate 0.8-1.25 every 0.7 s,
  pitch moving with it, as tape would) after 0.3 s of leading silence. A word's known
  start is its exact espeak-ng word event carried through the same map.

Both are scaled to each vendor's usual level (GAIN), get a -60 dBFS noise floor, are
resampled to 24 kHz and written in the shape each vendor returns: OpenAI ``pcm`` (s16le 24 kHz mono), Gemini (``audio/L16;codec=pcm;rate=24000``,
read through core.providers.google's own format parser), Kokoro (float32 24 kHz mono, as
core/providers/kokoro.py writes it). They then take the real narration path: joined into
the 48 kHz stereo master by core.media.audio.join_segments (whose per-word times are the
even spread: "before"), then aligned on the master (core.media.align.align_segments: "after").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.media import espeak  # noqa: E402
from core.media.align import align_segments  # noqa: E402
from core.media.audio import SegmentAudio, join_segments  # noqa: E402

RATE = 24000
TEXTS = (
    "The lighthouse keeper climbed the stairs at dawn. Every morning he counted the ships "
    "that passed the rocky point, and wrote their names in a small blue book.",
    "Nobody remembers when the first lamp was lit. Some say it was a fisherman's wife, "
    "waiting for a boat that never came home; others say it was a monk.",
    "Today the light is automatic, and the keeper is gone. But the book is still there, "
    "on the table by the window, open at the last page he wrote.",
)
# (method, espeak voice, speed) per vendor shape: none of them the aligner's reference.
CASES = {
    "openai": [("words", "en-us+klatt4", 1.1), ("warp", "en-gb-x-rp+f2", 0.95)],
    "gemini": [("warp", "en-gb+klatt2", 0.9), ("words", "en-029+m3", 1.0)],
    "kokoro": [("warp", "en-us+f4", 1.15), ("words", "en-gb-scotland+klatt3", 0.9)],
}
TARGETS = {"median_ms": 80.0, "p90_ms": 200.0}
# Each vendor's level, roughly (OpenAI loud, Gemini about 9 dB quieter, Kokoro's floats running hot):
# the aligner must not care how loud the speech is.
GAIN = {"openai": 1.0, "gemini": 0.35, "kokoro": 1.4}


@dataclass
class KnownSpeech:
    samples: np.ndarray  # float32 mono at RATE
    starts_s: list[float]  # each whitespace word's start


def _f32(pcm: object) -> np.ndarray:
    return np.frombuffer(pcm.tobytes(), dtype=np.int16).astype(np.float32) / 32768.0  # type: ignore[attr-defined]


def _to_rate(x: np.ndarray, sr: int) -> np.ndarray:
    n = int(round(len(x) * RATE / sr))
    return np.interp(np.arange(n) * sr / RATE, np.arange(len(x)), x).astype(np.float32)


def _trim(x: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > 200 / 32768)
    return x[loud[0]: loud[-1] + 1] if len(loud) else x[:0]


def words_speech(text: str, voice: str, speed: float, rng: np.random.Generator) -> KnownSpeech:
    pieces: list[np.ndarray] = [np.zeros(int(0.2 * RATE), np.float32)]
    starts: list[float] = []
    at = len(pieces[0])
    for token in text.split():
        pcm, sr, _ = espeak.speak_reference(token, voice=voice, speed=speed)
        word = _to_rate(_trim(_f32(pcm)), sr)
        starts.append(at / RATE)
        gap = rng.uniform(0.45, 0.75) if token[-1] in ".;!?" else rng.uniform(0.04, 0.30)
        pieces += [word, np.zeros(int(gap * RATE), np.float32)]
        at += len(word) + int(gap * RATE)
    return KnownSpeech(np.concatenate(pieces), starts)


def warp_speech(text: str, voice: str, speed: float, rng: np.random.Generator) -> KnownSpeech:
    pcm, sr, words = espeak.speak_reference(text, voice=voice, speed=speed)
    x = _to_rate(_f32(pcm), sr)
    src_dur = len(x) / RATE
    # Output time -> source time: knots every 0.7 s of source, local rate 0.8-1.25.
    knots_src = np.arange(0.0, src_dur + 0.7, 0.7)
    rates = rng.uniform(0.8, 1.25, len(knots_src) - 1)
    knots_out = np.concatenate([[0.0], np.cumsum(np.diff(knots_src) / rates)])
    out_dur = float(np.interp(src_dur, knots_src, knots_out))
    t_out = np.arange(int(out_dur * RATE)) / RATE
    y = np.interp(np.interp(t_out, knots_out, knots_src) * RATE, np.arange(len(x)), x).astype(np.float32)
    lead = 0.3
    starts = [lead + float(np.interp(w.start_s, knots_src, knots_out)) for w in words]
    return KnownSpeech(np.concatenate([np.zeros(int(lead * RATE), np.float32), y]), starts)


def _shape(speech: KnownSpeech, vendor: str, folder: Path, index: int, text: str,
           rng: np.random.Generator) -> SegmentAudio:
    x = speech.samples * GAIN[vendor] + rng.normal(0, 10 ** (-60 / 20), len(speech.samples)).astype(np.float32)
    x = np.clip(x, -1, 1)
    path = folder / f"{vendor}_{index}.pcm"
    if vendor == "kokoro":
        path.write_bytes(x.astype("<f4").tobytes())
        return SegmentAudio(path=path, text=text, raw_format=("f32le", RATE, 1))
    path.write_bytes((x * 32767).astype("<i2").tobytes())
    if vendor == "gemini":
        from core.providers.google import _audio_format

        _, raw_format = _audio_format("audio/L16;codec=pcm;rate=24000")
        assert raw_format is not None
        return SegmentAudio(path=path, text=text, raw_format=raw_format)
    return SegmentAudio(path=path, text=text, raw_format=("s16le", RATE, 1))


def _stats(errors_s: list[float]) -> dict[str, float]:
    ms = sorted(abs(e) * 1000 for e in errors_s)
    return {
        "words": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))], 1),
        "within_150ms": round(sum(e <= 150 for e in ms) / len(ms), 3),
        "max_ms": round(ms[-1], 1),
    }


def measure(vendor: str, folder: Path, seed: int) -> dict[str, object]:
    """Before/after figures for one vendor shape (every method of CASES[vendor], all TEXTS)."""
    rng = np.random.default_rng(seed)
    before: list[float] = []
    after: list[float] = []
    align_s = audio_s = 0.0
    for method, voice, speed in CASES[vendor]:
        build = words_speech if method == "words" else warp_speech
        known = [build(t, voice, speed, rng) for t in TEXTS]
        parts = [_shape(k, vendor, folder, i, t, rng) for i, (k, t) in enumerate(zip(known, TEXTS))]
        master = folder / f"{vendor}_{method}.wav"
        spread = join_segments(parts, master)
        t0 = time.perf_counter()
        aligned = align_segments(master, spread, range(len(spread)))
        align_s += time.perf_counter() - t0
        audio_s += spread[-1].end_s
        for k, seg_before, seg_after in zip(known, spread, aligned):
            truth = [seg_before.start_s + s for s in k.starts_s]
            before += [w.start_s - t for w, t in zip(seg_before.words, truth, strict=True)]
            after += [w.start_s - t for w, t in zip(seg_after.words, truth, strict=True)]
    return {"before": _stats(before), "after": _stats(after),
            "align_s_per_audio_min": round(align_s / (audio_s / 60), 2), "audio_s": round(audio_s, 1)}


def minutes_cost(folder: Path, minutes: float = 3.0) -> dict[str, float]:
    """Seconds the aligner takes for one long segment of ``minutes`` of speech."""
    rng = np.random.default_rng(3)
    words = " ".join(TEXTS)
    text = words
    while len(text.split()) < 150 * minutes:
        text += " " + words
    known = warp_speech(text, "en-gb-x-rp+f2", 1.0, rng)
    part = _shape(known, "openai", folder, 99, text, rng)
    master = folder / "long.wav"
    spread = join_segments([part], master)
    t0 = time.perf_counter()
    aligned = align_segments(master, spread, [0])
    took = time.perf_counter() - t0
    errs = [w.start_s - (spread[0].start_s + t) for w, t in zip(aligned[0].words, known.starts_s, strict=True)]
    return {"audio_s": round(spread[0].end_s, 1), "align_s": round(took, 2),
            "align_s_per_audio_min": round(took / (spread[0].end_s / 60), 2), **_stats(errs)}


# Other languages: one text each, the truth spoken by a Klatt variant of that language's espeak voice,
# the reference by its plain voice (what the narration's language picks).
LANGUAGE_TEXTS = {
    "es": "El guardián del faro subió las escaleras al amanecer. Cada mañana contaba los barcos que pasaban "
          "por la punta rocosa, y escribía sus nombres en un pequeño libro azul.",
    "fr": "Le gardien du phare montait l'escalier à l'aube. Chaque matin, il comptait les navires qui passaient "
          "la pointe rocheuse, et notait leurs noms dans un petit carnet bleu.",
    "de": "Der Leuchtturmwärter stieg im Morgengrauen die Treppe hinauf. Jeden Morgen zählte er die Schiffe, die an "
          "der felsigen Spitze vorbeifuhren, und schrieb ihre Namen in ein kleines blaues Buch.",
    "ru": "Смотритель маяка поднимался по лестнице на рассвете. Каждое утро он считал корабли, проходившие мимо "
          "скалистого мыса, и записывал их имена в маленькую синюю книжку.",
    "hi": "प्रकाशस्तंभ का रखवाला भोर में सीढ़ियाँ चढ़ता था। हर सुबह वह चट्टानी किनारे से गुजरने वाले जहाजों को गिनता था, "
          "और उनके नाम एक छोटी नीली किताब में लिखता था।",
    "ar": "صعد حارس المنارة الدرج عند الفجر. كل صباح كان يعد السفن التي تمر بالرأس الصخري، ويكتب أسماءها في كتاب "
          "أزرق صغير.",
}


def languages(seed: int) -> dict[str, object]:
    """After-alignment figures per language (both ways of building known speech together)."""
    from core.media.align import align_words
    from core.media.language import espeak_voice

    out: dict[str, object] = {}
    for lang, text in LANGUAGE_TEXTS.items():
        rng = np.random.default_rng(seed)
        errors: list[float] = []
        for build in (words_speech, warp_speech):
            known = build(text, f"{lang}+klatt2", 1.0, rng)
            words = align_words(known.samples, RATE, text, voice=espeak_voice(lang))
            errors += [w.start_s - t for w, t in zip(words, known.starts_s, strict=True)]
        out[lang] = _stats(errors)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7, help="the random gaps, warps and noise")
    ap.add_argument("--languages", action="store_true", help="also es, fr, de, ru, hi, ar (espeak-made truth)")
    ap.add_argument("--long-minutes", type=float, default=3.0, help="one long segment to time (0: skip)")
    args = ap.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for vendor in CASES:
            results[vendor] = measure(vendor, Path(tmp), args.seed)
            print(vendor, json.dumps(results[vendor]), flush=True)
        if args.long_minutes > 0:
            results["long"] = minutes_cost(Path(tmp), args.long_minutes)
            print("long", json.dumps(results["long"]), flush=True)
        if args.languages:
            results["languages"] = languages(args.seed)
            for lang, figures in results["languages"].items():  # type: ignore[union-attr]
                print(lang, json.dumps(figures), flush=True)
    figures = [r["after"] for k, r in results.items() if k in CASES]  # type: ignore[index]
    figures += list(results.get("languages", {}).values())  # type: ignore[union-attr]
    ok = all(f["median_ms"] <= TARGETS["median_ms"] and f["p90_ms"] <= TARGETS["p90_ms"] for f in figures)
    print("PASS" if ok else "FAIL", f"targets: median <= {TARGETS['median_ms']:g} ms, p90 <= {TARGETS['p90_ms']:g} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
