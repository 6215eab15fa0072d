"""What a failure tells the agent: one sentence in our words; ffmpeg's log goes to the server's log.

Issue 20, finding 4. The disk-full cases use real full disks: ``/dev/full`` (every write
fails with ENOSPC, no privileges needed), SQLite's own SQLITE_FULL (``max_page_count``),
and, where this process may mount one (root), a 3 MB tmpfs under a whole job.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from PIL import Image

from core.config import Settings
from core.jobs import JobHandle
from core.errors import DiskFull, InputError, MediaError, is_disk_full
from core.media.ffmpeg import ffmpeg_exe, run_ffmpeg


def _assert_one_plain_sentence(msg: str) -> None:
    assert "\n" not in msg, msg
    assert not re.search(r"0x[0-9a-f]{6,}", msg) and " @ " not in msg, msg  # no addresses, no ffmpeg contexts
    assert len(msg) < 400, len(msg)


def _huge_jpeg(path: Path) -> Path:
    """A 64x64 JPEG whose header claims 60000x60000 (what an agent might hand to import_asset)."""
    Image.new("RGB", (64, 64), "red").save(path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = bytes([0xEA, 0x60, 0xEA, 0x60])
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30", "-t", "3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", str(out)], check=True,
                   capture_output=True)
    return out


def test_run_ffmpeg_failure_is_one_sentence_naming_the_input(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    big = _huge_jpeg(tmp_path / "huge.jpg")
    with caplog.at_level(logging.INFO, logger="core.media.ffmpeg"):  # the server logs INFO by default
        with pytest.raises(MediaError) as err:
            run_ffmpeg(["-i", str(big), "-f", "null", "-"], what="normalising the clip")
    msg = err.value.message
    _assert_one_plain_sentence(msg)
    assert msg.startswith("normalising the clip failed: huge.jpg is 60000x60000 px"), msg
    assert "at most 8192 px" in msg  # what to change
    # ffmpeg's own words are kept, in the server's log.
    assert "Picture size 60000x60000 is invalid" in caplog.text


def test_run_ffmpeg_names_the_corrupt_one_of_two_inputs(tmp_path: Path, clip: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:800])  # cut inside its sample table: it cannot be opened
    with pytest.raises(MediaError) as err:
        run_ffmpeg(["-i", str(clip), "-i", str(cut), "-f", "null", "-"], what="assembly")
    msg = err.value.message
    _assert_one_plain_sentence(msg)
    assert "cut.mp4 is truncated or corrupt" in msg and "clip.mp4" not in msg, msg


def test_run_ffmpeg_missing_filter_is_a_setup_problem() -> None:
    with pytest.raises(MediaError) as err:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2", "-vf", "no_such_filter_here", "-f", "null", "-"], what="assembly")
    msg = err.value.message
    _assert_one_plain_sentence(msg)
    assert "has no filter 'no_such_filter_here'" in msg and "YTAP_FFMPEG" in msg, msg


def test_run_ffmpeg_disk_full_is_named_with_folder_and_free_space() -> None:
    # /dev/full: every write fails with ENOSPC, a real full disk as far as ffmpeg can tell.
    with pytest.raises(DiskFull) as err:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64", "-t", "1", "-f", "mp4", "/dev/full"], what="assembly")
    msg = err.value.message
    _assert_one_plain_sentence(msg)
    assert err.value.code == "disk_full"
    assert "the disk holding /dev is full" in msg and " free)" in msg and "YTAP_HOME" in msg, msg
    assert "No space left on device" not in msg


def test_disk_full_is_recognised_from_python_and_sqlite(tmp_path: Path) -> None:
    with pytest.raises(OSError) as os_err:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 8192)
            fh.flush()
    assert is_disk_full(os_err.value)
    db = sqlite3.connect(tmp_path / "tiny.db")
    db.execute("PRAGMA max_page_count=2")  # SQLITE_FULL from SQLite itself
    with pytest.raises(sqlite3.OperationalError) as sql_err:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert "database or disk is full" in str(sql_err.value) and is_disk_full(sql_err.value)
    assert not is_disk_full(sqlite3.OperationalError("no such table: t")) and not is_disk_full(ValueError("x"))


def test_progress_sink_failure_costs_no_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A progress sink that raises (the registry on a full disk) never kills its thread with a traceback."""
    crashed: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)  # type: ignore[assignment]
    calls = 0

    def sink(_fraction: float) -> None:
        nonlocal calls
        calls += 1
        raise sqlite3.OperationalError("database or disk is full")

    try:
        with caplog.at_level(logging.WARNING, logger="core.media.ffmpeg"):
            run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64:r=30", "-t", "2", "-f", "null", "-"],
                       duration_s=2.0, on_progress=sink, what="a test encode")
    finally:
        threading.excepthook = old_hook
    assert not crashed
    assert calls == 1  # it stopped asking after the first failure
    assert [r.getMessage() for r in caplog.records] == [
        "a test encode: progress reports stopped: OperationalError: database or disk is full"]


