"""Machinery every vendor adapter (openai, google, elevenlabs) needs, written once.

* :func:`retry_after_s` reads how long a vendor asked us to wait from its response
  headers (``retry-after-ms``, then ``Retry-After`` as seconds or an HTTP date). The
  adapters put the answer into ``RateLimited(retry_after_s=...)``; the chain decides what
  to do with it (core/providers/resilience.py). Vendor-specific fallbacks (Google's
  ``google.rpc.RetryInfo`` body) stay in their adapter and run when this returns None.
* :func:`cancel_on` and :func:`run_cancellable` cut a running vendor call short when
  ``ctx.cancel`` is set. ``ctx.cancel`` is a :class:`threading.Event` (set from another
  thread), which a coroutine cannot await, so a watcher polls it every
  :data:`CANCEL_POLL_S` and cancels the awaiting scope: the socket is closed at once
  instead of the request running on until its timeout.

Nothing here imports a vendor SDK.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import anyio

from core.assets.atomic import temp_path_for
from core.errors import OperationCancelled

__all__ = ["check_image", "CANCEL_POLL_S", "cancel_on", "parse_retry_after", "part_path", "retry_after_s",
           "run_cancellable"]

T = TypeVar("T")

#: How often a running call looks at its cancel event (seconds): the worst-case delay
#: between ``cancel.set()`` and the call being cut.
CANCEL_POLL_S = 0.05


# --- Retry-After --------------------------------------------------------------------------


def retry_after_s(headers: Mapping[str, str] | Any | None, *, now: float | None = None) -> float | None:
    """Seconds a vendor asked us to wait before asking again, from its response headers.

    ``retry-after-ms`` (OpenAI sends it) wins when it holds a usable number
    of milliseconds; otherwise ``Retry-After`` is read by :func:`parse_retry_after`
    (delay-seconds or an HTTP date). ``headers`` is anything with ``get`` (httpx/aiohttp
    headers, which ignore case) or a plain mapping, whose keys are then matched
    ignoring case; None or no usable header gives None. ``now`` (epoch seconds) is for tests.
    """
    millis = _delay(_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return parse_retry_after(_header(headers, "retry-after"), now=now)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """One ``Retry-After`` value in seconds: ``"120"`` (fractions accepted) or an HTTP date.

    A date in the past means "now" (0.0); a date without a zone is read as GMT, as HTTP
    dates are. A negative, infinite or NaN number, or text that is neither a number nor
    a date, gives None: the header says nothing usable and the chain backs off its own way.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):
        float(text)
        return _delay(text)  # a number: usable, or None when negative, infinite or NaN
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        at = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, at - (time.time() if now is None else now))


def _header(headers: Mapping[str, str] | Any | None, name: str) -> str | None:
    """The value of header ``name`` (lower-case), stripped; None when absent or empty."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):  # a plain dict keyed "Retry-After"
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    text = str(value).strip() if value is not None else ""
    return text or None


def _delay(text: str | None) -> float | None:
    """A non-negative, finite number from ``text``; None for anything else."""
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return max(0.0, number)  # -0.0 -> 0.0


# --- cancellation -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def cancel_on(cancel: threading.Event, message: str = "cancelled", *,
                    poll_s: float = CANCEL_POLL_S) -> AsyncIterator[None]:
    """Run the body of the ``async with`` block, cut short as soon as ``cancel`` is set.

    Raises :class:`~core.errors.OperationCancelled` (``message``) when ``cancel`` is set
    before the block starts (the body does not run), or is set by the time the block
    ends, however it ended: cut short at its next await (within ``poll_s``), failed, or
    finished. Otherwise an exception of the body comes out as itself, not wrapped in an
    ExceptionGroup. A cancellation from outside (the task itself being cancelled)
    propagates unchanged.
    """
    if cancel.is_set():
        raise OperationCancelled(message)
    error: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while not cancel.is_set():
                await anyio.sleep(poll_s)
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            yield
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            error = exc
        finally:
            tg.cancel_scope.cancel()  # stop the watcher
    if cancel.is_set():
        raise OperationCancelled(message)
    if error is not None:
        raise error


async def run_cancellable(fn: Callable[[], Awaitable[T]], cancel: threading.Event, message: str = "cancelled", *,
                          poll_s: float = CANCEL_POLL_S) -> T:
    """Await ``fn()`` under :func:`cancel_on`: cut short when ``cancel`` is set.

    ``fn`` is not called at all when ``cancel`` is already set. One difference from a bare
    ``cancel_on`` block: an answer that has already arrived is returned even if ``cancel``
    was set meanwhile. A vendor bills the answer it sent, so the caller keeps it (and its
    cost) and stops at its next check of ``cancel`` instead.
    """
    answer: list[T] = []
    try:
        async with cancel_on(cancel, message, poll_s=poll_s):
            answer.append(await fn())
    except OperationCancelled:
        if answer:
            return answer[0]
        raise
    return answer[0]


def check_image(data: bytes, who: str, *, cost_usd: float = 0.0, min_side_px: int = 64) -> tuple[int, int]:
    """Decode ``data`` fully (a truncated picture passes ``verify()`` alone) and return its size.

    Raises BadOutput naming ``who`` ("OpenAI's image") and carrying what the picture cost.
    """
    import io

    from PIL import Image

    from core.errors import BadOutput

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:  # verify() leaves the image unusable; decode it fully
            im.load()
            width, height = im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadOutput(f"{who} does not decode as an image ({type(exc).__name__})", cost_usd=cost_usd) from None
    if min(width, height) < min_side_px:
        raise BadOutput(f"{who} is only {width}x{height} pixels", cost_usd=cost_usd)
    return width, height


def part_path(out: Path, label: str, suffix: str) -> Path:
    """A hidden ``.part`` sibling of ``out`` for a vendor's intermediate media (a downloaded clip, a
    background picture): named like every temporary file, so a crash leaves nothing the start-up
    sweep would not remove."""
    return temp_path_for(out.with_name(f"{out.stem}.{label}{suffix}"))
