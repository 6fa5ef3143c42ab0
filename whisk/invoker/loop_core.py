"""A CPU of its own for the event loop while it is saturated (docs/architecture.md, "Decisions beyond OpenWhisk").

One event loop runs the invoker's side of every activation, and in standalone the controller's too. Under many
short activations it is the platform's limit: throughput is one over its time an activation. Linux wakes a task on
the CPU of the task that woke it when it can, and the loop wakes a runtime proxy with every /run, so the proxies
take turns with the loop on its CPU while another CPU may idle. With the loop on a CPU of its own and the
containers on the others, 32 callers of a no-op action got 14 % (python) and 26 % (node.js) more through on two
CPUs (docs/performance.md, twenty-third session).

So, while the loop's own CPU time stays above BUSY of a core, the loop is pinned to the CPU it runs on and the
containers are kept off that CPU; once it falls below IDLE, both get every CPU again. Actions that use much CPU
leave the loop mostly idle, so they keep every CPU; a machine with a single CPU is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable

import structlog

from whisk import metrics
from whisk.containers.base import ContainerFactory

log = structlog.get_logger(__name__)

# Reserving is quick to do (an affinity call on each container thread, in a thread) and quick to undo, so it
# follows the load closely: from the first 0.1 s of saturation on, until 2 s of a mostly idle loop.
PERIOD_S = 0.1
BUSY = 0.75          # share of a core the loop's thread used in a period: RISE periods in a row reserve its CPU
IDLE = 0.40          # below it for FALL periods in a row: every CPU is shared again
RISE, FALL = 1, 20


class Hysteresis:
    """When to reserve and when to release, from the loop's share of a core each period."""

    def __init__(self) -> None:
        self.reserved = False
        self._run = 0                      # periods in a row that point the other way

    def sample(self, share: float) -> bool:
        """Take one period's share; True when `reserved` changed."""
        other_way = share < IDLE if self.reserved else share >= BUSY
        self._run = self._run + 1 if other_way else 0
        if self._run < (FALL if self.reserved else RISE):
            return False
        self.reserved = not self.reserved
        self._run = 0
        return True


class LoopCore:
    """Run `watch()` as a task on the event loop it is about; cancel it to stop (every CPU is shared again)."""

    def __init__(self, factory: ContainerFactory, *, period_s: float = PERIOD_S,
                 cpu_time: Callable[[], float] = time.thread_time) -> None:
        self._factory = factory
        self._period_s = period_s
        self._cpu_time = cpu_time          # the calling thread's CPU seconds: the loop's, as it runs on the loop
        self._allowed = frozenset(os.sched_getaffinity(0))    # a cpuset or taskset may narrow it
        self._state = Hysteresis()
        self.cpu: int | None = None        # the loop's own CPU while reserved

    async def watch(self) -> None:
        if len(self._allowed) < 2:
            return
        try:
            wall, used = time.monotonic(), self._cpu_time()
            while True:
                await asyncio.sleep(self._period_s)
                now, cpu = time.monotonic(), self._cpu_time()
                share = (cpu - used) / max(now - wall, 1e-9)
                wall, used = now, cpu
                if self._state.sample(share):
                    if self._state.reserved:
                        await self._reserve()
                    else:
                        await self._release()
                        log.info("invoker.loop_cpu_shared", loop_share=round(share, 2))
                elif self.cpu is not None:
                    _free_other_threads(self._allowed)
        finally:
            if self.cpu is not None:
                await asyncio.shield(self._release())

    async def _reserve(self) -> None:
        cpu = _current_cpu()
        if cpu not in self._allowed:
            cpu = min(self._allowed)
        try:
            os.sched_setaffinity(0, {cpu})      # 0: the calling thread, the loop's
        except OSError as exc:                  # a CPU taken away meanwhile (hotplug, a narrower cpuset)
            log.info("invoker.loop_cpu_not_reserved", cpu=cpu, error=str(exc))
            self._state.reserved = False
            return
        self.cpu = cpu
        metrics.LOOP_CPU_RESERVED.labels().set(1)
        await self._factory.confine(self._allowed - {cpu})
        log.info("invoker.loop_cpu_reserved", cpu=cpu, containers=sorted(self._allowed - {cpu}))

    async def _release(self) -> None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, self._allowed)
        _free_other_threads(self._allowed)
        self.cpu = None
        metrics.LOOP_CPU_RESERVED.labels().set(0)
        await self._factory.confine(self._allowed)


def _current_cpu() -> int:
    """The CPU the calling thread last ran on (/proc's `processor` field); -1 when unknown."""
    try:
        with open("/proc/thread-self/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[36])
    except (OSError, ValueError, IndexError):
        return -1


def _free_other_threads(allowed: frozenset[int]) -> None:
    """Threads the loop started while pinned (an executor's workers) inherited its CPU: give them every CPU."""
    me = threading.get_native_id()
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != me:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), allowed)
