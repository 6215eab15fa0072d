"""H.264 encoders for the final video: libx264 always, a hardware encoder when one really works.

An encoder listed by ``ffmpeg -encoders`` proves nothing: every static build lists NVENC,
QSV and VAAPI whether or not the machine has the hardware or the driver. So a hardware
encoder counts as present only after a real trial encode (a few tiny frames to ``-f null``)
has succeeded; the answer is cached per ffmpeg binary for the life of the process.

Each encoder states how it meets YouTube's settings (DESIGN.md §6: H.264 High, yuv420p,
closed GOP of half the frame rate, 2 B-frames, a constant-quality target capped by the
bitrate table's maxrate) in its own option names. libx264 is last in every chain: a
hardware encoder that fails mid-way is replaced by it (core.media.assembly).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import MediaError
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from core.media.formats import B_FRAMES

__all__ = [
    "VideoEncoder",
    "LIBX264",
    "HARDWARE_ENCODERS",
    "listed_encoders",
    "trial_encode",
    "detect_hardware",
    "encoder_chain",
    "reset_detection",
    "VAAPI_DEVICE",
]

log = logging.getLogger(__name__)

VAAPI_DEVICE = "/dev/dri/renderD128"
_TRIAL_TIMEOUT_S = 20.0

Trial = Callable[["VideoEncoder"], bool]


@dataclass(frozen=True)
class VideoEncoder:
    """One H.264 encoder and how it spells YouTube's settings."""

    name: str  # ffmpeg's encoder name
    hardware: bool

    def input_args(self) -> list[str]:
        """Global arguments placed before the inputs (a VAAPI device)."""
        if self.name == "h264_vaapi":
            return ["-vaapi_device", VAAPI_DEVICE]
        return []

    def upload_filters(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """Filters ending the video graph: VAAPI encodes frames that live on the GPU."""
        if self.name == "h264_vaapi":
            return (("format", {"pix_fmts": "nv12"}), ("hwupload", {}))
        return ()

    def output_options(self, *, gop: int, crf: int, maxrate_kbps: int, preset: str) -> dict[str, Any]:
        """Encoder options for the final video: quality target, rate cap, GOP, B-frames, profile."""
        rate = {"maxrate": f"{maxrate_kbps}k", "bufsize": f"{2 * maxrate_kbps}k"}
        common = {"c:v": self.name, "profile:v": "high", "g": gop, "bf": B_FRAMES, **rate}
        if self.name == "libx264":
            return {
                **common,
                "pix_fmt": "yuv420p",
                "preset": preset,
                "crf": crf,
                # Closed GOP for YouTube: +cgop is how libavcodec says it, open-gop=0 how
                # x264 does. x264 signals the lowest profile the stream needs and
                # ultrafast turns the 8x8 transform off, which would make it Main;
                # 8x8dct keeps every preset High.
                "flags:v": "+cgop",
                "x264-params": "open-gop=0:8x8dct=1",
            }
        if self.name == "h264_nvenc":
            # Constant quality (cq) capped by maxrate; strict_gop keeps the GOP length,
            # forced-idr makes every keyframe an IDR (a closed GOP).
            return {**common, "pix_fmt": "yuv420p", "preset": "p4", "tune": "hq", "rc": "vbr", "cq": crf + 3,
                    "b:v": 0, "strict_gop": 1, "forced-idr": 1, "flags:v": "+cgop"}
        if self.name == "h264_qsv":
            return {**common, "pix_fmt": "nv12", "preset": "veryfast", "global_quality": crf + 3,
                    "look_ahead": 0, "idr_interval": 0, "flags:v": "+cgop"}
        if self.name == "h264_vaapi":
            return {**common, "rc_mode": "QVBR", "global_quality": crf + 3, "b:v": f"{maxrate_kbps * 3 // 4}k",
                    "idr_interval": 0, "flags:v": "+cgop"}
        if self.name == "h264_videotoolbox":
            # VideoToolbox's constant quality is Apple-silicon only: average bitrate capped by maxrate.
            return {**common, "pix_fmt": "yuv420p", "b:v": f"{maxrate_kbps * 3 // 4}k", "allow_sw": 0,
                    "realtime": 0, "flags:v": "+cgop"}
        raise ValueError(f"unknown encoder {self.name!r}")


LIBX264 = VideoEncoder("libx264", hardware=False)
# Preference order when several work: NVENC and QSV are the best-behaved.
HARDWARE_ENCODERS: tuple[VideoEncoder, ...] = (
    VideoEncoder("h264_nvenc", hardware=True),
    VideoEncoder("h264_qsv", hardware=True),
    VideoEncoder("h264_vaapi", hardware=True),
    VideoEncoder("h264_videotoolbox", hardware=True),
)

_lock = threading.Lock()
_listed: dict[str, frozenset[str]] = {}
_detected: dict[str, tuple[VideoEncoder, ...]] = {}


def listed_encoders() -> frozenset[str]:
    """Encoder names this ffmpeg was built with (cached per binary)."""
    exe = ffmpeg_exe()
    with _lock:
        if exe in _listed:
            return _listed[exe]
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"cannot list ffmpeg's encoders: {exc}") from exc
    names = frozenset(parts[1] for line in out.splitlines() if len(parts := line.split()) >= 2 and len(parts[0]) == 6)
    with _lock:
        _listed[exe] = names
    return names


