"""The registry's database: the connection, its schema and migrations, transactions.

Everything that depends on which database holds the registry lives here; the stores
(:mod:`core.assets.asset_store`, ``job_store``, ``voice_store``, ``cache_store``) hold
only their tables' SQL, written once in a portable subset (``?`` placeholders, types
SQLite spells) and run unchanged on both backends, and reach the database only through
:meth:`Database.tx` and :meth:`Database.query`.

Two backends, one code path above this module:

- **SQLite** (the default): ``$YTAP_HOME/ytap.db``, one connection guarded by one lock (one
  writer at a time, from any thread), WAL so readers in other processes are not blocked, a
  busy timeout for the moments another process (a second server on the same home) holds
  the write lock. A write transaction is ``BEGIN IMMEDIATE``: every process's writers wait.
- **PostgreSQL** (``YTAP_DATABASE_URL=postgresql://…``, the ``[scale]`` extra: psycopg 3):
  the same schema with the types translated (``INTEGER`` -> ``BIGINT``, ``REAL`` ->
  ``DOUBLE PRECISION``, the attempts' id an identity column), the same migrations (columns
  found in ``information_schema``), and the same write lock: every write transaction first
  takes one transaction-scoped advisory lock, so writers on every machine are serialised
  exactly as ``BEGIN IMMEDIATE`` serialises them on one (what ``AssetStore.add`` relies on
  when it renames a file onto its slot inside the transaction). Reads run in autocommit and
  see every committed write; a read inside a transaction (same thread) sees its own writes.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import StorageError

__all__ = ["Database", "Row", "Tx", "utc_now"]

log = logging.getLogger(__name__)

# What a query hands the stores: rows read by column name (``dict(row)`` works on both backends).
Row = Mapping[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id      TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    video_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    scene_index   INTEGER,
    rel_path      TEXT NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT,
    cost_usd      REAL NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL,
    props_json    TEXT NOT NULL DEFAULT '{}',
    job_id        TEXT,
    current       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    sha256        TEXT,
    mtime_ns      INTEGER,
    inode         INTEGER,
    state         TEXT NOT NULL DEFAULT 'ok',
    archive_path  TEXT
);
CREATE INDEX IF NOT EXISTS assets_video ON assets (workspace_id, video_id, kind, current);

CREATE TABLE IF NOT EXISTS attempts (
    attempt_id    {serial},
    workspace_id  TEXT NOT NULL,
    video_id      TEXT NOT NULL,
    capability    TEXT NOT NULL,
    job_id        TEXT,
    asset_id      TEXT,
    provider      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT,
    error_code    TEXT,
    elapsed_s     REAL NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    decision      TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_video ON attempts (workspace_id, video_id);
CREATE INDEX IF NOT EXISTS attempts_asset ON attempts (asset_id);

CREATE TABLE IF NOT EXISTS cache (
    request_key   TEXT PRIMARY KEY,
    asset_id      TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    hits          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    workspace_id  TEXT,
    video_id      TEXT,
    status        TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT NOT NULL DEFAULT '',
    result_json   TEXT,
    error_json    TEXT,
    owner_pid     INTEGER NOT NULL,
    owner_token   TEXT,
    checkpoints_json TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Workspace voices (clone_voice): a name of the workspace -> a voice in a vendor account. A deleted
-- voice keeps its row (deleted_at set) so a narration asking for it is told it was deleted.
CREATE TABLE IF NOT EXISTS voices (
    workspace_id     TEXT NOT NULL,
    name             TEXT NOT NULL,
    provider         TEXT NOT NULL,
    vendor_voice_id  TEXT NOT NULL,
    description      TEXT,
    sample_uri       TEXT NOT NULL,
    sample_asset_id  TEXT,
    props_json       TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    deleted_at       TEXT,
    PRIMARY KEY (workspace_id, name)
);

-- Stock footage searches (core.providers.stock): a provider's answer to one query, kept 24 h (Pixabay's
-- caching rule; it also spares Pexels' hourly quota). The key names the provider, endpoint and query, never a key.
CREATE TABLE IF NOT EXISTS searches (
    search_key    TEXT PRIMARY KEY,
    body_json     TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- What a running job may spend on a paid vendor call, held until its attempts (and their real
-- costs) are recorded: the per-video budget holds across concurrent jobs and workers.
CREATE TABLE IF NOT EXISTS budget_holds (
    hold_id       {serial},
    job_id        TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    video_id      TEXT NOT NULL,
    provider      TEXT NOT NULL,
    usd           REAL NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_holds_video ON budget_holds (workspace_id, video_id);
"""

