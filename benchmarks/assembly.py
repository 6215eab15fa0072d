"""Assembly benchmark (BENCHMARKS.md, "Assembly: distance from the limit").

Builds the reference job — six 5 s scenes (1080p30 H.264; 720p24 H.264 with audio; VP9
without audio; 1080x1920 portrait; 960x540 25 fps HEVC; 1080p60), narration from the
local speech tier (espeak-ng, with word timings), a 40 s music bed, captions on, output
1920x1080 30 fps — and measures in one run, paired and alternating (A B, B A, ...), the
median of ``--pairs`` pairs:

* ``assemble_video``: wall time from the tool call until the job has succeeded (probing,
  encoder detection, captions, the audio measurements and mix, the render, the checks of
  the result and the registry write included), through the real tool function and job
  runner;
* the floor: decode every input scene once to ``-f null`` (one ffmpeg, all six inputs)
  plus re-encode the job's own final video with the same encoder and audio settings;
* MoviePy doing the same job the way MoneyPrinterTurbo/ShortGPT do it (resize onto a
  1920x1080 canvas, concatenate, TextClip captions composited, narration + looped music
  + scene sound composited), at its shipped default preset (medium, CRF 23) and at ours
  (veryfast, CRF 20), from a throwaway virtualenv (``--moviepy-python``; not a project
  dependency);
* the number of video encode passes: every ffmpeg run of the job is counted, and in each
  run every video encoder (``-c:v`` other than ``copy``).

And the stream-copy fast path: six uniform 5 s 1080p30 scenes already in the output
format, captions off: wall / floor of that job.

It also renders the acceptance runs (the reference job's probe and loudness, the same
job as 9:16 at 60 fps) and extracts a caption frame to look at.

Usage::

    python benchmarks/assembly.py [--pairs 5] [--moviepy-pairs 3] [--work /tmp/ytap-bench-assembly]
                                  [--moviepy-python PY] [--skip-moviepy] [--skip-acceptance]

MoviePy goes into a throwaway virtualenv, never into the project::

    python -m venv /tmp/ytap-moviepy-venv && /tmp/ytap-moviepy-venv/bin/pip install moviepy
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import anyio  # noqa: E402

from core.config import Settings  # noqa: E402
from core.media import assembly as media_assembly  # noqa: E402
from core.media import chunks as media_chunks  # noqa: E402
from core.media import mix as media_mix  # noqa: E402
from core.media.captions import CaptionLayout, caption_cues  # noqa: E402
from core.media.encoders import LIBX264  # noqa: E402
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg  # noqa: E402
from core.media.fonts import font_path  # noqa: E402
from core.media.formats import BT709_OUTPUT_OPTIONS, gop_frames  # noqa: E402
from core.media.probe import probe  # noqa: E402
from core.media.youtube import max_bitrate_kbps, stream_structure  # noqa: E402
from core.assets.props import NarrationProps  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from core.schemas import NarrationRequest  # noqa: E402
from core.jobs import JobHandle  # noqa: E402
from core.services import narration  # noqa: E402
from tools.assemble_video import assemble_video  # noqa: E402

NARRATION = [
    "Lighthouses stood on the most dangerous rocks of every coast in the world.",
    "This keeper climbed the tower every evening to light the great lamp.",
    "The lens gathered that small flame into a beam seen twenty miles away.",
    "Ships counted the flashes to know exactly which light they were passing.",
    "Today most lights are automatic, and the keepers have gone ashore.",
    "But on stormy nights, the old towers still guide sailors safely home.",
]

CLIPS = {
    # name: (ffmpeg source args, encoder args) — synthetic but moving, textured content
    "s1_1080p30.mp4": (["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=5,noise=alls=10"],
                       ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "12M", "-maxrate", "16M", "-bufsize", "24M",
                        "-pix_fmt", "yuv420p"]),
    "s2_720p24_audio.mp4": (["-f", "lavfi", "-i", "mandelbrot=s=1280x720:r=24,trim=duration=5", "-f", "lavfi", "-i",
                             "sine=f=220:d=5:sample_rate=44100"],
                            ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-pix_fmt", "yuv420p", "-c:a",
                             "aac", "-b:a", "160k", "-shortest"]),
    "s3_vp9.webm": (["-f", "lavfi", "-i", "life=s=1280x720:r=30:mold=10:ratio=0.1:death_color=#C83232:"
                     "life_color=#00ff00,trim=duration=5"],
                    ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "4M",
                     "-pix_fmt", "yuv420p"]),
    "s4_portrait.mp4": (["-f", "lavfi", "-i", "gradients=s=1080x1920:r=30:d=5:speed=0.05,noise=alls=10"],
                        ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "12M", "-maxrate", "16M", "-bufsize",
                         "24M", "-pix_fmt", "yuv420p"]),
    "s5_540p25.mp4": (["-f", "lavfi", "-i", "testsrc=s=960x540:r=25:d=5,noise=alls=5:allf=t"],
                      ["-c:v", "libx265", "-preset", "fast", "-crf", "20", "-pix_fmt", "yuv420p", "-x265-params",
                       "log-level=error"]),
    "s6_1080p60.mp4": (["-f", "lavfi", "-i", "gradients=s=1920x1080:r=60:d=5:speed=0.03:type=radial,noise=alls=10"],
                       ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "12M", "-maxrate", "16M", "-bufsize", "24M",
                        "-pix_fmt", "yuv420p"]),
}

log = logging.getLogger("bench")


# --------------------------------------------------------------------------- inputs


def make_inputs(work: Path) -> dict[str, Path]:
    src = work / "sources"
    src.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, (source, enc) in CLIPS.items():
        path = src / name
        if not path.exists():
            run_ffmpeg([*source, *enc, str(path)], timeout_s=1200, what=f"make {name}")
        out[name] = path
    music = src / "music_40s.m4a"
    if not music.exists():
        # a slow chord with a pulse and a little noise: steady, music-like loudness
        expr = ("0.18*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*2*t))+0.12*sin(2*PI*277.2*t)+0.10*sin(2*PI*329.6*t)"
                "+0.04*sin(2*PI*110*t)")
        run_ffmpeg(["-f", "lavfi", "-i", f"aevalsrc='{expr}|{expr}':s=48000:d=40", "-f", "lavfi", "-i",
                    "anoisesrc=c=pink:a=0.02:d=40:r=48000", "-filter_complex", "[0][1]amix=normalize=0,aformat=cl=stereo",
                    "-c:a", "aac", "-b:a", "192k", str(music)], what="make music")
    out["music"] = music
    uni = src / "uniform"
    uni.mkdir(exist_ok=True)
    opts = LIBX264.output_options(gop=15, crf=20, maxrate_kbps=8000, preset="veryfast")
    for n in range(1, 7):
        path = uni / f"u{n}.mp4"
        if not path.exists():
            args = ["-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d=5,noise=alls=10,hue=h={n * 50}", "-f", "lavfi",
                    "-i", "anullsrc=r=48000:cl=stereo"]
            for k, v in opts.items():
                args += [f"-{k}", str(v)]
            run_ffmpeg([*args, "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                        "-c:a", "aac", "-b:a", "128k", "-t", "5", str(path)], timeout_s=600, what=f"make u{n}")
        out[f"u{n}"] = path
    return out


def setup_video(rt: Runtime, video_id: str, scenes: list[Path], music: Path | None) -> list[str]:
    paths = rt.paths("default", video_id)
    paths.ensure()
    refs = []
    for n, src in enumerate(scenes, 1):
        dst = paths.scenes_dir / f"scene_{n:03d}{src.suffix}"
        shutil.copyfile(src, dst)
        refs.append(f"scenes/{dst.name}")
    if music is not None:
        shutil.copyfile(music, paths.audio_dir / "music.m4a")
    if not paths.narration.exists():
        req = NarrationRequest(video_id=video_id, segments=NARRATION, providers=["local:espeak-ng"])
        anyio.run(narration.synthesize_narration, rt, narration.prepare(rt, req),
                  JobHandle(job_id="job_" + "0" * 20, kind="synthesize_narration"))
    return refs


# --------------------------------------------------------------------------- measurements


class EncodeCounter:
    """Counts ffmpeg runs, video encoders per run and the frames they encode, by wrapping the
    function that runs ffmpeg where the assembly modules look it up (the video chunks in
    core.media.chunks, the mux in core.media.assembly, the audio measurements in core.media.mix)."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.frames = 0  # frames the video encodes wrote, all chunks together
        self._modules = (media_assembly, media_mix, media_chunks)
        self._orig = run_ffmpeg

    def __enter__(self) -> EncodeCounter:
        def counting(args, **kw):  # noqa: ANN001, ANN202
            encs = [a for i, a in enumerate(args) if i and args[i - 1] == "-c:v"]
            self.runs.append(encs)
            if any(e != "copy" for e in encs) and "-frames:v" in args:
                self.frames += int(args[args.index("-frames:v") + 1])
            return self._orig(args, **kw)

        for module in self._modules:
            module.run_ffmpeg = counting  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        for module in self._modules:
            module.run_ffmpeg = self._orig  # type: ignore[attr-defined]

    @property
    def video_encodes(self) -> int:
        """Encoder runs (chunks); see :meth:`passes` for passes over the video."""
        return sum(1 for run in self.runs for enc in run if enc != "copy")

    def passes(self, result: dict[str, Any]) -> float:
        """Video encode passes: frames encoded / frames in the result (1.0: every frame once)."""
        p = result["properties"]
        return round(self.frames / (p["frames"] or round(p["video_duration_s"] * p["fps"])), 3)


