"""HTTP transports (streamable HTTP and SSE), locked down.

- Bound to loopback (the default): DNS-rebinding protection on (Host and Origin must be
  loopback), so a web page in the user's browser cannot drive the server.
- Bound to anything else: refused unless a bearer token (``YTAP_HTTP_TOKEN``) and the
  list of allowed Host values (``--allowed-host`` / ``YTAP_HTTP_ALLOWED_HOSTS``) are set;
  every request must carry ``Authorization: Bearer <token>`` (compared in constant time).
- A token set on loopback is enforced too.
- Never JSON-response mode: it drops progress notifications, and long jobs live on them.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Iterator, Sequence
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_HOSTS", "HttpConfigError", "security_settings", "BearerTokenMiddleware", "build_http_app"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class HttpConfigError(ValueError):
    """The HTTP transport would be exposed without protection."""


def security_settings(host: str, token: str | None, allowed_hosts: Sequence[str]) -> TransportSecuritySettings:
    if host in LOOPBACK_HOSTS:
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *allowed_hosts]
        origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                         allowed_origins=origins)
    if not token:
        raise HttpConfigError(
            f"refusing to serve on {host} without YTAP_HTTP_TOKEN: bind 127.0.0.1, or set a bearer token"
        )
    if not allowed_hosts:
        raise HttpConfigError(
            f"refusing to serve on {host} without allowed hosts: pass --allowed-host HOST[:PORT] (repeatable) or set "
            "YTAP_HTTP_ALLOWED_HOSTS (comma-separated), the Host values clients will use"
        )
    hosts = [h if ":" in h else f"{h}:*" for h in allowed_hosts]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class BearerTokenMiddleware:
    """401 unless ``Authorization: Bearer <token>``; the token is never logged or echoed."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected):
            body = json.dumps({"error": "unauthorized", "message": "send Authorization: Bearer <YTAP_HTTP_TOKEN>"})
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="ytap-mcp"')]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


def build_http_app(server: Any, transport: str, *, host: str, token: str | None,
                   allowed_hosts: Sequence[str] = ()) -> ASGIApp:
    """The ASGI app for ``transport`` ("streamable-http" or "sse") with the protections above."""
    security = security_settings(host, token, allowed_hosts)
    if transport == "streamable-http":
        app = server.streamable_http_app(json_response=False, transport_security=security, host=host)
    elif transport == "sse":
        app = server.sse_app(transport_security=security, host=host)
    else:
        raise ValueError(f"not an HTTP transport: {transport}")
    return BearerTokenMiddleware(app, token) if token else app


async def serve_http(server: Any, transport: str, *, host: str, port: int, token: str | None,
                     allowed_hosts: Sequence[str] = (), log_level: str = "warning") -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        # `ytap-mcp serve` handles SIGTERM/SIGINT itself (cli.py): jobs cancelled, children
        # killed, out within 2 s. uvicorn's graceful wait for open requests (a job_status
        # long-poll lasts up to 50 s) would hold the process, then re-raise the signal.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    app = build_http_app(server, transport, host=host, token=token, allowed_hosts=allowed_hosts)
    # Keep-alive longer than the SDK client's pool (5 s): equal timeouts race, and a polling agent
    # would now and then send on a connection the server has just closed.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), lifespan="on",
                            timeout_keep_alive=75)
    await _Server(config).serve()

