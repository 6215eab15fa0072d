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


def _scene(name: str, duration_s: float, **kw: object) -> A.SceneInput:
    return A.SceneInput(Path(name), _fake_info(name, duration_s, **kw))  # type: ignore[arg-type]


def _arg(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} appears {argv.count(flag)} times"
    return argv[argv.index(flag) + 1]


def _graph(argv: list[str]) -> str:
    return _arg(argv, "-filter_complex")


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


def _scenes(clips: dict[str, Path], infos: dict[str, MediaInfo], *names: str) -> list[A.SceneInput]:
    return [A.SceneInput(clips[n], infos[n]) for n in names]


def _narration(clips: dict[str, Path], infos: dict[str, MediaInfo], name: str) -> A.NarrationInput:
    return A.NarrationInput(clips[name], infos[name].duration_s)


# --------------------------------------------------------------------------- timeline (pure)


def test_build_timeline_snaps_durations_to_frame_grid() -> None:
    tl = A.build_timeline([_scene("a.mp4", 1.99), _scene("b.mp4", 1.0), _scene("c.mp4", 0.25)],
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
    tl = A.build_timeline([_scene(f"{i}.mp4", 1.01) for i in range(7)], width=640, height=360, fps=30)
    for prev, cur in zip(tl.scenes, tl.scenes[1:]):
        assert prev.start_ms + prev.duration_ms == cur.start_ms
    last = tl.scenes[-1]
    assert last.start_ms + last.duration_ms == tl.duration_ms == round(tl.total_frames * 1000 / 30)


def test_build_timeline_holds_last_frame_when_narration_longer() -> None:
    tl = A.build_timeline([_scene("a.mp4", 1.0), _scene("b.mp4", 1.0)], width=320, height=180, fps=30,
                          narration=A.NarrationInput(Path("n.wav"), 3.2))
    assert tl.scene_frames == 60
    assert tl.total_frames == 111  # ceil((3.2 + 0.5) * 30)
    assert tl.hold_frames == 51
    assert tl.hold_ms == 1700
    assert tl.duration_ms == 3700


def test_build_timeline_hold_covers_narration_end_with_custom_tail() -> None:
    tl = A.build_timeline([_scene("a.mp4", 1.0)], width=320, height=180, fps=30,
                          narration=A.NarrationInput(Path("n.wav"), 1.001), tail_s=0.0)
    assert tl.total_frames == 31  # never round the narration's end away
    assert tl.duration_s >= 1.001


def test_build_timeline_no_hold_when_narration_shorter() -> None:
    tl = A.build_timeline([_scene("a.mp4", 2.0), _scene("b.mp4", 1.5)], width=320, height=180, fps=30,
                          narration=A.NarrationInput(Path("n.wav"), 3.5))
    assert tl.hold_frames == 0 and tl.hold_ms == 0
    assert tl.total_frames == 105 and tl.duration_ms == 3500


def test_build_timeline_records_scene_facts() -> None:
    tl = A.build_timeline([_scene("a.mp4", 1.0, audio=True, fps=60, w=1920, h=1080), _scene("b.mp4", 1.0)],
                          width=320, height=180, fps=30)
    assert [s.has_audio for s in tl.scenes] == [True, False]
    assert tl.scenes[0].source_fps == 60
    # untagged HD is read as BT.709, untagged SD as BT.601
    assert [s.color_matrix for s in tl.scenes] == ["bt709", "bt601"]


def test_build_timeline_rejects_no_scenes() -> None:
    with pytest.raises(InputError):
        A.build_timeline([], width=320, height=180, fps=30)


def test_build_timeline_rejects_scene_without_video_naming_it() -> None:
    with pytest.raises(InputError, match="music_only.m4a"):
        A.build_timeline([_scene("a.mp4", 1.0), _scene("music_only.m4a", 1.0, video=False, audio=True)],
                         width=320, height=180, fps=30)


@pytest.mark.parametrize("kw", [{"width": 321}, {"height": 0}, {"fps": 0}, {"fps": 29.97}])
def test_build_timeline_rejects_bad_output_format(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"width": 320, "height": 180, "fps": 30, **kw}
    with pytest.raises(InputError):
        A.build_timeline([_scene("a.mp4", 1.0)], **args)  # type: ignore[arg-type]


def test_build_timeline_rejects_scene_shorter_than_a_frame() -> None:
    with pytest.raises(InputError, match="tiny.mp4"):
        A.build_timeline([_scene("tiny.mp4", 0.01)], width=320, height=180, fps=30)


# --------------------------------------------------------------------------- argv (pure)


def _two_scene_job(**kw: object) -> A.Timeline:
    return A.build_timeline(
        [_scene("/w/s1.mp4", 1.0, fps=24), _scene("/w/s2.mp4", 1.5, fps=60)],
        width=320, height=180, fps=30, narration=A.NarrationInput(Path("/w/narration.wav"), 3.2),
        **kw,  # type: ignore[arg-type]
    )


def test_build_argv_is_one_encode_with_youtube_settings() -> None:
    tl = _two_scene_job()
    argv = A.build_argv(tl, Path("/w/final.mp4.part"))
    assert argv.count("-filter_complex") == 1
    assert argv.count("-c:v") == 1 and argv.count("libx264") == 1
    assert _arg(argv, "-c:v") == "libx264"
    assert _arg(argv, "-profile:v") == "high"
    assert _arg(argv, "-pix_fmt") == "yuv420p"
    assert _arg(argv, "-preset") == "veryfast" and _arg(argv, "-crf") == "20"
    assert _arg(argv, "-g") == "15"
    assert _arg(argv, "-bf") == "2"
    assert "open-gop=0" in _arg(argv, "-x264-params")
    assert _arg(argv, "-movflags") == "+faststart"
    assert _arg(argv, "-r") == "30"
    assert _arg(argv, "-frames:v") == str(tl.total_frames) == "111"
    for flag in ("-colorspace", "-color_primaries", "-color_trc"):
        assert _arg(argv, flag) == "bt709"
    audio = (_arg(argv, "-c:a"), _arg(argv, "-b:a"), _arg(argv, "-ar"), _arg(argv, "-ac"))
    assert audio == ("aac", "384k", "48000", "2")
    assert _arg(argv, "-f") == "mp4"
    assert argv[-1] == "/w/final.mp4.part"
    assert argv[0] != ffmpeg_exe() and "ffmpeg" not in argv[0]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-i"] == ["/w/s1.mp4", "/w/s2.mp4", "/w/narration.wav"]


def test_build_argv_gop_is_half_the_frame_rate() -> None:
    for fps, gop in ((30, "15"), (60, "30"), (24, "12"), (25, "12")):
        tl = A.build_timeline([_scene("a.mp4", 1.0)], width=320, height=180, fps=fps)
        assert _arg(A.build_argv(tl, Path("o.mp4")), "-g") == gop


def test_build_argv_graph_normalises_each_scene() -> None:
    g = _graph(A.build_argv(_two_scene_job(), Path("o.mp4")))
    assert g.count("setpts=PTS-STARTPTS") == 2
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


def test_build_argv_holds_last_frame_and_fits_audio() -> None:
    tl = _two_scene_job()
    g = _graph(A.build_argv(tl, Path("o.mp4")))
    assert "tpad=stop=36:stop_mode=clone" in g  # 75 scene frames + 36 = 111
    assert "aresample=48000" in g
    assert "aformat=channel_layouts=stereo:sample_fmts=fltp:sample_rates=48000" in g
    assert f"apad=whole_len={tl.audio_samples}" in g and f"atrim=end_sample={tl.audio_samples}" in g
    assert "anullsrc" not in " ".join(A.build_argv(tl, Path("o.mp4")))


def test_build_argv_without_narration_uses_silence_of_video_length() -> None:
    tl = A.build_timeline([_scene("a.mp4", 2.0)], width=320, height=180, fps=30)
    argv = A.build_argv(tl, Path("o.mp4"))
    assert "anullsrc=r=48000:cl=stereo" in argv
    g = _graph(argv)
    assert "atrim=end_sample=96000" in g
    assert "concat" not in g  # one scene needs no concat
    assert "tpad=stop=60:stop_mode=clone" in g and "tpad=stop=0" not in g


def test_build_argv_repeated_clip_is_two_inputs() -> None:
    tl = A.build_timeline([_scene("same.mp4", 1.0), _scene("same.mp4", 1.0)], width=320, height=180, fps=30)
    argv = A.build_argv(tl, Path("o.mp4"))
    assert argv.count("same.mp4") == 2
    assert "split" not in _graph(argv)


def test_build_argv_post_hooks_run_in_the_same_graph() -> None:
    tl = _two_scene_job(video_post=[A.FilterStep.of("drawbox", x=0, y=0, w=10, h=10)],
                        audio_post=[A.FilterStep.of("volume", "0.5")])
    argv = A.build_argv(tl, Path("o.mp4"))
    g = _graph(argv)
    assert g.index("concat") < g.index("drawbox") < g.index("setparams")
    assert g.index("aformat") < g.index("volume") < g.index("apad")
    assert argv.count("-c:v") == 1


def test_build_argv_threads() -> None:
    tl = _two_scene_job()
    assert "-threads" not in A.build_argv(tl, Path("o.mp4"))
    argv = A.build_argv(tl, Path("o.mp4"), threads=2)
    assert _arg(argv, "-threads") == "2" and _arg(argv, "-filter_complex_threads") == "2"


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


def test_render_heterogeneous_scenes(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    names = ["c24_43.mp4", "c60.mp4", "portrait.mp4", "anamorphic.mp4"]
    if "vp9.webm" in clips:
        names.append("vp9.webm")
    scenes = _scenes(clips, infos, *names)
    durations = [s.info.video.duration_s or s.info.duration_s for s in scenes]  # type: ignore[union-attr]
    expected = sum(A.frames_for(d, FPS) for d in durations)
    tl = A.build_timeline(scenes, width=320, height=180, fps=FPS)
    assert tl.total_frames == expected
    out = tmp_path / "final.mp4.part"
    progress: list[float] = []
    info = A.render(tl, out, on_progress=progress.append)
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
        scenes.append(A.SceneInput(path, info))
    tl = A.build_timeline(scenes, width=320, height=180, fps=FPS)
    assert [s.frames for s in tl.scenes] == [59, 31, 17, 29, 31]
    out = tmp_path / "grid.mp4.part"
    info = A.render(tl, out)
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
    tl = A.build_timeline(_scenes(clips, infos, "c30.mp4"), width=320, height=180, fps=FPS, narration=narration)
    assert tl.hold_frames > 0
    out = tmp_path / "held.mp4.part"
    info = A.render(tl, out)
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
    tl = A.build_timeline(_scenes(clips, infos, "c30.mp4", "c24_43.mp4"), width=320, height=180, fps=FPS,
                          narration=narration)
    assert tl.hold_frames == 0 and tl.total_frames == 90
    out = tmp_path / "short.mp4.part"
    info = A.render(tl, out)
    _check_youtube_basics(info, out, width=320, height=180, frames=90)
    assert info.duration_s == pytest.approx(3.0, abs=FRAME_S)
    frames = _frames(out)
    assert _changed_fraction(frames[-2], frames[-1]) > 0.001  # no hold: still moving at the end
    peaks = _audio_peaks(out, 0.1)
    assert all(p > 0.05 for p in peaks[1:9])
    assert all(p < 0.01 for p in peaks[12:])


@pytest.mark.slow
def test_render_1080p(clips: dict[str, Path], infos: dict[str, MediaInfo], tmp_path: Path) -> None:
    scenes = _scenes(clips, infos, "c24_43.mp4", "portrait.mp4")
    tl = A.build_timeline(scenes, width=1920, height=1080, fps=FPS)
    out = tmp_path / "hd.mp4.part"
    info = A.render(tl, out, preset="ultrafast")
    _check_youtube_basics(info, out, width=1920, height=1080, frames=60)


@pytest.mark.slow
def test_render_cancel_removes_partial_file(clips: dict[str, Path], infos: dict[str, MediaInfo],
                                            tmp_path: Path) -> None:
    # Long enough (10 s at 1080p) never to finish before the cancel lands.
    scenes = _scenes(clips, infos, *(["c30.mp4"] * 5))
    tl = A.build_timeline(scenes, width=1920, height=1080, fps=FPS)
    out = tmp_path / "cancelled.mp4.part"
    cancel = threading.Event()
    seen_file: list[bool] = []

    def progress(fraction: float) -> None:
        if not cancel.is_set():
            seen_file.append(out.exists())
            cancel.set()

    with pytest.raises(OperationCancelled):
        A.render(tl, out, on_progress=progress, cancel=cancel, preset="medium")
    assert seen_file == [True]  # there was a partial file to remove
    assert not out.exists()


def test_render_failure_raises_media_error_and_leaves_nothing(clips: dict[str, Path], infos: dict[str, MediaInfo],
                                                               tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    scenes = [A.SceneInput(broken, infos["c30.mp4"])]
    tl = A.build_timeline(scenes, width=320, height=180, fps=FPS)
    out = tmp_path / "failed.mp4.part"
    out.write_bytes(b"stale")
    with pytest.raises(MediaError):
        A.render(tl, out)
    assert not out.exists()
