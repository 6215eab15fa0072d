"""Placeholder scene benchmark (BENCHMARKS.md, "Other targets"): run by hand.

    python benchmarks/placeholder.py [--pairs 5] [--duration 5] [--size 1920x1080] [--fps 30] [--case motion]

A = a 5 s 1080p30 x264 ultrafast encode of ffmpeg's testsrc2 (yuv420p, MP4);
B = ``render_title_card`` of a 5 s 1080p30 ``local:placeholder`` scene, end to end (layout,
temp files, ffmpeg with audio and faststart). Paired A B A B ..., the order inside each pair
alternating, median of the pairs. Target: median(B) / median(A) <= 1.5 (wall clock).

``--case motion``: B = ``core.media.motion.render_motion`` of a 5 s 1080p30 still in motion from
a picture already on disk (a 1536x1024 PNG, OpenAI's landscape size: decode, cover-fit, colour
conversion, every frame warped, encoded with a silent AAC track). Same target.

CPU seconds (ffmpeg children plus this process) are printed beside the wall times: on a
shared machine they move much less than wall time does, and tell whether a bad ratio is
the code or the neighbours.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.media.ffmpeg import locate_ffmpeg, run_ffmpeg  # noqa: E402
from core.media.placeholder import render_title_card  # noqa: E402
from core.media.probe import probe  # noqa: E402

PROMPT = "A lighthouse on a rocky coast at dawn, waves crashing, cinematic"
TARGET = 1.5


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall s, CPU s) of one call."""
    c0, t0 = _cpu(), time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0, _cpu() - c0


def run_a(out: Path, *, duration: float, width: int, height: int, fps: int) -> None:
    run_ffmpeg(
        [
            "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={duration}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-f", "mp4", str(out),
        ],
        what="testsrc2 reference encode",
    )


def run_card(out: Path, *, duration: float, width: int, height: int, fps: int, scene: int) -> None:
    render_title_card(out, prompt=PROMPT, scene_index=scene, duration_s=duration, width=width, height=height, fps=fps)


def run_motion(out: Path, *, duration: float, width: int, height: int, fps: int, scene: int) -> None:
    from core.media import motion

    still = out.with_name("still.png")
    if not still.exists():
        from tests.vendors.stills import scenic_image

        scenic_image(7, 1536, 1024).save(still)
    move = motion.choose_move(scene, PROMPT, duration_s=duration, width=width, height=height)
    motion.render_motion(still, out, move=move, duration_s=duration, width=width, height=height, fps=fps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5, help="A/B pairs (at least 3)")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--case", choices=("placeholder", "motion"), default="placeholder", help="what B renders")
    args = ap.parse_args()
    run_b = run_motion if args.case == "motion" else run_card
    if args.pairs < 3:
        ap.error("--pairs must be at least 3")
    width, height = (int(x) for x in args.size.lower().split("x"))

    loc = locate_ffmpeg()
    print(f"ffmpeg {loc.version} ({loc.source}), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="ytap-bench-placeholder-") as tmp:
        a_out, b_out = Path(tmp) / "testsrc2.mp4", Path(tmp) / f"{args.case}.mp4.part"
        kw = dict(duration=args.duration, width=width, height=height, fps=args.fps)
        # Warm-up (page cache, font loading, first ffmpeg start): not counted.
        run_a(a_out, **kw)
        run_b(b_out, scene=1, **kw)
        a_runs: list[tuple[float, float]] = []
        b_runs: list[tuple[float, float]] = []
        for i in range(args.pairs):
            if i % 2 == 0:
                a = timed(run_a, a_out, **kw)
                b = timed(run_b, b_out, scene=i + 1, **kw)
            else:
                b = timed(run_b, b_out, scene=i + 1, **kw)
                a = timed(run_a, a_out, **kw)
            a_runs.append(a)
            b_runs.append(b)
            print(f"pair {i + 1}: A testsrc2 {a[0]:.3f} s (CPU {a[1]:.2f})  B {args.case} {b[0]:.3f} s (CPU {b[1]:.2f})"
                  f"  B/A {b[0] / a[0]:.2f}")
        info = probe(b_out)
        a_size, b_size = a_out.stat().st_size, b_out.stat().st_size

    a_times, b_times = [a[0] for a in a_runs], [b[0] for b in b_runs]
    med_a, med_b = statistics.median(a_times), statistics.median(b_times)
    cpu_a, cpu_b = statistics.median(a[1] for a in a_runs), statistics.median(b[1] for b in b_runs)
    ratio = med_b / med_a
    pair_ratio = statistics.median(b / a for a, b in zip(a_times, b_times))
    v = info.video
    assert v is not None
    print(f"{args.case} output: {v.width}x{v.height} {v.fps} fps {v.frames} frames {v.profile} {b_size / 1e6:.2f} MB"
          f" (testsrc2: {a_size / 1e6:.2f} MB)")
    print(f"median A (testsrc2 x264 ultrafast): {med_a:.3f} s wall, {cpu_a:.2f} s CPU")
    print(f"median B ({args.case}):{' ' * (23 - len(args.case))}{med_b:.3f} s wall, {cpu_b:.2f} s CPU")
    print(f"ratio median(B)/median(A): {ratio:.2f}  (median of pair ratios {pair_ratio:.2f}; CPU ratio"
          f" {cpu_b / cpu_a:.2f}; target <= {TARGET}); load now {os.getloadavg()[0]:.2f}")
    print("PASS" if ratio <= TARGET else "FAIL")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
