"""A small real HTTP server on 127.0.0.1 for testing vendor SDKs over the wire.

The vendor SDKs use httpx2 (openai, google-genai) or httpx (elevenlabs); transport-patching
libraries do not see their traffic, so tests point the SDKs' base URLs at this server.
Each test scripts responses per route; every request is recorded (method, path, headers,
body) so tests can assert on the auth header actually sent. The server binds 127.0.0.1
on an ephemeral port, runs in a daemon thread and is shut down by the fixture.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Request", "Reply", "LoopbackServer", "loopback_server", "json_reply"]


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (timeouts)
    drop: bool = False  # close the connection without an answer
    truncate_to: int | None = None  # announce the full length, send only this many bytes


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    return Reply(status=status, body=json.dumps(obj).encode(), headers={"content-type": "application/json",
                                                                         **(headers or {})}, **kw)


Handler = Callable[[Request], Reply]


class LoopbackServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str], deque[Reply | Handler]] = defaultdict(deque)
        self._sticky: dict[tuple[str, str], Reply | Handler] = {}
        self._lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                req = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(req)
                reply = outer._reply_for(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                self.send_response(reply.status)
                headers = {"content-type": "application/octet-stream", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                payload = reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to]
                try:
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    pass
                if reply.truncate_to is not None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def route(self, method: str, path_regex: str, *replies: Reply | Handler, sticky: Reply | Handler | None = None
              ) -> None:
        """Queue replies for requests matching ``method`` and the full-path regex; ``sticky`` answers after."""
        key = (method.upper(), path_regex)
        with self._lock:
            self._routes[key].extend(replies)
            if sticky is not None:
                self._sticky[key] = sticky

    def _reply_for(self, req: Request) -> Reply:
        with self._lock:
            for (method, pattern), queue in list(self._routes.items()) + [(k, deque()) for k in self._sticky]:
                if method == req.method and re.fullmatch(pattern, req.path):
                    item = queue.popleft() if queue else self._sticky.get((method, pattern))
                    if item is None:
                        continue
                    return item(req) if callable(item) else item
        return json_reply({"error": {"message": f"no scripted reply for {req.method} {req.path}"}}, status=404)

    def calls(self, method: str, path_regex: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path_regex, r.path)]


@contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()
