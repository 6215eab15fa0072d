"""Assembly: timeline math and argv without ffmpeg; small real renders, probed.

Inputs are made with ffmpeg from lavfi sources at 320x180-640x480, 1-2 s, so the render
tests stay at well under a second each.
"""

from __future__ import annotations

import subprocess
import threading
from array import array
from dataclasses import replace
from pathlib import Path

import av
import pytest

from core.errors import InputError, MediaError, OperationCancelled
from core.media import assembly as A
from core.media import chunks as C
from core.media import mix as M
from core.media import timeline as T
from core.media import videograph as VG
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from core.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo, is_faststart, probe

FPS = 30
FRAME_S = 1 / FPS


# --------------------------------------------------------------------------- helpers


def _fake_info(name: str, duration_s: float, *, fps: float = 30.0, w: int = 640, h: int = 360, audio: bool = False,
               video: bool = True, color_space: str | None = None) -> MediaInfo:
    v = (
        VideoStreamInfo(codec="h264", profile="High", pix_fmt="yuv420p", width=w, height=h, fps=fps,
                        frames=round(duration_s * fps), duration_s=duration_s, sar="1:1", color_space=color_space)
        if video
        else None
    )
    a = AudioStreamInfo(codec="aac", profile="LC", sample_rate=48000, channels=2, duration_s=duration_s,
                        bit_rate=128000) if audio else None
    return MediaInfo(path=name, format_name="mov,mp4", duration_s=duration_s, bytes=1, video=v, audio=a)


def _scene(name: str, duration_s: float, **kw: object) -> T.SceneInput:
    return T.SceneInput(Path(name), _fake_info(name, duration_s, **kw))  # type: ignore[arg-type]


def _arg(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} appears {argv.count(flag)} times"
    return argv[argv.index(flag) + 1]


def _graph(argv: list[str]) -> str:
    return _arg(argv, "-filter_complex")


def _render(tl: T.Timeline, out: Path, **kw: object) -> MediaInfo:
    """Run the service's path (:func:`assemble`) and probe what it wrote, never trusting what it says."""
    A.assemble(tl, out, **kw)  # type: ignore[arg-type]
    return probe(out)


class _Runs(list[list[str]]):
    frames: list[int]  # -frames:v of each run that encodes video


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> _Runs:
    """The video encoders of every ffmpeg run the assembly makes (one list per run; "copy" included)."""
    runs = _Runs()
    runs.frames = []

    def counting(args: list[str], **kw: object) -> None:
        encs = [a for i, a in enumerate(args) if i and args[i - 1] == "-c:v"]
        runs.append(encs)
        if any(e != "copy" for e in encs):
            runs.frames.append(int(args[args.index("-frames:v") + 1]))
        run_ffmpeg(args, **kw)  # type: ignore[arg-type]

    for module in (A, M, C):
        monkeypatch.setattr(module, "run_ffmpeg", counting)
    return runs


def _video_encodes(runs: list[list[str]]) -> list[str]:
    return [enc for run in runs for enc in run if enc != "copy"]


def _one_pass(runs: _Runs, frames: int) -> None:
    """Exactly one video encode pass: every run encodes with libx264 alone, and their frames add up to the video."""
    assert set(_video_encodes(runs)) == {"libx264"} and all(run.count("libx264") <= 1 for run in runs)
    assert sum(runs.frames) == frames, runs.frames


def _has_encoder(name: str) -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def _luma(frame: av.VideoFrame) -> list[bytes]:
    """The Y plane as rows of exactly ``width`` bytes (no line padding)."""
    plane = frame.planes[0]
    data = bytes(plane)
    return [data[r * plane.line_size: r * plane.line_size + frame.width] for r in range(frame.height)]


def _frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def _changed_fraction(a: av.VideoFrame, b: av.VideoFrame, threshold: int = 24) -> float:
    """Share of luma pixels differing by more than ``threshold``: x264 noise stays far below."""
    changed = total = 0
    for ra, rb in zip(_luma(a), _luma(b), strict=True):
        changed += sum(1 for x, y in zip(ra, rb) if abs(x - y) > threshold)
        total += len(ra)
    return changed / total


def _audio_peaks(path: Path, window_s: float) -> list[float]:
    """Peak |sample| of the left channel per ``window_s`` window."""
    peaks: list[float] = []
    rate = 48000
    per = round(window_s * rate)
    cur, n = 0.0, 0
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            assert frame.format.name == "fltp"
            left = array("f", bytes(frame.planes[0])[: frame.samples * 4])
            for x in left:
                cur = max(cur, abs(x))
                n += 1
                if n == per:
                    peaks.append(cur)
                    cur, n = 0.0, 0
    return peaks


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("assembly_clips")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    specs: dict[str, list[str]] = {
        # 4:3, 24 fps, with (44.1 kHz mono) audio
        "c24_43.mp4": ["-f", "lavfi", "-i", "testsrc2=s=640x480:r=24:d=1", "-f", "lavfi", "-i",
                       "sine=f=440:r=44100:d=1", *x264, "-c:a", "aac", "-shortest"],
        # 60 fps: fps must come before scale
        "c60.mp4": ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=60:d=1.5", *x264],
        # portrait, solid white so the side bars are easy to see
        "portrait.mp4": ["-f", "lavfi", "-i", "color=c=white:s=180x320:r=30:d=1", *x264],
        # anamorphic: 240x180 stored, SAR 4:3 -> displays as 16:9, so it must fill 320x180
        "anamorphic.mp4": ["-f", "lavfi", "-i", "color=c=white:s=240x180:r=30:d=1", "-vf", "setsar=4/3", *x264],
        # plain 30 fps 2 s, no audio, moving picture (for the hold tests)
        "c30.mp4": ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=2", *x264],
        "narration_long.wav": ["-f", "lavfi", "-i", "sine=f=300:r=22050:d=3.2", "-ac", "1"],
        "narration_short.wav": ["-f", "lavfi", "-i", "sine=f=300:r=44100:d=1", "-ac", "2"],
    }
    if _has_encoder("libvpx-vp9"):
        specs["vp9.webm"] = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-c:v", "libvpx-vp9",
                             "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]
    for name, args in specs.items():
        run_ffmpeg([*args, str(d / name)], timeout_s=60, what=f"make {name}")
    return {name: d / name for name in specs}


@pytest.fixture(scope="session")
def infos(clips: dict[str, Path]) -> dict[str, MediaInfo]:
    return {name: probe(p) for name, p in clips.items()}


def _scenes(clips: dict[str, Path], infos: dict[str, MediaInfo], *names: str) -> list[T.SceneInput]:
    return [T.SceneInput(clips[n], infos[n]) for n in names]


def _narration(clips: dict[str, Path], infos: dict[str, MediaInfo], name: str) -> T.NarrationInput:
    return T.NarrationInput(clips[name], infos[name].duration_s)


# --------------------------------------------------------------------------- timeline (pure)


