"""A graceful stop: refuse new activations, then wait for the work in flight to end.

Work is counted where it starts and ends (an activation published until its balancer entry is released, a
composition or trigger record until its task is done), and the stop waits on an event set when the count reaches
zero: no polling, and it returns the moment the last piece of work ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Drain:
    def __init__(self) -> None:
        self._work = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._refusing = False

    @property
    def refusing(self) -> bool:
        """True once the stop has begun: new activations are refused (503)."""
        return self._refusing

    @property
    def in_flight(self) -> int:
        return self._work

    def enter(self) -> None:
        self._work += 1
        self._idle.clear()

    def leave(self) -> None:
        self._work -= 1
        if self._work == 0:
            self._idle.set()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count `task` as work in flight until it is done."""
        self.enter()
        task.add_done_callback(lambda _: self.leave())

    async def wait(self, grace_s: float) -> None:
        """Refuse new activations, then wait up to `grace_s` for the work in flight to end."""
        self._refusing = True
        if self._idle.is_set():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except asyncio.TimeoutError:
            log.warning("controller.drain.timeout", in_flight=self._work)
