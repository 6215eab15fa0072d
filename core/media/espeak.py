"""The ``local:espeak-ng`` offline speech engine: libespeak-ng driven through ctypes.

No system espeak-ng is needed: the shared library and its ``espeak-ng-data`` come from
the ``espeakng-loader`` wheel. Only the loader's two path helpers are used; its
``load_library()`` prints to stdout on failure, which would corrupt the MCP stream.

How it works
------------
* The engine runs in synchronous mode with a synth callback that collects 16-bit mono
  samples at the engine's own rate (22050 Hz for the bundled data) and the
  ``espeakEVENT_WORD`` events, each carrying the word's character position in the text
  and its exact sample offset. Segments are joined with ``gap_s`` of silence, written to
  a temporary WAV with :mod:`wave`, and converted by ffmpeg into a 48 kHz stereo
  ``pcm_s16le`` WAV at exactly ``out_wav``.
* Words are the whitespace-separated tokens of each segment (what captions show), timed
  from those events by :mod:`core.media.word_events`.
* Speed is espeak's own rate (``espeakRATE``, words per minute): 1.0 = 175 wpm, scaled
  linearly and clamped to the engine's 80..450. The engine re-times phonemes, so speech
  stays natural and the word events stay exact.
* Pitch is applied exactly in the ffmpeg conversion: ``asetrate`` by 2^(st/12), then
  ``atempo`` by the inverse keeps the duration, and ``apad``+``atrim`` pin the length to
  the sample, so the timings need no rescaling. ``espeakPITCH`` was rejected: its 0..100
  scale is 2^x for x in -1..1 on the voice's *base* pitch only (50 steps an octave,
  quantised to ~0.24 semitone), while the intonation range is added in absolute units,
  so +12 semitones through it raises the spoken F0 by less than an octave. The price of
  the resampling route is that formants move with the pitch (a +12 render sounds smaller,
  not just higher), as with any pitch shifter that keeps duration.
* The library runs in a worker process (:mod:`core.media.native_worker`), never in the
  server's: libespeak-ng 1.52 aborts the process on some inputs (a stack overflow on
  ``"s'" * 220``, fixed upstream after 1.52 in espeak-ng#2495), and a crash must cost one
  request, not the server. The worker answers two requests: ``info`` (version, paths,
  sample rate, voices; fetched once and kept here) and ``render`` (one segment's samples
  and word events). Everything else — voice lookup, timings, silence, the ffmpeg
  conversion — runs in the server. A crash is :class:`~core.errors.Crashed` (the chain
  records it and moves on); cancelling kills the worker mid-segment. Tokens longer than
  :data:`MAX_TOKEN_CHARS` are split before they reach the engine (character for
  character, so word positions hold): the known overflow needs a ~130-character token.
* Inside the worker, libespeak-ng is one global state: every call into it holds
  :data:`_LOCK`, the engine is initialised once, lazily, and the ctypes callback object
  lives at module level so it is never collected while the library holds its pointer.
  Requests are served one at a time, so two jobs interleave segment by segment; voice
  and rate are set again each time.
* Nothing reaches stdout: the library writes only to stderr (its single stdout use is in
  the phoneme compiler, never called), and ``espeak_Initialize``, which calls ``exit()``
  when the data is missing, is bypassed for ``espeak_ng_InitializePath`` +
  ``espeak_ng_Initialize`` + ``espeak_ng_InitializeOutput``, which return a status.
  ``espeak_ng_Initialize`` also calls ``setlocale(LC_CTYPE, "C.UTF-8")`` for the whole
  process; a UTF-8 locale the process had before is put back.

Errors: engine missing or failing to start -> :class:`NotConfigured` (a provider chain
falls back); no audio -> :class:`BadOutput`; bad arguments or an unknown voice ->
:class:`InputError`; the worker dying -> :class:`Crashed`; ``cancel`` set ->
:class:`OperationCancelled` and no ``out_wav``.
"""

from __future__ import annotations

import ctypes
import difflib
import locale
import logging
import math
import os
import re
import sys
import tempfile
import threading
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import BadOutput, InputError, NotConfigured, OperationCancelled
from core.media import japanese
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.formats import AUDIO_SAMPLE_RATE, pitch_shift_filters
from core.media.native_worker import NativeWorker
from core.media.word_events import segment_timing
from core.schemas import SegmentTiming, WordTiming