# Columns added after databases already existed: {table: ((name, declaration), ...)}.
_ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "assets": (
        ("sha256", "TEXT"),
        ("mtime_ns", "INTEGER"),
        ("inode", "INTEGER"),
        ("state", "TEXT NOT NULL DEFAULT 'ok'"),
        ("archive_path", "TEXT"),
    ),
    "jobs": (("owner_token", "TEXT"), ("checkpoints_json", "TEXT")),
}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Tx:
    """A transaction's connection as the stores see it: ``execute``/``executemany`` with ``?``
    placeholders, returning a cursor with ``fetchone``/``fetchall``/``rowcount``."""

    def __init__(self, conn: Any, backend: _Backend) -> None:
        self._db = conn
        self._backend = backend

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._db.execute(self._backend.sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        cur = self._db.cursor()
        cur.executemany(self._backend.sql(sql), [tuple(r) for r in rows])
        return cur


class _Backend:
    """What differs between the databases: connecting, opening a write transaction, DDL, placeholders."""

    name = ""
    errors: tuple[type[BaseException], ...] = ()
    serial = ""

    def connect(self) -> Any:
        raise NotImplementedError

    def create(self, conn: Any, sql: str) -> None:
        raise NotImplementedError

    def sql(self, sql: str) -> str:
        return sql

    def ddl(self, sql: str) -> str:
        return sql.replace("{serial}", self.serial)

    def broken(self, conn: Any) -> bool:
        return False

    @contextmanager
    def write(self, conn: Any) -> Iterator[None]:
        raise NotImplementedError
        yield

    def columns(self, tx: Tx, table: str) -> set[str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class _Sqlite(_Backend):
    name = "sqlite"
    errors = (sqlite3.Error,)
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def create(self, conn: sqlite3.Connection, sql: str) -> None:
        conn.executescript(sql)  # IF NOT EXISTS throughout; SQLite takes its write lock per statement

    @contextmanager
    def write(self, conn: sqlite3.Connection) -> Iterator[None]:
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock of every process on this file
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def columns(self, tx: Tx, table: str) -> set[str]:
        return {r["name"] for r in tx.execute(f"PRAGMA table_info({table})")}

    def describe(self) -> str:
        return f"sqlite {self.path}"


# The advisory lock every PostgreSQL write transaction takes first: the registry's one write lock.
_PG_WRITE_LOCK = zlib.crc32(b"ytap-registry-write") & 0x7FFFFFFF
_PLACEHOLDER = re.compile(r"\?")


class _Postgres(_Backend):
    name = "postgresql"
    serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise StorageError("YTAP_DATABASE_URL is a PostgreSQL URL but psycopg is not installed: "
                               "pip install 'ytap-mcp[scale]'") from None
        self._psycopg, self._dict_row = psycopg, dict_row
        self.errors = (psycopg.Error,)
        self.url = url

    def connect(self) -> Any:
        # No server-side prepared statements: a newer process adding a column (a rolling upgrade's
        # migration) would break every cached ``SELECT *`` plan of the processes still running.
        return self._psycopg.connect(self.url, autocommit=True, row_factory=self._dict_row, connect_timeout=10,
                                     prepare_threshold=None)

    def sql(self, sql: str) -> str:
        # The stores' SQL has no '%' and no '?' inside literals: each '?' is a parameter.
        return _PLACEHOLDER.sub("%s", sql)

    def ddl(self, sql: str) -> str:
        # Types as SQLite spells them, widened to what they hold here (byte counts, mtime in ns, money).
        sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", re.sub(r"\bINTEGER\b", "BIGINT", sql))
        return sql.replace("{serial}", self.serial)

    def create(self, conn: Any, sql: str) -> None:
        with self.write(conn):  # two processes creating the tables at once would collide in the catalog
            conn.execute(sql)

    def broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    @contextmanager
    def write(self, conn: Any) -> Iterator[None]:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
            yield

    def columns(self, tx: Tx, table: str) -> set[str]:
        rows = tx.execute("SELECT column_name FROM information_schema.columns"
                          " WHERE table_schema = current_schema() AND table_name = ?", (table,))
        return {r["column_name"] for r in rows}

    def describe(self) -> str:
        u = urlsplit(self.url)  # never the password
        return f"postgresql {u.hostname or 'localhost'}:{u.port or 5432}{u.path}"


class Database:
    """The registry's database. ``path``: the SQLite file (and, on PostgreSQL, where YTAP_HOME is,
    which a full disk is named by); ``url``: a ``postgresql://`` URL puts the registry there."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self._backend: _Backend = _Postgres(url) if url else _Sqlite(path)
        self.errors = self._backend.errors  # what the driver raises (a store lets it through)
        self._lock = threading.RLock()
        self._db: Any = None
        self._in_tx = False  # a write transaction is open (the connection is not replaced under it)
        try:
            self._backend.create(self._connection(), self._backend.ddl(_SCHEMA))
            with self.tx() as tx:  # under the write lock: two processes opening it at once do not both add a column
                self._add_columns(tx)
        except self.errors as exc:
            raise StorageError(f"cannot open the registry at {self.describe()}: {exc}") from exc

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    def describe(self) -> str:
        """Where the registry is, without credentials."""
        return self._backend.describe()

    def _connection(self) -> Any:
        if self._db is None or (not self._in_tx and self._backend.broken(self._db)):
            if self._db is not None:
                log.warning("the registry's connection was lost; reconnecting to %s", self.describe())
            self._db = self._backend.connect()
        return self._db

    def _add_columns(self, tx: Tx) -> None:
        """Bring an older database's tables up to this schema (inside the opening write transaction)."""
        for table, columns in _ADDED_COLUMNS.items():
            have = self._backend.columns(tx, table)
            for name, declaration in columns:
                if name not in have:
                    tx.execute(self._backend.ddl(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}"))

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A write transaction: it holds the registry's write lock (every process's) until it ends."""
        with self._lock:
            if self._in_tx:
                raise RuntimeError("a write transaction is already open on this thread")
            conn = self._connection()
            self._in_tx = True
            try:
                with self._backend.write(conn):
                    yield Tx(conn, self._backend)
            finally:
                self._in_tx = False

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """Rows of one read (inside this thread's transaction, if one is open: it sees its writes)."""
        with self._lock:
            return Tx(self._connection(), self._backend).execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
