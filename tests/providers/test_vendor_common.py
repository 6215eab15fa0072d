"""core.providers._vendor: Retry-After parsing and the cancel watcher the vendor adapters share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from core.errors import OperationCancelled, Unavailable
from core.providers._vendor import CANCEL_POLL_S, cancel_on, parse_retry_after, retry_after_s, run_cancellable

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC).timestamp()
IN_30_S = "Sat, 14 Mar 2026 12:00:30 GMT"
MAX_CANCEL_LATENCY_S = 0.2


# --- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "12"}, 12.0),
    ({"retry-after": " 7 "}, 7.0),
    ({"retry-after": "0.2"}, 0.2),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the precise one wins
    ({"retry-after-ms": "0", "retry-after": "9"}, 0.0),
    ({"retry-after": IN_30_S}, 30.0),
    ({"retry-after": "Sat, 14 Mar 2026 11:00:00 GMT"}, 0.0),  # a date in the past: now
    ({"retry-after": "Sat, 14 Mar 2026 13:00:30 +0100"}, 30.0),
    ({"retry-after": "Sat, 14 Mar 2026 12:00:30 -0000"}, 30.0),  # no zone: HTTP dates are GMT
], ids=lambda v: repr(v))
def test_retry_after_reads_seconds_milliseconds_and_http_dates(headers: dict[str, str], expected: float) -> None:
    assert retry_after_s(headers, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["-5", "-0.5", "soon", "nan", "inf", "-inf", "1e999", "5 s", "Sat, 99 Foo 2026",
                                   "", "   "])
def test_retry_after_garbage_and_negatives_say_nothing(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None
    assert retry_after_s({"retry-after": value}, now=NOW) is None


@pytest.mark.parametrize("millis", ["-100", "soon", "nan", "inf", "", IN_30_S])
def test_retry_after_unusable_milliseconds_fall_back_to_retry_after(millis: str) -> None:
    assert retry_after_s({"retry-after-ms": millis, "retry-after": "9"}, now=NOW) == 9.0
    assert retry_after_s({"retry-after-ms": millis}, now=NOW) is None


@pytest.mark.parametrize("headers", [None, {}, {"content-type": "application/json"}, httpx.Headers()])
def test_retry_after_absent(headers: Any) -> None:
    assert retry_after_s(headers) is None


def test_retry_after_header_names_ignore_case() -> None:
    assert retry_after_s({"Retry-After": "3"}) == 3.0  # a plain dict (ElevenLabs' ApiError.headers)
    assert retry_after_s({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after_s(httpx.Headers({"Retry-After": "4", "RETRY-AFTER-MS": "500"})) == 0.5


def test_retry_after_http_date_is_relative_to_the_clock() -> None:
    date = format_datetime(datetime.fromtimestamp(time.time() + 30, UTC), usegmt=True)
    assert 25 <= (retry_after_s({"retry-after": date}) or 0) <= 31


def test_parse_retry_after_none() -> None:
    assert parse_retry_after(None) is None


# --- the cancel watcher ---------------------------------------------------------------------


class _Slow:
    """An awaitable call that takes ``seconds`` and records whether it was cut short."""

    def __init__(self, seconds: float = 10.0, value: Any = "done") -> None:
        self.seconds, self.value = seconds, value
        self.calls = 0
        self.cut_short = False

    async def __call__(self) -> Any:
        self.calls += 1
        try:
            await anyio.sleep(self.seconds)
        except BaseException:
            self.cut_short = True
            raise
        return self.value


def _set_later(event: threading.Event, delay_s: float) -> list[float]:
    """Set ``event`` from another thread after ``delay_s``; the list receives the moment it was set."""
    when: list[float] = []

    def fire() -> None:
        when.append(time.monotonic())
        event.set()

    threading.Timer(delay_s, fire).start()
    return when


def _cancelled_within(run: Callable[[], Any], cancel: threading.Event) -> tuple[OperationCancelled, float]:
    """Run ``run`` while another thread sets ``cancel``; the error and how long after the set it came."""
    set_at = _set_later(cancel, 0.1)
    with pytest.raises(OperationCancelled) as info:
        anyio.run(run)
    return info.value, time.monotonic() - set_at[0]


def test_run_cancellable_returns_the_value_when_not_cancelled() -> None:
    call = _Slow(0.01, value={"answer": 42})
    assert anyio.run(run_cancellable, call, threading.Event()) == {"answer": 42}
    assert call.calls == 1 and not call.cut_short


def test_run_cancellable_cuts_an_awaitable_in_flight_when_the_event_is_set() -> None:
    call, cancel = _Slow(10.0), threading.Event()
    error, latency = _cancelled_within(lambda: run_cancellable(call, cancel, "speech synthesis cancelled"), cancel)
    assert latency < MAX_CANCEL_LATENCY_S
    assert call.cut_short
    assert error.message == "speech synthesis cancelled"


def test_run_cancellable_does_not_start_a_call_already_cancelled() -> None:
    call, cancel = _Slow(), threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelled, match="^cancelled$"):
        anyio.run(run_cancellable, call, cancel)
    assert call.calls == 0


def test_run_cancellable_raises_the_calls_own_error_unwrapped() -> None:
    boom = Unavailable("the vendor is down")

    async def failing() -> None:
        await anyio.sleep(0)
        raise boom

    with pytest.raises(Unavailable) as info:
        anyio.run(run_cancellable, failing, threading.Event())
    assert info.value is boom  # not an ExceptionGroup around it


def test_run_cancellable_keeps_an_answer_that_arrived_as_the_event_was_set() -> None:
    cancel = threading.Event()

    async def answered_then_cancelled() -> str:
        await anyio.sleep(0)
        cancel.set()  # e.g. set while the (billed) answer was being read
        return "billed answer"

    assert anyio.run(run_cancellable, answered_then_cancelled, cancel) == "billed answer"


def test_run_cancellable_lets_an_outer_cancellation_through() -> None:
    call = _Slow(10.0)

    async def main() -> bool:
        with anyio.move_on_after(0.1) as scope:
            await run_cancellable(call, threading.Event())
        return scope.cancelled_caught

    assert anyio.run(main) is True and call.cut_short


def test_cancel_on_cuts_the_block_short_when_the_event_is_set() -> None:
    call, cancel = _Slow(10.0), threading.Event()
    reached_end: list[bool] = []

    async def body() -> None:
        async with cancel_on(cancel, "scene 3 generation cancelled"):
            await call()
            reached_end.append(True)

    error, latency = _cancelled_within(body, cancel)
    assert latency < MAX_CANCEL_LATENCY_S
    assert call.cut_short and reached_end == []
    assert error.message == "scene 3 generation cancelled"


def test_cancel_on_lets_a_block_finish_and_raises_its_errors_unwrapped() -> None:
    cancel = threading.Event()

    async def finishes() -> str:
        async with cancel_on(cancel):
            await anyio.sleep(CANCEL_POLL_S * 2)  # the watcher polls meanwhile
        return "finished"

    assert anyio.run(finishes) == "finished"

    boom = Unavailable("dropped")

    async def fails() -> None:
        async with cancel_on(cancel):
            await anyio.sleep(0)
            raise boom

    with pytest.raises(Unavailable) as info:
        anyio.run(fails)
    assert info.value is boom


def test_cancel_on_reports_cancelled_whenever_the_event_was_set_by_the_end() -> None:
    cancel = threading.Event()
    ran: list[str] = []

    async def sets_it_then_fails() -> None:
        async with cancel_on(cancel, "thumbnail generation cancelled"):
            ran.append("body")
            cancel.set()
            raise Unavailable("a failure caused by the cancellation")

    with pytest.raises(OperationCancelled, match="thumbnail generation cancelled"):
        anyio.run(sets_it_then_fails)
    assert ran == ["body"]

    async def already_cancelled() -> None:
        async with cancel_on(cancel):
            ran.append("body again")

    with pytest.raises(OperationCancelled):
        anyio.run(already_cancelled)
    assert ran == ["body"]  # a block cancelled before it starts does not run


@pytest.mark.parametrize(("label", "suffix"), [("veo", ".mp4"), ("gemini", ".png"), ("gemini-tts", "")])
def test_part_path_leftovers_are_swept_at_start(tmp_path: Path, label: str, suffix: str) -> None:
    """A vendor's intermediate beside a staged output is a .part of this process: kept while it runs, swept once
    its writer is gone."""
    import os

    from core.assets.atomic import partial_writer_pid, sweep_partials, temp_path_for
    from core.providers._vendor import part_path

    out = temp_path_for(tmp_path / "thumbnail.jpg")  # what a service hands a provider
    raw = part_path(out, label, suffix)
    assert raw.parent == tmp_path and raw.name.startswith(".") and partial_writer_pid(raw.name) == os.getpid()
    if suffix:
        raw.write_bytes(b"x")
    else:
        raw.mkdir()  # Gemini TTS keeps its segments in a folder
    assert sweep_partials(tmp_path) == 0 and raw.exists()  # its writer (this process) is alive
    left = raw.rename(raw.with_name(raw.name.replace(f".{os.getpid()}-", ".999999999-")))  # as a dead writer left it
    assert partial_writer_pid(left.name) == 999999999
    assert sweep_partials(tmp_path) == 1 and list(tmp_path.iterdir()) == []
