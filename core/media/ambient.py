"""``local:ambient``: a music bed synthesised with numpy — moving chords, soft pads, a seamless loop.

Not a test tone. A mood ("calm piano, hopeful") picks a :class:`MoodProfile` by its words
(calm, upbeat, inspiring, tense, dark): a chord progression, a tempo, how bright the pads
are and whether a gentle pulse plays. The bed is made of

- **pads**: each chord tone as two voices detuned a few cents apart, one leaning left and
  one right (stereo width), additive harmonics (band-limited, no aliasing) under a
  low-pass whose cutoff sweeps slowly; chords are voiced close around one centre so the
  voices move by small steps from chord to chord;
- **bass**: the chord's root, two octaves down, a soft sine with its second harmonic;
- **pulse** (upbeat, inspiring, tense): plucked chord tones on eighths or quarters;
- **room**: a long, decorrelated noise reverb per channel.

**Seamless by construction.** The bed is a whole number of bars and is rendered on a
circle: a note ringing past the end (a release, a reverb tail) continues at the start, the
filter's sweep completes a whole number of cycles and the reverb is a circular
convolution. Playing the file again from its start is therefore exactly what would have
come next: no click, no step in level at the loop point, however often it repeats.
The tempo bends (at most ±12 %) so the bars fill the requested duration exactly.

It is synthesised at 16 kHz (nothing in it reaches 7 kHz: pads are soft, the pulse
is plucked) and brought to 48 kHz by zero-padding its spectrum, the exact band-limited
interpolation of a periodic signal. 90 s take 4-9 s on a busy 2-core machine (numpy, one core).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import OperationCancelled
from core.media.formats import AUDIO_SAMPLE_RATE

__all__ = ["MoodProfile", "MOODS", "AmbientBed", "mood_profile", "render_ambient", "chord_name", "SYNTH_RATE"]

SYNTH_RATE = 16_000
_UPSAMPLE = AUDIO_SAMPLE_RATE // SYNTH_RATE
BEATS_PER_BAR = 4
_MAX_TEMPO_BEND = 0.12

# Chord qualities: semitones above the chord's root.
_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "add9": (0, 4, 7, 14),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "min9": (0, 3, 7, 14), "dim": (0, 3, 6),
}
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class MoodProfile:
    """What a mood sounds like: chords (semitones above the key, quality), tempo, colour, pulse."""

    name: str
    words: tuple[str, ...]  # word stems that choose it
    progression: tuple[tuple[int, str], ...]
    bpm: float
    bars_per_chord: int
    cutoff_hz: float  # the pads' low-pass, at the middle of its sweep
    sweep_octaves: float  # how far the cutoff swings either way
    pulse: str | None  # None, "eighths" (an arpeggio) or "quarters" (the root, softly)
    keys: tuple[int, ...]  # MIDI roots it may be played in (chosen from the mood's words, deterministically)
    reverb_mix: float = 0.35


MOODS: dict[str, MoodProfile] = {m.name: m for m in (
    MoodProfile("calm", ("calm", "relax", "peace", "soft", "gentle", "chill", "ambient", "seren", "quiet", "piano",
                         "meditat", "sleep", "warm", "lofi", "lo-fi", "tranquil", "dream"),
                ((0, "maj7"), (9, "min7"), (5, "maj7"), (7, "sus2")), 66, 2, 900, 0.8, None, (60, 62, 65)),
    MoodProfile("upbeat", ("upbeat", "happy", "energ", "fun", "bright", "cheer", "playful", "danc", "pop", "positiv",
                           "lively", "joy", "summer", "fast", "groov"),
                ((0, "add9"), (7, "maj"), (9, "min7"), (5, "maj")), 104, 1, 1600, 0.7, "eighths", (60, 62, 67)),
    MoodProfile("inspiring", ("inspir", "hope", "uplift", "epic", "motivat", "triumph", "cinematic", "heroic",
                              "wonder", "optimis", "grand", "adventur", "rising"),
                ((9, "min7"), (5, "maj7"), (0, "add9"), (7, "sus4")), 84, 1, 1300, 0.8, "quarters", (60, 62, 64)),
    MoodProfile("tense", ("tens", "suspens", "thrill", "myster", "urgent", "anxi", "horror", "danger", "crime",
                          "investigat", "ominous", "nervous"),
                ((0, "min"), (1, "maj"), (0, "min"), (8, "maj")), 76, 1, 700, 1.0, "quarters", (57, 59, 62)),
    MoodProfile("dark", ("dark", "sad", "melanch", "somber", "sombre", "moody", "gloom", "grief", "night", "lonel",
                         "eerie", "tragic", "nostalg", "minor"),
                ((0, "min7"), (8, "maj7"), (3, "maj"), (10, "sus2")), 60, 2, 650, 0.7, None, (57, 60, 62)),
)}
_DEFAULT_MOOD = "calm"


def mood_profile(mood: str) -> MoodProfile:
    """The profile whose words the mood uses most (the first listed on a tie); calm when none match."""
    words = re.findall(r"[a-z][a-z-]*", mood.lower())
    best, best_score = MOODS[_DEFAULT_MOOD], 0
    for profile in MOODS.values():
        score = sum(1 for w in words for stem in profile.words if w.startswith(stem))
        if score > best_score:
            best, best_score = profile, score
    return best


def chord_name(key_midi: int, offset: int, quality: str) -> str:
    return _NOTE_NAMES[(key_midi + offset) % 12] + {"maj": "", "min": "m", "min7": "m7", "min9": "m9"}.get(quality,
                                                                                                           quality)


@dataclass(frozen=True)
class AmbientBed:
    """A rendered bed: 48 kHz stereo float32 samples (n, 2) and the facts of its loop."""

    samples: np.ndarray
    profile: str
    key: str
    bpm: float
    bars: int
    beats_per_bar: int
    chords: tuple[str, ...]  # one per chord slot of a progression cycle
    chord_starts_s: tuple[float, ...]  # where each chord of the whole bed starts
    sample_rate: int = AUDIO_SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def bar_s(self) -> float:
        return self.duration_s / self.bars


def _plan_bars(profile: MoodProfile, duration_s: float) -> tuple[int, float]:
    """Whole bars that fill ``duration_s``: whole progression cycles if a tempo within ±12 % allows it,
    else whole chords, else any whole number of bars. Returns (bars, bpm)."""
    nominal_bar_s = BEATS_PER_BAR * 60.0 / profile.bpm
    for unit in (len(profile.progression) * profile.bars_per_chord, profile.bars_per_chord, 1):
        units = max(1, round(duration_s / (unit * nominal_bar_s)))
        bars = units * unit
        bpm = BEATS_PER_BAR * 60.0 * bars / duration_s
        if abs(bpm / profile.bpm - 1) <= _MAX_TEMPO_BEND:
            return bars, bpm
    bars = max(1, round(duration_s / nominal_bar_s))
    return bars, BEATS_PER_BAR * 60.0 * bars / duration_s


def _voicing(key: int, offset: int, quality: str, centre: int) -> list[int]:
    """The chord's tones, each placed in the octave around ``centre`` (close voicing: small steps between chords)."""
    notes = []
    for interval in _QUALITIES[quality]:
        pc = (key + offset + interval) % 12
        note = centre - 6 + ((pc - (centre - 6)) % 12)
        notes.append(note)
    return sorted(notes)


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


