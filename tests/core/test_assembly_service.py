"""assemble_video as a service: a real Runtime (registry, jobs), real files in a video's folder, probed results.

Outputs are at least 720p (the request's lower bound), so clips are 1 s and the preset is
ultrafast (YTAP_X264_PRESET) to keep every job around a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import av
import numpy as np
import pytest

from core.assets.props import FinalVideoProps, NarrationProps, SceneProps
from core.config import Settings
from core.errors import InputError, OperationCancelled
from core.jobs import JobHandle
from core.media import encoders as media_encoders
from core.media import videograph as media_videograph
from core.media.captions import SHORTS_UI_BOTTOM_FRACTION, SHORTS_UI_RIGHT_FRACTION
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.media.youtube import stream_structure
from core.runtime import Runtime
from core.schemas import AssemblyRequest, AssemblyResult, SegmentTiming, WordTiming
from core.services import assembly

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """conftest's settings, at the ultrafast preset (the encoder settings are otherwise the real ones)."""
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_X264_PRESET": "ultrafast"})


@pytest.fixture(autouse=True)
def _fresh_encoder_detection() -> Iterator[None]:
    media_encoders.reset_detection()
    yield
    media_encoders.reset_detection()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("service_sources")
    specs = {
        "gray.mp4": ["-f", "lavfi", "-i", "color=c=0x505050:s=640x360:r=30:d=1", *X264],
        "c24_audio.mp4": ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=24:d=1", "-f", "lavfi", "-i",
                          "sine=f=440:r=44100:d=1", *X264, "-c:a", "aac", "-shortest"],
        "portrait60.mp4": ["-f", "lavfi", "-i", "color=c=0x505050:s=360x640:r=60:d=1", *X264],
        "long.mp4": ["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=4", *X264],
        # speech-like: 1.8 s of a 220 Hz tone with a tremolo, then 0.2 s of silence
        "voice.wav": ["-f", "lavfi", "-i", "sine=f=220:r=48000:d=1.8", "-af",
                      "tremolo=f=4:d=0.6,apad=whole_dur=2", "-ac", "2"],
        "music.m4a": ["-f", "lavfi", "-i", "sine=f=1500:r=48000:d=5", "-c:a", "aac"],
    }
    for name, args in specs.items():
        run_ffmpeg([*args, str(d / name)], timeout_s=60, what=f"make {name}")
    return {name: d / name for name in specs}


def _copy_in(rt: Runtime, sources: dict[str, Path], video: str, *names: str) -> list[str]:
    paths = rt.paths("default", video)
    paths.ensure()
    refs = []
    for name in names:
        target = paths.scenes_dir / name
        target.write_bytes(sources[name].read_bytes())
        refs.append(f"scenes/{name}")
    return refs


def _narration(rt: Runtime, sources: dict[str, Path], video: str, *, timings: bool = True) -> None:
    """A narration on record, as synthesize_narration leaves it (audio + per-word timings)."""
    paths = rt.paths("default", video)
    paths.ensure()
    paths.narration.write_bytes(sources["voice.wav"].read_bytes())
    if not timings:
        return
    words = [WordTiming(text=t, start_s=round(0.3 * i, 3), end_s=round(0.3 * i + 0.28, 3))
             for i, t in enumerate("Captions from the narration timings.".split())]
    seg = SegmentTiming(index=1, text=" ".join(w.text for w in words), start_s=0.0, end_s=1.8, words=words)
    rt.registry.assets.add(paths, kind="narration", path=paths.narration, provider="test:voice", model=None,
                          cost_usd=0.0, props=NarrationProps(duration_s=2.0, segments=(seg,)), attempts=[],
                          capability="speech", job_id=None)


def _run(rt: Runtime, req: AssemblyRequest) -> AssemblyResult:
    plan = assembly.prepare(rt, req)
    return anyio.run(assembly.assemble_video, rt, plan, JobHandle(job_id="job_" + "a" * 20, kind="assemble_video"))


