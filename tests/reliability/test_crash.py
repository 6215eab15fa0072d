"""kill -9 at the worst moments: nothing under a final name, a registry that opens, the job interrupted.

Each test runs a real server process, starts work through a real MCP client, waits until
the work is visibly in flight (a temporary file growing on disk), then SIGKILLs the
server's whole process group (ffmpeg children included). Then it checks what a restarted
server would find, starts one, and asks about the job:

- no file under a final name was written by the killed work (the final names are renamed
  into place only when complete);
- the registry passes SQLite's integrity check;
- the job reads as failed with code ``interrupted``;
- the restart swept every leftover (temporary files, scratch folders);
- after the restart, every current asset's file holds the bytes that were registered, or the
  asset says it does not (``state`` damaged or missing: the restart checks them).

Crash points: an assembly mid-encode, a provider download mid-stream (a loopback vendor
that sends the first second of audio and then stalls), a burst of concurrent generations
and registry writes, and (in a child process, not a server) a registration killed before
its commit: after its rename into place, and after the manifest that lists it. (A
placeholder render is tests/ytap_mcp/test_restart.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from tests.reliability.procs import (
    ServerProc,
    call,
    connect,
    hidden_leftovers,
    integrity,
    kill9,
    running_server,
    start_server,
)
from tests.security.acceptance import crash_point, record
from tests.vendors import openai_mock as om

KEY = "FAKE-openai-crash-0123456789abcdef"


def _videos(home: Path) -> Path:
    return home / "workspaces" / "default" / "videos"


def _wait_for(what: str, check: Callable[[], Any], *, server: ServerProc, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        assert server.alive(), server.log.read_text(errors="replace")[-3000:]
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _growing_part(root: Path) -> list[str]:
    """Temporary files under ``root`` that already hold bytes: the work is mid-write. A vendor's parts
    may sit inside a temporary folder (``.narration.openai-tts.part-…/part_001.pcm``)."""
    if not root.exists():
        return []

    def temporary(p: Path) -> bool:
        return any(part.startswith(".") and ".part" in part for part in p.relative_to(root).parts)

    return [str(p.relative_to(root)) for p in root.rglob("*")
            if temporary(p) and p.is_file() and p.stat().st_size > 0]


def _submit(url: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with connect(url) as client:
            return await call(client, tool, {"wait_seconds": 0, **args})

    return anyio.run(main)


def _after_restart(home: Path, log: Path, job_ids: list[str], env: dict[str, str] | None = None
                   ) -> list[dict[str, Any]]:
    """Start a fresh server on the same home; the envelopes of ``job_ids`` as it reports them."""
    with running_server(home, log, env=env) as server:

        async def main() -> list[dict[str, Any]]:
            async with connect(server.url) as client:
                envs = [await call(client, "job_status", {"job_id": j}) for j in job_ids]
                await call(client, "provider_report", {})  # the registry answers queries again
                return envs

        return anyio.run(main)


def _assert_interrupted(envs: list[dict[str, Any]]) -> None:
    for env in envs:
        assert env["status"] == "failed", env
        assert env["error"]["code"] == "interrupted" and "restart" in env["message"], env


# --------------------------------------------------------------------------- assembly mid-encode


def _source_clip(path: Path, seconds: int, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r=30:d={seconds},drawbox=c={colour}:t=fill:w=60:h=60",
                "-f", "lavfi", "-i", f"sine=f=330:r=48000:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], timeout_s=60, what="source clip")


def _assembly_scratch(tmpdir: Path) -> list[str]:
    """Assembly intermediates with bytes in them, wherever the pipeline keeps them."""
    return [str(p) for p in tmpdir.rglob("ytap-*/*") if p.is_file() and p.stat().st_size > 0]


def test_crash_kill9_during_assembly_encode(tmp_path: Path) -> None:
    home, log, tmpdir = tmp_path / "home", tmp_path / "server.log", tmp_path / "tmp"
    tmpdir.mkdir()
    root = _videos(home) / "crashasm"
    for n, colour in ((1, "red"), (2, "blue")):
        _source_clip(root / "scenes" / f"src_{n}.mp4", 30, colour)
    sources = {p.name: p.stat().st_size for p in (root / "scenes").iterdir()}

    # A private TMPDIR: whatever the pipeline keeps in the system temp dir is seen, and judged.
    server = start_server(home, log, env={"TMPDIR": str(tmpdir)})
    try:
        env = _submit(server.url, "assemble_video", {"video_id": "crashasm", "scenes": ["scenes/src_1.mp4",
                      "scenes/src_2.mp4"], "captions": False, "hardware_encoder": False})
        in_flight = _wait_for("the encode's output to grow",
                              lambda: _growing_part(root) + _assembly_scratch(tmpdir), server=server)
    finally:
        kill9(server)
    assert not (root / "final_video.mp4").exists() and not (root / "final_video.srt").exists()
    assert integrity(home / "ytap.db") == "ok"

    envs = _after_restart(home, log, [env["job_id"]], env={"TMPDIR": str(tmpdir)})
    _assert_interrupted(envs)
    assert hidden_leftovers(root) == []
    assert not (root / "final_video.mp4").exists()
    assert {p.name: p.stat().st_size for p in (root / "scenes").iterdir()} == sources  # inputs untouched
    stranded = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.iterdir() if p.name.startswith("ytap-"))
    crash_point("assembly mid-encode", files_in_flight_at_kill=len(in_flight), final_files=0, registry="ok",
                job="interrupted", workspace_leftovers_after_restart=0,
                system_temp_leftovers_after_restart=len(stranded))
    record("crash points tested")
    assert stranded == [], f"assembly intermediates stranded in the system temp dir after kill -9: {stranded}"


# --------------------------------------------------------------------------- provider download mid-stream


@contextmanager
def _stalling_speech_vendor() -> Iterator[tuple[str, threading.Event]]:
    """OpenAI's /v1/audio/speech on loopback: 200, the first second of PCM, then nothing until closed."""
    first_chunk_sent = threading.Event()
    stop = threading.Event()
    body = om.pcm_bytes(10.0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            if self.path != "/v1/audio/speech":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "audio/pcm")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:48_000])
            self.wfile.flush()
            first_chunk_sent.set()
            stop.wait(60)  # a vendor that stalls mid-body

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", first_chunk_sent
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_crash_kill9_during_provider_download(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    root = _videos(home) / "crashdl"
    with _stalling_speech_vendor() as (vendor_url, first_chunk_sent):
        server = start_server(home, log, env={
            "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": vendor_url + "/v1",
            "YTAP_SPEECH_PROVIDERS": "openai:gpt-4o-mini-tts,local:espeak-ng"})
        try:
            env = _submit(server.url, "synthesize_narration", {"video_id": "crashdl",
                                                                "segments": ["One.", "Two."]})
            assert first_chunk_sent.wait(30), "the vendor was never called"
            in_flight = _wait_for("the download's temporary file", lambda: _growing_part(root), server=server)
        finally:
            kill9(server)
    audio = root / "audio"
    assert not (audio / "narration.wav").exists() and not (audio / "narration.srt").exists()
    assert any("openai" in p for p in in_flight), in_flight  # killed mid-stream, not before or after
    assert integrity(home / "ytap.db") == "ok"

    envs = _after_restart(home, log, [env["job_id"]])
    _assert_interrupted(envs)
    assert hidden_leftovers(root) == []
    assert KEY not in log.read_text(errors="replace")
    crash_point("provider download mid-stream", temp_files_at_kill=len(in_flight), final_files=0, registry="ok",
                job="interrupted", leftovers_after_restart=0)
    record("crash points tested")


# --------------------------------------------------------------------------- a burst of writes


def test_crash_kill9_during_a_burst_of_generations_and_registry_writes(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    root = _videos(home) / "crashburst"
    server = start_server(home, log)
    job_ids: list[str] = []
    try:

        async def burst() -> None:
            async with connect(server.url) as client:
                async def one(i: int) -> None:
                    if i % 3 == 0:
                        args = {"scene_index": i + 1, "prompt": f"burst {i}", "duration_s": 6}
                        env = await call(client, "generate_scene", {"video_id": "crashburst", "wait_seconds": 0,
                                                                    **args})
                    elif i % 3 == 1:
                        env = await call(client, "make_thumbnail", {"video_id": "crashburst", "title": f"Burst {i}",
                                                                    "wait_seconds": 0})
                    else:
                        env = await call(client, "synthesize_narration", {"video_id": "crashburst", "wait_seconds": 0,
                                                                          "segments": [f"Burst {i}."]})
                    job_ids.append(env["job_id"])

                async with anyio.create_task_group() as tg:
                    for i in range(18):
                        tg.start_soon(one, i)

        anyio.run(burst)

        def some_done_some_not() -> bool:
            con = sqlite3.connect(home / "ytap.db", timeout=30)
            try:
                statuses = [s for (s,) in con.execute("SELECT status FROM jobs")]
            finally:
                con.close()
            return "succeeded" in statuses and ("running" in statuses or "queued" in statuses)

        _wait_for("some jobs done and some still running", some_done_some_not, server=server)
    finally:
        kill9(server)
    assert integrity(home / "ytap.db") == "ok"
    current = _current_assets(home)
    with sqlite3.connect(home / "ytap.db") as con:
        statuses = {j: s for j, s in con.execute("SELECT job_id, status FROM jobs")}
    # Every registered asset's file exists and is whole media (a torn file would not probe);
    # the manifest is whole JSON; the thumbnail a whole JPEG.
    for r in current:
        f = root / r["rel_path"]
        assert f.is_file(), r
        if r["kind"] != "thumbnail":
            probe(f)
    if (root / "manifest.json").exists():
        json.loads((root / "manifest.json").read_text())
    thumb = root / "thumbnail.jpg"
    if thumb.exists():
        from PIL import Image

        with Image.open(thumb) as im:
            im.verify()
    unfinished = [j for j in job_ids if statuses[j] in ("queued", "running")]
    assert unfinished

    envs = _after_restart(home, log, unfinished)
    _assert_interrupted(envs)
    assert hidden_leftovers(root) == []
    # The restart checked every current asset: its file is the registered bytes, or it says otherwise.
    after = _current_assets(home)
    assert after and {r["asset_id"] for r in after} == {r["asset_id"] for r in current}
    unreported = [r["rel_path"] for r in after if r["state"] == "ok" and not _holds_registered_bytes(root, r)]
    reported = [r["rel_path"] for r in after if r["state"] != "ok"]
    assert unreported == []
    manifest = json.loads((root / "manifest.json").read_text())
    assert {a["asset_id"]: a["state"] for a in manifest["assets"]} == {r["asset_id"]: r["state"] for r in after}
    crash_point("burst of generations and registry writes", jobs=len(job_ids), interrupted=len(unfinished),
                registry="ok", torn_files=0, leftovers_after_restart=0,
                slot_file_not_the_registered_one=len(unreported), reported_damaged_after_restart=len(reported))
    record("crash points tested")


def _current_assets(home: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(home / "ytap.db")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM assets WHERE current=1 ORDER BY asset_id")]
    finally:
        con.close()


def _holds_registered_bytes(root: Path, row: dict[str, Any]) -> bool:
    f = root / row["rel_path"]
    if not f.is_file() or f.stat().st_size != row["bytes"]:
        return False
    return hashlib.sha256(f.read_bytes()).hexdigest() == row["sha256"]


# --------------------------------------------------------------------------- between the rename and the commit

# A child process registers scene 1, then dies (os._exit, as a kill would find it) in the middle of
# a second registration, before its transaction commits: "replace" right after scene 1's new take
# is renamed into place; "manifest" right after a first take of scene 2 and the manifest listing it.
_KILLED_REGISTRATION = """
import os, sys
from pathlib import Path
from core.assets import Registry, VideoPaths
from core.assets.atomic import staged
from core.assets.props import SceneProps
import core.assets.asset_store as asset_store

home, where = Path(sys.argv[1]), sys.argv[2]
reg = Registry(home / "ytap.db", home / "workspaces")
paths = VideoPaths(home / "workspaces", "default", "v")
kw = dict(kind="scene", provider="test", model=None, cost_usd=0.0, props=SceneProps(), attempts=[], capability="video")
with staged(paths.scene(1)) as tmp:
    tmp.write_bytes(b"first take")
    reg.assets.add(paths, path=paths.scene(1), staged=tmp, scene_index=1, **kw)
if where == "replace":
    real_replace = os.replace
    def replace_then_die(src, dst):
        real_replace(src, dst)
        if Path(dst) == paths.scene(1):
            os._exit(9)
    asset_store.os.replace = replace_then_die
    n, body = 1, b"second take, never committed"
else:
    real_write = asset_store.AssetStore._write_manifest
    def write_then_die(self, paths):
        real_write(self, paths)
        os._exit(9)
    asset_store.AssetStore._write_manifest = write_then_die
    n, body = 2, b"scene 2, never committed"
with staged(paths.scene(n)) as tmp:
    tmp.write_bytes(body)
    reg.assets.add(paths, path=paths.scene(n), staged=tmp, scene_index=n, **kw)
"""


def _killed_registration(home: Path, where: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_KILLED_REGISTRATION), str(home), where],
                          cwd=str(repo), capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 9, done.stderr.decode(errors="replace")


def test_crash_kill_between_rename_and_commit_is_reported_at_start(tmp_path: Path) -> None:
    from core.assets import Registry, VideoPaths

    home = tmp_path / "home"
    _killed_registration(home, "replace")
    paths = VideoPaths(home / "workspaces", "default", "v")
    assert paths.scene(1).read_bytes() == b"second take, never committed"  # renamed; its row never committed
    [row] = _current_assets(home)
    assert (row["bytes"], row["state"]) == (len(b"first take"), "ok")  # what the killed process left

    reg = Registry(home / "ytap.db", home / "workspaces")  # start-up: the check finds the slot changed
    try:
        [current] = reg.assets.current("default", "v")
        assert current.asset_id == row["asset_id"] and current.state == "damaged"
        manifest = json.loads(paths.manifest.read_text())
        assert [(a["asset_id"], a["state"]) for a in manifest["assets"]] == [(row["asset_id"], "damaged")]
        assert reg.assets.verify() == []  # found once: nothing changes at the next start
    finally:
        reg.close()
    crash_point("between a registration's rename and its commit", slot_changed=1, reported_damaged_at_start=1)
    record("crash points tested")


def test_crash_kill_between_manifest_and_commit_leaves_a_manifest_rewritten_at_start(tmp_path: Path) -> None:
    from core.assets import Registry, VideoPaths

    home = tmp_path / "home"
    _killed_registration(home, "manifest")
    paths = VideoPaths(home / "workspaces", "default", "v")
    [row] = _current_assets(home)
    listed = [a["scene_index"] for a in json.loads(paths.manifest.read_text())["assets"]]
    assert listed == [1, 2]  # the killed registration's manifest lists a scene the registry never committed

    reg = Registry(home / "ytap.db", home / "workspaces")
    try:
        manifest = json.loads(paths.manifest.read_text())
        assert [(a["asset_id"], a["state"]) for a in manifest["assets"]] == [(row["asset_id"], "ok")]
        assert [r.scene_index for r in reg.assets.current("default", "v")] == [1]
    finally:
        reg.close()
    crash_point("between a registration's manifest and its commit", manifest_rewritten_at_start=1)
    record("crash points tested")


# --------------------------------------------------------------------------- the start-up check


def test_restart_check_trusts_unchanged_files_and_marks_changed_and_missing_ones(tmp_path: Path) -> None:
    from core.assets import Registry, VideoPaths
    from core.assets.atomic import staged
    from core.assets.props import SceneProps

    home = tmp_path / "home"
    reg = Registry(home / "ytap.db", home / "workspaces")
    paths = VideoPaths(home / "workspaces", "default", "v")
    rows = {}
    for n, body in ((1, b"kept as it is"), (2, b"touched, same bytes"), (3, b"overwritten in place"),
                    (4, b"deleted")):
        with staged(paths.scene(n)) as tmp:
            tmp.write_bytes(body)
            rows[n] = reg.assets.add(paths, kind="scene", path=paths.scene(n), staged=tmp, provider="test", model=None,
                                    cost_usd=0.0, props=SceneProps(), attempts=[], capability="video", scene_index=n)
    reg.close()
    assert rows[1].sha256 == hashlib.sha256(b"kept as it is").hexdigest() and rows[1].state == "ok"
    os.utime(paths.scene(2), ns=(1, 1))
    paths.scene(3).write_bytes(b"overwritten in pl4ce")  # same size, other bytes, same inode
    os.utime(paths.scene(3), ns=(2, 2))  # another mtime, whatever the clock's granularity
    paths.scene(4).unlink()

    reg = Registry(home / "ytap.db", home / "workspaces")
    try:
        states = {r.scene_index: r.state for r in reg.assets.current("default", "v")}
        assert states == {1: "ok", 2: "ok", 3: "damaged", 4: "missing"}
        paths.scene(4).write_bytes(b"deleted")  # put back: the next check finds it whole again
        assert [(r.scene_index, r.state) for r in reg.assets.verify()] == [(4, "ok")]
    finally:
        reg.close()


def test_restart_check_upgrades_a_registry_from_before_fingerprints(tmp_path: Path) -> None:
    from core.assets import Registry, VideoPaths

    home = tmp_path / "home"
    paths = VideoPaths(home / "workspaces", "default", "v")
    paths.scene(1).parent.mkdir(parents=True)
    paths.scene(1).write_bytes(b"an old scene")
    con = sqlite3.connect(home / "ytap.db")  # the assets table as it was before sha256/mtime_ns/inode/state
    con.execute("CREATE TABLE assets (asset_id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, video_id TEXT NOT NULL,"
                " kind TEXT NOT NULL, scene_index INTEGER, rel_path TEXT NOT NULL, provider TEXT NOT NULL, model TEXT,"
                " cost_usd REAL NOT NULL DEFAULT 0, bytes INTEGER NOT NULL, props_json TEXT NOT NULL DEFAULT '{}',"
                " job_id TEXT, current INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL)")
    con.execute("INSERT INTO assets (asset_id, workspace_id, video_id, kind, scene_index, rel_path, provider, bytes,"
                " created_at) VALUES ('ast_old', 'default', 'v', 'scene', 1, 'scenes/scene_001.mp4', 'test', 12, 'x')")
    con.commit()
    con.close()

    reg = Registry(home / "ytap.db", home / "workspaces")
    try:
        [row] = reg.assets.current("default", "v")
        assert (row.asset_id, row.state, row.sha256) == ("ast_old", "ok", None)
        paths.scene(1).write_bytes(b"a new scene!")  # same size, changed after the first check
        os.utime(paths.scene(1), ns=(2, 2))  # another mtime, whatever the clock's granularity
        assert [(r.asset_id, r.state) for r in reg.assets.verify()] == [("ast_old", "damaged")]
    finally:
        reg.close()
