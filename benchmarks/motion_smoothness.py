"""Smoothness of stills in motion, against ffmpeg's plain zoompan at native size: run by hand.

    python benchmarks/motion_smoothness.py [--duration 5] [--size 1920x1080] [--keep DIR]

For each move kind (push-in, pan, pull-out, pan the other way) a test landscape
(tests/vendors/stills.py) is rendered twice: by ``core.media.motion.render_motion`` and by
``zoompan`` at the output size with the same window, the same easing and the same encoder
settings. Each clip is measured by ``core.media.motion.measure_smoothness``: the mean absolute
difference of consecutive frames seen as 160x90 grey pictures must never exceed 4x its median,
and the first and last frames must clearly differ. Exit 0 when every clip of ours passes and
zoompan fails on at least one move (its crop is whole, even pixels: a slow move advances in
steps with frames between that do not move).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.media import motion  # noqa: E402
from core.media.ffmpeg import run_ffmpeg  # noqa: E402
from core.media.formats import INTERMEDIATE_X264  # noqa: E402
from tests.vendors.stills import scenic_image  # noqa: E402


def zoompan_clip(still: Path, out: Path, move: motion.Move, *, frames: int, width: int, height: int, fps: int) -> None:
    """The same move the usual way: zoompan over the picture cover-fitted to the output size."""
    t = f"(on/{max(1, frames - 1)})"
    ease = f"(0.5*{t}+0.5*{t}*{t}*(3-2*{t}))"
    (cx0, cy0, z0), (cx1, cy1, z1) = move.start, move.end
    z = f"({z0}+({z1 - z0})*{ease})"
    x = f"({cx0}+({cx1 - cx0})*{ease})*iw-iw/zoom/2"
    y = f"({cy0}+({cy1 - cy0})*{ease})*ih-ih/zoom/2"
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,crop={width}:{height},"
          f"zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={width}x{height}:fps={fps},format=yuv420p")
    run_ffmpeg(["-i", str(still), "-vf", vf, "-frames:v", str(frames), "-c:v", "libx264",
                *[x for k, v in INTERMEDIATE_X264.items() for x in (f"-{k}", v)],
                "-threads", motion.FFMPEG_THREADS, "-f", "mp4", str(out)], what="zoompan reference")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--keep", type=Path, help="keep the clips in this folder")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = round(args.duration * args.fps)
    ours_ok, zoompan_failed = True, False
    with tempfile.TemporaryDirectory(prefix="ytap-bench-smooth-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for scene in (1, 2, 3, 4):
            still = folder / f"still{scene}.png"
            scenic_image(scene, 1536, 1024).save(still)
            move = motion.choose_move(scene, f"test landscape {scene}", duration_s=args.duration,
                                      width=width, height=height)
            ours, plain = folder / f"motion{scene}.mp4", folder / f"zoompan{scene}.mp4"
            motion.render_motion(still, ours, move=move, duration_s=args.duration, width=width, height=height,
                                 fps=args.fps)
            zoompan_clip(still, plain, move, frames=frames, width=width, height=height, fps=args.fps)
            a, b = motion.measure_smoothness(ours), motion.measure_smoothness(plain)
            ours_ok &= a.smooth
            zoompan_failed |= not b.smooth
            print(f"scene {scene} {move.kind:10s} ours:    {a.summary()}")
            print(f"scene {scene} {move.kind:10s} zoompan: {b.summary()}")
    verdict = ours_ok and zoompan_failed
    print(("PASS" if verdict else "FAIL") + f": ours all smooth {ours_ok}, zoompan failed on a move {zoompan_failed}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