__all__ = [
    "PROVIDER_ID",
    "DEFAULT_VOICE",
    "BASE_WPM",
    "MIN_WPM",
    "MAX_WPM",
    "OUTPUT_SAMPLE_RATE",
    "synthesize",
    "list_voices",
    "engine_info",
    "words_per_minute",
    "speak_reference",
]

log = logging.getLogger(__name__)

requires({"asetrate": (), "aresample": (), "atempo": (), "apad": ("whole_len",), "atrim": ("end_sample",)},
         encoders=("pcm_s16le",))

PROVIDER_ID = "local:espeak-ng"
DEFAULT_VOICE = "en-us"
BASE_WPM = 175  # espeakRATE_NORMAL
MIN_WPM, MAX_WPM = 80, 450  # espeakRATE_MINIMUM, espeakRATE_MAXIMUM
OUTPUT_SAMPLE_RATE = AUDIO_SAMPLE_RATE
MAX_PITCH_SEMITONES = 24.0
MAX_GAP_S = 10.0
MAX_TOKEN_CHARS = 64  # longer unspaced runs are split for the engine (see the module docstring)
_RENDER_TIMEOUT_S = 120.0  # one segment; espeak renders ~50x faster than real time

_WORKER = NativeWorker("espeak-ng", "core.media.espeak:_worker_handle")

# speak_lib.h / espeak_ng.h constants
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_ENOUTPUT_MODE_SYNCHRONOUS = 0x0001
_ENS_OK = 0
_ENS_SPEECH_STOPPED = 0x10000EFF
_BUFFER_MS = 100  # audio handed to the callback per call

_LOCK = threading.Lock()


# --- ctypes declarations ----------------------------------------------------------------


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters
        ("length", ctypes.c_int),  # in characters
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples since the start of this synthesis
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated code)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def _declare(lib: ctypes.CDLL) -> None:
    c_status = ctypes.c_uint
    lib.espeak_ng_InitializePath.argtypes = [ctypes.c_char_p]
    lib.espeak_ng_InitializePath.restype = None
    lib.espeak_ng_Initialize.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.espeak_ng_Initialize.restype = c_status
    lib.espeak_ng_InitializeOutput.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    lib.espeak_ng_InitializeOutput.restype = c_status
    lib.espeak_ng_GetSampleRate.argtypes = []
    lib.espeak_ng_GetSampleRate.restype = ctypes.c_int
    lib.espeak_ng_ClearErrorContext.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.espeak_ng_ClearErrorContext.restype = None
    lib.espeak_ng_GetStatusCodeMessage.argtypes = [c_status, ctypes.c_char_p, ctypes.c_size_t]
    lib.espeak_ng_GetStatusCodeMessage.restype = None
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_ng_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_ng_SetVoiceByName.restype = c_status
    lib.espeak_ng_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetParameter.restype = c_status
    lib.espeak_ng_Synthesize.argtypes = [
        ctypes.c_char_p,  # text
        ctypes.c_size_t,  # size (bytes, with the NUL)
        ctypes.c_uint,  # position
        ctypes.c_int,  # position type
        ctypes.c_uint,  # end position
        ctypes.c_uint,  # flags
        ctypes.POINTER(ctypes.c_uint),  # unique identifier (out)
        ctypes.c_void_p,  # user data
    ]
    lib.espeak_ng_Synthesize.restype = c_status


# --- the engine (module state, guarded by _LOCK) ----------------------------------------


@dataclass(frozen=True)
class _VoiceEntry:
    identifier: str  # e.g. "gmw/en-US": what espeak_ng_SetVoiceByName is given
    name: str  # e.g. "English (America)"
    languages: tuple[tuple[int, str], ...]  # (priority, code); lower priority = preferred


@dataclass
class _Collector:
    """What the callback gathers during one espeak_ng_Synthesize call (in the worker)."""

    pcm: array = field(default_factory=lambda: array("h"))
    words: list[tuple[int, int]] = field(default_factory=list)  # (text_position, sample)
    error: BaseException | None = None


