from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.assets import Registry, VideoPaths, atomic_target, atomic_write_text, parse_uri, sweep_partials, validate_id
from core.assets.props import SceneProps
from core.assets.atomic import staged
from core.assets.paths import ID_RE
from core.errors import InvalidIdentifier, PathOutsideWorkspace
from core.schemas import Attempt

HOSTILE_IDS = ["", "A", "-x", "_x", "a/b", "..", "a..", "../etc", "a b", "a\x00", "é", "x" * 65, "a.b", "a\\b", " a"]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_ids_hostile_shapes_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="a-z, 0-9"):
        validate_id("video_id", bad)


@given(st.text(max_size=80))
def test_ids_validate_accepts_exactly_the_contract_pattern(value: str) -> None:
    if ID_RE.fullmatch(value):
        assert validate_id("video_id", value) == value
    else:
        with pytest.raises(InvalidIdentifier):
            validate_id("video_id", value)


def test_paths_follow_the_contract_layout(tmp_path: Path) -> None:
    p = VideoPaths(tmp_path / "workspaces", "default", "my-video")
    root = tmp_path / "workspaces" / "default" / "videos" / "my-video"
    assert p.scene(3) == root / "scenes" / "scene_003.mp4"
    assert p.narration == root / "audio" / "narration.wav"
    assert p.narration_srt == root / "audio" / "narration.srt"
    assert p.thumbnail == root / "thumbnail.jpg"
    assert p.final_video == root / "final_video.mp4"
    assert p.manifest == root / "manifest.json"
    assert p.uri(p.scene(3)) == "ytap://default/my-video/scenes/scene_003.mp4"


@pytest.mark.parametrize(
    "ref",
    [
        "../other/final_video.mp4",
        "/etc/passwd",
        "scenes/../../other-video/final_video.mp4",
        "file:///etc/passwd",
        "ytap://default/other-video/final_video.mp4",
        "ytap://default/my-video/../../../etc/passwd",
        "ytap://default/my-video/%2e%2e/%2e%2e/secret",
        "ytap://default/my-video/scenes%2F..%2F..%2F..%2Fx",
        "http://example.com/a.mp4",
        "",
        "a\x00b",
    ],
)
def test_refs_outside_the_video_folder_refused(tmp_path: Path, ref: str) -> None:
    p = VideoPaths(tmp_path / "workspaces", "default", "my-video")
    p.ensure()
    with pytest.raises((PathOutsideWorkspace, InvalidIdentifier)):
        p.resolve_ref(ref)


def test_refs_symlink_escaping_the_folder_refused(tmp_path: Path) -> None:
    p = VideoPaths(tmp_path / "workspaces", "default", "my-video")
    p.ensure()
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    (p.scenes_dir / "scene_001.mp4").symlink_to(secret)
    with pytest.raises(PathOutsideWorkspace):
        p.resolve_ref("scenes/scene_001.mp4")


def test_refs_inside_the_folder_resolve(tmp_path: Path) -> None:
    p = VideoPaths(tmp_path / "workspaces", "default", "my-video")
    p.ensure()
    p.scene(1).write_bytes(b"x")
    assert p.resolve_ref("ytap://default/my-video/scenes/scene_001.mp4") == p.scene(1).resolve()
    assert p.resolve_ref("scenes/scene_001.mp4") == p.scene(1).resolve()
    assert p.resolve_ref(str(p.scene(1))) == p.scene(1).resolve()


def test_uri_parse_jobs_and_manifest() -> None:
    assert parse_uri("ytap://jobs/job_0123456789abcdef0123").job_id == "job_0123456789abcdef0123"
    m = parse_uri("ytap://default/v1/manifest")
    assert (m.workspace_id, m.video_id, m.relative) == ("default", "v1", "manifest")
    with pytest.raises(InvalidIdentifier):
        parse_uri("ytap://jobs/../../x")


