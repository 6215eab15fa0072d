"""The registry on PostgreSQL: what the SQLite-only tests check, checked here the PostgreSQL way,
and what only a shared database adds (the write lock across connections, the URL's password)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from core.assets import Registry
from core.assets.db import Database
from core.config import Settings
from core.errors import StorageError
from core.runtime import Runtime
from tests.scaleout.services import PostgresCluster


@pytest.fixture
def url(pg_cluster: PostgresCluster) -> str:
    return pg_cluster.new_database()


def test_postgres_runtime_from_the_contract_variable_keeps_no_sqlite_file(tmp_path: Path, url: str) -> None:
    rt = Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), "YTAP_DATABASE_URL": url}))
    try:
        assert rt.registry.db.backend == "postgresql"
        assert rt.registry.db.describe().startswith("postgresql 127.0.0.1:")
        job = rt.registry.jobs.create("job_00000000000000000001", "generate_scene", "default", "v1")
        assert job.status == "queued"
    finally:
        rt.close()
    assert not list((tmp_path / "home").glob("ytap.db*"))
    with psycopg.connect(url) as con:  # the row is in PostgreSQL, where another machine reads it
        assert con.execute("SELECT status FROM jobs").fetchall() == [("queued",)]


def test_postgres_interrupted_jobs_reported_failed_after_restart(tmp_path: Path, url: str) -> None:
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    reg.jobs.create("job_00000000000000000001", "generate_scene", "default", "v1")
    reg.jobs.update("job_00000000000000000001", status="running")
    with psycopg.connect(url) as con:  # as if a process long gone (on this machine) had owned it
        con.execute("UPDATE jobs SET owner_pid = 999999999")
    reg.close()
    reg2 = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    assert reg2.jobs.mark_interrupted() == 1
    job = reg2.jobs.get("job_00000000000000000001")
    assert job.status == "failed" and job.error and job.error["code"] == "interrupted"
    reg2.close()


def test_postgres_jobs_of_another_machine_are_never_called_interrupted(tmp_path: Path, url: str) -> None:
    """A pid from another host cannot be checked here: its job stays as it is (the host tag says whose)."""
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    reg.jobs.create("job_00000000000000000001", "generate_scene", "default", "v1")
    with reg.db.tx() as db:
        db.execute("UPDATE jobs SET owner_pid = 999999999, owner_token = '0123abcd~feedf00d'")
    assert reg.jobs.mark_interrupted() == 0
    assert reg.jobs.live("default", "v1") == ["job_00000000000000000001"]
    reg.close()


def test_postgres_write_transactions_are_serialised_across_connections(tmp_path: Path, url: str) -> None:
    """Two connections (two processes or machines): the second writer waits for the first's commit,
    as BEGIN IMMEDIATE makes it wait on SQLite."""
    a, b = Database(tmp_path / "a.db", url), Database(tmp_path / "b.db", url)
    inside = threading.Event()
    order: list[str] = []

    def first() -> None:
        with a.tx():
            inside.set()
            time.sleep(0.5)
            order.append("a-commit")

    t = threading.Thread(target=first)
    t.start()
    inside.wait(5)
    started = time.monotonic()
    with b.tx():
        order.append("b-begin")
    waited = time.monotonic() - started
    t.join()
    assert order == ["a-commit", "b-begin"] and waited >= 0.3
    a.close(), b.close()


def test_postgres_schema_migrates_an_older_database(tmp_path: Path, url: str) -> None:
    with psycopg.connect(url) as con:  # the jobs table as the first version made it
        con.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, workspace_id TEXT, video_id TEXT,"
                    " status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL DEFAULT 0, message TEXT NOT NULL"
                    " DEFAULT '', result_json TEXT, error_json TEXT, owner_pid BIGINT NOT NULL, created_at TEXT NOT NULL,"
                    " updated_at TEXT NOT NULL)")
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    assert reg.jobs.create("job_00000000000000000001", "k", None, None).owner_token
    reg.close()
    with psycopg.connect(url) as con:
        cols = {r[0]: r[1] for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name IN ('assets', 'jobs')")}
    assert "owner_token" in cols and cols["mtime_ns"] == "bigint" and cols["cost_usd"] == "double precision"


def test_postgres_password_never_in_errors_or_settings(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    bad = f"postgresql://postgres:Sup3rSecretPw@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(StorageError) as err:
        Registry(tmp_path / "ytap.db", tmp_path / "workspaces", bad)
    assert "Sup3rSecretPw" not in str(err.value) and "no_such_database" in str(err.value)
    settings = Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_DATABASE_URL": bad})
    assert "Sup3rSecretPw" in settings.secrets() and "Sup3rSecretPw" not in repr(settings)
    with pytest.raises(ValueError, match="postgresql://"):
        Settings.from_env({"YTAP_HOME": str(tmp_path), "YTAP_DATABASE_URL": "mysql://x"})


def test_postgres_numbers_keep_their_range(tmp_path: Path, url: str) -> None:
    """mtime in ns and sizes past 2 GiB fit (SQLite's INTEGER is 64-bit: so is the column here)."""
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    reg.jobs.create("job_00000000000000000001", "k", None, None)
    reg.jobs.update("job_00000000000000000001", progress=0.123456789012)
    assert reg.jobs.get("job_00000000000000000001").progress == 0.123456789012
    with reg.db.tx() as db:
        db.execute("UPDATE jobs SET owner_pid=? WHERE job_id=?", (1_733_000_000_000_000_000, "job_00000000000000000001"))
    assert reg.jobs.get("job_00000000000000000001").owner_pid == 1_733_000_000_000_000_000
    reg.close()


def test_postgres_doctor_says_where_the_registry_is_and_that_it_answers(tmp_path: Path,
                                                                        pg_cluster: PostgresCluster) -> None:
    import os
    import subprocess
    import sys

    url = pg_cluster.new_database().replace("postgres@", "postgres:Doct0rSecretPw@")
    env = {**os.environ, "YTAP_HOME": str(tmp_path / "home"), "YTAP_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "ytap_mcp", "doctor"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2])
    lines = [ln for ln in done.stdout.splitlines() if ln.strip().startswith(("registry", "jobs"))]
    assert lines[0].split()[1:4] == ["postgresql", f"127.0.0.1:{pg_cluster.port}/{url.rsplit('/', 1)[1]}", "(answers)"]
    assert "in this process" in lines[1]
    assert "Doct0rSecretPw" not in done.stdout + done.stderr
    env["YTAP_DATABASE_URL"] = f"postgresql://postgres:Doct0rSecretPw@127.0.0.1:{pg_cluster.port}/missing_db"
    down = subprocess.run([sys.executable, "-m", "ytap_mcp", "doctor"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2])
    assert down.returncode == 1 and "registry       NOT AVAILABLE" in down.stdout
    assert "Doct0rSecretPw" not in down.stdout + down.stderr


def test_postgres_a_column_added_by_a_newer_process_does_not_break_a_running_one(tmp_path: Path, url: str) -> None:
    """A rolling upgrade: a new process migrates the schema while an older one keeps reading ``SELECT *``."""
    reg = Registry(tmp_path / "ytap.db", tmp_path / "workspaces", url)
    reg.jobs.create("job_00000000000000000001", "k", None, None)
    for _ in range(8):  # past psycopg's threshold for preparing a statement on the server
        reg.jobs.get("job_00000000000000000001")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE jobs ADD COLUMN added_later TEXT")
    assert reg.jobs.get("job_00000000000000000001").status == "queued"
    reg.close()
