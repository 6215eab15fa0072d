"""Speech segments -> one 48 kHz stereo WAV master with absolute timings.

Vendor speech arrives one segment per call, in whatever format the vendor speaks (MP3,
WAV, raw PCM at 24 kHz...). :func:`join_segments` decodes every part, resamples to the
master format and lays them end to end with a short gap, in one ffmpeg call; segment and
word timings are shifted by each part's probed start, so captions line up with scenes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError, MediaError
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.formats import AUDIO_CHANNELS, AUDIO_LAYOUT, AUDIO_SAMPLE_RATE, atempo_filters, pitch_shift_filters
from core.media.probe import probe
from core.schemas import SegmentTiming, WordTiming

requires({"aresample": (), "aformat": ("sample_fmts", "channel_layouts"), "apad": ("whole_len",),
          "atrim": ("end_sample",), "concat": ("n", "v", "a"), "asetrate": (), "atempo": ()},
         encoders=("pcm_s16le",))

__all__ = ["SegmentAudio", "join_segments", "DEFAULT_GAP_S"]

DEFAULT_GAP_S = 0.35


@dataclass(frozen=True)
class SegmentAudio:
    """One segment's audio file, its text, and word timings relative to the file's start (if any).

    ``raw_format`` describes headerless PCM (``("s16le", 24000, 1)``); None means a file
    ffmpeg can identify on its own.
    """

    path: Path
    text: str
    words: tuple[WordTiming, ...] = ()
    raw_format: tuple[str, int, int] | None = None


def _duration(part: SegmentAudio) -> float:
    if part.raw_format is not None:
        sample_fmt, rate, channels = part.raw_format
        width = {"s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4}[sample_fmt]
        return part.path.stat().st_size / (width * rate * channels)
    info = probe(part.path)  # MediaError when it does not decode (a provider chain makes that a BadOutput)
    if info.audio is None or not info.duration_s:
        raise MediaError("the speech audio has no audio stream")
    return info.duration_s


def join_segments(
    parts: Sequence[SegmentAudio],
    out_wav: Path,
    *,
    gap_s: float = DEFAULT_GAP_S,
    speed: float = 1.0,
    pitch_semitones: float = 0.0,
    cancel: threading.Event | None = None,
) -> list[SegmentTiming]:
    """Write ``out_wav`` (48 kHz stereo s16 WAV) and return absolute segment timings.

    ``speed`` / ``pitch_semitones`` are applied here for providers that cannot do it
    themselves (1.0 / 0 for the rest); timings are scaled to match.
    """
    if not parts:
        raise InputError("no speech segments to join")
    if not 0.5 <= speed <= 2.0:
        raise InputError("speed must be within 0.5-2.0")
    durations = [_duration(p) for p in parts]
    args: list[str] = []
    for p in parts:
        if p.raw_format is not None:
            fmt, rate, channels = p.raw_format
            args += ["-f", fmt, "-ar", str(rate), "-ac", str(channels)]
        args += ["-i", str(p.path)]
    chains = []
    gap_samples = round(gap_s * AUDIO_SAMPLE_RATE)
    for i, dur in enumerate(durations):
        samples = round(dur * AUDIO_SAMPLE_RATE)
        pad = gap_samples if i < len(parts) - 1 else 0
        chains.append(
            f"[{i}:a:0]aresample={AUDIO_SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts={AUDIO_LAYOUT},"
            f"apad=whole_len={samples + pad},atrim=end_sample={samples + pad}[p{i}]"
        )
    graph = ";".join(chains) + ";" + "".join(f"[p{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1"
    tempo = 1.0 / speed  # output time = input time * tempo
    post = pitch_shift_filters(pitch_semitones, AUDIO_SAMPLE_RATE)
    if speed != 1.0:
        post += atempo_filters(speed)
    graph += ("," + ",".join(post) if post else "") + "[out]"
    args += ["-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_s16le", "-ar", str(AUDIO_SAMPLE_RATE), "-ac",
             str(AUDIO_CHANNELS), "-f", "wav", str(out_wav)]
    run_ffmpeg(args, cancel=cancel, what="joining the narration")

    timings: list[SegmentTiming] = []
    offset = 0.0
    for i, (part, dur) in enumerate(zip(parts, durations, strict=True), 1):
        words = [
            WordTiming(text=w.text, start_s=round((offset + w.start_s) * tempo, 3),
                       end_s=round((offset + min(w.end_s, dur)) * tempo, 3))
            for w in part.words
        ]
        if not words:
            from core.media.srt import spread_words

            words = spread_words(part.text, round(offset * tempo, 3), round((offset + dur) * tempo, 3))
        timings.append(SegmentTiming(index=i, text=part.text, start_s=round(offset * tempo, 3),
                                     end_s=round((offset + dur) * tempo, 3), words=words))
        offset += dur + gap_s
    return timings