@dataclass
class _Facts:
    """What the server knows of the engine, fetched once from the worker."""

    library_path: str
    data_path: str
    version: str
    sample_rate: int
    voices: list[_VoiceEntry]
    lookup: dict[str, str]  # lower-cased language / identifier / name -> identifier
    variants: dict[str, str]  # lower-cased variant -> file name in voices/!v


@dataclass
class _Engine(_Facts):
    """The loaded library (in the worker process only)."""

    lib: ctypes.CDLL | None = None


_engine: _Engine | None = None
_facts_cache: _Facts | None = None
_FACTS_LOCK = threading.Lock()
_collector: _Collector | None = None


def _on_synth(wav: Any, numsamples: int, events: Any) -> int:
    """The synth callback: 0 = go on, 1 = stop (failed)."""
    c = _collector
    if c is None:
        return 0
    try:
        if wav and numsamples > 0:
            c.pcm.frombytes(ctypes.string_at(wav, numsamples * 2))
        if events:
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == _EVENT_WORD:
                    c.words.append((ev.text_position, ev.sample))
                i += 1
        return 0
    except BaseException as exc:  # never let an exception cross into C
        c.error = exc
        return 1


_CALLBACK = _SYNTH_CALLBACK(_on_synth)  # module level: libespeak-ng keeps the pointer


def _status_message(lib: ctypes.CDLL, status: int) -> str:
    buf = ctypes.create_string_buffer(512)
    lib.espeak_ng_GetStatusCodeMessage(status, buf, len(buf))
    return buf.value.decode("utf-8", "replace") or f"status 0x{status:08x}"


def _engine_locked() -> _Engine:
    """The initialised engine; the caller holds _LOCK."""
    global _engine
    if _engine is not None:
        return _engine
    try:
        import espeakng_loader
    except ImportError as exc:
        raise NotConfigured("espeak-ng is not available: the espeakng-loader package is not installed") from exc
    try:
        library_path = espeakng_loader.get_library_path()
        data_dir = Path(espeakng_loader.get_data_path())
    except RuntimeError as exc:  # the loader raises RuntimeError when its data is missing
        raise NotConfigured(f"espeak-ng data not found: {exc}") from exc
    try:
        lib = ctypes.CDLL(library_path)
    except OSError as exc:
        raise NotConfigured(f"cannot load libespeak-ng from {library_path}: {exc}") from exc
    _declare(lib)

    # The path given is the PARENT of espeak-ng-data (espeak appends "/espeak-ng-data";
    # 1.52 also accepts the data directory itself, older builds do not).
    lib.espeak_ng_InitializePath(os.fsencode(data_dir.parent))
    previous_ctype = locale.setlocale(locale.LC_CTYPE)
    context = ctypes.c_void_p()
    status = lib.espeak_ng_Initialize(ctypes.byref(context))
    _restore_ctype(previous_ctype)
    if status != _ENS_OK:
        message = _status_message(lib, status)
        lib.espeak_ng_ClearErrorContext(ctypes.byref(context))
        raise NotConfigured(f"espeak-ng failed to initialise with data at {data_dir}: {message}")
    status = lib.espeak_ng_InitializeOutput(_ENOUTPUT_MODE_SYNCHRONOUS, _BUFFER_MS, None)
    if status != _ENS_OK:
        raise NotConfigured(f"espeak-ng output setup failed: {_status_message(lib, status)}")
    lib.espeak_SetSynthCallback(_CALLBACK)

    home = ctypes.c_char_p()
    version = (lib.espeak_Info(ctypes.byref(home)) or b"unknown").decode()
    used_data = os.fsdecode(home.value or b"")
    if Path(used_data) != data_dir:
        log.warning("espeak-ng uses data at %s, not the bundled %s", used_data, data_dir)

    voices = _read_voices(lib)
    if not voices:
        raise NotConfigured(f"espeak-ng found no voices in {used_data}")
    _engine = _Engine(
        lib=lib,
        library_path=library_path,
        data_path=used_data,
        version=version,
        sample_rate=lib.espeak_ng_GetSampleRate(),
        voices=voices,
        lookup=_build_lookup(voices),
        variants=_read_variants(Path(used_data)),
    )
    log.debug(
        "espeak-ng %s loaded from %s (%d voices, %d Hz)",
        version,
        library_path,
        len(voices),
        _engine.sample_rate,
    )
    return _engine