# --- a whole job on a real full disk (a tmpfs; needs the right to mount) --------------------


@pytest.fixture
def full_home(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root); /dev/full and SQLITE_FULL cover the rest")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_job_on_a_full_disk_says_so_without_tracebacks(full_home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from core.runtime import Runtime
    from core.schemas import SceneRequest
    from core.services import scenes

    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(full_home / "home")}))
    try:
        filler = full_home / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        os.truncate(filler, filler.stat().st_size - 200_000)  # room for the registry to start, not for a clip
        req = SceneRequest(video_id="v", scene_index=1, prompt="a calm lake", duration_s=4)
        job_id = rt.jobs.submit("generate_scene", lambda h: scenes.generate_scene(rt, scenes.prepare(rt, req), h))
        env = anyio.run(rt.jobs.wait, job_id, 45.0)
    finally:
        rt.close()
    assert env.status == "failed" and env.error is not None
    assert env.error.code == "disk_full", env.error
    _assert_one_plain_sentence(env.error.message)
    assert f"the disk holding {full_home}" in env.error.message and " free)" in env.error.message
    err = capfd.readouterr().err
    assert "Traceback" not in err, err



def test_job_failing_on_a_full_disk_is_named_not_an_internal_error(runtime, capfd: pytest.CaptureFixture[str]) -> None:
    """OSError ENOSPC from our own writes, SQLITE_FULL from the registry: ``disk_full``, and no traceback
    even though the registry cannot record the failure either (the state stays in memory)."""

    async def write_to_full(_h):
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 65536)
            fh.flush()

    job_id = runtime.jobs.submit("generate_scene", write_to_full)
    env = anyio.run(runtime.jobs.wait, job_id, 10.0)
    home = runtime.registry.db.path.parent  # a write error names no file: the disk of YTAP_HOME
    assert env.status == "failed" and env.error is not None and env.error.code == "disk_full", env
    assert env.error.message.startswith(f"the disk holding {home} is full ("), env.error.message

    db = runtime.registry.db._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]

    async def registry_full(h):
        db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own SQLITE_FULL from here on
        h.progress(0.5, "x" * 20000)  # persisting this fails: logged, the job goes on
        runtime.registry.jobs.update(h.job_id, message="y" * 20000)  # this failure ends the job

    job_id = runtime.jobs.submit("generate_scene", registry_full)
    env = anyio.run(runtime.jobs.wait, job_id, 10.0)
    assert env.status == "failed" and env.error is not None and env.error.code == "disk_full", env
    assert env.error.message.startswith(f"the disk holding {home} is full ("), env.error.message
    _assert_one_plain_sentence(env.error.message)
    assert "Traceback" not in capfd.readouterr().err


def test_import_of_a_truncated_mp4_says_truncated_not_still_image(tmp_path: Path, clip: Path) -> None:
    from core.runtime import Runtime
    from core.services import imports

    root = (tmp_path / "in").resolve()
    root.mkdir()
    (root / "cut.mp4").write_bytes(clip.read_bytes()[:3500])  # whole header, the media data cut off
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_IMPORT_ROOTS": str(root)}))
    try:
        with pytest.raises(InputError) as err:  # the agent can fix it
            plan = imports.prepare(rt, imports.ImportRequest(workspace_id="default", video_id="v", source="cut.mp4",
                                                             kind="scene", scene_index=1))
            anyio.run(imports.import_asset, rt, plan, JobHandle(job_id="job_" + "a" * 20, kind="import_asset"))
    finally:
        rt.close()
    msg = err.value.message
    _assert_one_plain_sentence(msg)
    assert "still image" not in msg and "cut.mp4 is truncated" in msg, msg
