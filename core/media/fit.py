"""Stock clips -> one scene of exactly the scene's length, without ever holding a frame.

A generated clip is made for its scene; stock footage is whatever length its author shot.
:func:`plan_cuts` decides, from the clips' probed lengths, which stretch of each to use:

- the first clip covers the scene: its middle window (stock clips fade in and out and
  settle the camera at their ends, so the middle is the best stretch to keep);
- it covers at least :data:`MIN_SPEED` of the scene: the whole clip, slowed down to fit;
- otherwise the clips are joined in order, each contributing the same share of its own
  length (no clip is reduced to a flash), slowed down when even all of them fall short;
- shorter than :data:`MIN_SPEED` of the scene all together: refused (MediaError, which the
  chain makes that provider's BadOutput) — a frozen frame is not footage.

:func:`fit_clips` renders the plan in one encode into the contract scene format
(core.media.normalize's output): each stretch cut, slowed, resampled to the scene's fps,
scaled to cover the frame and centre-cropped (stock footage fills the frame; letterbox
bars around a clip read as an error), joined, cut to the exact frame count. The clips'
own sound is dropped for a silent track: it is whatever the camera heard, unrelated to
the narration and music laid over the scene.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import MediaError
from core.media.compat import fit_size, parse_sar
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.formats import AUDIO_LAYOUT, AUDIO_SAMPLE_RATE
from core.media.normalize import scene_output_args
from core.media.probe import MediaInfo, probe

__all__ = ["Cut", "MIN_SPEED", "plan_cuts", "fit_clips"]

requires(
    {"trim": ("start", "duration", "end_frame"), "setpts": (), "fps": (), "scale": (), "crop": (), "setsar": (),
     "format": (), "concat": ("n", "v", "a"), "setparams": ("color_primaries", "color_trc", "colorspace"),
     "anullsrc": ("r", "cl"), "atrim": ("end_sample",)},
    encoders=("libx264", "aac"),
)

# The slowest a clip plays: 0.75x still reads as natural motion; slower starts to look like slow motion.
MIN_SPEED = 0.75
# Planned beyond the scene's end, so rounding to whole frames never leaves the last one missing.
_MARGIN_FRAMES = 2


@dataclass(frozen=True)
class Cut:
    """``length_s`` of clip ``clip`` from ``start_s``, played at ``speed`` (1 = as shot, < 1 slowed)."""

    clip: int
    start_s: float
    length_s: float
    speed: float = 1.0

    @property
    def out_s(self) -> float:
        return self.length_s / self.speed

    def describe(self) -> str:
        slow = f" at {self.speed:.2f}x" if self.speed < 0.999 else ""
        return f"clip {self.clip + 1} {self.start_s:.2f}-{self.start_s + self.length_s:.2f} s{slow}"


def plan_cuts(lengths_s: Sequence[float], scene_s: float, fps: int, *, min_speed: float = MIN_SPEED) -> list[Cut]:
    """The stretches of the clips (their lengths, in order) that make ``scene_s`` seconds; MediaError when
    they are too short even slowed to ``min_speed``. The first clip alone is used whenever it can be."""
    if not lengths_s or any(d <= 0 for d in lengths_s):
        raise MediaError("a stock clip has no duration")
    need = scene_s + _MARGIN_FRAMES / fps
    first = lengths_s[0]
    if first >= need:
        return [Cut(0, round((first - need) / 2, 3), round(need, 3))]
    if first >= need * min_speed:
        return [Cut(0, 0.0, first, first / need)]
    total = 0.0
    used: list[float] = []
    for d in lengths_s:
        used.append(d)
        total += d
        if total >= need * min_speed:
            break
    if total < need * min_speed:
        raise MediaError(f"the stock clips are {total:.2f} s together and the scene is {scene_s:g} s: even slowed "
                         f"to {min_speed:g}x they would leave a frozen frame")
    if total >= need:  # every clip gives the same share of itself, from its middle
        share = need / total
        return [Cut(i, round(d * (1 - share) / 2, 3), round(d * share, 3)) for i, d in enumerate(used)]
    speed = total / need
    return [Cut(i, 0.0, d, speed) for i, d in enumerate(used)]


def fit_clips(
    clips: Sequence[Path],
    out: Path,
    *,
    width: int,
    height: int,
    fps: int,
    duration_s: float,
    cancel: threading.Event | None = None,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float = 600.0,
) -> tuple[MediaInfo, list[Cut]]:
    """Cut the scene from ``clips`` (raw stock files, in the order they were ranked) into ``out``, in the
    contract scene format; the probed result and the cuts made. MediaError for a clip that is not video."""
    infos = [probe(c) for c in clips]
    for c, info in zip(clips, infos, strict=True):
        if info.video is None or not info.duration_s:
            raise MediaError(f"{c.name} has no video stream")
    cuts = plan_cuts([i.duration_s for i in infos], duration_s, fps)
    frames = max(1, round(duration_s * fps))
    inputs: list[str] = []
    parts: list[str] = []
    for n, cut in enumerate(cuts):
        info = infos[cut.clip]
        v = info.video
        assert v is not None  # checked above
        w, h = fit_size(v.width, v.height, parse_sar(v.sar), width, height, "increase")
        inputs += ["-i", str(clips[cut.clip])]
        parts.append(
            f"[{n}:v:0]trim=start={cut.start_s:.3f}:duration={cut.length_s:.3f},"
            f"setpts=(PTS-STARTPTS)/{cut.speed:.6f},fps={fps},scale={w}:{h},crop={width}:{height},"
            f"setsar=1,format=yuv420p[c{n}]"
        )
    joined = "".join(f"[c{n}]" for n in range(len(cuts)))
    parts.append(f"{joined}concat=n={len(cuts)}:v=1:a=0,trim=end_frame={frames},setpts=PTS-STARTPTS,"
                 "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709[v]")
    silence = len(cuts)
    inputs += ["-f", "lavfi", "-i", f"anullsrc=r={AUDIO_SAMPLE_RATE}:cl={AUDIO_LAYOUT}"]
    parts.append(f"[{silence}:a]atrim=end_sample={round(duration_s * AUDIO_SAMPLE_RATE)}[a]")
    args = ["-filter_complex_threads", "2", *inputs, "-filter_complex", ";".join(parts), "-threads", "2",
            *scene_output_args(out, fps=fps, frames=frames)]
    run_ffmpeg(args, duration_s=duration_s, on_progress=on_progress, cancel=cancel, what="cutting the stock clips",
               timeout_s=timeout_s)
    result = probe(out, count_frames=True)
    if result.video is None or result.video.frames != frames:
        got = result.video.frames if result.video else 0
        raise MediaError(f"the cut scene has {got} frames instead of {frames}")
    return result, cuts
