"""core.media.fit: stock clips cut to exactly a scene's length, never a held frame.

The plan is checked as numbers; one render per case is probed and its frames compared, so a frozen
stretch (identical consecutive frames) would show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import MediaError
from core.media.ffmpeg import run_ffmpeg
from core.media.fit import MIN_SPEED, Cut, fit_clips, plan_cuts
from core.media.probe import probe

FPS = 30
MARGIN_S = 2 / FPS  # plan_cuts plans two frames past the end


def test_fit_plan_long_clip_keeps_its_middle() -> None:
    [cut] = plan_cuts([10.0], 4.0, FPS)
    assert cut.clip == 0 and cut.speed == 1.0
    assert cut.length_s == pytest.approx(4.0 + MARGIN_S, abs=1e-3)
    assert cut.start_s == pytest.approx((10.0 - cut.length_s) / 2, abs=1e-3)


def test_fit_plan_a_little_short_is_slowed_within_the_limit() -> None:
    [cut] = plan_cuts([3.5], 4.0, FPS)
    assert (cut.start_s, cut.length_s) == (0.0, 3.5)
    assert MIN_SPEED <= cut.speed < 1.0 and cut.out_s == pytest.approx(4.0 + MARGIN_S, abs=1e-3)


def test_fit_plan_short_clips_are_joined_each_giving_the_same_share() -> None:
    cuts = plan_cuts([2.0, 3.0, 9.0], 4.0, FPS)
    assert [c.clip for c in cuts] == [0, 1]  # the third is not needed
    assert sum(c.out_s for c in cuts) == pytest.approx(4.0 + MARGIN_S, abs=2e-3)
    assert cuts[0].length_s / 2.0 == pytest.approx(cuts[1].length_s / 3.0, abs=1e-3)


def test_fit_plan_joined_and_still_short_is_slowed() -> None:
    cuts = plan_cuts([1.5, 1.6], 4.0, FPS)
    assert all(c.speed == cuts[0].speed and MIN_SPEED <= c.speed < 1 for c in cuts)
    assert sum(c.out_s for c in cuts) == pytest.approx(4.0 + MARGIN_S, abs=2e-3)


def test_fit_plan_too_short_even_slowed_is_refused() -> None:
    with pytest.raises(MediaError, match="frozen frame"):
        plan_cuts([1.0, 1.0], 4.0, FPS)


def test_fit_cut_describe() -> None:
    assert Cut(1, 0.5, 2.0, 0.8).describe() == "clip 2 0.50-2.50 s at 0.80x"


def _clip(path: Path, w: int, h: int, seconds: float) -> Path:
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r=25:d={seconds}", "-threads", "2", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], what="a test clip")
    return path


def _frames(path: Path, w: int, h: int) -> np.ndarray:
    raw = path.with_suffix(".rgb")
    run_ffmpeg(["-i", str(path), "-threads", "2", "-f", "rawvideo", "-pix_fmt", "gray", str(raw)], what="frames")
    return np.frombuffer(raw.read_bytes(), np.uint8).reshape(-1, h, w)


@pytest.mark.parametrize(("lengths", "shape"), [([4.0], (320, 180)), ([1.7], (320, 180)), ([1.0, 1.2], (180, 320))])
def test_fit_clips_exact_scene_with_no_frozen_frame(tmp_path: Path, lengths: list[float],
                                                    shape: tuple[int, int]) -> None:
    w, h = shape
    clips = [_clip(tmp_path / f"c{i}.mp4", 640, 360, d) for i, d in enumerate(lengths)]
    out = tmp_path / "scene.mp4"
    info, cuts = fit_clips(clips, out, width=w, height=h, fps=FPS, duration_s=2.0)
    assert len(cuts) == len(lengths)
    v = probe(out, count_frames=True).video
    assert v is not None and (v.width, v.height, v.fps, v.frames) == (w, h, 30, 60) and info.audio is not None
    frames = _frames(out, w, h).astype(np.int16)
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))
    # testsrc2 moves every frame; at 25 fps stretched to 30 (and slowed) one source frame may repeat once.
    repeats = np.flatnonzero(diffs < 0.05)
    assert not np.any(np.diff(repeats) == 1), f"held frames at {repeats}"
