"""A still in motion: one picture -> a scene clip with a slow, eased, sub-pixel camera move.

The move is a window over the picture (centre and zoom) that travels from a start to an end
framing: a push-in towards a point of interest, a pull-out from one, or a pan along the
picture's long axis. Every frame is the window resampled to the output size at its exact,
fractional position, so the picture glides: ffmpeg's ``zoompan`` rounds its crop to whole
(and, in 4:2:0, even) pixels at the output's size, and a slow move then advances in visible
steps with frames in between that do not move at all. :func:`measure_smoothness` is the
measure that tells the two apart (benchmarks/motion_smoothness.py prints both figures).

How a frame is made, and why so (measured on 2 cores for 5 s at 1920x1080, BENCHMARKS.md):

- The picture is cover-fitted once to the scene's shape at ``zoom_max`` times the output size
  (Lanczos, so the tightest framing is 1:1), converted once to BT.709 limited-range Y'CbCr (the
  scene format's matrix) and its chroma halved (4:2:0).
- Each frame is one affine warp per plane (OpenCV's ``warpAffine``, bilinear, in fixed point with
  SIMD): the window's float corner and step map every output pixel to its exact position in the
  picture. The window is never smaller than the frame, so a frame is the picture moved by a
  fraction of a pixel, or shrunk by at most ``zoom_max`` (1.08 to 1.2; a picture of 1536 px, ~1.4x
  enlarged in the step before, has nothing fine enough there to alias). ~1 ms of CPU per 1080p
  frame, all three planes, on one thread: the encoder beside it keeps both cores. Measured before
  choosing it: Pillow's ``resize(box=...)`` with the box filter 6 ms a frame at 1536x864 (plus
  ffmpeg's scale to the output, 2 ms), OpenCV's bicubic warp 19 ms (no SIMD path), ffmpeg's own
  sub-pixel filter (``perspective`` with ``eval=frame``) ~32 ms (it rebuilds a per-pixel table
  every frame), ``zoompan`` on a 4x picture (quarter-pixel steps) ~25 ms.
- The planes stream through a FIFO into one ffmpeg run (raw 4:2:0 in, H.264 High + a silent
  stereo AAC track out, exactly ``round(duration * fps)`` frames): the clip is already the
  scene format, so the scene service's finishing step keeps it as it is.
- The window never leaves the picture (its centre is clamped), so no border ever shows.

The move is chosen from the scene index and the prompt (:func:`choose_move`): its kind from
the index, so consecutive scenes alternate between zooms and pans, its direction and point
of interest from a hash of the prompt; the same request gives the same clip, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError, MediaError
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.formats import (
    AUDIO_CHANNELS,
    AUDIO_LAYOUT,
    AUDIO_SAMPLE_RATE,
    BT709_OUTPUT_OPTIONS,
    INTERMEDIATE_X264,
)

__all__ = ["Move", "choose_move", "seed_for", "render_motion", "Smoothness", "measure_smoothness", "MOVE_KINDS",
           "motion_supported"]

log = logging.getLogger(__name__)

requires({"anullsrc": ("r", "cl"), "atrim": ("end_sample",), "setsar": (), "scale": ("flags",), "format": ()},
         encoders=("libx264", "aac"))

MOVE_KINDS = ("push_in", "pan", "pull_out", "pan")  # by scene index: zooms and pans alternate
# x264: the clip is an intermediate the assembly encodes again (core.media.formats.INTERMEDIATE_X264, as the
# placeholder card; a 5 s 1080p photo in motion: ~13 MB).
FFMPEG_THREADS = "2"

# BT.709 limited range, R'G'B' (0..255) -> Y'CbCr as Pillow's 12-number matrix: Y' = 16 + 219 *
# (0.2126 R + 0.7152 G + 0.0722 B) / 255, Cb and Cr = 128 + 224 * (B - Y) / 1.8556 and (R - Y) / 1.5748.
_BT709_LIMITED = (
    0.182586, 0.614231, 0.062007, 16.0,
    -0.100644, -0.338572, 0.439216, 128.0,
    0.439216, -0.398942, -0.040274, 128.0,
)


def motion_supported() -> str | None:
    """None when this platform can stream frames to ffmpeg (a FIFO) and warp them (OpenCV); otherwise why not."""
    if not hasattr(os, "mkfifo"):
        return "stills in motion need os.mkfifo (Linux, macOS)"
    try:
        _opencv()
    except ImportError as exc:
        return f"stills in motion need OpenCV (opencv-python-headless), which does not import here: {exc}"
    return None


def _opencv():  # -> the cv2 module
    """OpenCV, on one thread (a process-wide setting; nothing else in ytap uses OpenCV): a frame's warp
    takes ~1 ms, and its own thread pool only competes with the encoder for the same cores."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