def _restore_ctype(previous: str) -> None:
    """Undo espeak_ng_Initialize's setlocale(LC_CTYPE) when the old locale was UTF-8.

    espeak needs a UTF-8 LC_CTYPE for its wide-character functions; a process that
    already had one (Python's usual case, PEP 538/540) gets its own back unchanged.
    """
    if previous == locale.setlocale(locale.LC_CTYPE):
        return
    if re.search(r"utf-?8", previous, re.IGNORECASE):
        try:
            locale.setlocale(locale.LC_CTYPE, previous)
        except locale.Error:
            pass
    else:
        log.debug("espeak-ng switched LC_CTYPE from %s to %s", previous, locale.setlocale(locale.LC_CTYPE))


def _read_voices(lib: ctypes.CDLL) -> list[_VoiceEntry]:
    out: list[_VoiceEntry] = []
    table = lib.espeak_ListVoices(None)
    if not table:
        return out
    i = 0
    while table[i]:
        v = table[i].contents
        langs: list[tuple[int, str]] = []
        p = v.languages
        while p:
            priority = ctypes.c_ubyte.from_address(p).value
            if priority == 0:
                break
            code = ctypes.string_at(p + 1)
            langs.append((priority, code.decode("utf-8", "replace")))
            p += len(code) + 2
        out.append(
            _VoiceEntry(
                identifier=(v.identifier or b"").decode("utf-8", "replace"),
                name=(v.name or b"").decode("utf-8", "replace"),
                languages=tuple(langs),
            )
        )
        i += 1
    return [v for v in out if v.identifier]


def _build_lookup(voices: list[_VoiceEntry]) -> dict[str, str]:
    """Keys accepted as ``voice``: language codes first (best priority wins), then
    identifiers ("gmw/en-us" and "en-us"), then names ("english (america)")."""
    lookup: dict[str, str] = {}
    best: dict[str, int] = {}
    for v in voices:
        for priority, code in v.languages:
            key = code.lower()
            if key not in best or priority < best[key]:
                best[key], lookup[key] = priority, v.identifier
    for v in voices:
        for key in (v.identifier.lower(), v.identifier.rsplit("/", 1)[-1].lower(), v.name.lower()):
            lookup.setdefault(key, v.identifier)
    return lookup


def _read_variants(data: Path) -> dict[str, str]:
    vdir = data / "voices" / "!v"
    try:
        return {p.name.lower(): p.name for p in vdir.iterdir() if p.is_file()}
    except OSError:
        return {}


# --- public helpers ---------------------------------------------------------------------


def list_voices() -> list[str]:
    """Every language code a voice answers to ("af" … "en", "en-gb", "en-us" … "zh").

    ``synthesize`` also accepts voice identifiers ("gmw/en-US"), voice names
    ("English (America)") and a variant suffix ("en-us+f3"; see espeak-ng-data/voices/!v).
    """
    return _language_codes(_facts())


def engine_info() -> dict[str, Any]:
    """Facts for ``doctor``; loads the engine. Raises :class:`NotConfigured` if it cannot."""
    eng = _facts()
    info: dict[str, Any] = {
        "provider": PROVIDER_ID,
        "engine": "espeak-ng",
        "version": eng.version,
        "library": eng.library_path,
        "library_path": eng.library_path,
        "data_path": eng.data_path,
        "sample_rate": eng.sample_rate,
        "voices": len(eng.voices),
        "languages": len({code.lower() for v in eng.voices for _, code in v.languages}),
        "default_voice": DEFAULT_VOICE,
        "output": f"wav pcm_s16le {OUTPUT_SAMPLE_RATE} Hz stereo",
        "process": "a worker process (a crash of the engine fails one request, not the server)",
    }
    try:
        from importlib.metadata import version

        info["loader_version"] = version("espeakng-loader")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        info["loader_version"] = None
    return info


def words_per_minute(speed: float) -> int:
    """espeakRATE for a speed factor: 1.0 = 175 wpm, linear, clamped to 80..450."""
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
        raise InputError(f"speed must be a positive number, got {speed!r}")
    return max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * speed)))


