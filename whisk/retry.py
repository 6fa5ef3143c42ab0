"""Trying a write again while its backend is unavailable, until a deadline: the one way whisk waits out a store or a
bus that is away for a while, where giving up at the first failure would lose an activation's record or leave its
controller holding a slot until the ack timeout (docs/architecture.md, "Nothing accepted is lost").

Only BackendUnavailable is tried again: any other error (a conflict, a message too large, a value that does not
encode) would fail the same way every time, so it is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from whisk.entities.errors import BackendUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")
FIRST_PAUSE_S = 0.05        # a blip (a lock held past the busy timeout, a leader election) is over within one pause
MAX_PAUSE_S = 2.0           # an outage costs a try every 2 s, not a tight loop


async def while_unavailable(attempt: Callable[[], Awaitable[T]], *, within_s: float, event: str,
                            max_pause_s: float = MAX_PAUSE_S, stop: asyncio.Event | None = None,
                            **fields: Any) -> T:
    """`attempt()`, tried again while it raises BackendUnavailable, the pause doubling from FIRST_PAUSE_S up to
    `max_pause_s`, until `within_s` has passed or `stop` is set; then the last BackendUnavailable is raised.

    Logs `{event}.retrying` (warning) at the first failure and `{event}.recovered` (info, with the attempts) when a
    later one succeeds, each with `fields`; giving up is the caller's to log, as it knows what is lost."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    pause = min(FIRST_PAUSE_S, max_pause_s)
    failures = 0
    while True:
        try:
            result = await attempt()
        except BackendUnavailable as exc:
            failures += 1
            left = deadline - loop.time()
            if left <= 0 or (stop is not None and stop.is_set()):
                raise
            if failures == 1:
                log.warning(f"{event}.retrying", error=str(exc), **fields)
            if stop is None:
                await asyncio.sleep(min(pause, left))
            else:
                try:
                    await asyncio.wait_for(stop.wait(), min(pause, left))
                except asyncio.TimeoutError:
                    pass
            pause = min(pause * 2, max_pause_s)
        else:
            if failures:
                log.info(f"{event}.recovered", attempts=failures + 1, **fields)
            return result
