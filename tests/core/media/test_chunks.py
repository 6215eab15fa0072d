"""Chunked rendering (core.media.chunks): the plan and keys without ffmpeg; small real renders, decoded.

Every render here is 320x180, 1 s scenes. The renders are checked by decoding the files
(frame counts, the MD5 of each decoded picture, PSNR against a single-pass render of the
same timeline), never by what the code says it did.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from core.assets.atomic import file_sha256
from core.errors import MediaError
from core.media import assembly as A
from core.media import chunks as C
from core.media import timeline as T
from core.media import videograph as VG
from core.media.captions import CaptionLayout, Cue, build_ass
from core.media.encoders import LIBX264
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe

FPS = 30


# --------------------------------------------------------------------------- helpers


def _fake(name: str, seconds: float) -> T.SceneInput:
    from tests.core.media.test_assembly import _fake_info

    return T.SceneInput(Path(name), _fake_info(name, seconds, w=320, h=180))


def _ass(*cues: tuple[float, float, str], width: int = 320, height: int = 180) -> str:
    return build_ass([Cue(round(a * 1000), round(b * 1000), (text,)) for a, b, text in cues],
                     CaptionLayout.for_size(width, height))


def _md5s(path: Path) -> list[str]:
    """The MD5 of every decoded picture (all planes), in order."""
    with av.open(str(path)) as c:
        return [hashlib.md5(b"".join(bytes(p) for p in f.planes)).hexdigest() for f in c.decode(video=0)]


def _pictures(path: Path) -> list[np.ndarray]:
    """Every decoded frame as RGB (luma alone cannot tell red from ffmpeg's green)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.float64) for f in c.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1 s clips, each unlike the others (moving test patterns, solid colours), and one with sound."""
    d = tmp_path_factory.mktemp("chunk_sources")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "2"]
    specs = {
        "t1": ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1"],
        "t2": ["-f", "lavfi", "-i", "testsrc=s=480x270:r=24:d=1"],
        "red": ["-f", "lavfi", "-i", "color=c=red:s=320x180:r=30:d=1"],
        "blue": ["-f", "lavfi", "-i", "color=c=blue:s=180x320:r=30:d=1"],
        "t3": ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=60:d=1,hue=h=90"],
        "t4": ["-f", "lavfi", "-i", "smptebars=s=320x180:r=25:d=1", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1",
               "-c:a", "aac"],
        "green": ["-f", "lavfi", "-i", "color=c=green:s=320x180:r=30:d=1"],
        "music": ["-f", "lavfi", "-i", "sine=f=220:r=48000:d=8", "-c:a", "aac"],
    }
    out = {}
    for name, args in specs.items():
        path = d / (f"{name}.m4a" if name == "music" else f"{name}.mp4")
        run_ffmpeg([*args, *([] if name == "music" else x264), str(path)], timeout_s=60, what=f"make {name}")
        out[name] = path
    from PIL import Image

    Image.new("RGBA", (40, 24), (255, 255, 0, 200)).save(d / "wm.png")
    out["wm"] = d / "wm.png"
    return out


def _video(tmp: Path, sources: dict[str, Path], names: list[str]) -> list[Path]:
    """The scenes as files of their own (an edit overwrites one), like a video's scenes/ folder."""
    folder = tmp / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        p = folder / f"scene_{i + 1:03d}.mp4"
        shutil.copyfile(sources[name], p)
        paths.append(p)
    return paths


def _timeline(scenes: list[Path], **kw: object) -> T.Timeline:
    return T.build_timeline([T.SceneInput(p, probe(p)) for p in scenes], width=320, height=180, fps=FPS,
                            **kw)  # type: ignore[arg-type]


NAMES = ["t1", "t2", "red", "t3", "t4", "blue"]
CAPTIONS = ((0.2, 1.5, "across the first cut"), (2.9, 3.4, "at a cut"), (4.0, 5.9, "near the end"))


# --------------------------------------------------------------------------- plan (pure)