def is_voice(voice: str) -> bool:
    """Whether espeak-ng knows ``voice`` (code, identifier or name, with an optional variant)."""
    try:
        _resolve_voice(_facts(), voice)
    except InputError:
        return False
    return True


def _resolve_voice(eng: _Facts, voice: str | None) -> str:
    """The name given to espeak_ng_SetVoiceByName ("gmw/en-US", "gmw/en-US+f3")."""
    requested = (voice or DEFAULT_VOICE).strip()
    base, _, variant = requested.partition("+")
    identifier = eng.lookup.get(base.strip().lower().replace("_", "-"))
    if identifier is None:
        known = [k for k in ("en-us", "en-gb", "en", "de", "fr", "es", "it", "pt-br", "nl", "pl") if k in eng.lookup]
        close = difflib.get_close_matches(base.lower(), _language_codes(eng), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"unknown espeak-ng voice {requested!r}{hint} Known voices include {', '.join(known)} "
            f"({len(eng.lookup)} names in all; language codes, identifiers like 'gmw/en-US', "
            f"or names like 'English (America)', optionally with a variant such as '+f3')"
        )
    if variant:
        file_name = eng.variants.get(variant.strip().lower())
        if file_name is None:
            some = ", ".join(sorted(eng.variants)[:8])
            raise InputError(f"unknown espeak-ng voice variant {variant!r}; variants include {some}")
        return f"{identifier}+{file_name}"
    return identifier


def _language_codes(eng: _Facts) -> list[str]:
    return sorted({code.lower() for v in eng.voices for _, code in v.languages})


# --- synthesis ----------------------------------------------------------------------------


def synthesize(
    segments: list[str],
    out_wav: Path,
    *,
    voice: str | None = None,
    speed: float = 1.0,
    pitch_semitones: float = 0.0,
    gap_s: float = 0.35,
    cancel: threading.Event | None = None,
) -> list[SegmentTiming]:
    """Speak ``segments`` into a 48 kHz stereo 16-bit WAV at ``out_wav``; return timings.

    Segments are joined with ``gap_s`` of silence; the timings (segment and per-word,
    absolute seconds in the final file) are described in the module docstring.
    ``out_wav`` is written with ``-f wav`` whatever its suffix, so a ``.part`` name works.
    """
    texts = _clean_segments(segments)
    out_wav = Path(out_wav)
    wpm = words_per_minute(speed)
    if not (isinstance(pitch_semitones, (int, float)) and math.isfinite(pitch_semitones)):
        raise InputError(f"pitch_semitones must be a number, got {pitch_semitones!r}")
    if abs(pitch_semitones) > MAX_PITCH_SEMITONES:
        raise InputError(f"pitch_semitones must be within ±{MAX_PITCH_SEMITONES:g}, got {pitch_semitones:g}")
    if not (isinstance(gap_s, (int, float)) and math.isfinite(gap_s) and 0 <= gap_s <= MAX_GAP_S):
        raise InputError(f"gap_s must be between 0 and {MAX_GAP_S:g} seconds, got {gap_s!r}")
    if wpm != round(BASE_WPM * speed):
        log.info("espeak-ng rate %.0f wpm clamped to %d", BASE_WPM * speed, wpm)

    eng = _facts()
    voice_name = _resolve_voice(eng, voice)
    sr = eng.sample_rate
    gap = array("h", bytes(2 * round(gap_s * sr)))

    pcm = array("h")
    spans: list[tuple[int, str, array, list[tuple[int, int]]]] = []  # offset, text, samples, events
    for text in texts:
        _check_cancel(cancel)
        samples, events = _render(eng, text, voice_name, wpm, cancel)
        if spans:
            pcm.extend(gap)
        spans.append((len(pcm), text, samples, events))
        pcm.extend(samples)
    _check_cancel(cancel)
    if not pcm or not any(len(s[2]) for s in spans):
        raise BadOutput("espeak-ng produced no audio")

    timings = [
        segment_timing(i, text, samples, events, offset, sr)
        for i, (offset, text, samples, events) in enumerate(spans, 1)
    ]
    _write_output(pcm, sr, out_wav, pitch_semitones, cancel)
    log.debug(
        "espeak-ng: %d segment(s), %.2f s, voice %s, %d wpm, pitch %+g st -> %s",
        len(texts),
        len(pcm) / sr,
        voice_name,
        wpm,
        pitch_semitones,
        out_wav.name,
    )
    return timings


