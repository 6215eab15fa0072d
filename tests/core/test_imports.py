"""import_asset as a service: files from an allowed root into a video's folder, probed and on the record.

Sources are made once per module (tiny, with ffmpeg and Pillow) in a folder that is the
only ``YTAP_IMPORT_ROOTS``; every result is checked by probing the stored file. Refusals
are checked on ``prepare`` (they reach the agent before any job starts) and, for a source
swapped mid-import, on the job itself.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from core.assets.props import NarrationProps, SceneProps
from core.config import Settings
from core.errors import AssetNotFound, ImportRefused, InputError, OperationCancelled, YtapError
from core.jobs import JobHandle
from core.media.ffmpeg import run_ffmpeg
from core.media.fonts import FONT_DIR
from core.media.probe import probe
from core.runtime import Runtime
from core.schemas import AssemblyRequest, ImportResult
from core.services import assembly, imports

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The allowed root, with one source of every kind and a few that are not what they claim."""
    from PIL import Image

    root = tmp_path_factory.mktemp("import_root").resolve()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24:d=1", "-f", "lavfi", "-i", "sine=f=440:r=44100:d=1",
                *X264, "-c:a", "aac", "-shortest", str(root / "clip720p24.mp4")])
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=330:r=44100:d=2", "-ac", "1", "-c:a", "libmp3lame", "-q:a", "5",
                str(root / "bed.mp3")])
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=220:r=22050:d=1.5", "-af", "tremolo=f=4:d=0.6", "-ac", "1",
                "-c:a", "aac", str(root / "voiceover.m4a")])
    Image.new("RGBA", (320, 200), (200, 30, 30, 128)).save(root / "Logo Mark.png")
    photo = Image.linear_gradient("L").resize((400, 300)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the camera held upright, the sensor read sideways
    photo.save(root / "phone.jpg", "JPEG", exif=exif.tobytes())
    photo.save(root / "card.webp", "WEBP")
    shutil.copy(FONT_DIR / "Inter-Bold.otf", root / "Inter-Bold.otf")
    (root / "notes.txt").write_text("a shopping list, not a video\n" * 20)
    (root / "fake.ttf").write_text("not a font at all")
    (root / "sub").mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, media: Path) -> Settings:
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(media),
                              "YTAP_X264_PRESET": "ultrafast"})


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.create(settings)
    yield runtime
    runtime.close()


def _request(source: str, kind: str, **kw: object) -> imports.ImportRequest:
    return imports.ImportRequest(workspace_id="default", video_id="imp", source=source,
                                 kind=kind, **kw)  # type: ignore[arg-type]


def _handle() -> JobHandle:
    return JobHandle(job_id="job_" + os.urandom(10).hex(), kind="import_asset")


def _import(rt: Runtime, source: str, kind: str, **kw: object) -> ImportResult:
    plan = imports.prepare(rt, _request(source, kind, **kw))
    return anyio.run(imports.import_asset, rt, plan, _handle())


def _hidden(rt: Runtime) -> list[str]:
    root = rt.paths("default", "imp").root
    return sorted(p.name for p in root.rglob(".*"))


# --- each kind -------------------------------------------------------------------------------


def test_import_clip_becomes_a_contract_scene(rt: Runtime, media: Path) -> None:
    result = _import(rt, "clip720p24.mp4", "scene", scene_index=2)

    info = probe(result.path, count_frames=True)
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.profile, v.pix_fmt, v.width, v.height, v.fps, v.frames) == \
        ("h264", "High", "yuv420p", 1920, 1080, 30.0, 30)
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 2)
    assert result.path.endswith("scenes/scene_002.mp4") and result.uri == "ytap://default/imp/scenes/scene_002.mp4"
    assert (result.kind, result.provider, result.scene_index, result.cost_usd) == ("scene", "user:import", 2, 0.0)
    assert (result.width, result.height, result.fps) == (1920, 1080, 30.0)
    assert result.duration_s == pytest.approx(1.0, abs=0.05)
    assert result.source == str(media / "clip720p24.mp4")
    assert any("1280x720" in n for n in result.notes) and any("24 to 30 fps" in n for n in result.notes)
    row = rt.registry.assets.current("default", "imp", "scene")[0]
    assert (row.provider, row.scene_index, row.props_of(SceneProps).source_video) == ("user:import", 2, "h264 1280x720 24 fps")
    assert [a.provider for a in rt.registry.assets.attempts_for(row.asset_id)] == ["user:import"]
    assert _hidden(rt) == []


def test_import_music_bed_is_a_48k_stereo_wav(rt: Runtime) -> None:
    result = _import(rt, "bed.mp3", "music")
    info = probe(result.path)
    assert info.audio is not None and info.video is None
    assert (info.format_name, info.audio.codec, info.audio.sample_rate, info.audio.channels) == \
        ("wav", "pcm_s16le", 48000, 2)
    assert info.duration_s == pytest.approx(2.0, abs=0.06)
    assert result.uri == "ytap://default/imp/audio/music.wav" and result.kind == "music"
    assert (result.sample_rate, result.channels) == (48000, 2)


