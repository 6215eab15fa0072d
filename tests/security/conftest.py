"""Fixtures of the security suites: a workspace surrounded by bait, and the acceptance summary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.config import Settings
from core.runtime import Runtime
from tests.security.acceptance import record, summary_lines
from ytap_mcp.server import YtapServer, build_server


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in summary_lines():
        terminalreporter.write_line(line)

OUTSIDE_CANARY = b"OUTSIDE-CANARY-7d1e"


@dataclass
class World:
    """A server whose workspace is surrounded by bait: files, links and folders that lead outside it."""

    base: Path
    home: Path
    outside: Path
    server: YtapServer
    runtime: Runtime
    before: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def video(self) -> Path:
        return self.home / "workspaces" / "default" / "videos" / "v"

    def outside_changes(self) -> list[str]:
        """Entries outside YTAP_HOME created, changed or removed since the bait was laid."""
        after = _snapshot(self.base, self.home)
        return sorted(k for k in set(after) | set(self.before) if after.get(k) != self.before.get(k))


def _snapshot(base: Path, exclude: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``base`` but outside ``exclude``: (size, mtime_ns), links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        d = Path(dirpath)
        if d == exclude or exclude in d.parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            if d / name == exclude:
                continue
            st = (d / name).lstat()
            out[str(d / name)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("hostile")
    home, outside = base / "home", base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(OUTSIDE_CANARY)
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(home)}))
    server = build_server(runtime=rt)
    w = World(base, home, outside, server, rt)

    async def make_scene() -> None:
        async with Client(server) as client:
            r = await client.call_tool("generate_scene", {"video_id": "v", "scene_index": 1, "prompt": "bait",
                                                          "duration_s": 1, "wait_seconds": 45})
            assert not r.is_error and r.structured_content["status"] == "succeeded"

    anyio.run(make_scene)
    scene = w.video / "scenes" / "scene_001.mp4"
    shutil.copy(scene, outside / "clip.mp4")  # real media outside: reading it would succeed, if allowed
    (outside / "scenes").mkdir()
    shutil.copy(scene, outside / "scenes" / "clip.mp4")
    # Links inside the video's folder that lead out of it.
    (w.video / "link_file.mp4").symlink_to(outside / "clip.mp4")
    (w.video / "link_dir").symlink_to(outside)
    (w.video / "scenes" / "linked.mp4").symlink_to(outside / "clip.mp4")
    shutil.copy(scene, w.video / ".hidden.mp4")
    # Folders that are links out of the root: a whole video, a whole workspace, one video's scenes/.
    videos = home / "workspaces" / "default" / "videos"
    (videos / "linkedvid").symlink_to(outside)
    (outside / "ws" / "videos" / "v").mkdir(parents=True)
    (home / "workspaces" / "evil").symlink_to(outside / "ws")
    (videos / "scenelink").mkdir()
    (videos / "scenelink" / "scenes").symlink_to(outside / "scenes")
    w.before = _snapshot(base, home)
    yield w
    rt.close()
    changed = w.outside_changes()
    record("files outside the root created or changed", len(changed))
    assert changed == [], f"created, changed or removed outside the workspace root: {changed}"
