"""The invoker's container pool (docs/openwhisk.md §7; OpenWhisk's ContainerPool): places each job on a container, keeps
prewarmed stem cells, pauses idle containers and removes them, and buffers jobs that do not fit. When a stem cell is
reactive, a check every `prewarm_check_s` removes expired prewarms and starts as many as recent cold starts call for.

The decisions live in `schedule.Scheduler` (plain state, no I/O), whose `Slot` is the one record of a container's
state: its phase, activations, paused or doomed, and its pending pause or idle timer. One `ContainerProxy` runs each
container's life (create, /init, /run, logs, suspend, resume, destroy) and keeps nothing the pool reads; it reports
creation and initialization to the scheduler. This module carries the decisions out on the event loop: it creates and
destroys containers, arms the pause and idle timers (on an injectable clock), and resumes buffered jobs, in order,
whenever capacity frees up.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import structlog

from whisk.containerpool.clock import Clock, LoopClock, Timer
from whisk.containerpool.job import NO_CONTAINER, Job, RunResult
from whisk.containerpool.proxy import ContainerProxy, Requeue
from whisk.containerpool.response import whisk_error
from whisk.containerpool.schedule import Demand, Phase, Placement, Prewarm, Scheduler, Slot
from whisk.containerpool.spin import Spin
from whisk.containers.base import ContainerError, ContainerFactory, ContainerSpec

log = structlog.get_logger(__name__)

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")
BUFFER_WARNING_S = 10.0              # OpenWhisk warns about buffered jobs at most this often
PREWARM_CHECK_S = 600.0              # prewarm-expiration-check-interval (and its init delay)
PREWARM_CHECK_JITTER_S = 10.0        # prewarm-expiration-check-interval-variance: spreads invokers' checks
# Read by our runtime proxies while they unzip an action (WHISK_LIMIT_MAX_CODE_UNPACKED_MB, in bytes).
CODE_CAP_ENV = "WHISK_MAX_CODE_UNPACKED_BYTES"


def container_name(invoker: int, n: int, prefix: str, suffix: str) -> str:
    """OpenWhisk's `wsk{invoker}_{n}_{prefix}_{suffix}`, keeping only letters, digits and '_' (docker-safe)."""
    return f"wsk{invoker}_{n}_{_NOT_IN_NAME.sub('', prefix)}_{_NOT_IN_NAME.sub('', suffix)}"


