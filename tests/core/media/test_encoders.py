"""Encoder detection (a real trial encode, faked here: there is no GPU) and per-encoder options."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import MediaError
from core.media import assembly as A
from core.media import encoders as E
from core.media import timeline as T
from core.media.probe import MediaInfo, VideoStreamInfo


@pytest.fixture(autouse=True)
def _fresh_detection():
    E.reset_detection()
    yield
    E.reset_detection()


def _scene(name: str, duration_s: float = 1.0) -> T.SceneInput:
    v = VideoStreamInfo(codec="h264", profile="High", pix_fmt="yuv420p", width=320, height=180, fps=30.0,
                        frames=round(duration_s * 30), duration_s=duration_s, sar="1:1")
    return T.SceneInput(Path(name), MediaInfo(path=name, format_name="mp4", duration_s=duration_s, bytes=1, video=v))


def test_detect_hardware_keeps_only_encoders_whose_trial_succeeds() -> None:
    tried: list[str] = []

    def trial(enc: E.VideoEncoder) -> bool:
        tried.append(enc.name)
        return enc.name == "h264_nvenc"

    found = E.detect_hardware(trial)
    assert [e.name for e in found] == ["h264_nvenc"]
    assert set(tried) <= {e.name for e in E.HARDWARE_ENCODERS} and "h264_nvenc" in tried
    assert [e.name for e in E.encoder_chain(True)] == ["h264_nvenc", "libx264"]  # cached
    assert E.encoder_chain(False) == (E.LIBX264,)


def test_detect_hardware_here_finds_none_and_libx264_is_used() -> None:
    # This machine has no GPU: every listed hardware encoder fails its real trial.
    assert E.detect_hardware() == ()
    assert E.encoder_chain(True) == (E.LIBX264,)


def test_trial_encode_runs_ffmpeg_for_real() -> None:
    assert E.trial_encode(E.LIBX264) is True
    assert E.trial_encode(E.VideoEncoder("h264_nvenc", hardware=True)) is False


@pytest.mark.parametrize("enc", E.HARDWARE_ENCODERS, ids=lambda e: e.name)
def test_hardware_argv_is_one_encode_with_youtube_settings(enc: E.VideoEncoder) -> None:
    tl = T.build_timeline([_scene("/w/a.mp4")], width=1920, height=1080, fps=30)
    argv = A.build_video_argv(tl, Path("/w/video.mp4"), encoder=enc)
    assert argv.count("-c:v") == 1 and argv[argv.index("-c:v") + 1] == enc.name
    assert "libx264" not in argv
    assert argv[argv.index("-g") + 1] == "15" and argv[argv.index("-bf") + 1] == "2"
    assert argv[argv.index("-maxrate") + 1] == "8000k" and argv[argv.index("-profile:v") + 1] == "high"
    if enc.name == "h264_vaapi":
        assert argv[:2] == ["-vaapi_device", E.VAAPI_DEVICE]
        assert "hwupload" in argv[argv.index("-filter_complex") + 1]


def test_assemble_replaces_a_failing_hardware_encoder(tmp_path: Path) -> None:
    from core.media.ffmpeg import run_ffmpeg
    from core.media.probe import probe

    clip = tmp_path / "a.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1", "-c:v", "libx264", "-preset", "ultrafast",
                str(clip)])
    tl = T.build_timeline([T.SceneInput(clip, probe(clip))], width=320, height=180, fps=30)
    failures: list[A.EncoderFailure] = []
    nvenc = E.VideoEncoder("h264_nvenc", hardware=True)  # as if its trial had passed
    done = A.assemble(tl, tmp_path / "o.mp4", encoders=(nvenc, E.LIBX264), on_failure=failures.append,
                      preset="ultrafast")
    info = probe(tmp_path / "o.mp4", count_frames=True)
    assert done.encoder == E.LIBX264 and info.video is not None and info.video.frames == 30
    assert info.video.codec == "h264" and info.audio is not None
    assert [f.encoder for f in failures] == ["h264_nvenc"] and done.failures == tuple(failures)
    assert failures[0].reason  # ffmpeg's own words on why


def test_assemble_last_encoder_failure_is_raised(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    v = VideoStreamInfo(codec="h264", profile="High", pix_fmt="yuv420p", width=320, height=180, fps=30.0,
                        frames=30, duration_s=1.0, sar="1:1")
    # No audio stream: only the video half reads the broken file, so its error is the one raised.
    info = MediaInfo(path=str(broken), format_name="mp4", duration_s=1.0, bytes=1, video=v)
    tl = T.build_timeline([T.SceneInput(broken, info)], width=320, height=180, fps=30)
    failures: list[A.EncoderFailure] = []
    nvenc = E.VideoEncoder("h264_nvenc", hardware=True)
    with pytest.raises(MediaError) as err:
        A.assemble(tl, tmp_path / "o.mp4", encoders=(nvenc, E.LIBX264), on_failure=failures.append)
    assert "broken.mp4" in err.value.message or "Invalid data" in err.value.message
    assert [f.encoder for f in failures] == ["h264_nvenc"]  # the first fell back; the last one's error is raised
    assert list(tmp_path.iterdir()) == [broken]