def test_build_timeline_snaps_durations_to_frame_grid() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.99), _scene("b.mp4", 1.0), _scene("c.mp4", 0.25)],
                          width=320, height=180, fps=30)
    assert [s.frames for s in tl.scenes] == [60, 30, 8]  # 59.7 -> 60, 30, 7.5 -> 8 (half up)
    assert [s.start_frame for s in tl.scenes] == [0, 60, 90]
    assert [s.start_ms for s in tl.scenes] == [0, 2000, 3000]
    assert [s.duration_ms for s in tl.scenes] == [2000, 1000, 267]
    assert all(s.in_ms == 0 for s in tl.scenes)
    assert tl.scene_frames == tl.total_frames == 98
    assert tl.hold_frames == tl.hold_ms == 0
    assert tl.duration_ms == 3267
    assert tl.audio_samples == 98 * 1600


def test_build_timeline_offsets_are_integer_ms_without_drift() -> None:
    tl = T.build_timeline([_scene(f"{i}.mp4", 1.01) for i in range(7)], width=640, height=360, fps=30)
    for prev, cur in zip(tl.scenes, tl.scenes[1:]):
        assert prev.start_ms + prev.duration_ms == cur.start_ms
    last = tl.scenes[-1]
    assert last.start_ms + last.duration_ms == tl.duration_ms == round(tl.total_frames * 1000 / 30)


def test_build_timeline_holds_last_frame_when_narration_longer() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.0), _scene("b.mp4", 1.0)], width=320, height=180, fps=30,
                          narration=T.NarrationInput(Path("n.wav"), 3.2))
    assert tl.scene_frames == 60
    assert tl.total_frames == 111  # ceil((3.2 + 0.5) * 30)
    assert tl.hold_frames == 51
    assert tl.hold_ms == 1700
    assert tl.duration_ms == 3700


def test_build_timeline_hold_covers_narration_end_with_custom_tail() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.0)], width=320, height=180, fps=30,
                          narration=T.NarrationInput(Path("n.wav"), 1.001), tail_s=0.0)
    assert tl.total_frames == 31  # never round the narration's end away
    assert tl.duration_s >= 1.001


def test_build_timeline_no_hold_when_narration_shorter() -> None:
    tl = T.build_timeline([_scene("a.mp4", 2.0), _scene("b.mp4", 1.5)], width=320, height=180, fps=30,
                          narration=T.NarrationInput(Path("n.wav"), 3.5))
    assert tl.hold_frames == 0 and tl.hold_ms == 0
    assert tl.total_frames == 105 and tl.duration_ms == 3500


def test_build_timeline_records_scene_facts() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.0, audio=True, fps=60, w=1920, h=1080), _scene("b.mp4", 1.0)],
                          width=320, height=180, fps=30)
    assert [s.has_audio for s in tl.scenes] == [True, False]
    assert tl.scenes[0].source_fps == 60
    # untagged HD is read as BT.709, untagged SD as BT.601
    assert [s.color_matrix for s in tl.scenes] == ["bt709", "bt601"]


def test_build_timeline_rejects_no_scenes() -> None:
    with pytest.raises(InputError):
        T.build_timeline([], width=320, height=180, fps=30)


def test_build_timeline_rejects_scene_without_video_naming_it() -> None:
    with pytest.raises(InputError, match="music_only.m4a"):
        T.build_timeline([_scene("a.mp4", 1.0), _scene("music_only.m4a", 1.0, video=False, audio=True)],
                         width=320, height=180, fps=30)


@pytest.mark.parametrize("kw", [{"width": 321}, {"height": 0}, {"fps": 0}, {"fps": 29.97}])
def test_build_timeline_rejects_bad_output_format(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"width": 320, "height": 180, "fps": 30, **kw}
    with pytest.raises(InputError):
        T.build_timeline([_scene("a.mp4", 1.0)], **args)  # type: ignore[arg-type]


def test_build_timeline_rejects_scene_shorter_than_a_frame() -> None:
    with pytest.raises(InputError, match="tiny.mp4"):
        T.build_timeline([_scene("tiny.mp4", 0.01)], width=320, height=180, fps=30)


# --------------------------------------------------------------------------- argv (pure)


def _two_scene_job(**kw: object) -> T.Timeline:
    return T.build_timeline(
        [_scene("/w/s1.mp4", 1.0, fps=24), _scene("/w/s2.mp4", 1.5, fps=60)],
        width=320, height=180, fps=30, narration=T.NarrationInput(Path("/w/narration.wav"), 3.2),
        **kw,  # type: ignore[arg-type]
    )


def test_argvs_are_one_video_encode_with_youtube_settings() -> None:
    tl = _two_scene_job()
    video = A.build_video_argv(tl, Path("/t/video.mp4"))
    assert video.count("-filter_complex") == 1
    assert video.count("-c:v") == 1 and video.count("libx264") == 1
    assert _arg(video, "-c:v") == "libx264"
    assert _arg(video, "-profile:v") == "high"
    assert _arg(video, "-pix_fmt") == "yuv420p"
    assert _arg(video, "-preset") == "veryfast" and _arg(video, "-crf") == "20"
    assert _arg(video, "-g") == "15"
    assert _arg(video, "-bf") == "2"
    assert "open-gop=0" in _arg(video, "-x264-params")
    assert _arg(video, "-r") == "30"
    assert _arg(video, "-frames:v") == str(tl.total_frames) == "111"
    # The exact count is also cut in the graph (the mux step carries no -frames:v: ffmpeg 5.1 would end the audio).
    assert f"trim=end_frame={tl.total_frames}[" in _graph(video)
    for flag in ("-colorspace", "-color_primaries", "-color_trc"):
        assert _arg(video, flag) == "bt709"
    assert _arg(video, "-f") == "mp4" and video[-1] == "/t/video.mp4"
    assert video[0] != ffmpeg_exe() and "ffmpeg" not in video[0]
    assert [video[i + 1] for i, a in enumerate(video) if a == "-i"] == ["/w/s1.mp4", "/w/s2.mp4"]
    audio = A.build_audio_argv(tl, Path("/t/audio.m4a"))
    assert (_arg(audio, "-c:a"), _arg(audio, "-b:a"), _arg(audio, "-ar"), _arg(audio, "-ac")) == (
        "aac", "384k", "48000", "2")
    assert [audio[i + 1] for i, a in enumerate(audio) if a == "-i"] == ["/w/narration.wav"]
    mux = A.build_mux_argv(tl, Path("/w/final.mp4.part"), audio_m4a=Path("/t/audio.m4a"), video=Path("/t/video.mp4"))
    assert _arg(mux, "-c") == "copy" and _arg(mux, "-movflags") == "+faststart"
    assert _arg(mux, "-map_metadata") == "-1" and _arg(mux, "-f") == "mp4" and mux[-1] == "/w/final.mp4.part"


