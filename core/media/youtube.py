"""YouTube's recommended upload settings, as a check over probed facts.

Source: YouTube Help, "Recommended upload encoding settings" (H.264 High, progressive,
4:2:0, closed GOP of half the frame rate, 2 consecutive B-frames; AAC-LC 48 kHz stereo
at 384 kb/s; MP4 with the moov atom at the front).
"""

from __future__ import annotations

from core.media.probe import MediaInfo
from core.schemas import ReadinessCheck, VideoProperties

__all__ = ["video_properties", "readiness"]

ALLOWED_FPS = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0)


def video_properties(info: MediaInfo, *, faststart: bool) -> VideoProperties:
    v, a = info.video, info.audio
    if v is None:
        raise ValueError("no video stream")
    return VideoProperties(
        video_codec=v.codec,
        profile=v.profile,
        pix_fmt=v.pix_fmt,
        width=v.width,
        height=v.height,
        fps=v.fps,
        frames=v.frames,
        video_duration_s=round(v.duration_s, 4) if v.duration_s is not None else None,
        audio_codec=a.codec if a else None,
        audio_profile=a.profile if a else None,
        sample_rate=a.sample_rate if a else None,
        channels=a.channels if a else None,
        audio_duration_s=round(a.duration_s, 4) if a and a.duration_s is not None else None,
        faststart=faststart,
    )


def readiness(props: VideoProperties, *, expected_width: int, expected_height: int, expected_fps: int) -> ReadinessCheck:
    """Every deviation from the recommended settings, in words an agent can act on."""
    d: list[str] = []
    if props.video_codec != "h264":
        d.append(f"video codec is {props.video_codec}, YouTube recommends H.264")
    if (props.profile or "").lower() != "high":
        d.append(f"H.264 profile is {props.profile}, recommended High")
    if props.pix_fmt != "yuv420p":
        d.append(f"pixel format is {props.pix_fmt}, recommended yuv420p (4:2:0)")
    if (props.width, props.height) != (expected_width, expected_height):
        d.append(f"size is {props.width}x{props.height}, expected {expected_width}x{expected_height}")
    if not any(abs(props.fps - f) < 0.01 for f in ALLOWED_FPS) or abs(props.fps - expected_fps) > 0.01:
        d.append(f"frame rate is {props.fps}, expected {expected_fps}")
    if props.audio_codec != "aac":
        d.append(f"audio codec is {props.audio_codec}, recommended AAC-LC")
    elif (props.audio_profile or "").upper() != "LC":
        d.append(f"AAC profile is {props.audio_profile}, recommended LC")
    if props.sample_rate not in (48000, 44100):
        d.append(f"audio sample rate is {props.sample_rate}, recommended 48 kHz or 44.1 kHz")
    if props.channels != 2:
        d.append(f"audio has {props.channels} channel(s), recommended stereo")
    if not props.faststart:
        d.append("the moov atom is not at the front of the file (no faststart)")
    if props.video_duration_s and props.audio_duration_s is not None:
        gap = abs(props.video_duration_s - props.audio_duration_s)
        if gap > 1.0 / max(props.fps, 1.0) + 0.025:  # one frame plus an AAC frame of slack
            d.append(f"audio and video lengths differ by {gap:.3f} s")
    return ReadinessCheck(ready=not d, deviations=d)
