"""The event loop's own CPU while it is saturated (whisk/invoker/loop_core.py): when it is reserved, when it is
given back, and what the loop thread and the container factory are told each time."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from whisk import metrics
from whisk.invoker.loop_core import BUSY, FALL, IDLE, RISE, Hysteresis, LoopCore


def test_a_saturated_loop_is_reserved_only_after_rise_periods_and_released_after_fall() -> None:
    state = Hysteresis()
    for _ in range(RISE - 1):
        assert not state.sample(0.99)
    assert not state.sample(BUSY - 0.01)          # a quieter period starts the count again
    for _ in range(RISE - 1):
        assert not state.sample(BUSY)
    assert state.sample(BUSY) and state.reserved
    for _ in range(FALL - 1):
        assert not state.sample(IDLE - 0.01)
    assert not state.sample(IDLE)                  # between the two marks: still reserved, the count starts again
    for _ in range(FALL - 1):
        assert not state.sample(0.0)
    assert state.sample(0.0) and not state.reserved


class Factory:
    """Records what the loop core asks of the container backend."""

    def __init__(self) -> None:
        self.confined: list[frozenset[int]] = []

    async def confine(self, allowed: frozenset[int]) -> None:
        self.confined.append(allowed)


class Load:
    """The loop's CPU time as the loop core reads it: all of the wall time while busy, none while idle."""

    def __init__(self) -> None:
        self.busy = False
        self._base = 0.0
        self._since = time.monotonic()

    def __call__(self) -> float:
        now = time.monotonic()
        if self.busy:
            self._base += now - self._since
        self._since = now
        return self._base


async def until(check, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_loop_gets_a_cpu_of_its_own_while_saturated_and_gives_it_back() -> None:
    allowed = frozenset(os.sched_getaffinity(0))
    me = threading.get_native_id()
    factory, load = Factory(), Load()
    core = LoopCore(factory, period_s=0.02, cpu_time=load)          # type: ignore[arg-type]
    watching = asyncio.ensure_future(core.watch())
    try:
        if len(allowed) < 2:                      # one CPU: nothing to reserve, the watch ends at once
            await asyncio.wait_for(watching, 5)
            assert factory.confined == []
            return
        load.busy = True
        await until(lambda: core.cpu is not None and factory.confined)
        reserved = core.cpu
        assert os.sched_getaffinity(me) == {reserved}
        assert factory.confined == [allowed - {core.cpu}]
        assert metrics.LOOP_CPU_RESERVED.labels().value == 1
        started = threading.Thread(target=time.sleep, args=(0.5,))   # a thread the pinned loop starts inherits its CPU
        started.start()
        await until(lambda: os.sched_getaffinity(started.native_id) == allowed)
        load.busy = False
        await until(lambda: core.cpu is None)
        assert os.sched_getaffinity(me) == allowed
        assert factory.confined == [allowed - {reserved}, allowed]
        assert metrics.LOOP_CPU_RESERVED.labels().value == 0
        load.busy = True                           # reserved again, then stopped: every CPU is shared again
        await until(lambda: core.cpu is not None)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        assert os.sched_getaffinity(me) == allowed and factory.confined[-1] == allowed
        assert metrics.LOOP_CPU_RESERVED.labels().value == 0
        started.join()
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        os.sched_setaffinity(0, allowed)