def speak_reference(
    text: str, *, voice: str | None = None, speed: float = 1.0, cancel: threading.Event | None = None
) -> tuple[array, int, list[WordTiming]]:
    """One segment's samples at the engine's rate and its words' exact times (seconds from the start).

    What :mod:`core.media.align` aligns other engines' speech against: no WAV, no ffmpeg."""
    (clean,) = _clean_segments([text])
    eng = _facts()
    samples, events = _render(eng, clean, _resolve_voice(eng, voice), words_per_minute(speed), cancel)
    if not samples:
        raise BadOutput("espeak-ng produced no audio")
    timing = segment_timing(1, clean, samples, events, 0, eng.sample_rate)
    return samples, eng.sample_rate, timing.words


def _clean_segments(segments: list[str]) -> list[str]:
    if isinstance(segments, str) or not segments:
        raise InputError("segments must be a non-empty list of strings")
    texts: list[str] = []
    for i, s in enumerate(segments, 1):
        if not isinstance(s, str):
            raise InputError(f"segment {i} is not a string")
        # NUL would end the C string early; other control characters are spoken oddly.
        cleaned = "".join(" " if (ch < " " and ch not in "\t\n") else ch for ch in s).strip()
        if not cleaned:
            raise InputError(f"segment {i} is empty")
        texts.append(cleaned)
    return texts


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise OperationCancelled("speech synthesis cancelled")


def _render(
    eng: _Facts, text: str, voice_name: str, wpm: int, cancel: threading.Event | None
) -> tuple[array, list[tuple[int, int]]]:
    """One segment through the engine's worker: its samples and (text_position, sample) word events.

    Japanese with kanji is spoken from its kana reading (core.media.japanese); the events are moved
    back onto the written text's positions."""
    # NotConfigured for kanji without the `ja` extra: never "Chinese letter".
    speech = japanese.reading_for(text) if _is_japanese(voice_name) else None
    result, blob = _WORKER.call(
        "render",
        {"text": _engine_text(speech.text if speech else text), "voice": voice_name, "wpm": wpm},
        timeout_s=_RENDER_TIMEOUT_S,
        cancel=cancel,
    )
    pcm = array("h")
    pcm.frombytes(blob[: len(blob) - len(blob) % 2])
    if sys.byteorder == "big":  # the engine hands native shorts; WAV is little-endian
        pcm.byteswap()
    events = [(int(p), int(n)) for p, n in result["words"]]
    if speech is not None:  # 1-based engine positions, spoken -> written
        events = [(speech.written_position(p - 1) + 1, n) for p, n in events]
    return pcm, events


def _is_japanese(voice_name: str) -> bool:
    """Whether an identifier from :func:`_resolve_voice` ("jpx/ja", "jpx/ja+f3") is the Japanese voice."""
    return voice_name.partition("+")[0].rsplit("/", 1)[-1].lower() == "ja"


def _engine_text(text: str) -> str:
    """``text`` with every unspaced run longer than MAX_TOKEN_CHARS cut by spaces, same length.

    Replacing a character (rather than inserting one) keeps the engine's character
    positions equal to ``text``'s, so word events still land on the caption's tokens.
    """
    def cut(m: re.Match[str]) -> str:
        run = list(m.group())
        for i in range(MAX_TOKEN_CHARS, len(run), MAX_TOKEN_CHARS + 1):
            run[i] = " "
        return "".join(run)

    return re.sub(rf"\S{{{MAX_TOKEN_CHARS + 1},}}", cut, text)