def test_build_video_argv_gop_is_half_the_frame_rate() -> None:
    for fps, gop in ((30, "15"), (60, "30"), (24, "12"), (25, "12")):
        tl = T.build_timeline([_scene("a.mp4", 1.0)], width=320, height=180, fps=fps)
        assert _arg(A.build_video_argv(tl, Path("o.mp4")), "-g") == gop


def test_build_video_argv_graph_normalises_each_scene() -> None:
    g = _graph(A.build_video_argv(_two_scene_job(), Path("o.mp4")))
    # zeroed before the cut (a source that starts late keeps its head) and after it
    assert g.count("setpts=PTS-STARTPTS") == 4
    assert "trim=duration=1:start=0" in g and "trim=duration=1.5:start=0" in g
    assert g.count("force_original_aspect_ratio=decrease") == 2
    assert g.count("pad=color=black:h=180:w=320:x=(ow-iw)/2:y=(oh-ih)/2") == 2
    assert g.count("setsar=1") == 2 and g.count("format=yuv420p") == 2
    assert "trim=end_frame=30" in g and "trim=end_frame=45" in g  # exact frame counts
    assert "concat=a=0:n=2:v=1" in g
    # 24 fps source: scale, then fps; 60 fps source: fps first, so half the frames are scaled
    chains = g.split(";")
    first = [c for c in chains if "fps=fps=30" in c or "scale=" in c]
    kinds = ["fps" if "fps=fps" in c else "scale" for c in first]
    assert kinds == ["scale", "fps", "fps", "scale"]


def test_argvs_hold_last_frame_and_fit_audio() -> None:
    tl = _two_scene_job()
    assert "tpad=stop=36:stop_mode=clone" in _graph(A.build_video_argv(tl, Path("o.mp4")))  # 75 scene frames + 36
    audio = A.build_audio_argv(tl, Path("a.m4a"))
    g = _graph(audio)
    assert "aresample=48000" in g
    assert "aformat=channel_layouts=stereo:sample_fmts=fltp:sample_rates=48000" in g
    assert f"apad=whole_len={tl.audio_samples}" in g and f"atrim=end_sample={tl.audio_samples}" in g
    assert "anullsrc" not in " ".join(audio)


def test_argvs_without_narration_use_silence_of_video_length() -> None:
    tl = T.build_timeline([_scene("a.mp4", 2.0)], width=320, height=180, fps=30)
    audio = A.build_audio_argv(tl, Path("a.m4a"))
    assert "anullsrc=r=48000:cl=stereo" in audio
    assert "atrim=end_sample=96000" in _graph(audio)
    g = _graph(A.build_video_argv(tl, Path("o.mp4")))
    assert "concat" not in g  # one scene needs no concat
    assert "tpad=stop=60:stop_mode=clone" in g and "tpad=stop=0" not in g


def test_build_video_argv_repeated_clip_is_two_inputs() -> None:
    tl = T.build_timeline([_scene("same.mp4", 1.0), _scene("same.mp4", 1.0)], width=320, height=180, fps=30)
    argv = A.build_video_argv(tl, Path("o.mp4"))
    assert argv.count("same.mp4") == 2
    assert "split" not in _graph(argv)


def test_argvs_post_hooks_run_in_the_same_graphs() -> None:
    tl = _two_scene_job(video_post=[T.FilterStep.of("drawbox", x=0, y=0, w=10, h=10)],
                        audio_post=[T.FilterStep.of("volume", "0.5")])
    video = A.build_video_argv(tl, Path("o.mp4"))
    g = _graph(video)
    assert g.index("concat") < g.index("drawbox") < g.index("setparams")
    assert video.count("-c:v") == 1
    g = _graph(A.build_audio_argv(tl, Path("a.m4a")))
    assert g.index("aformat") < g.index("volume") < g.index("apad")


def test_build_video_argv_threads() -> None:
    tl = _two_scene_job()
    assert "-threads" not in A.build_video_argv(tl, Path("o.mp4"))
    argv = A.build_video_argv(tl, Path("o.mp4"), threads=2)
    assert _arg(argv, "-threads") == "2" and _arg(argv, "-filter_complex_threads") == "2"
    with pytest.raises(InputError):
        A.build_video_argv(tl, Path("o.mp4"), threads=0)


def test_describe_encode_is_one_libx264_pass() -> None:
    d = A.describe_encode(_two_scene_job())
    assert d["encoder"] == "libx264" and d["passes"] == 1
    assert d["frames"] == 111 and d["hold_s"] == pytest.approx(1.2)


# --------------------------------------------------------------------------- renders


def _check_youtube_basics(info: MediaInfo, path: Path, *, width: int, height: int, frames: int) -> None:
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.profile, v.pix_fmt) == ("h264", "High", "yuv420p")
    assert (v.width, v.height) == (width, height)
    assert v.fps == FPS
    assert v.frames == frames
    assert v.color_space == "bt709"
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 2)
    assert v.duration_s is not None and a.duration_s is not None
    assert v.duration_s == pytest.approx(frames / FPS, abs=FRAME_S / 2)
    assert abs(a.duration_s - v.duration_s) <= FRAME_S
    assert is_faststart(path)


def test_render_heterogeneous_scenes(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path,
                                     encodes: _Runs) -> None:
    names = ["c24_43.mp4", "c60.mp4", "portrait.mp4", "anamorphic.mp4"]
    if "vp9.webm" in clips:
        names.append("vp9.webm")
    scenes = _scenes(clips, infos, *names)
    durations = [s.info.video.duration_s or s.info.duration_s for s in scenes]  # type: ignore[union-attr]
    expected = sum(T.frames_for(d, FPS) for d in durations)
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS)
    assert tl.total_frames == expected
    out = tmp_path / "final.mp4.part"
    progress: list[float] = []
    info = _render(tl, out, on_progress=progress.append)
    _one_pass(encodes, expected)  # one video encode pass in the whole job (in chunks)
    _check_youtube_basics(info, out, width=320, height=180, frames=expected)
    assert probe(out, count_frames=True).video.frames == expected  # type: ignore[union-attr]
    # progress: monotonic, ends at exactly 1.0
    assert progress and progress[-1] == 1.0
    assert all(0.0 <= p <= 1.0 for p in progress)
    assert progress == sorted(progress)

    frames = _frames(out)
    assert len(frames) == expected
    by_name = {s.path.name: s for s in tl.scenes}
    # portrait (white, 180x320) in a 320x180 frame: scaled to ~102x180 and centred, black bars
    mid = frames[by_name["portrait.mp4"].start_frame + 15]
    row = _luma(mid)[90]
    assert max(row[:100]) < 40 and max(row[-100:]) < 40  # bars (black = 16)
    assert min(row[120:200]) > 200  # picture (white = 235)
    # anamorphic 240x180 at SAR 4:3 displays 16:9: fills the frame, no bars
    row = _luma(frames[by_name["anamorphic.mp4"].start_frame + 15])[90]
    assert min(row[2:-2]) > 200


