"""The contract's media formats (DESIGN.md §6), in one place.

Every module that writes or checks media reads its numbers here: the 48 kHz stereo
master every sound is converted to, the scene format (1920x1080 or 1080x1920 at 30 fps),
the thumbnail (1280x720 JPEG under 2 MB) and the final video's YouTube settings (AAC-LC
48 kHz stereo at 384 kb/s, -14 LUFS integrated, at most -1 dBTP, a closed GOP of half the
frame rate, 2 B-frames). Pure data and string building: nothing here runs ffmpeg.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "AUDIO_CHANNELS",
    "AUDIO_LAYOUT",
    "SCENE_FPS",
    "SCENE_SIZES",
    "scene_size",
    "THUMBNAIL_SIZE",
    "THUMBNAIL_MAX_BYTES",
    "FINAL_AUDIO_BITRATE",
    "DEFAULT_LOUDNESS_LUFS",
    "TRUE_PEAK_MAX_DBTP",
    "B_FRAMES",
    "INTERMEDIATE_X264",
    "BT709_OUTPUT_OPTIONS",
    "BT709_FRAME_PARAMS",
    "gop_frames",
    "atempo_filters",
    "pitch_shift_filters",
]

# --------------------------------------------------------------------------- audio master

AUDIO_SAMPLE_RATE = 48_000
AUDIO_CHANNELS = 2
AUDIO_LAYOUT = "stereo"  # ffmpeg's name for AUDIO_CHANNELS

# --------------------------------------------------------------------------- scenes

SCENE_FPS = 30
SCENE_SIZES: dict[str, tuple[int, int]] = {"16:9": (1920, 1080), "9:16": (1080, 1920)}


def scene_size(aspect_ratio: Literal["16:9", "9:16"] | str) -> tuple[int, int]:
    """(width, height) of a scene in this aspect ratio."""
    return SCENE_SIZES[aspect_ratio]


# --------------------------------------------------------------------------- clips ytap renders itself

# Title cards and stills in motion are intermediates the assembly encodes again: x264 at
# ultrafast, CRF 23, with two switches on top of the preset: the 8x8 transform, a High-profile
# tool (the scene format; without it x264 writes Constrained Baseline), and the deblocking filter
# (~0.1-0.15 CPU-s for 5 s at 1080p), without which smooth gradients (a card's background, a sky
# in a still) show 8x8 blocks. Measured on the 1080p30 card, 5 s: superfast took about twice
# ultrafast's time for a file no smaller; CRF 20 cost ~0.35 CPU-s more than CRF 23 for twice the bytes.
INTERMEDIATE_X264 = {"preset": "ultrafast", "crf": "23", "x264-params": "8x8dct=1:deblock=0,0"}

# --------------------------------------------------------------------------- thumbnail

THUMBNAIL_SIZE = (1280, 720)
# "2 MB" as YouTube counts it: the Data API's thumbnails.set declares maxSize 2097152 bytes
# (2 MiB) in its discovery document, and Studio rejects what that endpoint rejects. The
# decimal 2,000,000 one module used was a stricter reading of the same limit, not a
# second rule.
THUMBNAIL_MAX_BYTES = 2 * 1024 * 1024

# --------------------------------------------------------------------------- final video

FINAL_AUDIO_BITRATE = "384k"  # AAC-LC, AUDIO_SAMPLE_RATE, AUDIO_CHANNELS
DEFAULT_LOUDNESS_LUFS = -14.0
TRUE_PEAK_MAX_DBTP = -1.0
B_FRAMES = 2

# BT.709, limited range: the output options that tag a stream, and the same tags set on the
# frames (setparams; ffmpeg >= 7 takes an encoder's primaries and transfer from the frames).
BT709_OUTPUT_OPTIONS: dict[str, str] = {"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709",
                                        "color_range": "tv"}
BT709_FRAME_PARAMS: dict[str, str] = {"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709",
                                      "range": "tv"}


def gop_frames(fps: int) -> int:
    """A closed GOP of half the frame rate (at least one frame)."""
    return max(1, fps // 2)


# --------------------------------------------------------------------------- speed and pitch


def atempo_filters(factor: float) -> list[str]:
    """``atempo`` by ``factor``, chained: one instance accepts 0.5..2.0 only."""
    filters = []
    while factor < 0.5 or factor > 2.0:
        step = 0.5 if factor < 0.5 else 2.0
        filters.append(f"atempo={step}")
        factor /= step
    filters.append(f"atempo={factor:.9f}")
    return filters


def pitch_shift_filters(semitones: float, sample_rate: int, out_rate: int = AUDIO_SAMPLE_RATE) -> list[str]:
    """F0 times 2^(st/12), duration unchanged: ``asetrate`` up or down, back to ``out_rate``,
    then ``atempo`` by the exact inverse of the rate actually used. Empty for no shift."""
    if abs(semitones) < 1e-6:
        return []
    shifted = max(1, round(sample_rate * 2 ** (semitones / 12)))
    return [f"asetrate={shifted}", f"aresample={out_rate}", *atempo_filters(sample_rate / shifted)]
