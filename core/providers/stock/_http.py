"""HTTP for the stock APIs (no vendor SDK exists: httpx, DESIGN §3), written once for the three.

::

    httpx / HTTP                                   core.errors
    ConnectError (DNS failure, refused, no route) -> Unavailable(retryable=False): offline; the next tier is free,
                                                     so fall through at once instead of retrying
    ConnectTimeout (packets dropped)               -> TimedOut(retryable=False), for the same reason
    TimeoutException                               -> TimedOut
    dropped before an answer                       -> Unavailable
    401 / 403, 400 about the key                   -> NotConfigured (the key was rejected: which variable to check)
    429                                            -> RateLimited(retry_after_s from Retry-After or X-Ratelimit-Reset)
    5xx                                            -> Unavailable
    other 4xx                                      -> Unavailable(retryable=False)
    malformed JSON                                 -> BadOutput
    a download cut short, empty, or too large      -> BadOutput
    more calls than the vendor allows per window   -> RateLimited, before any call is made

Messages name the vendor and the status, never a URL: Pixabay's key travels in the query string.
That key is added by :class:`QueryKeyTransport` below the client, so the URL httpx logs
("HTTP Request: GET ...") and every exception's request carry no key at all.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadOutput, NotConfigured, OperationCancelled, ProviderError, RateLimited, TimedOut, Unavailable
from core.providers._vendor import cancel_on, retry_after_s

if TYPE_CHECKING:
    import threading as _threading

    import httpx

__all__ = ["RateWindow", "client", "get_json", "download", "QueryKeyTransport"]

_MAX_JSON_BYTES = 8 * 2**20


class RateWindow:
    """At most ``calls`` per ``window_s`` seconds in this process (the vendor's documented limit), so a
    busy server is told to wait by us before the vendor has to."""

    def __init__(self, calls: int, window_s: float) -> None:
        self.calls = calls
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= self.window_s:
                self._times.popleft()
            if len(self._times) >= self.calls:
                wait = self.window_s - (now - self._times[0])
                raise RateLimited(f"{who}: {self.calls} searches in {self.window_s:g} s is its limit; the next is "
                                  f"allowed in {wait:.0f} s", retry_after_s=round(wait, 3))
            self._times.append(now)


def _query_key_transport() -> type:
    import httpx

    class _Transport(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport, name: str, value: str) -> None:
            self._inner, self._name, self._value = inner, name, value

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            keyed = httpx.Request(request.method, request.url.copy_add_param(self._name, self._value),
                                  headers=request.headers, stream=request.stream, extensions=request.extensions)
            return await self._inner.handle_async_request(keyed)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return _Transport


def QueryKeyTransport(name: str, value: str) -> Any:  # noqa: N802 - a class built on first use (httpx is lazy)
    """An httpx transport that adds ``name=value`` to the query of each request it sends, below the client."""
    import httpx

    return _query_key_transport()(httpx.AsyncHTTPTransport(trust_env=False), name, value)


def client(*, timeout_s: float, connect_timeout_s: float, headers: dict[str, str] | None = None,
           query_key: tuple[str, str] | None = None) -> httpx.AsyncClient:
    import httpx

    transport = QueryKeyTransport(*query_key) if query_key else None
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), trust_env=False,
                             follow_redirects=True, headers=headers or {}, transport=transport)


async def get_json(http: httpx.AsyncClient, url: str, params: dict[str, Any], *, who: str, key_env: str | None,
                   cancel: _threading.Event) -> Any:
    """GET ``url`` and parse its JSON body, every failure mapped (see the module's docstring)."""
    import json

    async with cancel_on(cancel, "stock search cancelled"):
        body = await _get(http, url, params, who=who, key_env=key_env, limit=_MAX_JSON_BYTES)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadOutput(f"{who} answered with malformed JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None


async def download(http: httpx.AsyncClient, url: str, out: Path, *, who: str, max_bytes: int,
                   cancel: _threading.Event) -> int:
    """Stream a clip into ``out``; its size. A body shorter than its Content-Length is BadOutput."""
    async with cancel_on(cancel, "stock download cancelled"):
        return await _get(http, url, {}, who=who, key_env=None, limit=max_bytes, into=out)


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any], *, who: str, key_env: str | None,
               limit: int, into: Path | None = None) -> Any:
    import httpx

    answered = False
    try:
        async with http.stream("GET", url, params=params) as response:
            answered = True
            if response.status_code != 200:
                text = (await response.aread())[:300].decode("utf-8", "replace")
                raise _status_error(response.status_code, text, response.headers, who=who, key_env=key_env)
            expected = int(response.headers.get("content-length") or 0)
            size, chunks = 0, []
            sink = into.open("wb") if into is not None else None
            try:
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise BadOutput(f"{who} sent more than {limit // 2**20} MB")
                    if sink is not None:
                        sink.write(chunk)
                    else:
                        chunks.append(chunk)
            finally:
                if sink is not None:
                    sink.close()
            if expected and size < expected:
                raise BadOutput(f"{who}: the download was cut short ({size} of {expected} bytes)")
            if into is not None:
                if size == 0:
                    raise BadOutput(f"{who}: the download is empty")
                return size
            return b"".join(chunks)
    except (ProviderError, OperationCancelled):
        raise
    except httpx.ConnectTimeout:
        # No answer to the connection at all (a firewall dropping packets, a dead route): asking again
        # would cost the same seconds per scene, and the next tier is free.
        raise TimedOut(f"{who} cannot be reached (no answer to the connection in time: offline or a firewall)",
                       retryable=False) from None
    except httpx.TimeoutException as exc:
        raise TimedOut(f"{who} did not answer in time ({type(exc).__name__})") from None
    except httpx.ConnectError as exc:
        raise Unavailable(f"{who} cannot be reached (offline, DNS failure or refused: {_short(exc)})",
                          retryable=False) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise NotConfigured(f"{who}: the base URL is not a usable http(s) URL") from None
    except httpx.HTTPError as exc:
        if answered:
            raise BadOutput(f"{who}: the answer was cut short ({type(exc).__name__})") from None
        raise Unavailable(f"{who}: the connection was dropped before an answer ({type(exc).__name__})") from None


def _short(exc: Exception) -> str:
    """An httpx connection error's cause in a few words, without the URL."""
    text = str(exc).split("\n")[0]
    return text[:120] if "://" not in text else type(exc).__name__


def _status_error(status: int, text: str, headers: Any, *, who: str, key_env: str | None) -> ProviderError:
    detail = " ".join(text.split())[:160]
    # Pixabay answers a bad key with 400 "[ERROR 400] Invalid or missing API key".
    if key_env and (status in (401, 403) or (status == 400 and "key" in detail.lower())):
        return NotConfigured(f"{who} rejected the key ({status}): check {key_env}")
    if status == 429:
        wait = retry_after_s(headers)
        if wait is None:  # Pexels: X-Ratelimit-Reset is the epoch second the quota refills
            reset = headers.get("x-ratelimit-reset")
            if reset and reset.strip().isdigit():
                wait = max(0.0, int(reset) - time.time())
        return RateLimited(f"{who} is rate limiting us (429)" + (f", retry after {wait:.0f} s" if wait else ""),
                           retry_after_s=wait)
    if status >= 500:
        return Unavailable(f"{who} failed ({status}{': ' + detail if detail else ''})")
    return Unavailable(f"{who} refused the request ({status}{': ' + detail if detail else ''})", retryable=False)
