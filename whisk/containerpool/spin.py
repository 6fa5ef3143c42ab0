"""Waiting for a lone job's answer with the event loop polling, not asleep, for a short while.

A warm container answers /run tens of microseconds after it went out. When the loop has nothing else to do meanwhile,
it blocks in epoll, and on a virtual machine whose idle vCPUs halt, being woken from that costs more than the wait
itself (a unix-socket round trip between two processes here: 38 µs p50 with the waiter blocking, 18 µs with it
polling; docs/performance.md). So while the pool runs exactly one job, `Spin` keeps one callback ready, and the loop
polls its sockets instead of sleeping, for at most `budget_s` after the job came in; then it sleeps as usual.

Only for a lone job: with several in the pool the loop is seldom idle, and polling would take the CPU from the
containers and clients it waits for (measured: at 32 callers, polling whenever one answer was outstanding cost 3–16 %
of the throughput). For the same reason each poll yields the CPU to whatever else is runnable on it. A long action
costs at most the budget per activation; a budget of 0 turns polling off.

Two polls in a row with nothing run between them mean the loop only waits for the container: `on_idle` is then
called (the record store commits the records it was gathering in that moment, instead of on a later caller's
time; docs/architecture.md). The same moment, once at least `SETTLE_POLLS` polls have passed since `idle()` was
asked (past the budget: `SETTLE_POLLS` turns of the loop), resolves the futures `idle()` gave out: after a lone job's
answer, its logs and its container's release wait for it, so that the caller's answer goes out first. And when the
last job has ended, `on_idle` is called once more `SETTLE_POLLS` turns later, when that job's record has been put: it
is committed then, after its answer went out and before the next caller is likely to ask, not while the next job
waits for its answer (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

IDLE_GAP_S = 30e-6      # two polls closer than this had nothing between them (a poll alone takes a few µs)
# An answer reaches its caller over the in-process bus in four turns of the loop (the result ack's task, the
# controller's ack consumer, the caller's wake-up, its response), each short enough to pass for an idle gap; a job's
# record is put within the turns after its end.
SETTLE_POLLS = 4


class Spin:
    """The pool's: counts its jobs and polls while there is exactly one."""

    __slots__ = ("_budget_s", "_jobs", "_until", "_loop", "_on_idle", "_last", "_waiting", "_polls", "_after")

    def __init__(self, budget_s: float, on_idle: Callable[[], None] | None = None) -> None:
        self._budget_s = budget_s
        self._jobs = 0
        self._until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None     # set while the callback is scheduled
        self._on_idle = on_idle
        self._last = 0.0                                         # the previous poll's time
        self._waiting: list[asyncio.Future[None]] = []           # what idle() gave out, not yet resolved
        self._polls = 0                                          # polls since idle() or end() last counted
        self._after = False                                      # counting the turns after the last job

    def begin(self) -> None:
        """A job came in; `end` when it is done."""
        if self._budget_s <= 0:
            return
        self._jobs += 1
        if self._jobs == 1:
            self._after = False
            # time.monotonic, not loop.time(): uvloop's clock moves in whole milliseconds.
            self._until = time.monotonic() + self._budget_s
            self._last = 0.0            # the job's own first steps run between the next two polls
            self._start()

    def end(self) -> None:
        if self._budget_s <= 0:
            return
        self._jobs -= 1
        if self._jobs == 0 and self._on_idle is not None:
            # Its record is put in the next turn or two: the store hears of it `SETTLE_POLLS` turns on (where a commit
            # while the next job waits for its answer could hold that answer up).
            self._after = True
            self._polls = 0
            self._start()

    def idle(self) -> asyncio.Future[None] | None:
        """For a lone job: a future done at the first idle moment at least `SETTLE_POLLS` polls from now, or
        `SETTLE_POLLS` turns from now once the budget is spent, or when another job comes in. None with two jobs
        or more, or with polling off: nothing waits then."""
        if self._budget_s <= 0 or self._jobs != 1:
            return None
        self._polls = 0
        self._start()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    def _start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        assert self._loop is not None
        now = time.monotonic()
        if self._jobs == 1 and now < self._until:
            os.sched_yield()            # another process runnable on this CPU goes first
            self._loop.call_soon(self._turn)    # first: a failing on_idle must not end the polling
            idle = now - self._last < IDLE_GAP_S
            self._last = now
            self._polls += 1
            if idle:
                if self._polls >= SETTLE_POLLS:
                    self._wake()
                if self._on_idle is not None:
                    self._on_idle()
        elif (self._jobs == 1 and self._waiting) or (self._jobs == 0 and self._after):
            # Counting turns, not polling: the budget is spent, or the last job has ended.
            self._loop.call_soon(self._turn)
            self._polls += 1
            if self._polls >= SETTLE_POLLS:
                self._wake()
                if self._after:         # the ended job's record is put by now: reported once, then stop
                    self._after = False
                    if self._on_idle is not None:
                        self._on_idle()
        else:
            self._loop = None
            self._after = False
            self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)