def test_atomic_target_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "final_video.mp4"
    with pytest.raises(RuntimeError), atomic_target(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert os.listdir(tmp_path) == []


def test_atomic_target_success_replaces_in_one_step(tmp_path: Path) -> None:
    final = tmp_path / "thumbnail.jpg"
    final.write_bytes(b"old")
    with atomic_target(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.endswith(".part")
        tmp.write_bytes(b"new")
        assert final.read_bytes() == b"old"
    assert final.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["thumbnail.jpg"]


def test_sweep_partials_removes_dead_writers_leftovers_only(tmp_path: Path) -> None:
    dead = tmp_path / ".scene_001.999999999-0123abcd.mp4.part"  # no such pid
    dead.write_bytes(b"x")
    unrelated = tmp_path / "notes.part"
    unrelated.write_bytes(b"keep")
    assert sweep_partials(tmp_path) == 1
    assert not dead.exists() and unrelated.exists()


def _registry(tmp_path: Path) -> tuple[Registry, VideoPaths]:
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces")
    paths = VideoPaths(tmp_path / "workspaces", "default", "v1")
    paths.ensure()
    return reg, paths


def test_registry_add_asset_mirrors_manifest_with_attempts(tmp_path: Path) -> None:
    reg, paths = _registry(tmp_path)
    paths.scene(1).write_bytes(b"clip")
    attempts = [
        Attempt(provider="google:veo-3.1", outcome="skipped", reason="GOOGLE_API_KEY not set"),
        Attempt(provider="local:placeholder", outcome="succeeded", elapsed_s=1.2),
    ]
    row = reg.assets.add(paths, kind="scene", path=paths.scene(1), provider="local:placeholder", model="title-card",
                        cost_usd=0.0, props=SceneProps(duration_s=2.0), attempts=attempts, capability="video", scene_index=1)
    assert row.rel_path == "scenes/scene_001.mp4" and row.bytes == 4
    assert reg.assets.attempts_for(row.asset_id) == attempts
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["assets"][0]["uri"] == "ytap://default/v1/scenes/scene_001.mp4"
    assert [a["provider"] for a in manifest["assets"][0]["attempts"]] == ["google:veo-3.1", "local:placeholder"]


def test_registry_regenerating_a_slot_supersedes_the_old_asset(tmp_path: Path) -> None:
    reg, paths = _registry(tmp_path)
    paths.scene(1).write_bytes(b"a")
    first = reg.assets.add(paths, kind="scene", path=paths.scene(1), provider="p", model=None, cost_usd=0, props=SceneProps(),
                          attempts=[], capability="video", scene_index=1)
    second = reg.assets.add(paths, kind="scene", path=paths.scene(1), provider="p", model=None, cost_usd=0, props=SceneProps(),
                           attempts=[], capability="video", scene_index=1)
    current = reg.assets.current("default", "v1", "scene")
    assert [a.asset_id for a in current] == [second.asset_id] and first.asset_id != second.asset_id


def test_registry_failed_generation_attempts_recorded(tmp_path: Path) -> None:
    reg, paths = _registry(tmp_path)
    reg.assets.record_attempts(paths, capability="video", attempts=[
        Attempt(provider="x:y", outcome="failed", reason="503 from vendor", error_code="unavailable", cost_usd=0.1)])
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["failed_generations"][0]["reason"] == "503 from vendor"
    assert manifest["total_cost_usd"] == pytest.approx(0.1)


def test_registry_interrupted_jobs_reported_failed_after_restart(tmp_path: Path) -> None:
    reg, _ = _registry(tmp_path)
    reg.jobs.create("job_00000000000000000001", "generate_scene", "default", "v1")
    reg.jobs.update("job_00000000000000000001", status="running")
    with sqlite3.connect(tmp_path / "ytap.db") as db:  # as if a process long gone had owned it
        db.execute("UPDATE jobs SET owner_pid = 999999999")
    reg.close()
    reg2 = Registry(tmp_path / "ytap.db", tmp_path / "workspaces")
    assert reg2.jobs.mark_interrupted() == 1
    job = reg2.jobs.get("job_00000000000000000001")
    assert job.status == "failed" and job.error and job.error["code"] == "interrupted"


def test_registry_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    reg, _ = _registry(tmp_path)
    assert reg.db.query("PRAGMA journal_mode")[0][0] == "wal"
    assert reg.db.query("PRAGMA busy_timeout")[0][0] >= 10000


def test_atomic_write_text_roundtrip(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "m.json", "{}\n")
    assert (tmp_path / "m.json").read_text() == "{}\n"


def test_sweep_partials_removes_a_dead_writers_scratch_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "..scene_001.999999999-0123abcd.mp4.part.k3j2h1.text"
    scratch.mkdir()
    (scratch / "0.txt").write_text("title")
    assert sweep_partials(tmp_path) == 1 and not scratch.exists()


def test_registry_archived_assets_are_passed_over_at_start_until_put_back_or_remade(tmp_path: Path) -> None:
    reg, paths = _registry(tmp_path)
    rows = {}
    for n in (1, 2, 3):
        with staged(paths.scene(n)) as tmp:
            tmp.write_bytes(f"scene {n}".encode())
            rows[n] = reg.assets.add(paths, kind="scene", path=paths.scene(n), staged=tmp, provider="p", model=None,
                                    cost_usd=0, props=SceneProps(), attempts=[], capability="video", scene_index=n)
    packed = {paths.relative(paths.scene(n)): rows[n].sha256 for n in (1, 2)}
    packed[paths.relative(paths.scene(3))] = "0" * 64  # other bytes than the row's went into the zip
    for n in (1, 2, 3):
        paths.scene(n).unlink()
    paths.scene(2).write_bytes(b"scene 2, made again")  # a registration after the file was archived
    remade = reg.assets.add(paths, kind="scene", path=paths.scene(2), provider="p", model=None, cost_usd=0,
                           props=SceneProps(), attempts=[], capability="video", scene_index=2)

    marked = reg.assets.mark_archived(paths, packed, "archive/intermediates-x.zip")
    assert [(r.asset_id, r.state, r.archive_path) for r in marked] == [
        (rows[1].asset_id, "archived", "archive/intermediates-x.zip")]
    manifest = json.loads(paths.manifest.read_text())
    assert [(a["scene_index"], a["state"], a.get("archive")) for a in manifest["assets"]] == [
        (1, "archived", "archive/intermediates-x.zip"), (2, "ok", None), (3, "ok", None)]
    reg.close()

    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces")  # the start-up check
    try:
        states = {r.scene_index: (r.asset_id, r.state) for r in reg.assets.current("default", "v1")}
        assert states == {1: (rows[1].asset_id, "archived"), 2: (remade.asset_id, "ok"),
                          3: (rows[3].asset_id, "missing")}
        assert reg.assets.verify() == []
        paths.scene(1).write_bytes(b"scene 1")  # extracted from the zip into its place
        [back] = reg.assets.verify()
        assert (back.scene_index, back.state, back.archive_path) == (1, "ok", None)
        paths.scene(3).write_bytes(b"scene 3, remade")
        again = reg.assets.add(paths, kind="scene", path=paths.scene(3), provider="p", model=None, cost_usd=0,
                              props=SceneProps(), attempts=[], capability="video", scene_index=3)
        assert again.state == "ok" and [r.state for r in reg.assets.current("default", "v1")] == ["ok"] * 3
    finally:
        reg.close()


def test_sweep_partials_keeps_live_writers_and_removes_a_predecessor_with_this_pid(tmp_path: Path) -> None:
    import subprocess
    import sys

    from core.assets.atomic import live_partials, temp_path_for

    mine = temp_path_for(tmp_path / "scene_001.mp4")  # this process, writing now
    mine.write_bytes(b"x")
    predecessor = tmp_path / f".scene_002.{os.getpid()}-0123abcd.mp4.part"  # an earlier server that had this pid
    predecessor.write_bytes(b"x")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # another live process
    try:
        theirs = tmp_path / f".scene_003.{other.pid}-0123abcd.mp4.part"
        theirs.write_bytes(b"x")
        assert sweep_partials(tmp_path) == 1 and not predecessor.exists()
        assert sorted(live_partials(tmp_path)) == sorted([mine, theirs])
    finally:
        other.kill()
        other.wait()
    assert sweep_partials(tmp_path) == 1 and not theirs.exists() and mine.exists()


def test_registry_jobs_of_a_predecessor_with_this_pid_are_interrupted_and_own_jobs_live(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces")
    reg.jobs.create("job_00000000000000000001", "generate_scene", "default", "v1")
    reg.jobs.create("job_00000000000000000002", "generate_scene", "default", "v1")
    with reg.db.tx() as db:  # the second as an earlier server with this pid left it
        db.execute("UPDATE jobs SET owner_token='0123abcd' WHERE job_id='job_00000000000000000002'")
    assert reg.jobs.live("default", "v1") == ["job_00000000000000000001"]
    assert reg.jobs.mark_interrupted() == 1
    assert reg.jobs.get("job_00000000000000000002").error["code"] == "interrupted"  # type: ignore[index]
    assert reg.jobs.get("job_00000000000000000001").status == "queued"


def test_registry_props_are_typed_per_kind_and_old_rows_read_leniently(tmp_path: Path) -> None:
    from core.assets.props import NarrationProps
    from core.schemas import SegmentTiming

    reg, paths = _registry(tmp_path)
    paths.narration.parent.mkdir(parents=True, exist_ok=True)
    paths.narration.write_bytes(b"RIFF")
    seg = SegmentTiming(index=1, text="hi", start_s=0.0, end_s=1.0)
    with pytest.raises(TypeError, match="NarrationProps"):
        reg.assets.add(paths, kind="narration", path=paths.narration, provider="p", model=None, cost_usd=0,
                       props=SceneProps(), attempts=[], capability="speech")
    with pytest.raises(ValueError):
        SceneProps(duration_s=1.0, unknown_field=1)  # type: ignore[call-arg]
    row = reg.assets.add(paths, kind="narration", path=paths.narration, provider="p", model=None, cost_usd=0,
                         props=NarrationProps(duration_s=1.0, segments=(seg,)), attempts=[], capability="speech")
    assert reg.assets.get(row.asset_id).props_of(NarrationProps).segments == (seg,)
    listed = json.loads(paths.manifest.read_text())["assets"][0]["properties"]
    assert listed == {"duration_s": 1.0, "segments": [seg.model_dump()]}  # what the writer set, no more
    with reg.db.tx() as db:  # a row as an older version wrote it
        db.execute("UPDATE assets SET props_json=? WHERE asset_id=?",
                   (json.dumps({"duration_s": 1.0, "voice": 3, "retired": True}), row.asset_id))
    old = reg.assets.get(row.asset_id).props_of(NarrationProps)
    assert (old.duration_s, old.voice) == (1.0, None)
    reg.close()