class _Circle:
    """A stereo buffer on a circle: whatever runs past the end continues at the start."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.left = np.zeros(n)
        self.right = np.zeros(n)

    def add(self, start: int, mono: np.ndarray, gain_l: float, gain_r: float) -> None:
        pos = start % self.n
        done = 0
        while done < len(mono):
            take = min(len(mono) - done, self.n - pos)
            piece = mono[done:done + take]
            self.left[pos:pos + take] += gain_l * piece
            self.right[pos:pos + take] += gain_r * piece
            done += take
            pos = 0


def _envelope(n: int, attack: int, hold: int, release: int) -> np.ndarray:
    """Raised-cosine attack, flat hold, raised-cosine release (no corners: no clicks)."""
    env = np.ones(n)
    a = min(attack, n)
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / max(1, a))
    r = min(release, n - hold) if n > hold else 0
    if r > 0:
        env[n - r:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / r)
    return env


_BLOCK = 80  # control-rate block of the filter (5 ms at 16 kHz)


def _pad_voice(f0: float, n: int, start: int, inv_cutoff: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One voice: harmonics 1..H of ``f0`` (amplitude 1/h^1.3) each weighted by a 4-pole low-pass at the
    cutoff of the moment (``inv_cutoff``: 1/cutoff per control block, on the circle)."""
    blocks = -(-n // _BLOCK)
    t = np.arange(blocks * _BLOCK)  # whole control blocks; cut to n at the end
    phase = 2 * np.pi * f0 / SYNTH_RATE * t + rng.uniform(0, 2 * np.pi)
    s_prev, s = np.zeros(len(t)), np.sin(phase)
    c2 = 2 * np.cos(phase)
    idx = (start // _BLOCK + np.arange(blocks)) % len(inv_cutoff)
    inv = inv_cutoff[idx]
    out = np.zeros((blocks, _BLOCK))
    harmonics = max(1, min(14, int(0.45 * SYNTH_RATE / f0)))
    for h in range(1, harmonics + 1):
        gain = (h ** -1.3) / np.sqrt(1 + ((h * f0) * inv) ** 4)
        if gain.max() < 1e-3:
            break
        out += s.reshape(blocks, _BLOCK) * gain[:, None]
        s_prev, s = s, c2 * s - s_prev  # sin((h+1)x) = 2cos(x) sin(hx) - sin((h-1)x)
    return out.ravel()[:n]


def _pluck(f0: float, n: int, decay_s: float, harmonics: int = 4) -> np.ndarray:
    t = np.arange(n) / SYNTH_RATE
    tone = sum((0.55 ** (h - 1)) * np.sin(2 * np.pi * h * f0 * t) * np.exp(-t * h / decay_s)
               for h in range(1, harmonics + 1) if h * f0 < 0.45 * SYNTH_RATE)
    attack = max(1, int(0.004 * SYNTH_RATE))
    tone[:attack] *= np.linspace(0, 1, attack, endpoint=False)
    return tone * np.exp(-t / decay_s)


def _room(n: int, seed: int, t60_s: float = 2.6) -> tuple[np.ndarray, np.ndarray]:
    """Two decorrelated impulse responses (exponentially decaying, softened noise), folded onto the circle."""
    rng = np.random.default_rng(seed)
    length = int(min(3.0, t60_s * 1.2) * SYNTH_RATE)
    t = np.arange(length) / SYNTH_RATE
    decay = np.exp(-6.9 * t / t60_s)
    out = []
    for _ in range(2):
        noise = rng.standard_normal(length)
        noise = np.convolve(noise, np.ones(6) / 6, mode="same")  # a gentle low-pass: a soft room
        ir = noise * decay
        ir[: int(0.012 * SYNTH_RATE)] = 0.0  # pre-delay
        ir /= np.sqrt(np.sum(ir ** 2))
        folded = np.zeros(n)
        for i in range(0, length, n):
            piece = ir[i:i + n]
            folded[: len(piece)] += piece
        out.append(folded)
    return out[0], out[1]


def _seed(mood: str) -> int:
    return int.from_bytes(hashlib.sha256(mood.strip().lower().encode()).digest()[:8], "big")


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise OperationCancelled("music generation cancelled")


def render_ambient(mood: str, duration_s: float, *, cancel: threading.Event | None = None) -> AmbientBed:
    """A bed for ``mood`` exactly ``duration_s`` long (to the 16 kHz sample), seamless end to start.

    Deterministic: the same mood and duration give the same samples. Peaks are normalised
    to -3 dBFS here; the music service masters the loudness of every provider's bed.
    """
    profile = mood_profile(mood)
    seed = _seed(mood)
    rng = np.random.default_rng(seed)
    key = profile.keys[seed % len(profile.keys)]
    bars, bpm = _plan_bars(profile, duration_s)
    n = max(_BLOCK, round(duration_s * SYNTH_RATE))
    bar_len = n / bars
    beat_len = bar_len / BEATS_PER_BAR
    circle = _Circle(n)

    # The filter's sweep: a whole number of cycles (about one per 20 s) over the loop.
    blocks = -(-n // _BLOCK)
    cycles = max(1, round(duration_s / 20))
    sweep = np.sin(2 * np.pi * cycles * np.arange(blocks) / blocks - np.pi / 2)
    inv_cutoff = 1.0 / (profile.cutoff_hz * 2 ** (profile.sweep_octaves * sweep))

    chord_len = bar_len * profile.bars_per_chord
    n_chords = max(1, round(bars / profile.bars_per_chord))
    release = int(min(2.5, 0.6 * chord_len / SYNTH_RATE) * SYNTH_RATE)
    attack = int(min(1.2, 0.3 * chord_len / SYNTH_RATE) * SYNTH_RATE)
    centre = key + 5  # the pads sit from a fourth below to a fifth above the key's root
    names, starts_s = [], []
    for c in range(n_chords):
        _check(cancel)
        offset, quality = profile.progression[c % len(profile.progression)]
        if c < len(profile.progression):
            names.append(chord_name(key, offset, quality))
        start = round(c * chord_len)
        end = round(min(n_chords, c + 1) * chord_len) if c + 1 < n_chords else n
        starts_s.append(round(start / SYNTH_RATE, 4))
        hold = end - start
        length = hold + release
        env = _envelope(length, attack, hold, release)
        notes = _voicing(key, offset, quality, centre)
        for note in notes:
            for cents, (gl, gr) in ((-7.0, (1.0, 0.35)), (7.0, (0.35, 1.0))):
                voice = _pad_voice(_hz(note + cents / 100), length, start, inv_cutoff, rng)
                circle.add(start, voice * env * (0.22 / math.sqrt(len(notes))), gl, gr)
        root = key + offset - 24
        while root < 33:
            root += 12
        t = np.arange(length) / SYNTH_RATE
        f = _hz(root)
        bass = (np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)) * env * 0.30
        circle.add(start, bass, 0.8, 0.8)

        if profile.pulse:
            step = beat_len / 2 if profile.pulse == "eighths" else beat_len
            hits = max(1, round((end - start) / step))
            arp = notes + [notes[0] + 12]
            for k in range(hits):
                at = start + round(k * step)
                if profile.pulse == "eighths":
                    f0, decay, gain = _hz(arp[k % len(arp)] + 12), 0.28, 0.11
                    pan = (0.9, 0.5) if k % 2 == 0 else (0.5, 0.9)
                else:  # quarters: the root, low and soft, a little heavier on each bar's first beat
                    f0, decay, gain = _hz(key + offset - 12), 0.35, 0.10 if k % BEATS_PER_BAR else 0.15
                    pan = (0.7, 0.7)
                accent = 1.0 + 0.08 * rng.standard_normal()
                note = _pluck(f0, int(4 * decay * SYNTH_RATE), decay) * gain * accent
                circle.add(at, note, *pan)

    _check(cancel)
    # The room: a circular convolution, so the tail of the end rings into the start.
    ir_l, ir_r = _room(n, seed)
    wet = profile.reverb_mix
    spectrum_l, spectrum_r = np.fft.rfft(circle.left), np.fft.rfft(circle.right)
    left = (1 - wet) * spectrum_l + wet * spectrum_l * np.fft.rfft(ir_l)
    right = (1 - wet) * spectrum_r + wet * spectrum_r * np.fft.rfft(ir_r)
    _check(cancel)
    stereo = np.empty((n * _UPSAMPLE, 2), dtype=np.float32)
    stereo[:, 0] = _upsample(left, n)
    stereo[:, 1] = _upsample(right, n)
    peak = float(np.max(np.abs(stereo))) or 1.0
    stereo *= 10 ** (-3 / 20) / peak
    return AmbientBed(
        samples=stereo,
        profile=profile.name,
        key=_NOTE_NAMES[key % 12] + ("m" if profile.progression[0][1].startswith("min") else ""),
        bpm=round(bpm, 3),
        bars=bars,
        beats_per_bar=BEATS_PER_BAR,
        chords=tuple(names),
        chord_starts_s=tuple(starts_s),
    )


def _upsample(spectrum: np.ndarray, n: int) -> np.ndarray:
    """A periodic signal given by its rfft (length ``n``) at ``_UPSAMPLE`` times the rate: zero-padded spectrum."""
    out_n = n * _UPSAMPLE
    padded = np.zeros(out_n // 2 + 1, dtype=complex)
    padded[: len(spectrum)] = spectrum
    if n % 2 == 0:  # the old Nyquist bin is shared by two bins of the longer spectrum
        padded[len(spectrum) - 1] *= 0.5
    return np.fft.irfft(padded, out_n) * _UPSAMPLE


def chroma(samples: np.ndarray, sample_rate: int, starts_s: Sequence[float], end_s: float) -> list[np.ndarray]:
    """12-bin pitch-class profiles of each span [start, next start) of a mono or stereo signal (50-2000 Hz):
    what tests and benchmarks use to see that the chords move."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    out = []
    bounds = [*starts_s, end_s]
    for a, b in zip(bounds, bounds[1:], strict=False):
        seg = mono[int(a * sample_rate): int(b * sample_rate)]
        if len(seg) < 1024:
            out.append(np.zeros(12))
            continue
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        freqs = np.fft.rfftfreq(len(seg), 1 / sample_rate)
        keep = (freqs > 50) & (freqs < 2000)
        pcs = np.round(12 * np.log2(freqs[keep] / 440.0)).astype(int) % 12
        prof = np.bincount((pcs + 9) % 12, weights=spec[keep] ** 2, minlength=12)  # bin 0 = C
        out.append(prof / (np.linalg.norm(prof) or 1.0))
    return out