def test_import_voiceover_becomes_narration_with_timings(rt: Runtime) -> None:
    result = _import(rt, str(rt.settings.import_roots[0] / "voiceover.m4a"), "narration",
                     transcript="Welcome back. Today we build a lighthouse.")
    info = probe(result.path)
    assert info.audio is not None and (info.audio.codec, info.audio.sample_rate, info.audio.channels) == \
        ("pcm_s16le", 48000, 2)
    assert result.uri == "ytap://default/imp/audio/narration.wav"
    [segment] = result.segments
    assert (segment.index, segment.start_s) == (1, 0.0)
    assert segment.end_s == pytest.approx(info.duration_s, abs=0.05)
    assert [w.text for w in segment.words][:2] == ["Welcome", "back."] and segment.words[-1].end_s == segment.end_s
    srt = Path(result.srt_path or "").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "lighthouse." in srt
    row = rt.registry.assets.current("default", "imp", "narration")[0]
    assert row.props_of(NarrationProps).segments[0].text == "Welcome back. Today we build a lighthouse."


def test_import_voiceover_without_transcript_has_one_segment_and_no_captions(rt: Runtime) -> None:
    result = _import(rt, "voiceover.m4a", "narration")
    [segment] = result.segments
    assert (segment.text, segment.words, segment.start_s) == ("", [], 0.0) and segment.end_s > 1.4
    assert Path(result.srt_path or "").read_text() == ""
    assert any("no captions" in n for n in result.notes)


def test_import_images_are_kept_or_made_upright(rt: Runtime, media: Path) -> None:
    from PIL import Image

    png = _import(rt, "Logo Mark.png", "image")
    assert png.uri == "ytap://default/imp/images/logo-mark.png" and png.kind == "image"
    assert Path(png.path).read_bytes() == (media / "Logo Mark.png").read_bytes()  # byte for byte, alpha kept
    assert (png.width, png.height) == (320, 200)

    photo = _import(rt, "phone.jpg", "image")
    with Image.open(photo.path) as im:
        assert (im.format, im.size) == ("JPEG", (300, 400))  # turned upright: the EXIF rotation applied
    assert any("upright" in n for n in photo.notes)

    webp = _import(rt, "card.webp", "image")
    assert webp.path.endswith("images/card.jpg") and any("WEBP" in n for n in webp.notes)
    assert probe(webp.path).video.codec == "mjpeg"


def test_import_font_is_kept_once_pillow_draws_with_it(rt: Runtime, media: Path) -> None:
    result = _import(rt, "Inter-Bold.otf", "font")
    assert result.uri == "ytap://default/imp/fonts/inter-bold.otf" and result.font_name == "Inter Bold"
    assert Path(result.path).read_bytes() == (media / "Inter-Bold.otf").read_bytes()


# --- refusals ------------------------------------------------------------------------------------


def test_import_is_off_without_roots(tmp_path: Path, media: Path) -> None:
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home")}))
    try:
        with pytest.raises(ImportRefused, match="importing is off.*YTAP_IMPORT_ROOTS"):
            imports.prepare(rt, _request(str(media / "bed.mp3"), "music"))
    finally:
        rt.close()


