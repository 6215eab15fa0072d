"""A media root shared by several machines: the start-up sweep never removes another live writer's
``.part`` files, and a pid from another machine is never checked against this one's processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.assets.atomic import FOREIGN_STALE_S, HOST_TAG, live_partials, sweep_partials, temp_path_for


def test_shared_root_temporary_names_carry_this_machines_tag(tmp_path: Path) -> None:
    tmp = temp_path_for(tmp_path / "scene_001.mp4")
    assert f"~{HOST_TAG}.mp4.part" in tmp.name and tmp.name.startswith(f".scene_001.{os.getpid()}-")


def test_shared_root_sweep_keeps_another_machines_leftovers_until_stale(tmp_path: Path) -> None:
    other_host = "0" * 8 if HOST_TAG != "0" * 8 else "1" * 8
    # pid 1 lives here (and a dead pid reads as dead here): neither may decide for another machine's file
    theirs_live = tmp_path / f".scene_001.999999999-0123abcd0123abcd~{other_host}.mp4.part"
    theirs_pid1 = tmp_path / f".scene_002.1-0123abcd0123abcd~{other_host}.mp4.part"
    theirs_old = tmp_path / f".scene_003.999999999-0123abcd0123abcd~{other_host}.mp4.part"
    ours_dead = tmp_path / f".scene_004.999999999-0123abcd0123abcd~{HOST_TAG}.mp4.part"
    legacy_dead = tmp_path / ".scene_005.999999999-0123abcd0123abcd.mp4.part"  # before the host tag: this machine's
    for p in (theirs_live, theirs_pid1, theirs_old, ours_dead, legacy_dead):
        p.write_bytes(b"x")
    old = time.time() - FOREIGN_STALE_S - 60
    os.utime(theirs_old, (old, old))
    assert sweep_partials(tmp_path) == 3
    assert theirs_live.exists() and theirs_pid1.exists()
    assert not theirs_old.exists() and not ours_dead.exists() and not legacy_dead.exists()
    assert set(live_partials(tmp_path)) == {theirs_live, theirs_pid1}