# --------------------------------------------------------------------------- the move


@dataclass(frozen=True)
class Move:
    """A window over the picture: centre (fractions of the picture) and zoom (1 = the whole picture)."""

    kind: str
    start: tuple[float, float, float]  # (cx, cy, zoom)
    end: tuple[float, float, float]
    zoom_max: float  # the picture is prepared at this many times the output size

    def at(self, t: float) -> tuple[float, float, float]:
        """The window at ``t`` (0..1), eased: half linear, half smoothstep, so the camera is moving
        at the cut (at half speed) rather than standing still, and never jerks."""
        t = min(1.0, max(0.0, t))
        e = 0.5 * t + 0.5 * t * t * (3 - 2 * t)
        return tuple(a + (b - a) * e for a, b in zip(self.start, self.end, strict=True))  # type: ignore[return-value]


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def seed_for(scene_index: int, prompt: str) -> int:
    """A picture seed for vendors that take one (Stable Diffusion): the same scene asks for the same picture."""
    return _digest("seed", scene_index, prompt.strip().lower()) % 2**31


# Points of interest for zooms: the centre and the thirds a photographer puts a subject on.
_FOCI = ((0.5, 0.5), (0.36, 0.42), (0.64, 0.42), (0.5, 0.38), (0.4, 0.58), (0.6, 0.58))


def choose_move(scene_index: int, prompt: str, *, duration_s: float, width: int, height: int) -> Move:
    """The move of a scene: its kind from the index (consecutive scenes differ), its details from the prompt."""
    h = _digest(scene_index, prompt.strip().lower())
    kind = MOVE_KINDS[scene_index % len(MOVE_KINDS)]
    # About 2.5 % of the frame per second, between 8 % and 20 %: a 5 s scene travels 12.5 %,
    # a long one stays slow (60 s: 20 %, a third of a pixel per frame at the edges).
    zoom_max = 1.0 + min(0.20, max(0.08, 0.025 * duration_s))
    if kind in ("push_in", "pull_out"):
        fx, fy = _FOCI[h % len(_FOCI)]
        wide, tight = (0.5, 0.5, 1.0), (fx, fy, zoom_max)
        start, end = (wide, tight) if kind == "push_in" else (tight, wide)
    else:
        # Along the long axis of the frame, at nearly the tightest framing (room to travel),
        # drifting in a little; the direction from the prompt.
        forward = (h >> 8) % 2 == 0
        z0, z1 = 1.0 + (zoom_max - 1.0) * 0.85, zoom_max
        lo, hi = 0.5 / z0 + 0.02, 1.0 - 0.5 / z0 - 0.02
        across = 0.5 + ((h >> 16) % 5 - 2) * 0.02
        a, b = (lo, hi) if forward else (hi, lo)
        if width >= height:
            kind += "_right" if forward else "_left"
            start, end = (a, across, z0), (b, across, z1)
        else:
            kind += "_down" if forward else "_up"
            start, end = (across, a, z0), (across, b, z1)
    return Move(kind=kind, start=start, end=end, zoom_max=zoom_max)


# --------------------------------------------------------------------------- rendering


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _prepare_planes(still: Path, width: int, height: int, zoom_max: float):  # -> (Y, Cb, Cr) uint8 arrays
    """The picture cover-fitted to the scene's shape at ``zoom_max`` x the output size, as BT.709 4:2:0 planes."""
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(still) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            picture = im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(f"the still does not decode as a picture ({type(exc).__name__})") from None
    sw, sh = _even(width * zoom_max), _even(height * zoom_max)
    scale = max(sw / picture.width, sh / picture.height)
    cw, ch = sw / scale, sh / scale  # the part of the picture that has the scene's shape, centred
    x0, y0 = max(0.0, (picture.width - cw) / 2), max(0.0, (picture.height - ch) / 2)  # float noise below 0
    box = (x0, y0, min(picture.width, x0 + cw), min(picture.height, y0 + ch))
    source = picture.resize((sw, sh), Image.Resampling.LANCZOS, box=box)
    y, cb, cr = source.convert("RGB", matrix=_BT709_LIMITED).split()
    return tuple(np.asarray(plane) for plane in (y, cb.reduce(2), cr.reduce(2)))


