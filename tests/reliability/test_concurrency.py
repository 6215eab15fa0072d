"""Many clients at once on one video: the registry and manifest.json stay consistent, no asset is lost.

Real parallel clients: ten MCP sessions over streamable HTTP against one server process
(and, in the second test, two server processes sharing one YTAP_HOME, as two agents
pointing at the same data would), each firing its share of 50 tool calls at the same video
at the same time: scenes, narration, thumbnail and reports. Afterwards the registry is
opened fresh, as a restarted server would open it, and compared with the files and the
manifest: every succeeded job's asset is registered, every current asset's file exists
with its registered size, the manifest lists exactly the current assets, and no
temporary file survives.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio

from core.assets import Registry, VideoPaths
from core.assets.props import SceneProps
from tests.reliability.procs import call, connect, finish, hidden_leftovers, integrity, running_server
from tests.security.acceptance import record

VIDEO = "busy"
N_SCENES, N_NARRATIONS, N_THUMBNAILS, N_REPORTS = 16, 12, 12, 10  # 50 calls
N_CLIENTS = 10


def _calls() -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    calls += [("generate_scene", {"scene_index": i, "prompt": f"scene {i} of a busy video", "duration_s": 1})
              for i in range(1, N_SCENES + 1)]
    calls += [("synthesize_narration", {"segments": [f"Take {i}.", "Second line."]}) for i in range(N_NARRATIONS)]
    calls += [("make_thumbnail", {"title": f"Busy {i}"}) for i in range(N_THUMBNAILS)]
    calls += [("provider_report", {}) for _ in range(N_REPORTS)]
    assert len(calls) == 50
    random.Random(6).shuffle(calls)
    return calls


async def _client(url: str, share: list[tuple[str, dict[str, Any]]], out: list[dict[str, Any]]) -> None:
    async with connect(url) as client:
        async with anyio.create_task_group() as tg:
            for tool, args in share:

                async def one(tool: str = tool, args: dict[str, Any] = args) -> None:
                    env = await call(client, tool, {"video_id": VIDEO, **args,
                                                    **({} if tool == "provider_report" else {"wait_seconds": 0})})
                    if tool != "provider_report":
                        env = await finish(client, env, deadline_s=240)
                    out.append({"tool": tool, "env": env})

                tg.start_soon(one)


async def _storm(urls: list[str]) -> list[dict[str, Any]]:
    calls = _calls()
    shares = [calls[i::N_CLIENTS] for i in range(N_CLIENTS)]
    out: list[dict[str, Any]] = []
    with anyio.fail_after(300):
        async with anyio.create_task_group() as tg:
            for n, share in enumerate(shares):
                tg.start_soon(_client, urls[n % len(urls)], share, out)
    return out


def _check_consistency(home: Path, out: list[dict[str, Any]]) -> dict[str, int]:
    assert len(out) == 50
    jobs = [o for o in out if o["tool"] != "provider_report"]
    failed = [o["env"] for o in jobs if o["env"]["status"] != "succeeded"]
    assert failed == []
    assert integrity(home / "ytap.db") == "ok"
    con = sqlite3.connect(home / "ytap.db")
    con.row_factory = sqlite3.Row
    try:
        assets = {r["asset_id"]: dict(r) for r in con.execute("SELECT * FROM assets WHERE video_id=?", (VIDEO,))}
        current = {a: r for a, r in assets.items() if r["current"]}
        job_rows = {r["job_id"]: dict(r) for r in con.execute("SELECT * FROM jobs WHERE video_id=?", (VIDEO,))}
    finally:
        con.close()

    # Every succeeded job's asset is on the record, and its job row says succeeded.
    made = [o["env"]["result"]["asset_id"] for o in jobs]
    lost = [a for a in made if a not in assets]
    assert lost == []
    assert all(job_rows[o["env"]["job_id"]]["status"] == "succeeded" for o in jobs)

    # Scenes: one current asset per index, each one of the assets a job returned.
    scenes = sorted(r["scene_index"] for r in current.values() if r["kind"] == "scene")
    assert scenes == list(range(1, N_SCENES + 1))
    for kind in ("narration", "thumbnail"):
        rows = [r for r in current.values() if r["kind"] == kind]
        assert len(rows) == 1, (kind, rows)
    # The file of every current asset exists with the size the registry recorded (the file on
    # disk is the one the current row describes: the last writer's, not an earlier one's).
    root = home / "workspaces" / "default" / "videos" / VIDEO
    mismatched = []
    for r in current.values():
        f = root / r["rel_path"]
        assert f.is_file(), r
        if f.stat().st_size != r["bytes"]:
            mismatched.append(r["rel_path"])

    manifest = json.loads((root / "manifest.json").read_text())
    listed = {a["asset_id"] for a in manifest["assets"]}
    assert listed <= set(assets)  # never an asset the registry does not know
    assert hidden_leftovers(root) == []
    return {"assets_made": len(made), "assets_lost": len(lost), "manifest_current": listed == set(current),
            "mismatched": mismatched}


def test_concurrency_fifty_calls_from_ten_clients_on_one_video(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_server(home, tmp_path / "server.log") as server:
        out = anyio.run(_storm, [server.url])
    stats = _check_consistency(home, out)
    record("concurrent calls (1 server, 10 clients)", len(out))
    record("concurrent calls: assets lost", stats["assets_lost"])
    # One process: every rename, registration and manifest write happens on the jobs thread, in order.
    assert stats["manifest_current"] and stats["mismatched"] == []


def test_concurrency_two_server_processes_share_one_home(tmp_path: Path) -> None:
    """Two processes, two registry connections, one SQLite file: WAL plus the busy timeout keep both writing."""
    home = tmp_path / "home"
    with running_server(home, tmp_path / "a.log") as a, running_server(home, tmp_path / "b.log") as b:
        out = anyio.run(_storm, [a.url, b.url])
    stats = _check_consistency(home, out)
    record("concurrent calls (2 servers, 10 clients)", len(out))
    record("concurrent calls: assets lost", stats["assets_lost"])
    assert stats["manifest_current"]  # the manifest is built and renamed inside the registry's write transaction
    # Renamed into place inside add_asset's transaction: every slot's file is the asset the registry names.
    assert stats["mismatched"] == [], stats["mismatched"]




def test_concurrency_manifest_mirror_never_left_stale_by_concurrent_writers(tmp_path: Path) -> None:
    """Unit-level: three writers (two Registry connections, as two processes have) each add an asset at once.

    After every burst the manifest must list exactly the registry's current assets. It is the
    last rename that counts, so a stale manifest is permanent until the video's next change.
    """
    ws = tmp_path / "workspaces"
    first = Registry(tmp_path / "ytap.db", ws)
    regs = [first, Registry(tmp_path / "ytap.db", ws), first]
    paths = VideoPaths(ws, "default", "v")
    paths.ensure()
    stale = 0
    try:
        for trial in range(40):
            barrier = threading.Barrier(len(regs))

            def add(reg: Registry, index: int) -> None:
                f = paths.scene(index)
                f.write_bytes(b"x" * index)
                barrier.wait()
                reg.assets.add(paths, kind="scene", path=f, provider="test", model=None, cost_usd=0.0, props=SceneProps(),
                              attempts=[], capability="video", scene_index=index)

            threads = [threading.Thread(target=add, args=(reg, trial * len(regs) + k + 1))
                       for k, reg in enumerate(regs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            listed = {a["asset_id"] for a in json.loads(paths.manifest.read_text())["assets"]}
            stale += listed != {a.asset_id for a in first.assets.current("default", "v")}
    finally:
        for reg in regs[:2]:
            reg.close()
    record("manifest left stale after a burst of concurrent writers (of 40)", stale)
    # Before Registry.write_manifest read and renamed inside its write transaction, 8-23 of 40.
    assert stale == 0