def test_plan_segments_one_per_scene_cut_after_each_crossfade() -> None:
    cuts = T.build_timeline([_fake(f"/s{i}.mp4", 1.0) for i in range(4)], width=320, height=180, fps=FPS)
    segs = C.plan_segments(cuts)
    assert [(s.start_frame, s.frames, s.first_scene, s.last_scene) for s in segs] == [
        (0, 30, 0, 0), (30, 30, 1, 1), (60, 30, 2, 2), (90, 30, 3, 3)]
    fades = T.build_timeline([_fake(f"/s{i}.mp4", 1.0) for i in range(4)], width=320, height=180, fps=FPS,
                             crossfade_s=0.2, narration=T.NarrationInput(Path("/n.wav"), 4.0))
    segs = C.plan_segments(fades)
    # each crossfade lies inside one segment, with both its scenes; the last carries the held frames
    assert [(s.start_frame, s.end_frame, s.first_scene, s.last_scene) for s in segs] == [
        (0, 30, 0, 1), (30, 54, 1, 2), (54, 78, 2, 3), (78, fades.total_frames, 3, 3)]
    assert fades.hold_frames > 0 and sum(s.frames for s in segs) == fades.total_frames
    for k, scene in enumerate(fades.scenes[1:], 1):
        fade = range(scene.start_frame, scene.start_frame + scene.overlap_frames)
        assert any(s.start_frame <= fade[0] and fade[-1] < s.end_frame for s in segs), k


def test_plan_chunks_neighbours_bounded_and_one_per_worker() -> None:
    tl = T.build_timeline([_fake(f"/s{i}.mp4", 1.0) for i in range(12)], width=320, height=180, fps=FPS)
    segs = C.plan_segments(tl)
    chunks = C.plan_chunks(segs, range(12), max_scenes=4, workers=2)
    assert [i for c in chunks for i in c] == list(range(12))  # every segment once, in order
    assert all(len(c) <= 4 and c == list(range(c[0], c[-1] + 1)) for c in chunks)
    assert C.plan_chunks(segs, range(6), max_scenes=4, workers=2) == [[0, 1, 2], [3, 4, 5]]
    # what is left after reuse: runs of neighbours never joined across a gap
    assert C.plan_chunks(segs, [2, 7, 8], max_scenes=4, workers=2) == [[2], [7, 8]]
    assert C.plan_chunks(segs, [], max_scenes=4, workers=2) == []


def test_chunk_workers_fill_the_cores_as_far_as_memory_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    def size(w: int, h: int) -> T.Timeline:
        return T.build_timeline([_fake("/a.mp4", 1.0)], width=w, height=h, fps=FPS)

    monkeypatch.setattr(C, "DEFAULT_WORKERS", 2)
    assert [C.chunk_workers(size(w, h)) for w, h in ((1920, 1080), (1080, 1920), (3840, 2160), (1280, 720))] == [
        2, 2, 1, 2]
    monkeypatch.setattr(C, "DEFAULT_WORKERS", 16)
    assert C.chunk_workers(size(1920, 1080)) == 2 and C.chunk_workers(size(1280, 720)) == 4
    monkeypatch.setattr(C, "DEFAULT_WORKERS", 1)
    assert C.chunk_workers(size(1280, 720)) == 1


def test_slice_ass_keeps_only_events_shown() -> None:
    ass = _ass((0.0, 1.0, "one"), (1.0, 2.5, "two"), (3.0, 4.0, "three"))
    assert C.slice_ass(ass, 1.0, 2.0).count("Dialogue:") == 1 and "two" in C.slice_ass(ass, 1.0, 2.0)
    assert C.slice_ass(ass, 2.5, 3.0) is None  # nothing shows: no captions filter at all
    both = C.slice_ass(ass, 0.5, 1.5)
    assert both is not None and "one" in both and "two" in both and "[V4+ Styles]" in both
    assert C.slice_ass(None, 0, 9) is None


def _keys(tl: T.Timeline, settings: C.EncodeSettings | None = None) -> list[str]:
    return C.segment_keys(tl, C.plan_segments(tl), settings or C.EncodeSettings(), lambda p: f"hash of {p}")


def test_segment_keys_change_only_where_the_frames_change(tmp_path: Path) -> None:
    scenes = [_fake(f"/s{i}.mp4", 1.0) for i in range(5)]
    base = T.build_timeline(scenes, width=320, height=180, fps=FPS, captions_ass=_ass((1.2, 1.8, "hello")),
                            narration=T.NarrationInput(Path("/n.wav"), 5.0))
    k0 = _keys(base)
    assert len(set(k0)) == 5  # every segment its own key
    # a scene replaced: its segment only (cuts)
    edited = T.build_timeline([*scenes[:3], _fake("/other.mp4", 1.0), scenes[4]], width=320, height=180, fps=FPS,
                              captions_ass=base.captions_ass, narration=base.narration)
    assert [a == b for a, b in zip(k0, _keys(edited), strict=True)] == [True, True, True, False, True]
    # the audio (narration, music, levels) is not in any key
    music = replace(base, music=T.MusicInput(Path("/m.m4a"), 30.0), narration=T.NarrationInput(Path("/x.wav"), 5.0),
                    levels=T.AudioLevels(narration_db=3.0, music_db=-9.0, scene_db=(None,) * 5, final_db=1.0,
                                         limiter=False))
    assert _keys(music) == k0
    # a caption moved within scene 2: that segment only
    moved = replace(base, captions_ass=_ass((1.3, 1.8, "hello")))
    assert [a == b for a, b in zip(k0, _keys(moved), strict=True)] == [True, False, True, True, True]
    # what every frame shows: all of them
    assert not set(_keys(replace(base, watermark=T.Watermark(Path("/wm.png"))))) & set(k0)
    assert not set(_keys(base, C.EncodeSettings(crf=23))) & set(k0)
    assert not set(_keys(replace(base, fit="cover"))) & set(k0)
    # a crossfade: the edited scene's segment and the one that fades into it
    fades = T.build_timeline(scenes, width=320, height=180, fps=FPS, crossfade_s=0.2)
    fades2 = T.build_timeline([*scenes[:3], _fake("/other.mp4", 1.0), scenes[4]], width=320, height=180, fps=FPS,
                              crossfade_s=0.2)
    assert [a == b for a, b in zip(_keys(fades), _keys(fades2), strict=True)] == [True, True, False, False, True]