def _frame_boxes(move: Move, frames: int, sw: int, sh: int) -> Iterator[tuple[float, float, float, float]]:
    """Each frame's window in picture pixels, kept inside the picture."""
    for i in range(frames):
        cx, cy, zoom = move.at(i / (frames - 1) if frames > 1 else 0.0)
        zoom = max(1.0, zoom)
        bw, bh = sw / zoom, sh / zoom
        x0 = min(max(cx * sw - bw / 2, 0.0), sw - bw)
        y0 = min(max(cy * sh - bh / 2, 0.0), sh - bh)
        yield x0, y0, x0 + bw, y0 + bh


def _render_frames(planes, move: Move, frames: int, width: int, height: int) -> Iterator[tuple[bytes, bytes, bytes]]:
    """The frames' Y, Cb, Cr planes in order: each plane's window warped to the frame (bilinear, sub-pixel)."""
    import numpy as np

    cv2 = _opencv()
    y, cb, cr = planes
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for x0, y0, x1, y1 in _frame_boxes(move, frames, y.shape[1], y.shape[0]):
        sx, sy = (x1 - x0) / width, (y1 - y0) / height
        out = []
        for plane, k, size in ((y, 1.0, (width, height)), (cb, 0.5, (width // 2, height // 2)),
                               (cr, 0.5, (width // 2, height // 2))):
            # Output pixel centre (u, v) samples the picture at the window's corner + (u + 1/2) * step, in the
            # convention where pixel centres sit on whole numbers (hence the - 1/2).
            m = np.array([[sx, 0.0, x0 * k + 0.5 * sx - 0.5], [0.0, sy, y0 * k + 0.5 * sy - 0.5]])
            out.append(cv2.warpAffine(plane, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE).tobytes())
        yield out[0], out[1], out[2]


class _FifoFeeder:
    """Writes frames into a FIFO that ffmpeg reads as raw video, from a thread of its own.

    ffmpeg opens the FIFO when it starts reading its inputs; if it fails before that (or is
    killed), :meth:`close` opens the reading end itself so the blocked writer wakes, sees the
    stop flag or a broken pipe, and ends.
    """

    def __init__(self, fifo: Path, frames: Iterator[tuple[bytes, bytes, bytes]], cancel: threading.Event | None):
        self.fifo, self.frames, self.cancel = fifo, frames, cancel
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="motion-fifo", daemon=True)

    def _run(self) -> None:
        try:
            with open(self.fifo, "wb", buffering=1 << 20) as sink:  # blocks until ffmpeg opens it
                for planes in self.frames:
                    if self.stop.is_set() or (self.cancel is not None and self.cancel.is_set()):
                        return
                    for plane in planes:
                        sink.write(plane)
        except BrokenPipeError:
            return  # ffmpeg stopped reading (failed or killed): run_ffmpeg says why
        except BaseException as exc:  # noqa: BLE001 - the thread's boundary: handed to the caller
            self.error = exc

    def __enter__(self) -> _FifoFeeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            # Unblock a writer still waiting for a reader (ffmpeg never opened the FIFO).
            with contextlib.suppress(OSError):
                fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
        self.thread.join(timeout=10)


def render_motion(
    still: Path,
    out: Path,
    *,
    move: Move,
    duration_s: float,
    width: int,
    height: int,
    fps: int = 30,
    cancel: threading.Event | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Write the clip of ``still`` moved by ``move`` to ``out`` (MP4): ``round(duration_s * fps)`` frames of
    ``width`` x ``height``, H.264 High yuv420p BT.709, a silent stereo 48 kHz AAC track.

    Raises MediaError when the still does not decode or ffmpeg fails, InputError for impossible
    sizes, OperationCancelled when ``cancel`` is set; nothing is left at ``out`` on failure.
    """
    reason = motion_supported()
    if reason:
        raise MediaError(reason)
    frames = round(duration_s * fps)
    if frames < 1 or width < 16 or height < 16 or width % 2 or height % 2:
        raise InputError(f"a motion clip needs at least one frame and an even size of 16 px or more, got "
                         f"{duration_s} s at {fps} fps, {width}x{height}")
    planes = _prepare_planes(still, width, height, move.zoom_max)
    samples = round(frames / fps * AUDIO_SAMPLE_RATE)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".motion", dir=out.parent))
    fifo = work / "frames.yuv"
    os.mkfifo(fifo, 0o600)
    args = [
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(fps), "-i", str(fifo),
        "-f", "lavfi", "-i", f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl={AUDIO_LAYOUT}",
        "-filter_complex", f"[0:v]setsar=1[v];[1:a]atrim=end_sample={samples}[a]",
        "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", *[x for k, v in INTERMEDIATE_X264.items() for x in (f"-{k}", v)],
        "-profile:v", "high", "-pix_fmt", "yuv420p", "-threads", FFMPEG_THREADS,
        *[x for k, v in BT709_OUTPUT_OPTIONS.items() for x in (f"-{k}", v)],
        "-c:a", "aac", "-b:a", "128k", "-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS),
        "-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4", str(out),
    ]
    try:
        with _FifoFeeder(fifo, _render_frames(planes, move, frames, width, height), cancel) as feeder:
            run_ffmpeg(args, duration_s=frames / fps, on_progress=on_progress, cancel=cancel,
                       what="the motion clip", timeout_s=max(120.0, frames / fps * 20))
        if feeder.error is not None:
            raise MediaError(f"the motion clip's frames could not be made: {type(feeder.error).__name__}: "
                             f"{feeder.error}")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        with contextlib.suppress(OSError):
            fifo.unlink()
        with contextlib.suppress(OSError):
            work.rmdir()
    log.debug("motion clip %s: %s, %d frames %dx%d", out.name, move.kind, frames, width, height)


# --------------------------------------------------------------------------- the smoothness measure


# A step may be at most this many times the median step; first and last frame must differ by at least
# FIRST_LAST_MIN grey levels (of 255) and by FIRST_LAST_STEPS median steps: the camera went somewhere.
MAX_STEP_RATIO = 4.0
FIRST_LAST_MIN = 2.0
FIRST_LAST_STEPS = 5.0


@dataclass(frozen=True)
class Smoothness:
    """Consecutive-frame mean absolute differences of a clip seen as 160x90 (or 90x160) grey frames."""

    steps: tuple[float, ...]
    first_last: float

    @property
    def median(self) -> float:
        return statistics.median(self.steps) if self.steps else 0.0

    @property
    def max(self) -> float:
        return max(self.steps, default=0.0)

    @property
    def ratio(self) -> float:
        """The largest step over the median step (inf when the median step is 0: frames that do not move)."""
        return self.max / self.median if self.median > 0 else math.inf

    @property
    def smooth(self) -> bool:
        return (self.ratio <= MAX_STEP_RATIO and self.first_last >= FIRST_LAST_MIN
                and self.first_last >= FIRST_LAST_STEPS * self.median)

    def summary(self) -> str:
        return (f"{len(self.steps) + 1} frames, step median {self.median:.3f} max {self.max:.3f} "
                f"(max/median {self.ratio:.2f}, limit {MAX_STEP_RATIO:g}), first vs last {self.first_last:.2f}: "
                + ("smooth" if self.smooth else "NOT smooth"))


def measure_smoothness(clip: Path) -> Smoothness:
    """Decode ``clip`` to small grey frames (ffmpeg, area-averaged) and measure each step between frames."""
    from PIL import Image, ImageChops, ImageStat

    from core.media.probe import probe

    info = probe(clip)
    if info.video is None:
        raise MediaError(f"{clip.name} has no video stream")
    w, h = (160, 90) if info.video.width >= info.video.height else (90, 160)
    with tempfile.TemporaryDirectory(prefix="ytap-smooth-") as tmp:
        raw = Path(tmp) / "grey.raw"
        run_ffmpeg(["-i", str(clip), "-map", "0:v:0", "-vf", f"scale={w}:{h}:flags=area,format=gray",
                    "-threads", FFMPEG_THREADS, "-f", "rawvideo", str(raw)], what="measuring the motion")
        data = raw.read_bytes()
    n = len(data) // (w * h)
    frames = [Image.frombytes("L", (w, h), data[i * w * h:(i + 1) * w * h]) for i in range(n)]

    def mad(a, b) -> float:  # noqa: ANN001 - PIL images
        return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]

    steps = tuple(mad(a, b) for a, b in zip(frames, frames[1:]))
    return Smoothness(steps=steps, first_last=mad(frames[0], frames[-1]) if frames else 0.0)