class ContainerPool:
    def __init__(self, factory: ContainerFactory, manifest: Any, *, invoker_instance: int, memory_mb: int,
                 pause_grace_s: float, idle_timeout_s: float, prewarm: bool = True,
                 max_result_bytes: int = 1_048_576, clock: Clock | None = None,
                 prewarm_check_s: float = PREWARM_CHECK_S, prewarm_check_jitter_s: float = PREWARM_CHECK_JITTER_S,
                 container_env: Mapping[str, str] | None = None, spin_s: float = 0.0,
                 on_idle: Callable[[], None] | None = None) -> None:
        stem_cells = manifest.prewarm() if prewarm else []
        self._manifest = manifest
        self._concurrent_kinds: dict[str, bool] = {}      # kind -> its proxy runs several /run at once
        self._scheduler = Scheduler(memory_mb, [Prewarm(r.kind, c.memory_mb, c.count, c.reactive)
                                                for r in stem_cells for c in r.stem_cells])
        self._prewarm_images = {r.kind: r.image for r in stem_cells}
        # One jitter per pool, as OpenWhisk draws it once per invoker.
        self._prewarm_check_s = prewarm_check_s + random.uniform(0.0, prewarm_check_jitter_s)
        self._prewarm_timer: Timer | None = None
        self._factory = factory
        self._container_env = dict(container_env or {})     # every container's environment (CODE_CAP_ENV)
        self._invoker = invoker_instance
        self._pause_grace_s = pause_grace_s
        self._idle_timeout_s = idle_timeout_s
        self._max_result_bytes = max_result_bytes
        self._clock = clock or LoopClock()
        self._spin = Spin(spin_s, on_idle)      # one for all the pool's containers; on_idle: Spin's docstring
        self._names = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._last_buffer_warning = float("-inf")

    # --- life ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the prewarmed containers of the manifest (initialCount each) and wait until they exist; then
        check the prewarms periodically if a stem cell is reactive."""
        await asyncio.gather(*self._refill(initial=True), return_exceptions=False)
        if self._scheduler.reactive and not self._closed:
            self._prewarm_timer = self._clock.call_later(self._prewarm_check_s, self._check_prewarms)

    async def close(self) -> None:
        """Fail buffered jobs, stop the timers and destroy every container."""
        self._closed = True
        if self._prewarm_timer is not None:
            self._prewarm_timer.cancel()
            self._prewarm_timer = None
        while self._scheduler.buffer:
            _, future = self._scheduler.buffer.popleft()
            if not future.done():
                future.set_exception(ContainerError("The container pool is shutting down."))
        slots = list(self._scheduler.slots.values())
        for slot in slots:
            self._scheduler.forget(slot)
        await asyncio.gather(*(self._destroy(slot) for slot in slots), return_exceptions=True)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """Containers by state (prewarmed, starting, cold, warming, busy, ready, paused), memory used, buffered."""
        return self._scheduler.stats()

    def prewarmed(self) -> dict[str, int]:
        """Ready prewarmed containers by kind."""
        return self._scheduler.prewarmed()

    # --- running a job -------------------------------------------------------------------------------------
    async def run(self, job: Job, on_response: Callable[[RunResult], None] | None = None) -> RunResult:
        """Run `job` on a container, waiting in the buffer if nothing fits. `on_response` is called as soon as
        /run has answered, before the logs are collected; the returned result has the logs."""
        if self._closed:
            raise ContainerError("The container pool is shutting down.")
        if job.memory_mb > self._scheduler.memory_mb:
            log.error("pool.job.too_large", memory_mb=job.memory_mb, pool_mb=self._scheduler.memory_mb)
            now = time.time_ns() // 1_000_000
            result = RunResult(whisk_error(), now, now, None, False, NO_CONTAINER)
            if on_response is not None:
                on_response(result)
            return result
        concurrency = max(1, job.concurrency) if self._concurrent(job.kind) else 1
        demand = Demand(job.warm_key, job.kind, job.memory_mb, concurrency, job.action_name, job.image)
        front = False
        self._spin.begin()
        try:
            while True:
                placement = await self._place(demand, front)
                try:
                    return await self._run_on(job, placement, on_response)
                except Requeue as exc:
                    log.info("pool.job.requeued", container=placement.slot.owner.spec.name, reason=str(exc))
                    front = True
        finally:
            self._spin.end()

    def _concurrent(self, kind: str) -> bool:
        """Whether the kind's proxy runs several /run at once (runtimes.json's "concurrent"). One that runs one at a
        time gets one activation per container: c sent to it would wait there for each other, their time limits
        and durations counting the wait."""
        concurrent = self._concurrent_kinds.get(kind)
        if concurrent is None:
            concurrent = self._concurrent_kinds[kind] = bool(self._manifest.concurrent(kind))
        return concurrent

    async def _place(self, demand: Demand, front: bool) -> Placement:
        now = self._clock.now()
        if front:                        # a job sent back by an unusable container keeps its turn
            placement = self._scheduler.place(demand, now)
            if placement is not None:
                return self._carry_out(placement)
            future: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
            self._scheduler.buffer.appendleft((demand, future))
        else:
            future = asyncio.get_running_loop().create_future()
            placement = self._scheduler.submit(demand, future, now)
            if placement is not None:
                return self._carry_out(placement)
        self._warn_buffered(demand)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._abandon(future.result())
            else:
                self._scheduler.unbuffer(future)
            raise

    def _carry_out(self, placement: Placement) -> Placement:
        """Side effects of a decision: a proxy for a new slot, victims destroyed, prewarms refilled."""
        slot = placement.slot
        if placement.create:
            name = container_name(self._invoker, next(self._names), placement.demand.key[1], placement.demand.action)
            self._attach(slot, name, placement.demand.image)
        self._disarm(slot)
        for victim in placement.victims:
            self._spawn(self._destroy(victim))
        if placement.took_prewarm:
            self._refill(replacing=(slot.kind, slot.memory_mb))
        return placement

    async def _run_on(self, job: Job, placement: Placement, on_response: Callable[[RunResult], None] | None
                      ) -> RunResult:
        slot = placement.slot
        proxy: ContainerProxy = slot.owner
        keep = False
        try:
            if placement.resume:
                slot.waking = self._spawn(self._resume(slot))
                # Its Requeue is every waiting job's; with none left (cancelled in the stop), nobody's.
                slot.waking.add_done_callback(_retrieved)
            waking: asyncio.Task[None] | None = slot.waking
            if waking is not None:
                # Jobs that join it (concurrency > 1) wait too: sent at once, a /run waited in the frozen
                # container, and when the resume failed it stayed there until its time limit.
                await asyncio.shield(waking)
                if slot.waking is waking:
                    slot.waking = None
            result, keep = await proxy.run(job, placement.start, on_response)
            return result
        finally:
            self._release(slot, keep)

    def _release(self, slot: Slot, keep: bool) -> None:
        if self._scheduler.release(slot, self._clock.now(), keep):
            if not self._closed:                 # else close() destroys it
                self._spawn(self._destroy(slot))
        elif slot.idle and not self._closed:
            self._arm(slot, self._pause_grace_s, lambda: self._pause(slot))
        self._drain()

    def _drain(self) -> None:
        if self._closed or not self._scheduler.buffer:
            return
        for future, placement in self._scheduler.drain(self._clock.now()):
            placement = self._carry_out(placement)
            if future.done():            # its caller gave up meanwhile
                self._abandon(placement)
            else:
                future.set_result(placement)

    def _abandon(self, placement: Placement) -> None:
        """A placement nobody will run: an initialized container stays, a fresh one goes."""
        self._release(placement.slot, keep=placement.slot.phase is Phase.WARM)

    def _warn_buffered(self, demand: Demand) -> None:
        now = self._clock.now()
        if now - self._last_buffer_warning >= BUFFER_WARNING_S:
            self._last_buffer_warning = now
            log.warning("pool.job.buffered", memory_mb=demand.memory_mb, buffered=len(self._scheduler.buffer),
                        **self._scheduler.stats()["containers"])

    # --- containers ----------------------------------------------------------------------------------------
    def _attach(self, slot: Slot, name: str, image: str) -> ContainerProxy:
        spec = ContainerSpec(name=name, kind=slot.kind, image=image, memory_mb=slot.memory_mb,
                             env=self._container_env)
        slot.owner = ContainerProxy(self._factory, spec, max_result_bytes=self._max_result_bytes,
                                    on_created=lambda: self._scheduler.created(slot, self._clock.now()),
                                    on_initialized=lambda: self._scheduler.initialized(slot),
                                    settle=self._spin.idle)
        return slot.owner

    def _refill(self, *, initial: bool = False, replacing: tuple[str, int] | None = None
                ) -> list[asyncio.Task[None]]:
        if self._closed:
            return []
        slots = self._scheduler.prewarms_to_start(self._clock.now(), initial=initial, replacing=replacing)
        return [self._launch_prewarm(slot) for slot in slots]

    def _launch_prewarm(self, slot: Slot) -> asyncio.Task[None]:
        name = container_name(self._invoker, next(self._names), "prewarm", slot.kind)
        self._attach(slot, name, self._prewarm_images.get(slot.kind, ""))
        return self._spawn(self._start_prewarm(slot))

    def _check_prewarms(self) -> None:
        """The scheduled prewarm check: destroy the expired prewarms, start those that recent cold starts ask for."""
        if self._closed:
            return
        self._prewarm_timer = self._clock.call_later(self._prewarm_check_s, self._check_prewarms)
        cold_starts = dict(self._scheduler.cold_starts)
        expired, started = self._scheduler.check_prewarms(self._clock.now())
        if expired or started:
            log.info("pool.prewarm.adjusted", expired=len(expired), started=len(started),
                     cold_starts={f"{kind}/{memory}": n for (kind, memory), n in cold_starts.items()})
        for slot in expired:
            self._spawn(self._destroy(slot))
        for slot in started:
            self._launch_prewarm(slot)

    async def _start_prewarm(self, slot: Slot) -> None:
        try:
            await slot.owner.create()
        except ContainerError as exc:
            # Not refilled at once: a runtime that cannot start would otherwise be retried in a tight loop.
            log.error("pool.prewarm.failed", kind=slot.kind, error=str(exc))
            self._scheduler.forget(slot)
        self._drain()

    async def _destroy(self, slot: Slot) -> None:
        proxy: ContainerProxy = slot.owner
        self._disarm(slot)
        try:
            await proxy.destroy()
        except ContainerError as exc:
            log.error("pool.destroy.failed", container=proxy.spec.name, error=str(exc))
        self._drain()
        self._refill()

    # --- pause and removal of idle containers: the state is the slot's, these carry it out -----------------
    def _arm(self, slot: Slot, delay_s: float, callback: Callable[[], None]) -> None:
        self._disarm(slot)
        slot.timer = self._clock.call_later(delay_s, callback)

    @staticmethod
    def _disarm(slot: Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    def _pause(self, slot: Slot) -> None:
        slot.timer = None
        if self._closed or not self._scheduler.pause_due(slot):
            return
        slot.pausing = self._spawn(self._suspend(slot))
        self._arm(slot, self._idle_timeout_s, lambda: self._expire(slot))

    async def _suspend(self, slot: Slot) -> bool:
        """Suspend the slot's container unless a job took it meanwhile; True when it may be suspended (a job that
        takes it resumes it first)."""
        if not (slot.paused and slot.idle):
            return False
        try:
            return await slot.owner.suspend()
        except ContainerError as exc:
            # Nobody knows now whether it runs (docker's pause can time out and still take effect): taken as
            # running, a frozen one gave the next job a timeout, blamed on its action. As OpenWhisk's proxy does,
            # it goes; a job that took it meanwhile resumes it, and goes elsewhere if that fails (Requeue).
            log.warning("pool.pause.failed", container=slot.owner.spec.name, error=str(exc))
            if slot.paused and slot.idle and slot.id in self._scheduler.slots and not self._closed:
                self._scheduler.forget(slot)
                self._spawn(self._destroy(slot))
            return True

    async def _resume(self, slot: Slot) -> None:
        """Before the jobs run on a slot placed as paused (`Slot.waking`): wait for its suspend, resume the container
        if it was suspended (Requeue when that fails)."""
        pausing: asyncio.Task[bool] | None = slot.pausing
        slot.pausing = None
        if pausing is None or not await asyncio.shield(pausing):
            return
        try:
            await slot.owner.resume()
        except ContainerError as exc:
            raise Requeue(f"resume failed: {exc}") from exc

    def _expire(self, slot: Slot) -> None:
        slot.timer = None
        if not self._closed and self._scheduler.expire(slot):
            self._spawn(self._destroy(slot))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