def test_chunk_job_crosses_a_process_as_json(tmp_path: Path) -> None:
    bg = T.SceneInput(Path("/w/bg.mp4"), _fake("/w/bg.mp4", 3.0).info)
    pres = T.SceneInput(Path("/w/p.mp4"), _fake("/w/p.mp4", 2.0).info, background=bg, chroma=T.ChromaKey())
    tl = T.build_timeline([_fake("/w/a.mp4", 1.0), pres, _fake("/w/c.mp4", 1.0)], width=320, height=180, fps=FPS,
                          watermark=T.Watermark(Path("/w/wm.png")), captions_ass=_ass((0.5, 2.5, "hi")),
                          crossfade_s=0.2, fit="blur")
    segs = C.plan_segments(tl)
    keys = _keys(tl)
    job = C.chunk_job(tl, segs, [1, 2], keys, C.EncodeSettings(), 2)
    import json

    again = C.ChunkJob.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job
    assert C.build_chunk_argv(again, tmp_path / "seg%d.mp4", tmp_path) == C.build_chunk_argv(
        job, tmp_path / "seg%d.mp4", tmp_path)
    # the chunk's own timeline: its scenes from frame 0, the part shown before it skipped, its frames only
    assert job.timeline.scenes[0].start_frame == 0 and job.timeline.scenes[0].path == Path("/w/p.mp4")
    assert job.skip_frames == tl.scenes[1].overlap_frames > 0  # scene 2's fade-in is the chunk before's
    assert job.frames == segs[1].frames + segs[2].frames == job.timeline.total_frames
    assert job.offset_frames == segs[1].start_frame


def test_content_hashes_read_a_file_again_only_when_it_changed(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []

    def counting(path: Path) -> str:
        reads.append(path)
        return file_sha256(path)

    monkeypatch.setattr(C, "file_sha256", counting)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"scene one")
    b.write_bytes(b"scene two")
    cache = tmp_path / ".chunks"
    cache.mkdir()
    first = C.ContentHashes(cache)
    ha, hb = first(a), first(b)
    assert ha == "sha256:" + file_sha256(a) and ha != hb and len(reads) == 2
    first.save()
    a.write_bytes(b"scene 0ne")  # the same size, other bytes
    again = C.ContentHashes(cache)
    assert again(b) == hb and len(reads) == 2  # remembered
    assert again(a) == "sha256:" + file_sha256(a) != ha and len(reads) == 3
    (cache / C.ContentHashes.FILE).write_text("not json")
    assert C.ContentHashes(cache)(b) == hb  # a damaged memo is only a slower render


# --------------------------------------------------------------------------- renders


def _single_pass(tl: T.Timeline, out: Path) -> Path:
    """The reference: the whole timeline as one graph, one encode (what assembly did before chunks)."""
    work = out.parent / "single_work"
    work.mkdir(exist_ok=True)
    VG.write_captions(tl, work)
    run_ffmpeg(A.build_video_argv(tl, out, preset="ultrafast", threads=2, work_dir=work), timeout_s=120,
               what="single pass")
    return out


def _assemble(tl: T.Timeline, out: Path, cache: Path | None, **kw: object) -> A.Assembled:
    return A.assemble(tl, out, preset="ultrafast", cache_dir=cache, **kw)  # type: ignore[arg-type]


