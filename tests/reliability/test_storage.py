"""Storage: failed and cancelled generations leave nothing behind; old videos can be archived.

archive_video (the tool, and ``ytap-mcp archive``) keeps the final video, thumbnail and
manifest, packs the intermediates into one checked zip (or drops them), records every
archived file with its SHA-256, and keeps the cost and provenance record intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.assets.atomic import partial_writer_pid
from core.config import Settings
from core.errors import Unavailable
from core.providers.resilience import RetryPolicy
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from core.services.tracking import provider_report
from tests.reliability.procs import REPO, hidden_leftovers
from ytap_mcp.server import YtapServer, build_server


@pytest.fixture
def served(settings: Settings) -> Iterator[YtapServer]:
    failing = ScriptedProvider("test:down", "image", [Unavailable("HTTP 503 from vendor")] * 3)
    rt = Runtime.create(settings, extra_providers=[failing])
    rt.catalog.retry = RetryPolicy(attempts=1)
    yield build_server(runtime=rt)
    rt.close()


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, _text(result)
    env = result.structured_content
    while env.get("status") in ("queued", "running"):
        env = (await client.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 30})).structured_content
    return env


async def _produce(client: Client, video_id: str, *, assemble: bool = True) -> None:
    await _ok(client, "generate_scene", {"video_id": video_id, "scene_index": 1, "prompt": "s1", "duration_s": 1,
                                         "wait_seconds": 40})
    await _ok(client, "synthesize_narration", {"video_id": video_id, "segments": ["One."], "wait_seconds": 40})
    await _ok(client, "make_thumbnail", {"video_id": video_id, "title": "Archive me", "wait_seconds": 40})
    if assemble:
        await _ok(client, "assemble_video", {"video_id": video_id, "wait_seconds": 50, "hardware_encoder": False})


async def _start_long_render(client: Client, video_id: str, root: Path) -> str:
    """A 60 s placeholder render, returned once its temporary file holds bytes (cancel it mid-write)."""
    env = (await client.call_tool("generate_scene", {"video_id": video_id, "scene_index": 1, "prompt": "long",
                                                     "duration_s": 60, "wait_seconds": 0})).structured_content
    with anyio.fail_after(30):
        while not any(p.is_file() and p.stat().st_size for p in root.rglob(".*.part*")):
            await anyio.sleep(0.02)
    return env["job_id"]


def _report_states(assets: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {a["uri"].split("/", 4)[4]: (a["state"], a.get("archive_uri")) for a in assets}


def _manifest_states(manifest: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {a["path"]: (a["state"], a.get("archive")) for a in manifest["assets"]}


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_storage_failed_and_cancelled_generations_leave_nothing(served: YtapServer, settings: Settings) -> None:
    root = settings.workspaces_root / "default" / "videos" / "gone"

    async def main() -> None:
        async with Client(served) as client:
            failed = await client.call_tool("make_thumbnail", {"video_id": "gone", "title": "x",
                                                               "providers": ["test:down"], "wait_seconds": 20})
            assert failed.is_error and "providers_exhausted" in _text(failed)
            job_id = await _start_long_render(client, "gone", root)
            cancelled = (await client.call_tool("cancel_job", {"job_id": job_id})).structured_content
            while cancelled["status"] in ("queued", "running"):
                cancelled = (await client.call_tool("job_status", {"job_id": job_id, "wait_seconds": 10})
                             ).structured_content
            assert cancelled["status"] == "cancelled"

    anyio.run(main)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["manifest.json"]  # the failed attempts are on the record; no media, no temp file
    assert hidden_leftovers(root) == []
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["assets"] == [] and manifest["failed_generations"]


def test_storage_archive_keeps_the_finished_video_and_zips_the_rest(served: YtapServer, settings: Settings) -> None:
    root = settings.workspaces_root / "default" / "videos" / "old"

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        async with Client(served) as client:
            await _produce(client, "old")
            before = {str(p.relative_to(root)): _digest(p) for p in root.rglob("*")
                      if p.is_file() and p.relative_to(root).parts[0] != ".chunks"}  # the render cache: not an asset
            report_before = (await client.call_tool("provider_report", {"video_id": "old"})).structured_content
            result = await client.call_tool("archive_video", {"video_id": "old"})
            assert not result.is_error, _text(result)
            again = await client.call_tool("archive_video", {"video_id": "old"})
            assert not again.is_error, _text(again)
            report_after = (await client.call_tool("provider_report", {"video_id": "old"})).structured_content
            manifest = (await client.read_resource("ytap://default/old/manifest")).contents[0].text
            return ({"before": before, "report": report_before}, result.structured_content,
                    {"again": again.structured_content, "report": report_after}, manifest)

    start, archived, after, manifest = anyio.run(main)
    before = start["before"]
    kept = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    zips = [k for k in kept if k.startswith("archive/")]
    assert len(zips) == 1 and archived["archive_uri"].endswith(zips[0])
    assert sorted(set(kept) - set(zips)) == ["archive.json", "final_video.mp4", "final_video.srt",
                                             "manifest.json", "thumbnail.jpg"]
    # Nothing lost: every archived file is in the zip, byte for byte, and on the record with its hash.
    gone = sorted(set(before) - set(kept))
    assert gone == sorted(a["path"] for a in archived["archived"])
    assert {"scenes/scene_001.mp4", "audio/narration.wav", "audio/narration.srt"} <= set(gone)
    with zipfile.ZipFile(root / zips[0]) as zf:
        assert zf.testzip() is None
        assert {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()} == {g: before[g] for g in gone}
    assert {a["path"]: a["sha256"] for a in archived["archived"]} == {g: before[g] for g in gone}
    for k in ("final_video.mp4", "thumbnail.jpg"):
        assert _digest(root / k) == before[k]
    record = json.loads((root / "archive.json").read_text())
    assert [len(a["files"]) for a in record["archives"]] == [len(gone), 0]  # the second run found nothing to do
    assert archived["bytes_freed"] > 0 and after["again"]["archived"] == []
    # The record of who made what and what it cost is untouched.
    assert after["report"]["totals"] == start["report"]["totals"]
    # The assets whose files went are archived, with the zip that holds them; what was kept is ok.
    zip_rel = zips[0]
    expected = {"scenes/scene_001.mp4": ("archived", archived["archive_uri"]),
                "audio/narration.wav": ("archived", archived["archive_uri"]),
                "thumbnail.jpg": ("ok", None), "final_video.mp4": ("ok", None)}
    assert {a["state"] for a in start["report"]["assets"]} == {"ok"}
    assert _report_states(after["report"]["assets"]) == expected
    assert all(zip_rel in a["action"] for a in after["report"]["assets"] if a["state"] == "archived")
    assert _manifest_states(json.loads(manifest)) == {
        "scenes/scene_001.mp4": ("archived", zip_rel), "audio/narration.wav": ("archived", zip_rel),
        "thumbnail.jpg": ("ok", None), "final_video.mp4": ("ok", None)}

    rt = Runtime.create(settings)  # a restart: the check passes over the archived files, calls nothing missing
    try:
        assert {r.rel_path: r.state for r in rt.registry.assets.current("default", "old")} == {
            k: state for k, (state, _) in expected.items()}
        assert _report_states(provider_report(rt, "default", "old").model_dump()["assets"]) == expected
        assert _manifest_states(json.loads((root / "manifest.json").read_text())) == _manifest_states(
            json.loads(manifest))
    finally:
        rt.close()


def test_storage_archive_refusals(served: YtapServer, settings: Settings) -> None:
    root = settings.workspaces_root / "default" / "videos"

    async def main() -> list[str]:
        out = []
        async with Client(served) as client:
            await _ok(client, "make_thumbnail", {"video_id": "unfinished", "title": "x", "wait_seconds": 30})
            r = await client.call_tool("archive_video", {"video_id": "unfinished"})
            out.append(_text(r) if r.is_error else "")
            r = await client.call_tool("archive_video", {"video_id": "never-made"})
            out.append(_text(r) if r.is_error else "")
            job_id = await _start_long_render(client, "busy", root / "busy")
            r = await client.call_tool("archive_video", {"video_id": "busy", "keep": ["thumbnail"]})
            out.append(_text(r) if r.is_error else "")
            await client.call_tool("cancel_job", {"job_id": job_id})
            await client.call_tool("job_status", {"job_id": job_id, "wait_seconds": 10})
            r = await client.call_tool("archive_video", {"video_id": "unfinished", "keep": ["thumbnail"],
                                                         "intermediates": "drop"})
            assert not r.is_error, _text(r)
        return out

    no_final, missing, busy = anyio.run(main)
    assert "no final_video.mp4" in no_final and "keep" in no_final
    assert "nothing to archive" in missing
    assert "still running" in busy and "cancel" in busy
    assert (root / "unfinished" / "thumbnail.jpg").is_file()


def test_storage_archive_cli_drops_intermediates_and_cleans_dead_partials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(home)}))
    try:
        async def main() -> None:
            async with Client(build_server(runtime=rt)) as client:
                await _produce(client, "cli", assemble=False)

        anyio.run(main)
    finally:
        rt.close()
    root = home / "workspaces" / "default" / "videos" / "cli"
    dead = root / "scenes" / ".scene_003.999999999-0123abcd.mp4.part"  # a crashed writer's leftover
    dead.write_bytes(b"half")
    assert partial_writer_pid(dead.name) == 999999999
    env = {"YTAP_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    refused = subprocess.run([sys.executable, "-m", "ytap_mcp", "archive", "Bad/Id"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "a-z, 0-9" in refused.stderr
    done = subprocess.run([sys.executable, "-m", "ytap_mcp", "archive", "cli", "--workspace", "default", "--drop",
                           "--keep", "thumbnail"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["intermediates"] == "drop" and result.get("archive_path") is None
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == ["archive.json", "manifest.json", "thumbnail.jpg"]
    assert not dead.exists()
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(home)}))  # dropped: archived, with no zip to point at
    try:
        report = provider_report(rt, "default", "cli").model_dump()["assets"]
    finally:
        rt.close()
    assert _report_states(report) == {"scenes/scene_001.mp4": ("archived", None),
                                      "audio/narration.wav": ("archived", None), "thumbnail.jpg": ("ok", None)}
    assert all("dropped by archive_video" in a["action"] for a in report if a["state"] == "archived")
    assert _manifest_states(json.loads((root / "manifest.json").read_text()))["scenes/scene_001.mp4"] == (
        "archived", None)
