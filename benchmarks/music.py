"""Music acceptance figures (issue 17): local:ambient beds and the demo's mix, measured.

    python benchmarks/music.py [--demo-home DIR] [--out DIR]

1. A 90 s local:ambient bed for two moods, through the music service's own finishing
   (core.media.musicbed): seconds to synthesise; loudness of the written file (ffmpeg
   ebur128); the chords (the pitch classes of each chord's span, and how alike neighbours
   are); the seam (largest |first difference| within 10 ms of the wrap against the
   largest anywhere else, and against the 99.9th percentile); a spectrogram PNG of the
   first 20 s.
2. The demo's final video (``ytap-mcp demo --home DIR`` first): its integrated loudness, and
   the music's level under the narration while it speaks, measured on the mix: the same
   assembly is rendered twice, once with the narration's polarity inverted (the ducking
   and every gain are the same, since they follow loudness and envelope), so the sum of
   the two mixes is twice the music stem and the difference twice the narration stem.
   Speech windows are where the narration stem's 400 ms level is within 10 dB of its top.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.media.ambient import chroma, render_ambient  # noqa: E402
from core.media.mix import measure_loudness  # noqa: E402
from core.media.musicbed import decode, make_loop, master, write_wav  # noqa: E402
from ytap_mcp.demo import DEMO_MUSIC_VOLUME_DB  # noqa: E402

_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def spectrogram_png(x: np.ndarray, path: Path, *, seconds: float = 20.0, top_hz: float = 4000.0) -> None:
    """Log-frequency spectrogram (50 Hz..top_hz, 60 dB range) of the first ``seconds``, drawn with Pillow."""
    mono = x[: int(seconds * 48000)].mean(axis=1)
    frame, hop = 8192, 2400
    count = (len(mono) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    mags = np.abs(np.fft.rfft(mono[idx] * np.hanning(frame), axis=1))
    freqs = np.fft.rfftfreq(frame, 1 / 48000)
    rows = 400
    edges = np.geomspace(50, top_hz, rows + 1)
    bins = np.searchsorted(freqs, edges)
    img = np.stack([mags[:, a:max(a + 1, b)].max(axis=1) for a, b in zip(bins, bins[1:], strict=False)], axis=0)
    db = 20 * np.log10(img + 1e-9)
    db = np.clip((db - (db.max() - 60)) / 60, 0, 1)[::-1]  # low frequencies at the bottom
    rgb = np.stack([db ** 0.7, db ** 1.5, 0.3 + 0.7 * db ** 3], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).resize((count * 2, rows)).save(path)


def bed_figures(mood: str, out: Path) -> None:
    t0 = time.perf_counter()
    bed = render_ambient(mood, 90.0)
    synth_s = time.perf_counter() - t0
    wav = out / f"bed-{bed.profile}.wav"
    done = master(make_loop(bed.samples, seamless=True, bpm=bed.bpm, bars=bed.bars), wav, duration_s=90.0)
    measured = measure_loudness(wav)
    x = decode(wav)
    print(f"\n== {mood!r}: profile {bed.profile}, key {bed.key}, {bed.bpm:g} bpm, {bed.bars} bars, "
          f"{len(x) / 48000:.3f} s; synthesised in {synth_s:.2f} s")
    print(f"   loudness of the written file (ffmpeg ebur128): {measured.integrated_lufs:.2f} LUFS, "
          f"true peak {measured.true_peak_dbtp:.2f} dBTP")
    profiles = chroma(x, 48000, bed.chord_starts_s, len(x) / 48000)
    print("   chords (one per span: intended -> the 4 strongest pitch classes measured):")
    for i, prof in enumerate(profiles[: 2 * len(bed.chords)]):
        top = [_NAMES[k] for k in np.argsort(prof)[::-1][:4]]
        print(f"     {bed.chord_starts_s[i]:6.2f} s  {bed.chords[i % len(bed.chords)]:6s} -> {' '.join(top)}")
    sims = [float(a @ b) for a, b in zip(profiles, profiles[1:], strict=False)]
    print(f"   neighbouring chords' chroma cosine: min {min(sims):.3f}, max {max(sims):.3f} "
          "(1.0 would be the same chord)")
    d = np.abs(np.diff(x, axis=0)).max(axis=1)
    near = 480
    wrap = np.abs(np.diff(np.concatenate([x[-near:], x[:near]]), axis=0)).max()
    print(f"   seam: peak |first difference| within 10 ms of the wrap {wrap:.5f}; elsewhere max {d.max():.5f}, "
          f"99.9th percentile {np.percentile(d, 99.9):.5f}; ratio to max {wrap / d.max():.3f}")
    rms = lambda a: 10 * math.log10(float(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    print(f"   level: last 100 ms {rms(x[-4800:]):.2f} dB, first 100 ms {rms(x[:4800]):.2f} dB; "
          f"seamless={done.seam.seamless}")
    png = out / f"spectrogram-{bed.profile}.png"
    spectrogram_png(x, png)
    print(f"   spectrogram of the first 20 s: {png}")


def demo_figures(home: Path, out: Path) -> None:
    import anyio

    from core.config import Settings
    from core.jobs import JobHandle
    from core.runtime import Runtime
    from core.schemas import AssemblyRequest
    from core.services import assembly

    import shutil

    final = home / "workspaces" / "default" / "videos" / "ytap-demo" / "final_video.mp4"
    loud = measure_loudness(final)
    print(f"\n== the demo's final video {final}: {loud.integrated_lufs:.2f} LUFS integrated, "
          f"true peak {loud.true_peak_dbtp:.2f} dBTP")
    # The two test renders below are made in a copy of the demo's home: the demo's own video stays as it is.
    copy = Path(tempfile.mkdtemp(prefix="ytap-music-bench-home-"))
    shutil.copytree(home, copy / "home")
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(copy / "home")}))
    paths = rt.paths("default", "ytap-demo")
    scenes = sorted(p.name for p in paths.scenes_dir.glob("scene_*.mp4"))
    narration = decode(paths.narration)
    inverted = paths.audio_dir / "narration_inverted.wav"
    write_wav(inverted, -narration)
    mixes = []
    for ref in ("audio/narration.wav", "audio/narration_inverted.wav"):
        req = AssemblyRequest(video_id="ytap-demo", scenes=[f"scenes/{s}" for s in scenes], narration=ref,
                              music="audio/music.wav", captions=False, hardware_encoder=False,
                              music_volume_db=DEMO_MUSIC_VOLUME_DB)  # as the demo assembled it
        plan = assembly.prepare(rt, req)
        res = anyio.run(assembly.assemble_video, rt, plan, JobHandle(job_id="job_" + "b" * 20, kind="bench"))
        mixes.append(decode(Path(res.path)))
    inverted.unlink()
    n = min(len(m) for m in mixes)
    music_stem = (mixes[0][:n] + mixes[1][:n]) / 2
    voice_stem = (mixes[0][:n] - mixes[1][:n]) / 2
    win = int(0.4 * 48000)
    hop = int(0.1 * 48000)
    starts = range(0, n - win, hop)
    levels = np.array([10 * math.log10(float(np.mean(voice_stem[s:s + win] ** 2)) + 1e-12) for s in starts])
    speaking = levels > levels.max() - 10
    mask = np.zeros(n, bool)
    for s, on in zip(starts, speaking, strict=True):
        if on:
            mask[s + hop: s + win - hop] = True  # the window's middle, away from its edges
    with tempfile.TemporaryDirectory() as tmp:
        v, m = Path(tmp) / "v.wav", Path(tmp) / "m.wav"
        write_wav(v, voice_stem[mask])
        write_wav(m, music_stem[mask])
        lv, lm = measure_loudness(v).integrated_lufs, measure_loudness(m).integrated_lufs
        mq = Path(tmp) / "mq.wav"
        write_wav(mq, music_stem[~mask])
        lq = measure_loudness(mq).integrated_lufs
    print(f"   speech windows: {mask.sum() / 48000:.1f} s of {n / 48000:.1f} s")
    print(f"   while the narration speaks: narration {lv:.2f} LUFS, music {lm:.2f} LUFS -> music {lv - lm:.2f} dB "
          f"under the narration (between words: music {lq:.2f} LUFS)")
    rt.close()
    shutil.rmtree(copy, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-home", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="ytap-music-bench-")))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for mood in ("calm, hopeful", "upbeat, energetic"):
        bed_figures(mood, args.out)
    if args.demo_home:
        demo_figures(args.demo_home, args.out)


if __name__ == "__main__":
    main()