def test_chunks_draw_what_one_pass_draws(sources: dict[str, Path], tmp_path: Path) -> None:
    """Crossfades, captions across chunk boundaries, the watermark and the held frame, chunk by chunk."""
    scenes = _video(tmp_path, sources, NAMES)
    tl = _timeline(scenes, crossfade_s=0.2, captions_ass=_ass(*CAPTIONS), watermark=T.Watermark(sources["wm"]),
                   narration=T.NarrationInput(sources["music"], 6.0), fit="blur")
    assert tl.hold_frames > 0
    ref = _pictures(_single_pass(tl, tmp_path / "single.mp4"))
    done = _assemble(tl, tmp_path / "chunked.mp4", None, chunk_scenes=2, workers=2)
    assert done.chunks >= 3 and done.segments_encoded == len(NAMES) and done.segments_reused == 0
    info = probe(tmp_path / "chunked.mp4", count_frames=True)
    assert info.video is not None and info.video.frames == tl.total_frames == len(ref)
    assert info.audio is not None and info.audio.duration_s == pytest.approx(tl.duration_s, abs=0.001)
    got = _pictures(tmp_path / "chunked.mp4")
    assert len(got) == len(ref)
    worst = min((_psnr(a, b), n) for n, (a, b) in enumerate(zip(ref, got, strict=True)))
    assert worst[0] > 30, worst  # encoder noise only: a frame misplaced or drawn wrong is far below
    # and the captions are there: a frame with a caption is unlike the same frame without one
    bare = _pictures(_single_pass(replace(tl, captions_ass=None), tmp_path / "bare.mp4"))
    for t in (1.0, 3.0, 5.0):  # the first crosses a chunk boundary (scenes 1-2), the second sits at a cut
        n = round(t * FPS)
        band = slice(round(0.6 * 180), 180)  # the captions' rows
        assert np.count_nonzero(np.abs(got[n][band] - bare[n][band]) > 48) > 150, t  # white text, black outline
        assert _psnr(got[n][band], ref[n][band]) > 30, t


