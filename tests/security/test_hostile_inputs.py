"""The hostile-input suite: identifiers, refs, uris and links that try to leave the workspace.

Every input goes through the MCP client, as an agent would send it, and must come back
refused: a tool error (or a resource error) whose message says what is allowed, and no
job started. The bait (conftest.World) is real media outside the root, reachable only
through the refused paths: had any of them been read, an assembly would have succeeded.
Nothing outside YTAP_HOME may be created or changed (checked after every test and when
the module ends).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.security.acceptance import record
from tests.security.conftest import OUTSIDE_CANARY, World

HOSTILE_IDS = [
    "", "A", "Default", "-x", "_x", "a/b", "..", ".", "a..", "../etc", "a b", "a\x00", "a\n", "é", "ü", "x" * 65,
    "a.b", "a\\b", " a", "a ", "%2e%2e", "$(id)", "a;rm", "a|b", "*", "a%00", "\u202ea", "ａ", "a\t",
]


def _refs(w: World) -> list[str]:
    return [
        "/etc/passwd",
        str(w.outside / "clip.mp4"),
        "../../../../../outside/clip.mp4",
        "../" * 12 + "etc/passwd",
        "scenes/../../other/scenes/scene_001.mp4",
        str(w.video / ".." / ".." / ".." / ".." / ".." / "outside" / "clip.mp4"),
        "file:///etc/passwd",
        f"file://{w.outside / 'clip.mp4'}",
        "FILE:///etc/passwd",
        "file:/etc/passwd",
        "File:secret.mp4",
        "http://127.0.0.1:9/clip.mp4",
        "https://example.com/clip.mp4",
        "data:video/mp4;base64,AAAA",
        "smb://host/share/clip.mp4",
        "ytap://default/other/scenes/scene_001.mp4",
        "ytap://other/v/scenes/scene_001.mp4",
        "ytap://evil/v/scenes/scene_001.mp4",
        "ytap://default/linkedvid/clip.mp4",
        "ytap://jobs/job_0123456789abcdef0123",
        "ytap://default/v/../../../../outside/clip.mp4",
        "ytap://default/v/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside/clip.mp4",
        "ytap://default/v/scenes%2f..%2f..%2f..%2f..%2f..%2f..%2foutside%2fclip.mp4",
        "ytap://default/v/%2E%2E%2F%2E%2E%2Fclip.mp4",
        "ytap://default/v//etc/passwd",
        "ytap://default/v/scenes/%00.mp4",
        "ytap://default/v/scenes/%ff%fe.mp4",
        "ytap://default/v/scenes\\..\\..\\clip.mp4",
        "YTAP://default/v/scenes/scene_001.mp4",
        "ytap:/default/v/scenes/scene_001.mp4",
        "scenes/\x00.mp4",
        "scenes/\n/scene_001.mp4",
        "scenes/scene_001.mp4\x00.txt",
        "link_file.mp4",
        "link_dir/clip.mp4",
        "link_dir/../link_dir/clip.mp4",
        "scenes/linked.mp4",
        ".hidden.mp4",
        "scenes/.scene_001.4242424-0123abcd.mp4.part",
        "x" * 5000,
        "ytap://default/v/" + "a/" * 2000 + "x.mp4",
        " ",
    ]


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _refused(client: Client, tool: str, args: dict[str, Any], *, allowed: tuple[str, ...]) -> str:
    result = await client.call_tool(tool, args)
    text = _text(result)
    assert result.is_error, (tool, args, result.structured_content)
    assert not re.search(r"job_[0-9a-f]{16,32} failed", text), text  # refused before any job started
    assert any(a in text for a in allowed), text
    assert OUTSIDE_CANARY.decode() not in text
    assert len(text) <= 4100, len(text)
    return text


def _check_outside(w: World) -> None:
    changed = w.outside_changes()
    assert changed == [], changed


@pytest.mark.parametrize("param", ["scenes", "narration", "music", "watermark", "caption_font"])
def test_hostile_refs_refused_with_what_is_allowed(world: World, param: str) -> None:
    refs = _refs(world)

    async def main() -> int:
        n = 0
        async with Client(world.server) as client:
            for ref in refs:
                if param != "scenes" and not ref.strip():
                    continue  # an empty narration/music/watermark means "none": not a ref
                value: Any = [ref] if param == "scenes" else ref
                await _refused(client, "assemble_video", {"video_id": "v", param: value, "wait_seconds": 0},
                               allowed=("ytap://", "does not exist", "at most 1000 characters"))
                n += 1
        return n

    n = anyio.run(main)
    record("hostile inputs tried", n)
    record("hostile inputs refused", n)
    _check_outside(world)


def test_hostile_resource_uris_refused(world: World) -> None:
    uris = [r for r in _refs(world) if r.startswith(("ytap", "YTAP", "file", "http", "data", "smb"))] + [
        "ytap://default/v/link_file.mp4",
        "ytap://default/v/link_dir/clip.mp4",
        "ytap://default/v/link_dir/secret.txt",
        "ytap://default/v/scenes/linked.mp4",
        "ytap://default/v/.hidden.mp4",
        "ytap://default/linkedvid/manifest",
        "ytap://default/linkedvid/scenes/clip.mp4",
        "ytap://evil/v/manifest",
        "ytap://default/scenelink/scenes/clip.mp4",
        "ytap://default/v/../../../../ytap.db",
        "ytap://default/v/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fytap.db",
        "ytap://jobs/../../ytap.db",
        "ytap://jobs/job_zz",
        "ytap://default/v/",
        "ytap://default/v/scenes",
        "ytap:///etc/passwd",
    ] + [f"ytap://{bad}/v/manifest" for bad in HOSTILE_IDS if "/" not in bad and bad]

    async def main() -> int:
        n = 0
        async with Client(world.server) as client:
            ok = await client.read_resource("ytap://default/v/scenes/scene_001.mp4")  # the control: a real file
            assert ok.contents
            for uri in uris:
                try:
                    result = await client.read_resource(uri)
                except MCPError as exc:
                    assert OUTSIDE_CANARY.decode() not in str(exc)
                    n += 1
                    continue
                raise AssertionError(f"{uri!r} was served: {str(result)[:200]}")
        return n

    n = anyio.run(main)
    assert n == len(uris)
    record("hostile inputs tried", len(uris))
    record("hostile inputs refused", n)
    _check_outside(world)


def test_hostile_resource_listing_shows_only_real_videos(world: World) -> None:
    async def main() -> list[str]:
        async with Client(world.server) as client:
            return [str(r.uri) for r in (await client.list_resources()).resources]

    uris = anyio.run(main)
    assert "ytap://default/v/manifest" in uris
    assert not any("linkedvid" in u or "evil" in u for u in uris), uris


def test_hostile_identifiers_refused_by_every_tool(world: World) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    for bad in HOSTILE_IDS:
        for key in ("video_id", "workspace_id"):
            base = {"video_id": "v", key: bad}
            calls += [
                ("generate_scene", {**base, "scene_index": 1, "prompt": "x", "wait_seconds": 0}),
                ("synthesize_narration", {**base, "text": "x", "wait_seconds": 0}),
                ("make_thumbnail", {**base, "title": "x", "wait_seconds": 0}),
                ("assemble_video", {**base, "wait_seconds": 0}),
                ("archive_video", base),
            ]
            if bad:  # an empty video_id is provider_report's "every video"
                calls.append(("provider_report", {key: bad}))
        calls += [("job_status", {"job_id": bad}), ("cancel_job", {"job_id": bad})]
    calls += [("job_status", {"job_id": j}) for j in ("job_", "job_../../x", "job_" + "a" * 33, "JOB_0123456789abcdef")]

    async def main() -> None:
        async with Client(world.server) as client:
            for tool, args in calls:
                await _refused(client, tool, args,
                               allowed=("a-z0-9", "a-z, 0-9", "job_", "pattern", "at most 64 characters"))

    anyio.run(main)
    record("hostile inputs tried", len(calls))
    record("hostile inputs refused", len(calls))
    _check_outside(world)


@pytest.mark.parametrize("video_id,workspace_id", [("linkedvid", "default"), ("v", "evil"), ("scenelink", "default")])
def test_hostile_folders_that_link_outside_are_never_written_through(world: World, video_id: str,
                                                                     workspace_id: str) -> None:
    """A video folder, a workspace or a scenes/ folder that is a symlink out of the root: every writer refuses."""
    calls = [
        ("generate_scene", {"scene_index": 2, "prompt": "x", "duration_s": 1}),
        ("synthesize_narration", {"text": "Hello."}),
        ("make_thumbnail", {"title": "x"}),
        ("assemble_video", {"scenes": ["scenes/clip.mp4"]}),
        ("archive_video", {"keep": ["thumbnail"]}),
    ]

    async def main() -> None:
        async with Client(world.server) as client:
            for tool, args in calls:
                full = {"video_id": video_id, "workspace_id": workspace_id, **args}
                if tool != "archive_video":
                    full["wait_seconds"] = 30
                result = await client.call_tool(tool, full)
                text = _text(result)
                env = result.structured_content or {}
                # Refused up front, or the job failed on it: never a success, and never a write outside.
                assert result.is_error or env.get("status") == "failed", (tool, env)
                assert "symlink or leads outside" in text or "outside the video's folder" in text, text

    anyio.run(main)
    record("hostile inputs tried", len(calls))
    record("hostile inputs refused", len(calls))
    assert world.outside_changes() == []
    assert sorted(p.name for p in (world.outside / "scenes").iterdir()) == ["clip.mp4"]
    assert sorted(p.name for p in (world.outside / "ws" / "videos" / "v").iterdir()) == []


def test_hostile_nothing_outside_the_root_was_touched(world: World) -> None:
    changed = world.outside_changes()
    assert changed == []
    assert (world.outside / "secret.txt").read_bytes() == OUTSIDE_CANARY
    assert not any(p.name.startswith(".") for p in Path(world.outside).rglob("*"))
