"""Provider concurrency limits across every process on one PostgreSQL registry.

Temporal's task-queue limits are rates (tasks per second), not "at most N at once"; a vendor's
limit is the latter. So each provider has N slots, each a PostgreSQL session advisory lock
(key: the provider id's hash, the slot's number) taken on a connection of its own for the
length of the call: a worker that dies loses its connection and the slot with it, so a
crash never leaks one. A call waits (polling every 0.2-0.5 s) until one of the N is free.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["PostgresSlots"]


class PostgresSlots:
    def __init__(self, url: str) -> None:
        self.url = url

    def _take(self, key: int, limit: int) -> Any | None:
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        try:
            for n in random.sample(range(limit), limit):
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (key, n)).fetchone()[0]:
                    return conn
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    @asynccontextmanager
    async def slot(self, provider_id: str, limit: int) -> AsyncIterator[None]:
        key = zlib.crc32(provider_id.encode()) & 0x7FFFFFFF
        while (conn := await anyio.to_thread.run_sync(self._take, key, limit)) is None:
            await anyio.sleep(0.2 + 0.3 * random.random())
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(conn.close)  # the session ends: its lock is released