def test_render_scenes_land_on_exact_frames(tmp_path: Path) -> None:
    # Solid colours make every scene boundary checkable. Durations off the 30 fps grid:
    # 47 frames @24 = 1.958 s -> 59, 26 @25 = 1.04 s -> 31, 33 @60 = 0.55 s -> 17 (half up).
    # The last two scenes declare a length their frames do not fill exactly (as a cut
    # inside a clip, or a container that misstates the stream, would): fps alone yields
    # 30 frames for both, one too many and one too few.
    made = [("red", 24, 47, None), ("lime", 25, 26, None), ("blue", 60, 33, None),
            ("white", 24, 24, 29 / 30), ("black", 24, 24, 31 / 30)]
    scenes = []
    for colour, rate, n, declared_s in made:
        path = tmp_path / f"{colour}.mp4"
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c={colour}:s=160x90:r={rate}", "-frames:v", str(n),
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], timeout_s=60)
        info = probe(path)
        if declared_s is not None:
            info = replace(info, duration_s=declared_s, video=replace(info.video, duration_s=declared_s))
        scenes.append(T.SceneInput(path, info))
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS)
    assert [s.frames for s in tl.scenes] == [59, 31, 17, 29, 31]
    out = tmp_path / "grid.mp4.part"
    info = _render(tl, out)
    _check_youtube_basics(info, out, width=320, height=180, frames=167)
    luma = [_luma(f)[90][160] for f in _frames(out)]
    assert len(luma) == 167
    for scene in tl.scenes:
        first, last = scene.start_frame, scene.start_frame + scene.frames - 1
        assert len({luma[i] // 8 for i in range(first, last + 1)}) == 1, f"{scene.path.name} is not one colour"
        if first:
            assert abs(luma[first] - luma[first - 1]) > 20, f"{scene.path.name} starts at the wrong frame"


def test_render_narration_longer_holds_last_frame(clips: dict[str, Path], infos: dict[str, MediaInfo],
                                                  tmp_path: Path) -> None:
    narration = _narration(clips, infos, "narration_long.wav")  # 3.2 s of 22.05 kHz mono
    tl = T.build_timeline(_scenes(clips, infos, "c30.mp4"), width=320, height=180, fps=FPS, narration=narration)
    assert tl.hold_frames > 0
    out = tmp_path / "held.mp4.part"
    info = _render(tl, out)
    _check_youtube_basics(info, out, width=320, height=180, frames=tl.total_frames)
    assert info.duration_s == pytest.approx(2.0 + tl.hold_frames / FPS, abs=FRAME_S)
    assert info.duration_s >= narration.duration_s
    frames = _frames(out)
    assert _changed_fraction(frames[-2], frames[-1]) < 0.001  # the held frame
    assert _changed_fraction(frames[59], frames[-1]) < 0.001  # ... is the scene's final frame
    assert _changed_fraction(frames[58], frames[59]) > 0.001  # while the scene itself moved
    # the narration is heard all the way to its end, then silence
    peaks = _audio_peaks(out, 0.1)
    assert all(p > 0.05 for p in peaks[1:31])
    assert all(p < 0.01 for p in peaks[34:])


def test_render_narration_shorter_pads_with_silence(clips: dict[str, Path], infos: dict[str, MediaInfo],
                                                    tmp_path: Path) -> None:
    narration = _narration(clips, infos, "narration_short.wav")  # 1 s, 44.1 kHz stereo
    tl = T.build_timeline(_scenes(clips, infos, "c30.mp4", "c24_43.mp4"), width=320, height=180, fps=FPS,
                          narration=narration)
    assert tl.hold_frames == 0 and tl.total_frames == 90
    out = tmp_path / "short.mp4.part"
    info = _render(tl, out)
    _check_youtube_basics(info, out, width=320, height=180, frames=90)
    assert info.duration_s == pytest.approx(3.0, abs=FRAME_S)
    frames = _frames(out)
    assert _changed_fraction(frames[-2], frames[-1]) > 0.001  # no hold: still moving at the end
    peaks = _audio_peaks(out, 0.1)
    assert all(p > 0.05 for p in peaks[1:9])
    assert all(p < 0.01 for p in peaks[12:19])  # silence after the narration ...
    assert all(p > 0.05 for p in peaks[21:29])  # ... until the 4:3 clip's own sound (kept in the mix)


@pytest.mark.slow
def test_render_1080p(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    scenes = _scenes(clips, infos, "c24_43.mp4", "portrait.mp4")
    tl = T.build_timeline(scenes, width=1920, height=1080, fps=FPS)
    out = tmp_path / "hd.mp4.part"
    info = _render(tl, out, preset="ultrafast")
    _check_youtube_basics(info, out, width=1920, height=1080, frames=60)


def test_render_failure_raises_media_error_and_leaves_nothing(clips: dict[str, Path], infos: dict[str, MediaInfo],
                                                               tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    scenes = [T.SceneInput(broken, infos["c30.mp4"])]
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS)
    out = tmp_path / "failed.mp4.part"
    out.write_bytes(b"stale")
    with pytest.raises(MediaError):
        _render(tl, out)
    assert not out.exists()


# =========================================================================== issue #4: the full graph

import math  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402

from core.media import encoders as E  # noqa: E402
from core.media.youtube import max_bitrate_kbps, stream_structure  # noqa: E402


def _main_chain(argv: list[str], n: int) -> list[str]:
    """Filter names from an input to the ``n``-th mapped output, following each filter's first input."""
    producers: dict[str, tuple[str, str]] = {}
    for stmt in _graph(argv).split(";"):
        m = re.fullmatch(r"((?:\[[^\]]+\])+)([a-z0-9_]+)(?:=[^\[]*)?((?:\[[^\]]+\])+)", stmt)
        assert m, stmt
        first_in = re.findall(r"\[([^\]]+)\]", m.group(1))[0]
        for out in re.findall(r"\[([^\]]+)\]", m.group(3)):
            producers[out] = (m.group(2), first_in)
    label = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"][n].strip("[]")
    names: list[str] = []
    while label in producers:
        name, label = producers[label]
        names.append(name)
    return names[::-1]


def _video_encoders(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-c:v"]


def _make(path: Path, *args: str) -> Path:
    run_ffmpeg([*args, str(path)], timeout_s=60, what=f"make {path.name}")
    return path


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(int)


def _samples(path: Path) -> np.ndarray:
    """Left channel, float, 48 kHz."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            out.append(frame.to_ndarray()[0])
    return np.concatenate(out)


def _tone_level_db(x: np.ndarray, freq: float, t0: float, t1: float, rate: int = 48000) -> float:
    seg = x[int(t0 * rate): int(t1 * rate)]
    t = np.arange(len(seg)) / rate
    amp = 2 * abs(np.dot(seg, np.exp(-2j * np.pi * freq * t))) / len(seg)
    return 20 * np.log10(max(amp, 1e-9))


def _loudness_ok(path: Path, target: float = -14.0) -> T.Loudness:
    loud = M.measure_loudness(path)
    assert abs(loud.integrated_lufs - target) <= 1.0, loud
    assert loud.true_peak_dbtp <= -1.0, loud
    return loud


@pytest.fixture(scope="session")
def more_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("assembly_more")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    clips = {
        "red": _make(d / "red.mp4", "-f", "lavfi", "-i", "color=c=red:s=320x180:r=30:d=1", *x264),
        "blue": _make(d / "blue.mp4", "-f", "lavfi", "-i", "color=c=blue:s=320x180:r=30:d=1", "-f", "lavfi", "-i",
                      "sine=f=500:r=48000:d=1", *x264, "-c:a", "aac"),
        "gray4": _make(d / "gray4.mp4", "-f", "lavfi", "-i", "color=c=0x606060:s=320x180:r=30:d=4", *x264),
        # green screen with a white "presenter" in the middle
        "green": _make(d / "green.mp4", "-f", "lavfi", "-i",
                       "color=c=0x00FF00:s=320x180:r=30:d=1,drawbox=x=120:y=40:w=80:h=140:color=white:t=fill", *x264),
        # narration-like: 300 Hz for 1.6 s, then silence; music: 2 kHz for 10 s
        "voice": _make(d / "voice.wav", "-f", "lavfi", "-i", "sine=f=300:r=48000:d=1.6", "-af", "apad=whole_dur=4"),
        "music": _make(d / "music.m4a", "-f", "lavfi", "-i", "sine=f=2000:r=48000:d=10", "-c:a", "aac"),
        # peaky: quiet pink noise with loud clicks: levelled to -14 LUFS the clicks pass 0 dBFS
        "peaky": _make(d / "peaky.wav", "-f", "lavfi", "-i",
                       "aevalsrc='0.02*sin(2*PI*220*t)+if(lt(mod(t\\,0.25)\\,0.0015)\\,0.9\\,0)':s=48000:d=2"),
    }
    from PIL import Image

    Image.new("RGBA", (40, 40), (255, 0, 0, 255)).save(d / "wm.png")
    clips["wm"] = d / "wm.png"
    return clips


def _si(path: Path) -> T.SceneInput:
    return T.SceneInput(path, probe(path))


# --------------------------------------------------------------------------- timeline (pure)


def test_build_timeline_crossfades_overlap_on_the_frame_grid() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.0), _scene("b.mp4", 1.0), _scene("c.mp4", 2.0)],
                          width=320, height=180, fps=30, crossfade_s=0.5)
    assert [s.overlap_frames for s in tl.scenes] == [0, 15, 15]
    assert [s.start_frame for s in tl.scenes] == [0, 15, 30]
    assert tl.scene_frames == tl.total_frames == 30 + 30 + 60 - 30
    assert tl.duration_ms == 3000


def test_build_timeline_crossfade_never_takes_more_than_half_a_scene() -> None:
    tl = T.build_timeline([_scene("a.mp4", 2.0), _scene("short.mp4", 0.2), _scene("c.mp4", 2.0)],
                          width=320, height=180, fps=30, crossfade_s=1.0)
    assert [s.overlap_frames for s in tl.scenes] == [0, 3, 3]  # 6 frames: 3 in, 3 out
    assert tl.total_frames == 60 + 6 + 60 - 6


def test_build_timeline_presenter_takes_its_background_slot_length() -> None:
    bg = _scene("bg.mp4", 5.0)
    pres = T.SceneInput(Path("p.mp4"), _fake_info("p.mp4", 2.0), background=bg, chroma=T.ChromaKey("#00ff00"))
    tl = T.build_timeline([_scene("a.mp4", 1.0), pres], width=320, height=180, fps=30)
    assert tl.total_frames == 90
    assert tl.scenes[1].background is not None and tl.scenes[1].background.path == Path("bg.mp4")


# --------------------------------------------------------------------------- argv (pure)


def _everything(**kw: object) -> T.Timeline:
    bg = T.SceneInput(Path("/w/bg.mp4"), _fake_info("/w/bg.mp4", 3.0, w=1920, h=1080))
    pres = T.SceneInput(Path("/w/p.mp4"), _fake_info("/w/p.mp4", 2.0), background=bg, chroma=T.ChromaKey())
    tl = T.build_timeline(
        [_scene("/w/s1.mp4", 2.0, fps=24, audio=True), _scene("/w/s2.mp4", 2.0, w=180, h=320), pres],
        width=1920, height=1080, fps=30, narration=T.NarrationInput(Path("/w/n.wav"), 5.5),
        music=T.MusicInput(Path("/w/music.mp3"), 40.0), watermark=T.Watermark(Path("/w/wm.png")),
        captions_ass="[Script Info]\n", crossfade_s=0.5, fit="blur", **kw,  # type: ignore[arg-type]
    )
    return replace(tl, levels=T.AudioLevels(narration_db=2.0, music_db=-20.0, scene_db=(-6.0, None, None),
                                            final_db=1.5, limiter=True))


def test_caption_fonts_get_a_private_fonts_dir(tmp_path: Path) -> None:
    from core.media.fonts import FONT_DIR, font_path

    g = _graph(A.build_video_argv(_everything(), Path("/t/video.mp4"), work_dir=Path("/tmp/work")))
    assert f"fontsdir={FONT_DIR}" in g  # the bundled fonts by default
    font = tmp_path / "mine.otf"
    font.write_bytes(font_path("display").read_bytes())
    tl = replace(_everything(), caption_fonts=(font,))
    assert "ass=filename=/tmp/work/captions.ass:fontsdir=/tmp/work/fonts" in _graph(
        A.build_video_argv(tl, Path("/t/video.mp4"), work_dir=Path("/tmp/work")))
    work = tmp_path / "work"
    work.mkdir()
    VG.write_captions(tl, work)
    assert (work / "captions.ass").read_text() == tl.captions_ass
    assert [p.name for p in (work / "fonts").iterdir()] == ["mine.otf"]
    assert (work / "fonts" / "mine.otf").read_bytes() == font.read_bytes()


def test_argvs_everything_is_one_video_graph_one_video_encode_and_one_audio_graph() -> None:
    video = A.build_video_argv(_everything(), Path("/t/video.mp4"), work_dir=Path("/tmp/work"))
    assert video.count("-filter_complex") == 1
    assert _video_encoders(video) == ["libx264"]
    assert "-c:a" not in video
    g = _graph(video)
    # video: blur fill, chroma key over the background, crossfades, watermark, captions, tags
    assert "gblur" in g and "split=2" in g
    assert "chromakey=blend=0.05:color=0x00FF00:similarity=0.15" in g
    assert g.count("xfade=") == 2 and "offset=1.5" in g
    assert "colorchannelmixer=aa=0.6" in g
    assert "ass=filename=/tmp/work/captions.ass:fontsdir=" in g
    video_chain = _main_chain(video, 0)
    order = [max(i for i, x in enumerate(video_chain) if x == n) for n in ("xfade", "tpad", "overlay", "ass",
                                                                           "setparams")]
    assert order == sorted(order), video_chain  # fades, hold, watermark, captions, tags
    # presenter and background are one slot; no sound is read by the video half
    assert video.count("/w/s1.mp4") == 1 and video.count("/w/p.mp4") == 1 and video.count("/w/bg.mp4") == 1
    assert "/w/n.wav" not in video and "/w/music.mp3" not in video
    # audio: looped music ducked under the narration, scene sound placed in samples, summed, levelled, limited
    audio = A.build_audio_argv(_everything(), Path("/t/audio.m4a"))
    assert audio.count("-filter_complex") == 1 and audio.count("-c:a") == 1 and "-c:v" not in audio
    g = _graph(audio)
    i = audio.index("/w/music.mp3")
    assert audio[i - 3: i - 1] == ["-stream_loop", "-1"]
    assert "sidechaincompress" in g and "asplit=2" in g
    assert "amix=dropout_transition=0:duration=longest:inputs=3:normalize=0" in g
    assert "volume=-6.00dB" in g and "volume=2.00dB" in g and "volume=-20.00dB" in g and "volume=1.50dB" in g
    assert "alimiter" in g and "level=0" in g and "aresample=192000" in g
    assert "afade=d=0.5:st=1.5:t=out" in g  # scene 1's sound fades out under the crossfade
    assert g.count("afade=") == 3  # that one, and the music's fade in and out
    assert f"atrim=end_sample={_everything().audio_samples}" in g
    # scene 2 has no sound, and the presenter's slot has none: only scene 1's sound is an input
    assert audio.count("/w/s1.mp4") == 1 and "/w/s2.mp4" not in audio and "/w/p.mp4" not in audio


def test_build_audio_argv_scene_sound_is_placed_at_its_start_in_samples() -> None:
    tl = T.build_timeline([_scene("/w/a.mp4", 1.0), _scene("/w/b.mp4", 1.0, audio=True)], width=320, height=180,
                          fps=30, crossfade_s=0.25)
    g = _graph(A.build_audio_argv(tl, Path("a.m4a")))
    start = tl.scenes[1].start_frame
    assert start == 22 and f"adelay=all=1:delays={start * 1600}S" in g
    assert "afade=d=0.266667:st=0:t=in" in g  # 8 frames


def test_argvs_webm_export_is_the_same_video_pass_split_in_two() -> None:
    tl = _two_scene_job()
    video = A.build_video_argv(tl, Path("/t/video.mp4"), webm_video=Path("/t/video.webm"))
    assert video.count("-filter_complex") == 1
    assert _video_encoders(video) == ["libx264", "libvpx-vp9"]
    audio = A.build_audio_argv(tl, Path("/t/audio.m4a"), wav=Path("/t/mix.wav"))
    assert audio.count("-filter_complex") == 1  # one mix, split into the AAC and the PCM for the Opus
    assert [audio[i + 1] for i, x in enumerate(audio) if x == "-c:a"] == ["aac", "pcm_f32le"]
    mux = A.build_mux_argv(tl, Path("/w/o.mp4"), audio_m4a=Path("/t/audio.m4a"), video=Path("/t/video.mp4"),
                           webm_path=Path("/w/o.webm"), webm_video=Path("/t/video.webm"), wav=Path("/t/mix.wav"))
    assert "libopus" in mux and mux[-1] == "/w/o.webm" and "libx264" not in mux and "-filter_complex" not in mux


def test_build_video_argv_maxrate_from_youtube_table() -> None:
    assert max_bitrate_kbps(1920, 1080, 30) == 8000 and max_bitrate_kbps(1080, 1920, 60) == 12000
    assert max_bitrate_kbps(1280, 720, 60) == 7500 and max_bitrate_kbps(3840, 2160, 30) == 45000
    assert max_bitrate_kbps(2560, 1440, 60) == 24000 and max_bitrate_kbps(1600, 900, 30) == 8000
    tl = T.build_timeline([_scene("a.mp4", 1.0)], width=1080, height=1920, fps=60)
    argv = A.build_video_argv(tl, Path("o.mp4"))
    assert _arg(argv, "-maxrate") == "12000k" and _arg(argv, "-bufsize") == "24000k" and _arg(argv, "-g") == "30"


def test_plan_and_finish_levels() -> None:
    tl = T.build_timeline([_scene("a.mp4", 1.0, audio=True), _scene("b.mp4", 1.0, audio=True)], width=320,
                          height=180, fps=30, narration=T.NarrationInput(Path("n.wav"), 1.0),
                          music=T.MusicInput(Path("m.mp3"), 9.0),
                          mix=T.MixSettings(loudness_lufs=-14, music_volume_db=-12, scene_audio_volume_db=-10))
    L = T.Loudness
    levels = M.plan_levels(tl, {"narration": L(-20.0, -6.0), "music": L(-10.0, -1.0), "scene:0": L(-30.0, -12.0),
                                "scene:1": L(-70.0, -math.inf)})
    assert levels.narration_db == 6.0 and levels.music_db == -16.0
    assert levels.scene_db == (6.0, None)  # -24 wanted; a silent track is left out
    quiet = M.plan_levels(tl, {"scene:0": L(-50.0, -30.0)})
    assert quiet.scene_db[0] == 12.0  # room tone is not pulled up to dialogue level
    done = M.finish_levels(levels, L(-16.3, -4.0), -14.0)
    assert done.final_db == 2.3 and not done.limiter
    hot = M.finish_levels(levels, L(-16.3, -3.0), -14.0)
    assert hot.limiter  # -3 + 2.3 = -0.7 dBTP would pass the -1.5 ceiling
    silent = M.finish_levels(levels, L(-70.0, -math.inf), -14.0)
    assert silent.final_db == 0.0 and not silent.limiter


# --------------------------------------------------------------------------- renders


def test_render_loudness_on_target_with_true_peak_under_ceiling(more_clips: dict[str, Path], tmp_path: Path) -> None:
    tl = T.build_timeline([_si(more_clips["gray4"])], width=320, height=180, fps=FPS,
                          narration=T.NarrationInput(more_clips["voice"], 4.0),
                          music=T.MusicInput(more_clips["music"], 10.0))
    out = tmp_path / "loud.mp4"
    done = A.assemble(tl, out, preset="ultrafast")
    levels = done.timeline.levels
    assert levels is not None and levels.narration_db > 5  # a quiet sine brought up to the target
    _loudness_ok(out)


def test_render_limiter_keeps_loudness_when_peaks_would_pass_the_ceiling(more_clips: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    tl = T.build_timeline([_si(more_clips["red"])], width=320, height=180, fps=FPS,
                          narration=T.NarrationInput(more_clips["peaky"], 2.0), tail_s=0.0)
    out = tmp_path / "peaky.mp4"
    levels = A.assemble(tl, out, preset="ultrafast").timeline.levels
    assert levels is not None and levels.limiter
    assert levels.measured_true_peak_dbtp is not None and levels.measured_true_peak_dbtp + levels.final_db > 0
    _loudness_ok(out)


def test_render_music_ducks_under_the_narration(more_clips: dict[str, Path], tmp_path: Path) -> None:
    tl = T.build_timeline([_si(more_clips["gray4"])], width=320, height=180, fps=FPS,
                          narration=T.NarrationInput(more_clips["voice"], 4.0),
                          music=T.MusicInput(more_clips["music"], 10.0))
    out = tmp_path / "duck.mp4"
    _render(tl, out, preset="ultrafast")
    x = _samples(out)
    under = _tone_level_db(x, 2000, 1.1, 1.55)  # the narration speaks until 1.6 s
    free = _tone_level_db(x, 2000, 2.1, 2.6)  # music alone (its fade-out starts at 2.67 s)
    assert free - under >= 6.0, (under, free)
    assert _tone_level_db(x, 300, 1.1, 1.55) > under + 6  # and the narration is on top


def test_render_crossfade_length_and_blend(more_clips: dict[str, Path], tmp_path: Path) -> None:
    scenes = [_si(more_clips["red"]), _si(more_clips["blue"]), _si(more_clips["red"])]
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS, crossfade_s=0.4)
    assert tl.total_frames == 90 - 2 * 12
    out = tmp_path / "xfade.mp4"
    info = _render(tl, out, preset="ultrafast")
    _check_youtube_basics(info, out, width=320, height=180, frames=tl.total_frames)
    assert info.video.duration_s == pytest.approx(3.0 - 2 * 0.4, abs=FRAME_S)  # type: ignore[union-attr]
    frames = _frames(out)
    assert len(frames) == 66
    first, mid, blue = _rgb(frames[5])[90, 160], _rgb(frames[24])[90, 160], _rgb(frames[28])[90, 160]
    assert first[0] > 200 and first[2] < 40  # red
    assert 60 < mid[0] < 200 and 60 < mid[2] < 200  # half way through the fade: both
    assert blue[2] > 200 and blue[0] < 40
    # the blue clip's tone fades in and out with its picture: silent at the start, loud in the middle
    x = _samples(out)
    assert _tone_level_db(x, 500, 0.0, 0.15) < -60
    assert _tone_level_db(x, 500, 0.8, 1.0) > -25


def test_render_fit_cover_and_blur(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    scenes = _scenes(clips, infos, "portrait.mp4")  # white, 180x320
    for fit in ("cover", "blur"):
        tl = T.build_timeline(scenes, width=320, height=180, fps=FPS, fit=fit)  # type: ignore[arg-type]
        out = tmp_path / f"{fit}.mp4"
        _render(tl, out, preset="ultrafast")
        row = _luma(_frames(out)[10])[90]
        assert min(row[140:180]) > 200  # the picture
        assert min(row[:60]) > 100 and min(row[-60:]) > 100, fit  # no black bars: cropped, or blurred fill


def test_render_watermark_in_its_corner(more_clips: dict[str, Path], tmp_path: Path) -> None:
    tl = T.build_timeline([_si(more_clips["gray4"])], width=320, height=180, fps=FPS,
                          watermark=T.Watermark(more_clips["wm"], "bottom-right", opacity=1.0, width_px=40))
    out = tmp_path / "wm.mp4"
    _render(tl, out, preset="ultrafast")
    rgb = _rgb(_frames(out)[60])
    margin = round(180 * 0.03)
    corner = rgb[180 - margin - 20, 320 - margin - 20]
    assert corner[0] > 180 and corner[1] < 60 and corner[2] < 60  # red
    assert abs(int(rgb[20, 20][0]) - 96) < 12  # elsewhere the gray scene


def test_render_presenter_is_keyed_over_its_background(more_clips: dict[str, Path], tmp_path: Path) -> None:
    pres = T.SceneInput(more_clips["green"], probe(more_clips["green"]), background=_si(more_clips["blue"]),
                        chroma=T.ChromaKey("#00FF00", 0.15, 0.05))
    tl = T.build_timeline([pres], width=320, height=180, fps=FPS)
    out = tmp_path / "keyed.mp4"
    _render(tl, out, preset="ultrafast")
    rgb = _rgb(_frames(out)[15])
    assert rgb[100, 160].min() > 200  # the presenter (white box)
    assert rgb[20, 20][2] > 180 and rgb[20, 20][1] < 80  # the screen is gone: blue background shows


def test_render_webm_export_beside_the_mp4(more_clips: dict[str, Path], tmp_path: Path) -> None:
    if not _has_encoder("libvpx-vp9"):
        pytest.skip("this ffmpeg has no libvpx-vp9")
    tl = T.build_timeline([_si(more_clips["blue"])], width=320, height=180, fps=FPS)
    out, webm = tmp_path / "o.mp4", tmp_path / "o.webm"
    _render(tl, out, preset="ultrafast", webm_path=webm)
    w = probe(webm, count_frames=True)
    assert w.video and w.audio and (w.video.codec, w.audio.codec) == ("vp9", "opus")
    assert w.video.frames == 30 and (w.video.width, w.video.height) == (320, 180)


def _uniform(path: Path, colour: str, *, size: str = "320x180", gop: int = 15) -> Path:
    opts = E.LIBX264.output_options(gop=gop, crf=23, maxrate_kbps=1000, preset="ultrafast")
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d=1,drawbox=c={colour}:t=fill:w=40:h=40", "-f", "lavfi",
            "-i", "sine=f=440:r=48000:d=1"]
    for k, v in opts.items():
        args += [f"-{k}", str(v)]
    return _make(path, *args, "-c:a", "aac", "-shortest")


def test_stream_copy_when_scenes_already_match(tmp_path: Path, encodes: list[list[str]]) -> None:
    a, b = _uniform(tmp_path / "a.mp4", "red"), _uniform(tmp_path / "b.mp4", "blue")
    scenes = [_si(a), _si(b)]
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS)
    structures = [stream_structure(p) for p in (a, b)]
    assert structures[0].gop_frames <= 15 and structures[0].closed_gop and structures[0].max_b_frames <= 2
    assert T.stream_copy_blockers(tl, scenes, structures) == []
    tl = replace(tl, copy_video=True)
    video = A.build_copy_video_argv(tl, tmp_path / "video.mp4", work_dir=tmp_path)
    assert _video_encoders(video) == ["copy"] and "libx264" not in video
    assert video[video.index("-f") + 1] == "concat"
    with pytest.raises(InputError):
        A.build_video_argv(tl, tmp_path / "video.mp4")  # nothing to encode
    mux = A.build_mux_argv(tl, tmp_path / "o.mp4", audio_m4a=tmp_path / "audio.m4a", work_dir=tmp_path)
    assert _video_encoders(mux) == [] and _arg(mux, "-c") == "copy" and "h264_metadata" in _arg(mux, "-bsf:v")
    assert A.describe_encode(tl)["encoder"] == "copy" and A.describe_encode(tl)["passes"] == 0
    out = tmp_path / "copy.mp4"
    done = A.assemble(tl, out)
    assert done.encoder is None and done.timeline.copy_video
    assert _video_encodes(encodes) == []  # no video encode at all: the scenes' H.264 is copied
    info = probe(out)
    _check_youtube_basics(info, out, width=320, height=180, frames=60)
    assert stream_structure(out).frames == 60
    _loudness_ok(out)


def test_stream_copy_refused_with_reasons(tmp_path: Path, more_clips: dict[str, Path]) -> None:
    a, big = _uniform(tmp_path / "a.mp4", "red"), _uniform(tmp_path / "big.mp4", "red", size="640x360")
    longgop = _uniform(tmp_path / "g.mp4", "red", gop=30)
    scenes = [_si(a), _si(big), _si(longgop)]
    tl = T.build_timeline(scenes, width=320, height=180, fps=FPS, captions_ass="x")
    reasons = T.stream_copy_blockers(tl, scenes, [stream_structure(s.path) for s in scenes])
    text = " | ".join(reasons)
    assert "captions" in text and "640x360" in text and "GOP of 30" in text


def test_render_failure_message_carries_ffmpeg_stderr(infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    tl = T.build_timeline([T.SceneInput(broken, infos["c30.mp4"])], width=320, height=180, fps=FPS)
    with pytest.raises(MediaError) as err:
        _render(tl, tmp_path / "x.mp4")
    msg = err.value.message
    assert "ffmpeg exit" in msg and "broken.mp4 is truncated or corrupt" in msg and "@ 0x" not in msg, msg


def test_render_60fps_portrait_1080x1920(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    scenes = _scenes(clips, infos, "c24_43.mp4")  # 1 s
    tl = T.build_timeline(scenes, width=1080, height=1920, fps=60, fit="blur")
    out = tmp_path / "short.mp4"
    info = _render(tl, out, preset="ultrafast")
    v = info.video
    assert v is not None and (v.width, v.height, v.fps) == (1080, 1920, 60.0)
    st = stream_structure(out)
    assert st.frames == 60 and st.gop_frames <= 30 and st.closed_gop


# --------------------------------------------------------------------------- the split pipeline (assemble)


def test_split_argvs_are_one_video_encode_one_audio_encode_and_a_copy() -> None:
    tl = _everything()
    video = A.build_video_argv(tl, Path("/t/video.mp4"), work_dir=Path("/t"))
    assert _video_encoders(video) == ["libx264"] and "-c:a" not in video
    assert "/w/n.wav" not in video and "/w/music.mp3" not in video  # no audio input in the video half
    assert "-an" not in video and video.count("-map") == 1
    audio = A.build_audio_argv(tl, Path("/t/audio.m4a"))
    assert "-c:v" not in audio and _arg(audio, "-c:a") == "aac" and _arg(audio, "-b:a") == "384k"
    assert _arg(audio, "-aac_coder") == "fast" and _arg(audio, "-aac_ms") == "0"
    assert "sidechaincompress" in _graph(audio) and "xfade" not in _graph(audio)
    mux = A.build_mux_argv(tl, Path("/w/o.mp4"), audio_m4a=Path("/t/audio.m4a"), video=Path("/t/video.mp4"))
    assert _arg(mux, "-c") == "copy" and "-filter_complex" not in mux and _arg(mux, "-movflags") == "+faststart"
    copy = A.build_copy_video_argv(replace(tl, copy_video=True), Path("/t/video.mp4"), work_dir=Path("/t"))
    assert copy[:2] == ["-f", "concat"] and _arg(copy, "-c:v") == "copy" and "h264_metadata" in _arg(copy, "-bsf:v")


def test_assemble_keeps_sound_in_sync_through_the_remux(more_clips: dict[str, Path], tmp_path: Path) -> None:
    # red (silent) 1 s, then blue with a 500 Hz tone: the tone must start at 1.0 s, within a
    # frame, after the audio went through its own AAC file and a stream-copy mux.
    tl = T.build_timeline([_si(more_clips["red"]), _si(more_clips["blue"])], width=320, height=180, fps=FPS,
                          narration=T.NarrationInput(more_clips["voice"], 4.0), tail_s=0.0)
    out = tmp_path / "split.mp4"
    progress: list[float] = []
    done = A.assemble(tl, out, preset="ultrafast", on_progress=progress.append)
    assert done.encoder == E.LIBX264 and done.timeline.levels is not None
    info = probe(out)
    _check_youtube_basics(info, out, width=320, height=180, frames=tl.total_frames)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    x = _samples(out)
    window = 480  # 10 ms
    levels = [_tone_level_db(x, 500, i * window / 48000, (i + 1) * window / 48000) for i in range(len(x) // window)]
    onset = next(i for i, db in enumerate(levels) if db > -40) * window / 48000
    assert abs(onset - 1.0) <= FRAME_S, onset
    loud = M.measure_loudness(out)
    assert abs(loud.integrated_lufs - done.audio_loudness.integrated_lufs) < 0.05  # the measured stream is the file's
    _loudness_ok(out)


def test_assemble_cancel_leaves_nothing(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    # Long enough (8 s at 1080p, medium) never to finish before the cancel lands.
    tl = T.build_timeline(_scenes(clips, infos, *(["c30.mp4"] * 4)), width=1920, height=1080, fps=FPS)
    cancel = threading.Event()
    out = tmp_path / "c.mp4.part"
    seen_partial: list[bool] = []

    def progress(fraction: float) -> None:
        if not cancel.is_set():
            seen_partial.append(any(tmp_path.glob(".c.mp4.part.*.work/chunks/.chunk-*/seg*.mp4")))
            cancel.set()

    with pytest.raises(OperationCancelled):
        A.assemble(tl, out, cancel=cancel, on_progress=progress, preset="medium")
    assert seen_partial == [True]  # there was a partial encode to remove
    assert list(tmp_path.iterdir()) == []  # neither the result nor the work folder is left


def test_silent_aac_track_is_found_from_packets(more_clips: dict[str, Path], tmp_path: Path) -> None:
    silent = _make(tmp_path / "silent.mp4", "-f", "lavfi", "-i", "color=c=red:s=64x64:r=30:d=1", "-f", "lavfi", "-i",
                   "anullsrc=r=48000:cl=stereo", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a",
                   "384k", "-t", "1")
    assert T.silent_aac_track(silent)
    assert not T.silent_aac_track(more_clips["blue"])  # a tone
    assert not T.silent_aac_track(more_clips["red"])  # no audio at all
    info = probe(silent)
    tl = T.build_timeline([T.SceneInput(silent, info, silent_audio=True)], width=320, height=180, fps=FPS)
    assert not tl.scenes[0].has_audio and "silent.mp4" not in A.build_audio_argv(tl, Path("a.m4a"))