def _facts() -> _Facts:
    """The engine's facts, asked of the worker once (raises NotConfigured if it cannot load)."""
    global _facts_cache
    with _FACTS_LOCK:
        if _facts_cache is None:
            info, _ = _WORKER.call("info", timeout_s=60)
            voices = [
                _VoiceEntry(identifier=v["identifier"], name=v["name"],
                            languages=tuple((int(p), str(c)) for p, c in v["languages"]))
                for v in info["voices"]
            ]
            _facts_cache = _Facts(
                library_path=info["library_path"],
                data_path=info["data_path"],
                version=info["version"],
                sample_rate=int(info["sample_rate"]),
                voices=voices,
                lookup=_build_lookup(voices),
                variants=dict(info["variants"]),
            )
        return _facts_cache


# --- the worker side (runs in the engine's process) ----------------------------------------


def _worker_handle(op: str, args: dict[str, Any]) -> tuple[Any, bytes]:
    """Requests from :data:`_WORKER`: ``info`` and ``render``."""
    with _LOCK:
        eng = _engine_locked()
        if op == "info":
            return {
                "library_path": eng.library_path,
                "data_path": eng.data_path,
                "version": eng.version,
                "sample_rate": eng.sample_rate,
                "voices": [{"identifier": v.identifier, "name": v.name, "languages": v.languages} for v in eng.voices],
                "variants": eng.variants,
            }, b""
        if op == "render":
            pcm, words = _render_locked(eng, str(args["text"]), str(args["voice"]), int(args["wpm"]))
            return {"words": words}, pcm.tobytes()
    raise InputError(f"espeak-ng worker: unknown request {op!r}")


def _render_locked(eng: _Engine, text: str, voice_name: str, wpm: int) -> tuple[array, list[tuple[int, int]]]:
    """One espeak_ng_Synthesize call; the caller holds _LOCK."""
    global _collector
    assert eng.lib is not None
    lib = eng.lib
    data = text.encode("utf-8")
    collector = _Collector()
    status = lib.espeak_ng_SetVoiceByName(voice_name.encode("utf-8"))
    if status != _ENS_OK:
        raise InputError(f"espeak-ng cannot load voice {voice_name!r}: {_status_message(lib, status)}")
    status = lib.espeak_ng_SetParameter(_PARAM_RATE, wpm, 0)
    if status != _ENS_OK:
        raise BadOutput(f"espeak-ng rejected rate {wpm}: {_status_message(lib, status)}")
    _collector = collector
    try:
        status = lib.espeak_ng_Synthesize(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    finally:
        _collector = None
    if isinstance(collector.error, (KeyboardInterrupt, SystemExit)):
        raise collector.error
    if collector.error is not None:
        raise BadOutput(f"espeak-ng output handling failed: {collector.error}") from collector.error
    if status not in (_ENS_OK, _ENS_SPEECH_STOPPED):
        raise BadOutput(f"espeak-ng synthesis failed: {_status_message(lib, status)}")
    return collector.pcm, collector.words


# --- output -----------------------------------------------------------------------------------


def _write_output(pcm: array, sr: int, out_wav: Path, semitones: float, cancel: threading.Event | None) -> None:
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    out_samples = round(len(pcm) * OUTPUT_SAMPLE_RATE / sr)
    filters = pitch_shift_filters(semitones, sr, OUTPUT_SAMPLE_RATE) or [f"aresample={OUTPUT_SAMPLE_RATE}"]
    # Pin the length to the sample so the engine-rate timings hold in the final file.
    filters += [f"apad=whole_len={out_samples}", f"atrim=end_sample={out_samples}"]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_wav.name}.", suffix=".espeak.wav", dir=out_wav.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes(pcm.tobytes())
        _check_cancel(cancel)
        try:
            run_ffmpeg(
                [
                    "-i", str(tmp),
                    "-af", ",".join(filters),
                    "-ac", "2",
                    "-ar", str(OUTPUT_SAMPLE_RATE),
                    "-c:a", "pcm_s16le",
                    "-map_metadata", "-1",
                    "-fflags", "+bitexact",
                    "-flags:a", "+bitexact",
                    "-f", "wav",
                    str(out_wav),
                ],
                duration_s=out_samples / OUTPUT_SAMPLE_RATE,
                cancel=cancel,
                what="espeak-ng wav conversion",
            )  # fmt: skip
        except BaseException:
            out_wav.unlink(missing_ok=True)
            raise
    finally:
        tmp.unlink(missing_ok=True)
