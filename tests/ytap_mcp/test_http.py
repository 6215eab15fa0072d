"""The HTTP transports as a real server process: streamable HTTP and SSE, locked down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_helpers import CONTRACT_TOOLS

TOKEN = "ytap-test-token-3f9a1c77e2b54d10"

pytestmark = pytest.mark.slow  # each case starts a server process (5-10 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(tmp_path: Path, transport: str, *, token: str | None = None, extra: list[str] = ()) -> Iterator[str]:
    port = _free_port()
    env = {"YTAP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "YTAP_LOG_LEVEL": "WARNING"}
    if token:
        env["YTAP_HTTP_TOKEN"] = token
    log = (tmp_path / f"server-{port}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "ytap_mcp", "serve", "--transport", transport, "--port", str(port),
                             *extra], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / f"server-{port}.log").read_text()
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_http_streamable_submit_then_poll_across_two_connections(tmp_path: Path) -> None:
    with _server(tmp_path, "streamable-http") as url:

        async def main() -> dict:
            async with Client(url + "/mcp") as first:
                tools = (await first.list_tools()).tools
                assert {t.name for t in tools} == CONTRACT_TOOLS
                env = (await first.call_tool("generate_scene", {"video_id": "h", "scene_index": 1, "prompt": "x",
                                                                "duration_s": 1, "wait_seconds": 0})).structured_content
                assert env["status"] in ("queued", "running")
            async with Client(url + "/mcp") as second:  # a new session polls the job the first one started
                while env["status"] in ("queued", "running"):
                    env = (await second.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 20})
                           ).structured_content
                return env

        env = anyio.run(main)
    assert env["status"] == "succeeded" and env["result"]["provider"] == "local:placeholder"


def test_http_streamable_relays_progress_notifications(tmp_path: Path) -> None:
    seen: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(p)

    with _server(tmp_path, "streamable-http") as url:

        async def main() -> None:
            async with Client(url + "/mcp") as client:
                await client.call_tool("generate_scene", {"video_id": "p", "scene_index": 1, "prompt": "x",
                                                          "duration_s": 3, "wait_seconds": 30},
                                       progress_callback=on_progress)

        anyio.run(main)
    assert seen and seen == sorted(seen)


def test_http_dns_rebinding_foreign_host_and_origin_refused(tmp_path: Path) -> None:
    with _server(tmp_path, "streamable-http") as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        foreign_host = httpx.post(url + "/mcp", json=body, headers={**headers, "host": "evil.example:80"})
        foreign_origin = httpx.post(url + "/mcp", json=body, headers={**headers, "origin": "http://evil.example"})
    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403


def test_http_token_required_when_set(tmp_path: Path) -> None:
    with _server(tmp_path, "streamable-http", token=TOKEN) as url:
        anonymous = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                               headers={"accept": "application/json, text/event-stream"})
        wrong = httpx.post(url + "/mcp", json={}, headers={"authorization": "Bearer nope"})

        async def main() -> set[str]:
            async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
                async with streamable_http_client(url + "/mcp", http_client=http) as (read, write, *_):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        return {t.name for t in (await session.list_tools()).tools}

        names = anyio.run(main)
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert TOKEN not in anonymous.text
    assert names == CONTRACT_TOOLS


def test_http_sse_transport_serves_the_tools(tmp_path: Path) -> None:
    with _server(tmp_path, "sse") as url:

        async def main() -> set[str]:
            async with sse_client(url + "/sse") as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    report = await session.call_tool("provider_report", {})
                    assert not report.is_error
                    return {t.name for t in (await session.list_tools()).tools}

        assert anyio.run(main) == CONTRACT_TOOLS


@pytest.mark.parametrize(("env_token", "extra", "needle"), [
    (None, [], "YTAP_HTTP_TOKEN"),
    (TOKEN, [], "allowed hosts"),
])
def test_http_beyond_loopback_refused_without_protection(tmp_path: Path, env_token: str | None, extra: list[str],
                                                         needle: str) -> None:
    env = {"YTAP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    if env_token:
        env["YTAP_HTTP_TOKEN"] = env_token
    proc = subprocess.run([sys.executable, "-m", "ytap_mcp", "serve", "--transport", "streamable-http", "--host",
                           "0.0.0.0", "--port", str(_free_port()), *extra], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and needle in proc.stderr