class StepLog(logging.Handler):
    """The service's own step timings ("assembly step: ..."), to explain an outlier."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("assembly step: "):
            self.steps.append(msg.removeprefix("assembly step: "))


def run_ours(rt: Runtime, video_id: str, *, cold: bool = True, **kwargs: Any
             ) -> tuple[float, dict[str, Any], EncodeCounter]:
    """One assemble_video; ``cold``: without the chunks of the last render (a full render, not a reuse)."""
    if cold:
        shutil.rmtree(rt.paths("default", video_id).root / ".chunks", ignore_errors=True)
    steps = StepLog()
    service_log = logging.getLogger("core.services.assembly")
    service_log.addHandler(steps)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False  # kept in the row (and results.json), not printed twice
    with EncodeCounter() as counter:
        t0 = time.perf_counter()
        env = anyio.run(lambda: assemble_video(rt, None, video_id, wait_seconds=50, **kwargs))
        while env.status in ("queued", "running"):
            env = anyio.run(rt.jobs.wait, env.job_id, 50.0)
        wall = time.perf_counter() - t0
    service_log.removeHandler(steps)
    service_log.propagate = True
    counter.steps = steps.steps  # type: ignore[attr-defined]
    if env.status != "succeeded":
        raise RuntimeError(f"assemble_video {env.status}: {env.error}")
    return wall, env.result.model_dump() if hasattr(env.result, "model_dump") else env.result, counter


def timed(args: list[str], what: str) -> float:
    t0 = time.perf_counter()
    run_ffmpeg(args, timeout_s=3600, what=what)
    return time.perf_counter() - t0


def floor(scenes: list[Path], final: Path, work: Path, *, width: int, height: int, fps: int,
          preset: str) -> tuple[float, float]:
    decode: list[str] = []
    for p in scenes:
        decode += ["-i", str(p)]
    for n in range(len(scenes)):
        decode += ["-map", str(n)]
    t_decode = timed([*decode, "-f", "null", "-"], "floor: decode the inputs")
    opts = LIBX264.output_options(gop=gop_frames(fps), crf=media_assembly.DEFAULT_CRF,
                                  maxrate_kbps=max_bitrate_kbps(width, height, fps), preset=preset)
    enc = ["-i", str(final)]
    for k, v in opts.items():
        enc += [f"-{k}", str(v)]
    # exactly the job's BT.709 tags and AAC settings
    for k, v in {**BT709_OUTPUT_OPTIONS, "r": fps, **media_assembly.AUDIO_OPTIONS}.items():
        enc += [f"-{k}", str(v)]
    enc += ["-movflags", "+faststart", "-f", "mp4", str(work / "floor_reencode.mp4")]
    t_encode = timed(enc, "floor: re-encode the final video")
    return t_decode, t_encode


MOVIEPY_JOB = r'''
import json, sys, time
t0 = time.perf_counter()
from moviepy import (AudioFileClip, CompositeAudioClip, CompositeVideoClip, TextClip, VideoFileClip,
                     concatenate_videoclips, afx)
job = json.load(open(sys.argv[1]))
W, H, FPS = job["width"], job["height"], job["fps"]
clips = []
for path in job["scenes"]:
    c = VideoFileClip(path)
    c = c.resized(min(W / c.w, H / c.h))
    clips.append(CompositeVideoClip([c.with_position("center")], size=(W, H), bg_color=(0, 0, 0)))
video = concatenate_videoclips(clips, method="chain")
caps = []
for cue in job["cues"]:
    t = TextClip(font=job["font"], text="\n".join(cue["lines"]), font_size=job["font_size"], color="white",
                 stroke_color="black", stroke_width=4, method="label", text_align="center")
    caps.append(t.with_start(cue["start"]).with_end(cue["end"]).with_position(("center", H - job["margin_v"] - t.h)))
final = CompositeVideoClip([video, *caps], size=(W, H)).with_duration(video.duration)
narration = AudioFileClip(job["narration"])
music = AudioFileClip(job["music"]).with_effects([afx.AudioLoop(duration=final.duration), afx.MultiplyVolume(0.25),
                                                  afx.AudioFadeIn(1.0), afx.AudioFadeOut(2.0)])
tracks = [narration.with_duration(min(narration.duration, final.duration)), music]
if video.audio is not None:
    tracks.append(video.audio.with_effects([afx.MultiplyVolume(0.3)]))
final = final.with_audio(CompositeAudioClip(tracks).with_duration(final.duration))
kw = dict(fps=FPS, codec="libx264", audio_codec="aac", audio_bitrate="384k", logger=None)
if job["preset"]:
    kw["preset"] = job["preset"]
if job["ffmpeg_params"]:
    kw["ffmpeg_params"] = job["ffmpeg_params"]
final.write_videofile(job["out"], **kw)
print(json.dumps({"wall_s": time.perf_counter() - t0}))
'''


def run_moviepy(python: str, job: dict[str, Any], work: Path, tag: str) -> float:
    script = work / "moviepy_job.py"
    script.write_text(MOVIEPY_JOB)
    spec = work / f"moviepy_{tag}.json"
    spec.write_text(json.dumps(job))
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(script), str(spec)], capture_output=True, text=True, timeout=3600,
                          cwd=str(work))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"MoviePy failed: {proc.stderr[-2000:]}")
    return wall


def loudness_line(path: Path) -> str:
    loud = media_mix.measure_loudness(path)
    return f"integrated {loud.integrated_lufs:.2f} LUFS, true peak {loud.true_peak_dbtp:.2f} dBTP (ebur128)"


def probe_line(path: Path) -> str:
    info = probe(path)
    st = stream_structure(path)
    v, a = info.video, info.audio
    assert v is not None and a is not None
    return (f"{v.codec} {v.profile} {v.pix_fmt} {v.width}x{v.height} {v.fps:g} fps, {st.frames} frames, "
            f"GOP {st.gop_frames} (closed {st.closed_gop}, max {st.max_b_frames} consecutive B), "
            f"colour {v.color_primaries}/{v.color_transfer}/{v.color_space}; video {v.duration_s:.4f} s; "
            f"audio {a.codec} {a.profile} {a.sample_rate} Hz {a.channels} ch {a.duration_s:.4f} s")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5, help="pairs of ours/floor (and of the stream-copy job)")
    ap.add_argument("--moviepy-pairs", type=int, default=3, help="rounds that also run MoviePy twice")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ytap-bench-assembly"))
    ap.add_argument("--moviepy-python", default="/tmp/ytap-moviepy-venv/bin/python")
    ap.add_argument("--skip-moviepy", action="store_true")
    ap.add_argument("--skip-acceptance", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)

    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; ffmpeg {ffmpeg_exe()}", flush=True)
    inputs = make_inputs(work)
    home = work / "home"
    shutil.rmtree(home / "workspaces", ignore_errors=True)
    (home / "ytap.db").unlink(missing_ok=True)
    settings = Settings.from_env({"YTAP_HOME": str(home)})
    preset = settings.x264_preset
    rt = Runtime.create(settings)
    try:
        ref_scenes = [inputs[n] for n in CLIPS]
        refs = setup_video(rt, "ref", ref_scenes, inputs["music"])
        uni_scenes = [inputs[f"u{n}"] for n in range(1, 7)]
        uni_refs = setup_video(rt, "uni", uni_scenes, inputs["music"])
        paths = rt.paths("default", "ref")
        uni_paths = rt.paths("default", "uni")
        ref_kwargs = dict(scenes=refs, music="audio/music.m4a", aspect_ratio="16:9", fps=30, height=1080,
                          captions=True)
        uni_kwargs = dict(scenes=uni_refs, music="audio/music.m4a", aspect_ratio="16:9", fps=30, height=1080,
                          captions=False)

        # warm-up (file cache, encoder detection, imports): not counted
        run_ours(rt, "ref", **ref_kwargs)

        # MoviePy job spec: the same scenes, the same caption cues
        row = rt.registry.assets.by_path(paths, paths.narration)
        segments = list(row.props_of(NarrationProps).segments)  # type: ignore[union-attr]
        layout = CaptionLayout.for_size(1920, 1080)
        cues = [{"start": c.start_ms / 1000, "end": c.end_ms / 1000, "lines": list(c.lines)}
                for c in caption_cues(segments, layout)]
        mp_common = {"width": 1920, "height": 1080, "fps": 30, "scenes": [str(p) for p in ref_scenes],
                     "narration": str(paths.narration), "music": str(inputs["music"]), "cues": cues,
                     "font": str(font_path("text")), "font_size": round(layout.font_size / 1.21),
                     "margin_v": layout.margin_v}
        mp_default = {**mp_common, "preset": None, "ffmpeg_params": [], "out": str(work / "moviepy_default.mp4")}
        mp_same = {**mp_common, "preset": preset, "ffmpeg_params": ["-crf", str(media_assembly.DEFAULT_CRF),
                                                                    "-pix_fmt", "yuv420p"],
                   "out": str(work / "moviepy_same.mp4")}

        rows: list[dict[str, Any]] = []
        mp_rounds = 0 if args.skip_moviepy else args.moviepy_pairs
        for i in range(max(args.pairs, mp_rounds)):
            order = ["ours", "floor"] + (["mp_default", "mp_same"] if i < mp_rounds else [])
            if i % 2:
                order.reverse()
            r: dict[str, Any] = {}
            for step in order:
                if step == "ours":
                    r["ours"], result, counter = run_ours(rt, "ref", **ref_kwargs)
                    r["passes"] = counter.passes(result)
                    r["chunks"] = counter.video_encodes
                    r["ffmpeg_runs"] = len(counter.runs)
                    r["encoder"] = result["encoder"]
                    r["steps"] = counter.steps  # type: ignore[attr-defined]
                elif step == "floor":
                    r["decode"], r["reencode"] = floor(ref_scenes, paths.final_video, work, width=1920,
                                                       height=1080, fps=30, preset=preset)
                    r["floor"] = r["decode"] + r["reencode"]
                else:
                    r[step] = run_moviepy(args.moviepy_python, mp_default if step == "mp_default" else mp_same,
                                          work, step)
            r["load"] = round(os.getloadavg()[0], 2)
            r["ratio"] = round(r["ours"] / r["floor"], 3)
            rows.append(r)
            print(f"pair {i + 1}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in r.items() if k != "steps"), flush=True)
            print("    our steps: " + "; ".join(r.get("steps", [])), flush=True)

        print("ours/floor per pair: " + ", ".join(f"{r['ratio']:.3f}" for r in rows), flush=True)
        copy_rows: list[dict[str, Any]] = []
        for i in range(args.pairs):
            r = {}
            for step in (["ours", "floor"] if i % 2 == 0 else ["floor", "ours"]):
                if step == "ours":
                    r["ours"], result, counter = run_ours(rt, "uni", **uni_kwargs)
                    r["encoder"], r["passes"] = result["encoder"], counter.passes(result)
                else:
                    d, e = floor(uni_scenes, uni_paths.final_video, work, width=1920, height=1080, fps=30,
                                 preset=preset)
                    r["floor"] = d + e
            copy_rows.append(r)
            print(f"copy pair {i + 1}: ours {r['ours']:.2f} floor {r['floor']:.2f} encoder {r['encoder']}", flush=True)

        report: dict[str, Any] = {
            "pairs": rows,
            "copy_pairs": copy_rows,
            "median": {
                "ours_s": med([r["ours"] for r in rows]),
                "floor_s": med([r["floor"] for r in rows]),
                "decode_s": med([r["decode"] for r in rows]),
                "reencode_s": med([r["reencode"] for r in rows]),
                "ours_over_floor": med([r["ours"] / r["floor"] for r in rows]),
                "passes": med([r["passes"] for r in rows]),
                "copy_ours_s": med([r["ours"] for r in copy_rows]),
                "copy_floor_s": med([r["floor"] for r in copy_rows]),
                "copy_over_floor": med([r["ours"] / r["floor"] for r in copy_rows]),
            },
        }
        mp = [r for r in rows if "mp_default" in r]
        if mp:
            report["median"].update({
                "moviepy_default_s": med([r["mp_default"] for r in mp]),
                "moviepy_same_s": med([r["mp_same"] for r in mp]),
                "moviepy_default_over_ours": med([r["mp_default"] / r["ours"] for r in mp]),
                "moviepy_same_over_ours": med([r["mp_same"] / r["ours"] for r in mp]),
            })
        m = report["median"]
        print(f"\n| measure (median of {len(rows)} pairs; MoviePy {len(mp)}) | seconds | ratio | target |")
        print("|---|---|---|---|")
        print(f"| assemble_video, reference job | {m['ours_s']:.2f} | | |")
        print(f"| floor = decode inputs ({m['decode_s']:.2f}) + re-encode result ({m['reencode_s']:.2f}) | "
              f"{m['floor_s']:.2f} | ours/floor {m['ours_over_floor']:.3f} | <= 1.1 (defect > 1.25) |")
        if mp:
            print(f"| MoviePy 2.2, shipped default (medium, CRF 23) | {m['moviepy_default_s']:.2f} | "
                  f"MoviePy/ours {m['moviepy_default_over_ours']:.2f} | >= 3 |")
            print(f"| MoviePy 2.2, same preset ({preset}, CRF 20) | {m['moviepy_same_s']:.2f} | "
                  f"MoviePy/ours {m['moviepy_same_over_ours']:.2f} | >= 2 |")
        print(f"| video encode passes (ffmpeg runs: {rows[0]['ffmpeg_runs']}, chunks: {rows[0]['chunks']}) | | "
              f"{m['passes']:.2f} | 1 |")
        print(f"| stream-copy path: ours {m['copy_ours_s']:.2f} / floor {m['copy_floor_s']:.2f} | | "
              f"{m['copy_over_floor']:.3f} | <= 0.2 |")

        if not args.skip_acceptance:
            acc: dict[str, Any] = {}
            print("\nacceptance, reference job (16:9 30 fps):")
            print("  " + probe_line(paths.final_video))
            print("  " + loudness_line(paths.final_video))
            acc["ref"] = {"probe": probe_line(paths.final_video), "loudness": loudness_line(paths.final_video)}
            frame = work / "caption_frame_16x9.png"
            run_ffmpeg(["-ss", "7.0", "-i", str(paths.final_video), "-frames:v", "1", str(frame)])
            wall, res, counter = run_ours(rt, "ref", **{**ref_kwargs, "aspect_ratio": "9:16", "fps": 60,
                                                         "fit": "blur"})
            print(f"acceptance, the same job as 9:16 60 fps (fit=blur; {wall:.1f} s, {counter.passes(res)} "
                  f"encode pass):")
            print("  " + probe_line(paths.final_video))
            print("  " + loudness_line(paths.final_video))
            print(f"  readiness: {res['youtube_readiness']}")
            acc["shorts"] = {"probe": probe_line(paths.final_video), "loudness": loudness_line(paths.final_video),
                             "wall_s": wall}
            frame916 = work / "caption_frame_9x16.png"
            run_ffmpeg(["-ss", "7.0", "-i", str(paths.final_video), "-frames:v", "1", str(frame916)])
            print(f"  caption frames: {frame} {frame916}")
            report["acceptance"] = acc
        (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
        print(f"\nresults: {work / 'results.json'}")
    finally:
        rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
