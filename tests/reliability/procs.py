"""Real ytap-mcp server processes for the crash, concurrency and secrets suites.

Each server is ``python -m ytap_mcp serve --transport streamable-http`` on a free loopback
port, in its own session (so ``os.killpg`` takes its ffmpeg children with it), with a
private environment: nothing from the developer's shell (keys, proxies) leaks in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

REPO = Path(__file__).resolve().parents[2]

__all__ = ["ServerProc", "start_server", "running_server", "kill9", "free_port", "connect", "http_client", "call",
           "finish", "integrity", "hidden_leftovers"]

# uvicorn closes an idle keep-alive connection after 5 s (timeout_keep_alive), and httpx2's pool
# reuses one for up to 5 s (keepalive_expiry): a request sent on a connection the server is
# closing at that instant fails with ReadError, a known race of equal timeouts. The server
# should keep connections longer than clients do (ytap_mcp/http.py: timeout_keep_alive); until
# it does, these clients let idle connections go first, so the suites test ytap, not the race.
CLIENT_KEEPALIVE_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_server(home: Path, log: Path, *, env: dict[str, str] | None = None, port: int | None = None) -> ServerProc:
    port = port or free_port()
    full_env = {"YTAP_HOME": str(home), "PATH": "/usr/bin:/bin", "YTAP_LOG_LEVEL": "WARNING",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ytap_mcp", "serve", "--transport", "streamable-http", "--port", str(port)],
        env=full_env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True, cwd=str(REPO),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return ServerProc(proc, port, log)
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"server exited at start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
    kill9(ServerProc(proc, port, log))
    raise AssertionError("server did not start in 30 s")


def kill9(server: ServerProc) -> None:
    """SIGKILL the server's whole process group (its ffmpeg children too), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)


def stop(server: ServerProc) -> None:
    if server.alive():
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill9(server)


@contextlib.contextmanager
def running_server(home: Path, log: Path, **kw: Any) -> Iterator[ServerProc]:
    server = start_server(home, log, **kw)
    try:
        yield server
    finally:
        if server.alive():
            kill9(server)


def http_client(headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    """The MCP SDK's own HTTP client settings, with idle connections dropped before the server drops them."""
    timeout = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=CLIENT_KEEPALIVE_S)
    return httpx2.AsyncClient(headers=headers, timeout=timeout, limits=limits)


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[Client]:
    """An MCP client session over streamable HTTP to ``url`` (see CLIENT_KEEPALIVE_S)."""
    async with http_client() as http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


async def finish(client: Client, env: dict[str, Any], *, deadline_s: float = 120) -> dict[str, Any]:
    """Poll a job envelope until it ends; return the final envelope."""
    with anyio.fail_after(deadline_s):
        while env["status"] in ("queued", "running"):
            env = await call(client, "job_status", {"job_id": env["job_id"], "wait_seconds": 20})
    return env


def integrity(db: Path) -> str:
    """SQLite's own verdict on the registry file (opened fresh, as a restarted server would)."""
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def hidden_leftovers(root: Path) -> list[str]:
    """Hidden files or folders (temporary names, scratch folders) anywhere under ``root``."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))