def test_import_refuses_a_file_outside_the_roots(rt: Runtime, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.mp3"
    shutil.copy(rt.settings.import_roots[0] / "bed.mp3", outside)
    with pytest.raises(ImportRefused, match="is outside the folders import_asset may read.*YTAP_IMPORT_ROOTS"):
        imports.prepare(rt, _request(str(outside), "music"))
    with pytest.raises(ImportRefused, match="is outside"):  # not even whether it exists is told
        imports.prepare(rt, _request("/etc/no-such-file.mp3", "music"))


def test_import_refuses_a_symlink_leading_out(rt: Runtime, media: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=r=48000:d=0.5", str(outside)])
    link = media / "sub" / "innocent.wav"
    link.symlink_to(outside)
    try:
        with pytest.raises(ImportRefused, match="symbolic link that leads outside"):
            imports.prepare(rt, _request("sub/innocent.wav", "music"))
        (media / "sub" / "up").symlink_to(tmp_path)  # a linked folder, not only a linked file
        with pytest.raises(ImportRefused, match="symbolic link that leads outside"):
            imports.prepare(rt, _request("sub/up/secret.wav", "music"))
    finally:
        link.unlink()
        (media / "sub" / "up").unlink(missing_ok=True)


@pytest.mark.parametrize("source", ["sub/../bed.mp3", "{root}/../{root_name}/bed.mp3", "..", "file:///etc/passwd",
                                    "http://example.com/a.mp3", "bed\x00.mp3", ""])
def test_import_refuses_dot_dot_urls_and_odd_paths(rt: Runtime, media: Path, source: str) -> None:
    source = source.format(root=media, root_name=media.name)
    with pytest.raises(ImportRefused):
        imports.prepare(rt, _request(source, "music"))


@pytest.mark.parametrize(
    ("source", "kind", "error", "words"),
    [
        ("notes.txt", "scene", InputError, "not a video or audio file"),  # ffmpeg would read it as ANSI art
        ("notes.txt", "music", InputError, "not a video or audio file"),
        ("Logo Mark.png", "scene", InputError, "still image"),
        ("bed.mp3", "scene", InputError, "no video stream"),
        ("Logo Mark.png", "music", InputError, "no audio stream"),
        ("notes.txt", "image", InputError, "not an image"),
        ("fake.ttf", "font", InputError, "not a font"),
        ("bed.mp3", "font", InputError, "not a font"),
        ("no-such.mp3", "music", AssetNotFound, "does not exist"),
        ("sub", "music", ImportRefused, "not a regular file"),
    ],
)
def test_import_refuses_the_wrong_type(rt: Runtime, source: str, kind: str, error: type[YtapError],
                                      words: str) -> None:
    with pytest.raises(error, match=words):
        imports.prepare(rt, _request(source, kind, scene_index=1 if kind == "scene" else None))


def test_import_refuses_what_is_too_large(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(imports.MAX_BYTES, "music", 1000)
    with pytest.raises(ImportRefused, match=r"bed.mp3 is .* MiB; an imported music is at most 0.0 MiB"):
        imports.prepare(rt, _request("bed.mp3", "music"))
    monkeypatch.setattr(imports, "MAX_VIDEO_SIDE_PX", 1000)
    with pytest.raises(ImportRefused, match="1280x720 px; an imported clip is at most 1000 px"):
        imports.prepare(rt, _request("clip720p24.mp4", "scene", scene_index=1))
    monkeypatch.setattr(imports, "MAX_IMAGE_SIDE_PX", 100)
    with pytest.raises(ImportRefused, match="320x200 px; an imported image is at most 100 px"):
        imports.prepare(rt, _request("Logo Mark.png", "image"))


def test_import_scene_index_rules(rt: Runtime) -> None:
    with pytest.raises(InputError, match="kind=scene needs a scene_index"):
        imports.prepare(rt, _request("clip720p24.mp4", "scene"))
    with pytest.raises(InputError, match="scene_index is only for kind=scene"):
        imports.prepare(rt, _request("bed.mp3", "music", scene_index=3))


def test_import_source_swapped_after_the_check_is_refused(rt: Runtime, media: Path, tmp_path: Path) -> None:
    victim = media / "sub" / "swap.mp3"
    shutil.copy(media / "bed.mp3", victim)
    plan = imports.prepare(rt, _request("sub/swap.mp3", "music"))
    outside = tmp_path / "outside.mp3"
    shutil.copy(media / "bed.mp3", outside)
    victim.unlink()
    victim.symlink_to(outside)  # swapped for a link out, between the check and the copy
    try:
        with pytest.raises(ImportRefused):
            anyio.run(imports.import_asset, rt, plan, _handle())
    finally:
        victim.unlink()
    assert not (rt.paths("default", "imp").audio_dir / "music.wav").exists() and _hidden(rt) == []


def test_import_cancelled_leaves_nothing(rt: Runtime) -> None:
    plan = imports.prepare(rt, _request("clip720p24.mp4", "scene", scene_index=1))
    handle = _handle()
    handle.cancel.set()
    with pytest.raises(OperationCancelled):
        anyio.run(imports.import_asset, rt, plan, handle)
    scenes = rt.paths("default", "imp").scenes_dir
    assert not any(scenes.iterdir()) and _hidden(rt) == []


# --- into a video ----------------------------------------------------------------------------------


def test_imported_clip_music_and_voiceover_assemble_into_a_video(rt: Runtime) -> None:
    _import(rt, "clip720p24.mp4", "scene", scene_index=1)
    _import(rt, "voiceover.m4a", "narration", transcript="Welcome back. Today we build a lighthouse.")
    music = _import(rt, "bed.mp3", "music")
    plan = assembly.prepare(rt, AssemblyRequest(video_id="imp", music=music.uri, height=720, hardware_encoder=False))
    result = anyio.run(assembly.assemble_video, rt, plan, JobHandle(job_id="job_" + "2" * 20, kind="assemble_video"))

    info = probe(result.path, count_frames=True)
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.width, v.height, v.fps, a.codec, a.sample_rate, a.channels) == \
        ("h264", 1280, 720, 30.0, "aac", 48000, 2)
    # The 1.5 s voiceover is longer than the 1 s clip: the last frame holds until it has been said.
    assert info.duration_s >= 1.5 and result.hold_s > 0
    assert result.scenes == ["ytap://default/imp/scenes/scene_001.mp4"]
    assert result.narration == "ytap://default/imp/audio/narration.wav" and result.music == music.uri
    assert result.captions_burned