def test_edit_reencodes_only_its_scene_and_keeps_the_rest_bit_identical(sources: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    scenes = _video(tmp_path, sources, NAMES)
    cache = tmp_path / "video" / ".chunks"
    kw = dict(captions_ass=_ass(*CAPTIONS), watermark=T.Watermark(sources["wm"]))
    tl = _timeline(scenes, **kw)
    first = _assemble(tl, tmp_path / "v1.mp4", cache, chunk_scenes=2)
    assert (first.segments_reused, first.segments_encoded) == (0, len(NAMES))
    assert len(list(cache.glob("*.mp4"))) == len(NAMES)
    before = _md5s(tmp_path / "v1.mp4")

    shutil.copyfile(sources["green"], scenes[3])  # scene 4 replaced
    tl2 = _timeline(scenes, **kw)
    second = _assemble(tl2, tmp_path / "v2.mp4", cache, chunk_scenes=2)
    assert (second.segments_reused, second.segments_encoded, second.chunks) == (len(NAMES) - 1, 1, 1)
    after = _md5s(tmp_path / "v2.mp4")
    assert len(after) == len(before) == tl2.total_frames
    edited = range(tl2.scenes[3].start_frame, tl2.scenes[3].end_frame)
    assert all(before[n] == after[n] for n in range(len(before)) if n not in edited)
    assert all(before[n] != after[n] for n in edited)
    assert probe(tmp_path / "v2.mp4", count_frames=True).video.frames == tl2.total_frames  # type: ignore[union-attr]
    # the cache holds the last render's segments only
    assert len(list(cache.glob("*.mp4"))) == len(NAMES)

    # the audio alone changed (music added, other levels): no video encoded, the picture identical
    tl3 = replace(tl2, music=T.MusicInput(sources["music"], 8.0))
    third = _assemble(tl3, tmp_path / "v3.mp4", cache, chunk_scenes=2)
    assert (third.segments_reused, third.segments_encoded, third.chunks) == (len(NAMES), 0, 0)
    assert _md5s(tmp_path / "v3.mp4") == after
    info = probe(tmp_path / "v3.mp4")
    assert info.audio is not None and info.audio.duration_s == pytest.approx(tl3.duration_s, abs=0.001)

    # captions changed: one added inside scene 2, the one across scenes 3 and 4 removed: those three only
    tl4 = replace(tl2, captions_ass=_ass(CAPTIONS[0], (1.4, 1.9, "a new caption"), CAPTIONS[2]))
    fourth = _assemble(tl4, tmp_path / "v4.mp4", cache, chunk_scenes=2)
    changed = {n for n, (a, b) in enumerate(zip(after, _md5s(tmp_path / "v4.mp4"), strict=True)) if a != b}
    assert (fourth.segments_reused, fourth.segments_encoded) == (len(NAMES) - 3, 3)
    assert changed and changed <= set(range(tl4.scenes[1].start_frame, tl4.scenes[3].end_frame))


def test_edit_with_crossfades_reencodes_the_neighbour_that_fades_in(sources: dict[str, Path], tmp_path: Path) -> None:
    scenes = _video(tmp_path, sources, NAMES)
    cache = tmp_path / ".chunks"
    tl = _timeline(scenes, crossfade_s=0.2)
    _assemble(tl, tmp_path / "v1.mp4", cache)
    before = _pictures(tmp_path / "v1.mp4")
    md5_before = _md5s(tmp_path / "v1.mp4")
    shutil.copyfile(sources["green"], scenes[2])
    tl2 = _timeline(scenes, crossfade_s=0.2)
    done = _assemble(tl2, tmp_path / "v2.mp4", cache)
    assert (done.segments_reused, done.segments_encoded) == (len(NAMES) - 2, 2)
    after, md5_after = _pictures(tmp_path / "v2.mp4"), _md5s(tmp_path / "v2.mp4")
    segs = C.plan_segments(tl2)
    redone = set(range(segs[1].start_frame, segs[2].end_frame))
    scene = set(range(tl2.scenes[2].start_frame, tl2.scenes[2].end_frame))
    assert all(md5_before[n] == md5_after[n] for n in range(len(before)) if n not in redone)
    assert all(_psnr(before[n], after[n]) > 30 for n in redone - scene)  # re-encoded, the same picture
    assert all(md5_before[n] != md5_after[n] for n in scene)
    alone = range(tl2.scenes[2].start_frame + tl2.scenes[2].overlap_frames, tl2.scenes[3].start_frame)
    assert all(_psnr(before[n], after[n]) < 20 for n in alone)  # red then, green now


def test_reuse_survives_nothing_but_a_finished_render(sources: dict[str, Path], tmp_path: Path) -> None:
    """A failed render leaves the cache as it was; a cached segment whose bytes are not a segment is never joined."""
    scenes = _video(tmp_path, sources, NAMES[:3])
    cache = tmp_path / ".chunks"
    tl = _timeline(scenes)
    _assemble(tl, tmp_path / "v1.mp4", cache)
    kept = sorted(p.name for p in cache.glob("*.mp4"))
    shutil.copyfile(sources["green"], scenes[1])
    bad = replace(_timeline(scenes), narration=T.NarrationInput(tmp_path / "missing.wav", 3.0))
    with pytest.raises(MediaError):
        _assemble(bad, tmp_path / "v2.mp4", cache)
    assert sorted(p.name for p in cache.glob("*.mp4")) == kept
    assert not (tmp_path / "v2.mp4").exists()


def test_chunk_segments_start_with_an_idr_and_share_headers(sources: dict[str, Path], tmp_path: Path) -> None:
    scenes = _video(tmp_path, sources, NAMES)
    tl = _timeline(scenes, crossfade_s=0.2)
    settings = C.EncodeSettings(LIBX264.name, "ultrafast", 20, 3000)
    done = C.render_segments(tl, tmp_path, settings=settings, workers=2, max_scenes=3)
    assert done.chunks == 2 and len(done.files) == len(NAMES)
    headers = set()
    for f, frames in zip(done.files, done.frames, strict=True):
        with av.open(str(f)) as c:
            s = c.streams.video[0]
            headers.add(bytes(s.codec_context.extradata))
            packets = [p for p in c.demux(s) if p.size]
        assert len(packets) == frames
        first = min(packets, key=lambda p: p.dts)  # type: ignore[arg-type, return-value]
        assert first.is_keyframe
    assert len(headers) == 1


def test_many_audio_sources_take_an_encode_s_place(sources: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With many sounding scenes the audio runs count as one of the encodes at once: memory stays flat."""
    import threading

    from core.media import mix as M

    running, most, lock = [0], [0], threading.Lock()

    def counting(args: list[str], **kw: object) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            run_ffmpeg(args, **kw)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    for module in (A, M, C):
        monkeypatch.setattr(module, "run_ffmpeg", counting)
    scenes = _video(tmp_path, sources, ["t4"] * (A.AUDIO_INPUTS_BESIDE_ENCODES + 1))
    tl = _timeline(scenes)
    assert A._audio_inputs(tl) > A.AUDIO_INPUTS_BESIDE_ENCODES
    done = _assemble(tl, tmp_path / "many.mp4", None, workers=2, chunk_scenes=2)
    assert done.chunks >= 2 and most[0] <= 2
    info = probe(tmp_path / "many.mp4", count_frames=True)
    assert info.video is not None and info.video.frames == tl.total_frames
