"""The one way tests wait for something they cannot be told about: ask again until it holds, with a deadline.

Prefer waiting on an event, a queue or a child's output when the code under test offers one; this is for state
read from outside (an HTTP answer, a process table, a counter). Shared with `bench/`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def until(what: str, probe: Callable[[], T | Awaitable[T]], deadline_s: float = 10.0, *,
                ok: Callable[[T], bool] = bool, interval_s: float = 0.02,
                retry: tuple[type[BaseException], ...] = ()) -> T:
    """Call `probe` (plain or async) until `ok(result)` holds and return that result. An exception in `retry`
    counts as a miss. At the deadline fail with an AssertionError naming `what` and the last result."""
    end = time.monotonic() + deadline_s
    last: Any = None
    while True:
        try:
            result = probe()
            if inspect.isawaitable(result):
                result = await result
        except retry as exc:
            last = exc
        else:
            if ok(result):      # type: ignore[arg-type]   # awaited above when it was awaitable
                return result   # type: ignore[return-value]
            last = result
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not met after {deadline_s} s; last: {last!r}")
        await asyncio.sleep(interval_s)


async def room_in_the_minute(needed_s: float) -> None:
    """Return once the calendar minute (the window the throttles count in, whisk/controller/throttle.py) has at least
    `needed_s` seconds left: requests a test counts against a per-minute limit must not straddle two windows."""
    while 60 - time.time() % 60 < needed_s:
        await asyncio.sleep(0.2)
