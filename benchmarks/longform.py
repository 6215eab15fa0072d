"""Long-form benchmark (BENCHMARKS.md "long form" and "an edit"): chunked rendering at 120 and 200 scenes.

The job: N one-second scenes of four kinds in turn (1080p30 H.264; 720p24 H.264 with a tone;
1080x1920 portrait; 960x540 25 fps), every scene its own file, narration from the local
speech tier (espeak-ng, with word timings) over the whole video, a music bed, captions on,
output 1920x1080 30 fps. Measured through the real tool function and job runner:

* peak RSS of this process's whole tree (the server's process plus every ffmpeg), sampled
  every 20 ms from /proc, for N = 120 and N = 200 (flat: memory does not grow with N);
* wall / floor for N = 120, paired and alternating, median of ``--pairs`` (floor: decode
  every input scene once to ``-f null`` plus re-encode the job's own final video with the
  same settings, as benchmarks/assembly.py);
* encode passes: frames the video encodes wrote / frames of the result (1.00 = every
  frame once);
* the edit: one scene (the middle one) replaced by another clip of the same length, then
  assemble again: wall / the full render's wall, chunks re-encoded, and the frames
  compared with the previous output by MD5 of the decoded picture at sample times (every
  10th frame, and every frame of the edited scene): identical outside the scene, different
  inside it;
* an audio-only change (the music 6 dB lower): chunks re-encoded (0).

Usage::

    python benchmarks/longform.py [--pairs 3] [--scenes 120] [--big 200] [--work /tmp/ytap-bench-longform]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av  # noqa: E402

from benchmarks.assembly import floor, run_ours  # noqa: E402
from core.config import Settings  # noqa: E402
from core.jobs import JobHandle  # noqa: E402
from core.media.ffmpeg import run_ffmpeg  # noqa: E402
from core.media.probe import probe  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from core.schemas import NarrationRequest  # noqa: E402
from core.services import narration  # noqa: E402

import anyio  # noqa: E402

KINDS = [
    # (lavfi source for a long clip, fps, encoder args); cut into 1 s files at keyframes
    ("testsrc2=s=1920x1080:r=30,noise=alls=8", 30, ["-an"]),
    ("mandelbrot=s=1280x720:r=24", 24, []),
    ("gradients=s=1080x1920:r=30:speed=0.05,noise=alls=8", 30, ["-an"]),
    ("testsrc=s=960x540:r=25,noise=alls=5:allf=t", 25, ["-an"]),
]

SENTENCES = [
    "The river begins as snow high in the mountains, melting slowly in the spring sun.",
    "Small streams join together and run quickly down through the narrow valleys.",
    "In the foothills the water slows, and farmers have used it for thousands of years.",
    "Towns grew where the river could be crossed, first by ferry and later by bridges.",
    "Mills turned its current into power long before anyone had heard of electricity.",
    "Today the same water cools factories, fills reservoirs and waters whole cities.",
    "Fish swim upstream every autumn, returning to the gravel beds where they hatched.",
    "Birds follow them, and so do bears, in the last wild reaches of the upper valley.",
]

log = logging.getLogger("bench")


# --------------------------------------------------------------------------- inputs


def make_scenes(work: Path, n: int) -> list[Path]:
    """``n`` one-second clips, four kinds in turn; each kind is one long encode cut at its keyframes."""
    src = work / "sources"
    src.mkdir(parents=True, exist_ok=True)
    per_kind = (n + len(KINDS) - 1) // len(KINDS)
    pieces: list[list[Path]] = []
    for k, (source, fps, extra) in enumerate(KINDS):
        folder = src / f"kind{k}"
        have = sorted(folder.glob("p*.mp4")) if folder.is_dir() else []
        if len(have) < per_kind + 1:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            audio = ["-f", "lavfi", "-i", f"sine=f={200 + 40 * k}:r=48000"] if "-an" not in extra else []
            args = ["-f", "lavfi", "-i", f"{source},trim=duration={per_kind + 2}", *audio,
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps),
                    "-keyint_min", str(fps), "-sc_threshold", "0", "-threads", "2"]
            if audio:
                args += ["-c:a", "aac", "-b:a", "128k", "-shortest"]
            args += [*extra, "-f", "segment", "-segment_time", "1", "-reset_timestamps", "1",
                     str(folder / "p%04d.mp4")]
            run_ffmpeg(args, timeout_s=3600, what=f"make kind {k}")
            have = sorted(folder.glob("p*.mp4"))
        pieces.append(have[:-1])  # the last piece may be short
    return [pieces[i % len(KINDS)][i // len(KINDS)] for i in range(n)]


def setup(rt: Runtime, video_id: str, scenes: list[Path], music: Path) -> list[str]:
    paths = rt.paths("default", video_id)
    paths.ensure()
    refs = []
    for i, s in enumerate(scenes, 1):
        dst = paths.scenes_dir / f"scene_{i:03d}.mp4"
        if not dst.exists():
            shutil.copyfile(s, dst)
        refs.append(f"scenes/{dst.name}")
    if not (paths.audio_dir / "music.m4a").exists():
        shutil.copyfile(music, paths.audio_dir / "music.m4a")
    if not paths.narration.exists():
        seconds = len(scenes)
        text = []
        while sum(len(t) for t in text) < seconds * 14:  # espeak: ~14 characters a second
            text.append(SENTENCES[len(text) % len(SENTENCES)])
        req = NarrationRequest(video_id=video_id, segments=text, providers=["local:espeak-ng"])
        anyio.run(narration.synthesize_narration, rt, narration.prepare(rt, req),
                  JobHandle(job_id="job_" + "1" * 20, kind="synthesize_narration"))
    return refs


def make_music(work: Path) -> Path:
    music = work / "sources" / "music_60s.m4a"
    if not music.exists():
        expr = "0.18*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*2*t))+0.12*sin(2*PI*277.2*t)+0.10*sin(2*PI*329.6*t)"
        run_ffmpeg(["-f", "lavfi", "-i", f"aevalsrc='{expr}|{expr}':s=48000:d=60", "-c:a", "aac", "-b:a", "192k",
                    str(music)], what="make music")
    return music


# --------------------------------------------------------------------------- measuring


class PeakRss:
    """Peak resident memory of this process and every descendant, sampled from /proc."""

    def __init__(self, every_s: float = 0.02) -> None:
        self.every_s = every_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _children(pid: int) -> list[int]:
        out = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out += [int(c) for c in fh.read().split()]
        except OSError:
            pass
        return out

    @staticmethod
    def _rss_kib(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def sample(self) -> int:
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            total += self._rss_kib(pid)
            todo += self._children(pid)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.sample())
            time.sleep(self.every_s)

    def __enter__(self) -> PeakRss:
        self.peak_kib = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.peak_kib / 1024


class CpuTime:
    """CPU seconds (user + system) of this process and the children it waited for (every ffmpeg)."""

    seconds = 0.0

    @staticmethod
    def _now() -> float:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def __enter__(self) -> CpuTime:
        self._t0 = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._now() - self._t0


def frame_md5s(path: Path, wanted: set[int]) -> dict[int, str]:
    """MD5 of the decoded picture (all planes) of the frames ``wanted``."""
    out: dict[int, str] = {}
    with av.open(str(path)) as c:
        for n, frame in enumerate(c.decode(video=0)):
            if n in wanted:
                out[n] = hashlib.md5(b"".join(bytes(p) for p in frame.planes)).hexdigest()
    return out


def fresh_rss(work: Path, n: int, video_id: str) -> dict[str, Any]:
    """Peak RSS of one cold assembly of ``video_id`` (already set up, ``n`` scenes) in a new process: the
    benchmark's own process has decoded frames and run many jobs by then, and its heap counts in PeakRss."""
    out = subprocess.run([sys.executable, __file__, "--work", str(work), "--fresh-rss", str(n),
                          "--video-id", video_id], capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_rss_child(work: Path, n: int, video_id: str) -> int:
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(work / "home")}))
    refs = [f"scenes/scene_{i:03d}.mp4" for i in range(1, n + 1)]
    kw = dict(scenes=refs, music="audio/music.m4a", aspect_ratio="16:9", fps=30, height=1080, captions=True)
    try:
        with PeakRss() as rss:
            wall, _, _ = run_ours(rt, video_id, **kw)
    finally:
        rt.close()
    print(json.dumps({"scenes": n, "wall_s": round(wall, 1), "rss_mib": round(rss.mib)}))
    return 0


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--scenes", type=int, default=120)
    ap.add_argument("--big", type=int, default=200,
                    help="the second size, for the memory figure (0: skip; at most 200, the tool's scene limit)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ytap-bench-longform"))
    ap.add_argument("--fresh-rss", type=int, default=0, help=argparse.SUPPRESS)  # the child of fresh_rss()
    ap.add_argument("--video-id", default="long", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    work: Path = args.work
    if args.fresh_rss:
        return fresh_rss_child(work, args.fresh_rss, args.video_id)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
    n = args.scenes
    scenes = make_scenes(work, max(n, args.big))
    music = make_music(work)
    home = work / "home"
    shutil.rmtree(home / "workspaces", ignore_errors=True)
    (home / "ytap.db").unlink(missing_ok=True)
    settings = Settings.from_env({"YTAP_HOME": str(home)})
    rt = Runtime.create(settings)
    report: dict[str, Any] = {"scenes": n, "load_start": os.getloadavg()[0]}
    try:
        refs = setup(rt, "long", scenes[:n], music)
        kw = dict(scenes=refs, music="audio/music.m4a", aspect_ratio="16:9", fps=30, height=1080, captions=True)
        paths = rt.paths("default", "long")
        run_ours(rt, "long", **kw)  # warm-up (file cache, imports): not counted

        rows = []
        for i in range(args.pairs):
            r: dict[str, Any] = {}
            for step in (["ours", "floor"] if i % 2 == 0 else ["floor", "ours"]):
                if step == "ours":
                    with PeakRss() as rss, CpuTime() as cpu:
                        r["ours"], result, counter = run_ours(rt, "long", **kw)
                    r["rss_mib"], r["cpu_s"] = round(rss.mib), round(cpu.seconds, 1)
                    r["passes"] = counter.passes(result)
                    r["chunks"] = counter.video_encodes
                    r["encoded"], r["reused"] = result["chunks_encoded"], result["chunks_reused"]
                else:
                    with CpuTime() as cpu:
                        r["decode"], r["reencode"] = floor(scenes[:n], paths.final_video, work, width=1920,
                                                           height=1080, fps=30, preset=settings.x264_preset)
                    r["floor"], r["floor_cpu_s"] = r["decode"] + r["reencode"], round(cpu.seconds, 1)
            r["ratio"] = round(r["ours"] / r["floor"], 3)
            r["load"] = round(os.getloadavg()[0], 2)
            rows.append(r)
            print(f"pair {i + 1}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in r.items()), flush=True)
        report["pairs"] = rows
        full_s = med([r["ours"] for r in rows])
        print(f"result: {result['properties']['video_duration_s']:.3f} s, readiness {result['youtube_readiness']}",
              flush=True)

        # The edit: the middle scene replaced by a clip of the same length (another kind's piece).
        before = work / "before_edit.mp4"
        shutil.copyfile(paths.final_video, before)
        mid = n // 2
        scene_path = paths.root / refs[mid]
        replacement = scenes[max(n, args.big) - 1] if args.big > n else scenes[(mid + 2) % n]
        shutil.copyfile(replacement, scene_path)
        with PeakRss() as rss:
            edit_s, edit_res, edit_counter = run_ours(rt, "long", cold=False, **kw)
        fps = 30
        starts, acc = [], 0
        for s in scenes[:n]:  # each scene's frames on the 30 fps grid, from its own length (a piece the
            starts.append(acc)  # segmenter cut may be longer than 1 s: the first one of a kind can be 2 s)
            acc += round(probe(s).video.duration_s * fps)
        first, last = starts[mid], starts[mid + 1] - 1
        total = edit_res["properties"]["frames"]
        sample = set(range(0, total, 10)) | set(range(first, last + 1))
        a, b = frame_md5s(before, sample), frame_md5s(paths.final_video, sample)
        outside = [f for f in sorted(sample) if not first <= f <= last]
        inside = list(range(first, last + 1))
        same_out = sum(1 for f in outside if a.get(f) == b.get(f))
        diff_in = sum(1 for f in inside if a.get(f) != b.get(f))
        report["edit"] = {"wall_s": edit_s, "over_full": round(edit_s / full_s, 3),
                          "encoded": edit_res["chunks_encoded"], "reused": edit_res["chunks_reused"],
                          "rss_mib": round(rss.mib), "outside_identical": f"{same_out}/{len(outside)}",
                          "inside_different": f"{diff_in}/{len(inside)}"}
        print(f"edit: {report['edit']}", flush=True)

        # Audio only: the music 6 dB lower.
        audio_s, audio_res, _ = run_ours(rt, "long", cold=False, **{**kw, "music_volume_db": -24})
        report["audio_only"] = {"wall_s": audio_s, "encoded": audio_res["chunks_encoded"],
                                "reused": audio_res["chunks_reused"]}
        print(f"audio-only change: {report['audio_only']}", flush=True)

        if args.big > n:
            big_refs = setup(rt, "big", scenes[: args.big], music)
            big_kw = {**kw, "scenes": big_refs}
            with PeakRss() as rss:
                big_s, big_res, big_counter = run_ours(rt, "big", **big_kw)
            report["big"] = {"scenes": args.big, "wall_s": big_s, "rss_mib": round(rss.mib),
                             "passes": big_counter.passes(big_res)}
            print(f"{args.big} scenes: {report['big']}", flush=True)
            report["fresh"] = [fresh_rss(work, n, "long"), fresh_rss(work, args.big, "big")]
            print(f"fresh processes: {report['fresh']}", flush=True)

        m = {"ours_s": full_s, "floor_s": med([r["floor"] for r in rows]),
             "ratio": med([r["ours"] / r["floor"] for r in rows]), "rss_mib": med([r["rss_mib"] for r in rows]),
             "passes": med([r["passes"] for r in rows]),
             "cpu_ratio": med([r["cpu_s"] / r["floor_cpu_s"] for r in rows])}
        report["median"] = m
        print(f"\n| measure ({n} scenes of 1 s, captions and music; median of {len(rows)} pairs) | value | target |")
        print("|---|---|---|")
        print(f"| peak RSS, this process tree (its own heap included), {n} scenes | {m['rss_mib']:.0f} MiB | |")
        if "big" in report:
            print(f"| peak RSS, this process tree, {args.big} scenes, after all the above | "
                  f"{report['big']['rss_mib']} MiB | |")
            small, big = report["fresh"]
            print(f"| peak RSS, a fresh process: {n} / {args.big} scenes | {small['rss_mib']} / {big['rss_mib']} MiB "
                  f"| <= 900, flat |")
        print(f"| wall {m['ours_s']:.1f} s / floor {m['floor_s']:.1f} s | {m['ratio']:.3f} | <= 1.1 |")
        print(f"| encode passes (frames encoded / frames) | {m['passes']:.2f} | 1 |")
        print(f"| CPU-s ours / CPU-s floor | {m['cpu_ratio']:.2f} | about 1 |")
        e = report["edit"]
        print(f"| edit: wall {e['wall_s']:.1f} s / full render | {e['over_full']:.3f} | <= 0.25 |")
        print(f"| edit: chunks re-encoded / reused | {e['encoded']} / {e['reused']} | 1 |")
        print(f"| edit: frames outside the scene identical (MD5) | {e['outside_identical']} | all |")
        print(f"| edit: frames inside the scene different | {e['inside_different']} | all |")
        print(f"| audio-only change: chunks re-encoded | {report['audio_only']['encoded']} | 0 |")
        print(f"load average now {os.getloadavg()[0]:.2f} (2 cores shared with other jobs: figures are noisy)")
        (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
        print(f"results: {work / 'results.json'}")
    finally:
        rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