def _frame(path: str | Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for n, frame in enumerate(c.decode(video=0)):
            if n == index:
                return frame.to_ndarray(format="gray")
    raise AssertionError(f"no frame {index}")


def _bright_rows_cols(gray: np.ndarray, threshold: int = 200) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(gray > threshold)
    return ys, xs


def test_assemble_mixed_sources_with_music_and_captions(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "v", "gray.mp4", "c24_audio.mp4", "portrait60.mp4")
    _narration(runtime, sources, "v")
    paths = runtime.paths("default", "v")
    (paths.audio_dir / "music.m4a").write_bytes(sources["music.m4a"].read_bytes())
    res = _run(runtime, AssemblyRequest(video_id="v", scenes=refs, music="audio/music.m4a", height=720,
                                        aspect_ratio="16:9"))
    p = res.properties
    assert (p.video_codec, p.profile, p.pix_fmt, p.width, p.height, p.fps) == ("h264", "High", "yuv420p", 1280, 720, 30)
    assert p.frames == 90 and p.gop_frames is not None and p.gop_frames <= 15 and p.closed_gop is True
    assert p.max_b_frames is not None and p.max_b_frames <= 2
    assert (p.color_primaries, p.color_transfer, p.color_space) == ("bt709", "bt709", "bt709")
    assert (p.audio_codec, p.audio_profile, p.sample_rate, p.channels) == ("aac", "LC", 48000, 2)
    assert abs(p.video_duration_s - 3.0) <= 1 / 30 and abs(p.audio_duration_s - p.video_duration_s) <= 1 / 30
    assert p.integrated_lufs is not None and abs(p.integrated_lufs + 14) <= 1.0
    assert p.true_peak_dbtp is not None and p.true_peak_dbtp <= -1.0
    assert res.youtube_readiness.ready, res.youtube_readiness.deviations
    assert (res.encoder, res.encode_passes, res.stream_copy) == ("libx264", 1, False)
    assert res.music == "ytap://default/v/audio/music.m4a"
    # measured, not assumed: the file agrees
    assert probe(res.path).video.frames in (None, 90)  # type: ignore[union-attr]
    assert stream_structure(res.path).frames == 90
    # captions: burned in (the caption band of a frame inside a cue is lit) and the sidecar written
    assert res.captions_burned and res.srt_path and Path(res.srt_path).read_text().startswith("1\n00:00:00,000 --> ")
    assert "Captions from the narration timings." in Path(res.srt_path).read_text().replace("\n", " ")
    with_caption, without = _frame(res.path, 15), _frame(res.path, 75)  # 0.5 s (a cue) and 2.5 s (none)
    band = slice(int(720 * 0.75), 720 - 40)
    assert (with_caption[band, 200:1080] > 200).sum() > 500
    assert (without[band, 200:1080] > 200).sum() < 50  # the gray/portrait scenes have nothing bright there
    row = runtime.registry.assets.get(res.asset_id)
    props = row.props_of(FinalVideoProps)
    assert props.audio_levels is not None and props.audio_levels.music_db < 0 and props.srt == "final_video.srt"


def test_assemble_shorts_60fps_captions_clear_the_interface(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "s", "portrait60.mp4")
    _narration(runtime, sources, "s")
    res = _run(runtime, AssemblyRequest(video_id="s", scenes=refs, fps=60, height=1080, aspect_ratio="9:16"))
    p = res.properties
    assert (p.width, p.height, p.fps) == (1080, 1920, 60.0)
    assert p.gop_frames is not None and p.gop_frames <= 30 and p.closed_gop
    # narration 2 s + tail: the 1 s scene holds its last frame
    assert res.hold_s > 1.0 and p.frames == round((1.0 + res.hold_s) * 60)
    assert abs(p.integrated_lufs + 14) <= 1.0 and p.true_peak_dbtp <= -1.0  # type: ignore[operator]
    assert res.youtube_readiness.ready, res.youtube_readiness.deviations
    ys, xs = _bright_rows_cols(_frame(res.path, 30))
    assert len(ys) > 500, "no caption drawn"
    assert ys.max() < 1920 * (1 - SHORTS_UI_BOTTOM_FRACTION)  # above the title/channel/subscribe zone
    assert xs.max() < 1080 * (1 - SHORTS_UI_RIGHT_FRACTION)  # left of the action buttons


def test_assemble_stream_copies_scenes_that_already_match(runtime: Runtime, tmp_path: Path,
                                                           sources: dict[str, Path]) -> None:
    paths = runtime.paths("default", "c")
    paths.ensure()
    opts = media_encoders.LIBX264.output_options(gop=15, crf=23, maxrate_kbps=5000, preset="ultrafast")
    refs = []
    for n, colour in enumerate(("red", "blue"), 1):
        args = ["-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=30:d=1,drawbox=c={colour}:t=fill:w=99:h=99"]
        for k, v in opts.items():
            args += [f"-{k}", str(v)]
        run_ffmpeg([*args, str(paths.scene(n))])
        refs.append(f"scenes/scene_00{n}.mp4")
    _narration(runtime, sources, "c", timings=False)
    # the narration (2 s) must not run past the scenes (2 s): nothing to hold
    res = _run(runtime, AssemblyRequest(video_id="c", scenes=refs, height=720, captions=False))
    assert (res.encoder, res.encode_passes, res.stream_copy) == ("copy", 0, True)
    assert any("stream-copied" in n for n in res.notes)
    p = res.properties
    assert p.frames == 60 and (p.width, p.height) == (1280, 720) and p.closed_gop and p.gop_frames <= 15
    assert abs(p.integrated_lufs + 14) <= 1.0  # type: ignore[operator]
    assert res.youtube_readiness.ready, res.youtube_readiness.deviations
    assert res.srt_path is None and not paths.final_video.with_suffix(".srt").exists()


def test_assemble_falls_back_to_libx264_when_a_detected_hardware_encoder_fails(
    runtime: Runtime, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trial says NVENC works (there is no GPU here), so the render tries it, ffmpeg fails,
    # and libx264 takes over; both are on the record.
    monkeypatch.setattr(media_encoders, "trial_encode", lambda enc: enc.name == "h264_nvenc")
    refs = _copy_in(runtime, sources, "h", "gray.mp4")
    res = _run(runtime, AssemblyRequest(video_id="h", scenes=refs, height=720, captions=False))
    assert res.encoder == "libx264" and res.properties.profile == "High"
    assert [(a.outcome, (a.reason or "").split(":")[0]) for a in res.attempts] == [("failed", "h264_nvenc"),
                                                                                    ("succeeded", "")]
    assert "h264_nvenc failed" in res.notes[0]


def test_assemble_without_hardware_reports_libx264(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "x", "gray.mp4")
    res = _run(runtime, AssemblyRequest(video_id="x", scenes=refs, height=720))
    assert res.encoder == "libx264" and [a.outcome for a in res.attempts] == ["succeeded"]
    assert not res.captions_burned and any("no narration" in n for n in res.notes)


def test_assemble_webm_export_and_captions_off(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "w", "c24_audio.mp4")
    _narration(runtime, sources, "w")
    paths = runtime.paths("default", "w")
    stale = paths.final_video.with_suffix(".srt")
    stale.write_text("1\n00:00:00,000 --> 00:00:01,000\nold\n")
    res = _run(runtime, AssemblyRequest(video_id="w", scenes=refs, height=720, captions=False, export_webm=True))
    assert not res.captions_burned and res.srt_path is None and not stale.exists()
    assert res.webm_path and res.webm_uri == "ytap://default/w/final_video.webm"
    w = probe(res.webm_path)
    assert w.video and w.audio and (w.video.codec, w.audio.codec) == ("vp9", "opus")


def test_assemble_cancel_leaves_no_partial_file(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "k", *(["long.mp4"] * 1))
    refs = refs * 4  # 16 s of 1080p: still encoding when the cancel lands
    paths = runtime.paths("default", "k")
    plan = assembly.prepare(runtime, AssemblyRequest(video_id="k", scenes=refs, height=1080))
    job_id = runtime.jobs.submit("assemble_video", lambda h: assembly.assemble_video(runtime, plan, h))
    deadline = time.monotonic() + 30
    while runtime.jobs.envelope(job_id).message != "encoding the final video" and time.monotonic() < deadline:
        time.sleep(0.02)
    while not list(paths.root.glob(".final_video.*.part")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(paths.root.glob(".final_video.*.part")), "the render never started writing"
    runtime.jobs.cancel(job_id)
    env = anyio.run(runtime.jobs.wait, job_id, 20.0)
    assert env.status == "cancelled"
    assert not paths.final_video.exists()
    assert not [p.name for p in paths.root.iterdir() if p.name.endswith(".part")]


def test_assemble_failed_render_says_why_with_ffmpeg_stderr(runtime: Runtime, sources: dict[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    refs = _copy_in(runtime, sources, "f", "gray.mp4")
    # A filter this ffmpeg does not have: the render fails the way a real bug or bad input would.
    monkeypatch.setattr(media_videograph, "tag_bt709", lambda v: v.filter("no_such_filter_here"))
    plan = assembly.prepare(runtime, AssemblyRequest(video_id="f", scenes=refs, height=720))
    job_id = runtime.jobs.submit("assemble_video", lambda h: assembly.assemble_video(runtime, plan, h))
    env = anyio.run(runtime.jobs.wait, job_id, 30.0)
    assert env.status == "failed" and env.error is not None
    assert env.error.code == "media_error"
    assert "no_such_filter_here" in env.error.message and "ffmpeg exit" in env.error.message
    assert not runtime.paths("default", "f").final_video.exists()


def test_prepare_rejects_what_the_caller_can_fix(runtime: Runtime, sources: dict[str, Path]) -> None:
    refs = _copy_in(runtime, sources, "p", "gray.mp4", "c24_audio.mp4")
    with pytest.raises(InputError, match="presenter scene 3 does not exist"):
        assembly.prepare(runtime, AssemblyRequest(video_id="p", scenes=refs, presenter_scenes=[3]))
    with pytest.raises(InputError, match="music"):
        assembly.prepare(runtime, AssemblyRequest(video_id="p", scenes=refs, music="audio/none.mp3"))
    with pytest.raises(ValueError, match="end_s"):
        AssemblyRequest(video_id="p", overlays=[{"text": "x", "start_s": 2, "end_s": 1}])
    with pytest.raises(InputError, match="after the video ends"):
        _run(runtime, AssemblyRequest(video_id="p", scenes=refs, height=720,
                                      overlays=[{"text": "late", "start_s": 30, "end_s": 31}]))


def test_assemble_honours_a_cancel_between_steps(runtime: Runtime, sources: dict[str, Path]) -> None:
    # A job this small can finish an ffmpeg run before run_ffmpeg looks at the cancel flag;
    # the service looks again between steps, and never falls back to another encoder.
    import threading

    refs = _copy_in(runtime, sources, "z", "gray.mp4")
    plan = assembly.prepare(runtime, AssemblyRequest(video_id="z", scenes=refs, height=720))
    handle = JobHandle(job_id="job_" + "b" * 20, kind="assemble_video")
    handle.cancel = threading.Event()
    handle.cancel.set()
    with pytest.raises(OperationCancelled):
        anyio.run(assembly.assemble_video, runtime, plan, handle)
    paths = runtime.paths("default", "z")
    assert not paths.final_video.exists() and not list(paths.root.glob(".*.part"))


def test_prepare_confines_the_default_narration_and_scenes(runtime: Runtime, sources: dict[str, Path],
                                                           tmp_path: Path) -> None:
    """The defaults (registered scenes, audio/narration.wav) are checked like refs: a link out is refused."""
    from core.errors import PathOutsideWorkspace

    refs = _copy_in(runtime, sources, "d", "gray.mp4")
    paths = runtime.paths("default", "d")
    outside = tmp_path / "outside.wav"
    outside.write_bytes(sources["voice.wav"].read_bytes())
    paths.narration.symlink_to(outside)
    with pytest.raises(PathOutsideWorkspace, match="outside the video's folder"):
        assembly.prepare(runtime, AssemblyRequest(video_id="d", scenes=refs))
    paths.narration.unlink()

    scene = paths.scene(1)
    scene.write_bytes(sources["gray.mp4"].read_bytes())
    runtime.registry.assets.add(paths, kind="scene", path=scene, provider="test:clip", model=None, cost_usd=0.0,
                               props=SceneProps(duration_s=1.0), attempts=[], capability="video", scene_index=1,
                               job_id=None)
    assert assembly.prepare(runtime, AssemblyRequest(video_id="d")).scene_paths == (scene.resolve(),)
    outside_clip = tmp_path / "outside.mp4"
    scene.replace(outside_clip)
    scene.symlink_to(outside_clip)  # swapped for a link after it was registered
    with pytest.raises(PathOutsideWorkspace, match="outside the video's folder"):
        assembly.prepare(runtime, AssemblyRequest(video_id="d"))


def test_prepare_refuses_default_scenes_that_are_missing_or_archived(settings: Settings) -> None:
    """A registered scene whose file went is refused before any job, by index, with what to do."""
    rt = Runtime.create(settings)
    paths = rt.paths("default", "m")
    paths.ensure()
    for n in (1, 2, 3):
        paths.scene(n).write_bytes(f"scene {n}".encode())
        rt.registry.assets.add(paths, kind="scene", path=paths.scene(n), provider="test:clip", model=None,
                              cost_usd=0.0, props=SceneProps(), attempts=[], capability="video", scene_index=n)
    rt.close()
    paths.scene(2).unlink()

    rt = Runtime.create(settings)  # the restart's check marks scene 2 missing
    try:
        with pytest.raises(InputError, match=r"scene 2 is missing .*generate_scene again .*scene_index=2"):
            assembly.prepare(rt, AssemblyRequest(video_id="m"))
        paths.scene(3).unlink()
        rt.registry.assets.mark_archived(paths, {"scenes/scene_003.mp4": None}, "archive/intermediates-x.zip")
        with pytest.raises(InputError) as refused:
            assembly.prepare(rt, AssemblyRequest(video_id="m"))
        assert "scene 2 is missing" in str(refused.value)
        assert "scene 3 is archived (archive_video packed it into archive/intermediates-x.zip)" in str(refused.value)
        # The scenes the caller names are resolved as refs: a usable one still plans.
        plan = assembly.prepare(rt, AssemblyRequest(video_id="m", scenes=["scenes/scene_001.mp4"]))
        assert plan.scene_paths == (paths.scene(1).resolve(),)
    finally:
        rt.close()
