"""A clip from any provider -> the contract scene format, before it is registered.

Contract: the requested size (scaled to fit, padded, square pixels), the requested fps,
exactly the requested duration (trimmed, or the last frame held when the vendor's clip is
shorter — vendors offer 4/6/8/12 s), H.264 High yuv420p BT.709, and a stereo 48 kHz AAC
track (the clip's own sound when it has one — Veo clips can — else silence).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from core.errors import MediaError
from core.media.compat import fit_size, output_duration, parse_sar
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.formats import AUDIO_CHANNELS, AUDIO_LAYOUT, AUDIO_SAMPLE_RATE
from core.media.probe import MediaInfo, probe

__all__ = ["normalize_clip", "matches_contract", "scene_output_args"]

requires(
    {"fps": (), "scale": ("force_original_aspect_ratio", "force_divisible_by"), "pad": ("color",), "setsar": (),
     "format": (), "tpad": ("stop_mode", "stop_duration"), "trim": ("end_frame",), "setpts": (),
     "setparams": ("color_primaries", "color_trc", "colorspace"), "aresample": (),
     "aformat": ("sample_fmts", "channel_layouts"), "apad": ("whole_len",), "atrim": ("end_sample",),
     "anullsrc": ("r", "cl")},
    encoders=("libx264", "aac"),
)


def matches_contract(info: MediaInfo, *, width: int, height: int, fps: int, duration_s: float) -> bool:
    v, a = info.video, info.audio
    return bool(
        v and a
        and (v.codec, v.profile, v.pix_fmt) == ("h264", "High", "yuv420p")
        and (v.width, v.height) == (width, height)
        and abs(v.fps - fps) < 0.01
        and v.frames == round(duration_s * fps)
        and (a.codec, a.sample_rate, a.channels) == ("aac", AUDIO_SAMPLE_RATE, AUDIO_CHANNELS)
    )


def normalize_clip(
    src: Path,
    out: Path,
    *,
    width: int,
    height: int,
    fps: int,
    duration_s: float,
    cancel: threading.Event | None = None,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float = 600.0,
    info: MediaInfo | None = None,
    keep_src: bool = True,
) -> MediaInfo:
    """Re-encode ``src`` into the contract format at ``out`` (any name; MP4 is forced).

    ``timeout_s`` bounds the ffmpeg run: a vendor's clip is seconds long, an imported one may be minutes.
    ``info``: ``src`` already probed (it is not probed again). ``keep_src=False``: a clip that is
    already the contract format is moved to ``out`` rather than copied (same folder).
    Raises MediaError for a clip that is not readable video (a provider chain makes that the
    provider's BadOutput).
    """
    if info is None:
        info = probe(src, count_frames=True)  # MediaError when it is not readable media
    if info.video is None or not info.duration_s:
        raise MediaError("the clip has no video stream")
    if matches_contract(info, width=width, height=height, fps=fps, duration_s=duration_s):
        # Already the contract format: a second lossy encode would cost time and quality for nothing.
        if keep_src:
            shutil.copyfile(src, out)
        else:
            os.replace(src, out)
        if on_progress is not None:
            on_progress(1.0)
        return dataclasses.replace(info, path=str(out))  # the same bytes: no need to probe again
    frames = max(1, round(duration_s * fps))
    hold = max(0.0, duration_s - info.duration_s) + 1.0 / fps
    sar = parse_sar(info.video.sar)
    if abs(sar - 1) > 1e-3:  # anamorphic: the square-pixel size computed here (5.1 has no reset_sar)
        size = "{}:{}".format(*fit_size(info.video.width, info.video.height, sar, width, height, "decrease"))
    else:
        size = f"{width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2"
    vf = (
        f"[0:v:0]fps={fps},scale={size},"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p,"
        f"tpad=stop_mode=clone:stop_duration={hold:.3f},trim=end_frame={frames},setpts=PTS-STARTPTS,"
        "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709[v]"
    )
    samples = round(duration_s * AUDIO_SAMPLE_RATE)
    if info.audio is not None:
        af = (f"[0:a:0]aresample={AUDIO_SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts={AUDIO_LAYOUT},"
              f"apad=whole_len={samples},atrim=end_sample={samples}[a]")
        inputs = ["-i", str(src)]
    else:
        af = f"[1:a]atrim=end_sample={samples}[a]"
        inputs = ["-i", str(src), "-f", "lavfi", "-i", f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl={AUDIO_LAYOUT}"]
    args = [*inputs, "-filter_complex", f"{vf};{af}", *scene_output_args(out, fps=fps, frames=frames)]
    run_ffmpeg(args, duration_s=duration_s, on_progress=on_progress, cancel=cancel, what="normalising the clip",
               timeout_s=timeout_s)
    return probe(out, count_frames=True)


def scene_output_args(out: Path, *, fps: int, frames: int) -> list[str]:
    """The contract scene encode of a graph's ``[v]`` and ``[a]`` into ``out``: ``frames`` frames at ``fps``."""
    return [
        "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "18",
        "-x264-params", "8x8dct=1",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
        "-r", str(fps), "-t", output_duration(frames, fps),  # not -frames:v: compat.output_duration
        "-c:a", "aac", "-b:a", "192k", "-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS),
        "-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4", str(out),
    ]