def _device_present(enc: VideoEncoder) -> bool:
    """A cheap reason not to try at all (no GPU device node, wrong OS)."""
    if enc.name == "h264_videotoolbox":
        return sys.platform == "darwin"
    if sys.platform.startswith("linux"):
        if enc.name == "h264_nvenc":
            return Path("/dev/nvidiactl").exists() or Path("/dev/nvidia0").exists()
        if enc.name in ("h264_qsv", "h264_vaapi"):
            return Path(VAAPI_DEVICE).exists()
    return True


def trial_encode(enc: VideoEncoder) -> bool:
    """Encode a few tiny frames with ``enc``; True only if ffmpeg succeeds."""
    if not _device_present(enc):
        return False
    chain = ",".join(name + ("=" + ":".join(f"{k}={v}" for k, v in kw.items()) if kw else "")
                     for name, kw in (("format", {"pix_fmts": "yuv420p"}), *enc.upload_filters()))
    opts = enc.output_options(gop=15, crf=23, maxrate_kbps=2000, preset="veryfast")
    args = [*enc.input_args(), "-f", "lavfi", "-i", "testsrc2=s=256x144:r=30", "-vf", chain, "-frames:v", "8"]
    for key, value in opts.items():
        args += [f"-{key}", str(value)]
    try:
        run_ffmpeg([*args, "-f", "null", "-"], timeout_s=_TRIAL_TIMEOUT_S, what=f"trial encode with {enc.name}")
    except MediaError as exc:
        log.debug("encoder %s is not usable here: %s", enc.name, exc.message)
        return False
    return True


def detect_hardware(trial: Trial | None = None) -> tuple[VideoEncoder, ...]:
    """Hardware H.264 encoders that pass a trial encode, in preference order (cached)."""
    exe = ffmpeg_exe()
    with _lock:
        if exe in _detected:
            return _detected[exe]
    listed = listed_encoders()
    candidates = [e for e in HARDWARE_ENCODERS if e.name in listed]
    check = trial or trial_encode
    if candidates:
        with ThreadPoolExecutor(max_workers=len(candidates), thread_name_prefix="encoder-trial") as pool:
            works = list(pool.map(check, candidates))
    else:
        works = []
    found = tuple(e for e, ok in zip(candidates, works, strict=True) if ok)
    log.info("hardware H.264 encoders: %s", ", ".join(e.name for e in found) or "none (libx264 only)")
    with _lock:
        _detected[exe] = found
    return found


def reset_detection() -> None:
    """Forget cached detection results (tests; a driver installed while running)."""
    with _lock:
        _detected.clear()
        _listed.clear()


def encoder_chain(prefer_hardware: bool = True, detected: Sequence[VideoEncoder] | None = None) -> tuple[VideoEncoder, ...]:
    """Encoders to try in order: working hardware first (when preferred), libx264 always last."""
    if not prefer_hardware:
        return (LIBX264,)
    hw = tuple(detected) if detected is not None else detect_hardware()
    return (*hw, LIBX264)
