"""One container's life (docs/openwhisk.md §7.4, §7.5; OpenWhisk's ContainerProxy): create it, /init it once, /run jobs
on it, turn the replies into activation responses, collect each activation's logs, pause and resume it, destroy it.

The pool decides which proxy serves a job, when it pauses and what happens to it afterwards (the container's state
is the scheduler's `Slot`); `run` reports, besides the result, whether the container may be kept (success and
application errors) or must go (developer and whisk errors, log collection failures). A warm container that turns
out to be unusable (gone before /run, failed resume, 503), as does a prewarmed one gone before /init, raises Requeue:
the pool destroys it and schedules the job again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from whisk.containerpool.job import Job, RunResult, error_response
from whisk.containerpool.response import (LOG_WARNING_DEVELOPER_ERROR, PROVISION_ERROR, init_response,
                                          keeps_container, run_response, timed_out, whisk_error)
from whisk.containers.base import (LOG_COLLECTION_FAILED, Container, ContainerError, ContainerFactory,
                                   ContainerGone, ContainerSpec, ImageError, Interaction)
from whisk.entities.activation import DEVELOPER_ERROR
from whisk.entities.log_lines import log_line, rfc3339_nanos
from whisk.entities.document import now_ms

log = structlog.get_logger(__name__)

OnResponse = Callable[[RunResult], None]
DEVELOPER_ERROR_LOG_GRACE_S = 0.5     # the most a developer error's logs wait for lines on their way (both sentinels
                                      # end it sooner): docker's copy of a container's output lags its answer
# After a job's answer was handed on: a future to await before collecting its logs, or None (the pool's Spin.idle).
Settle = Callable[[], asyncio.Future[None] | None]
FRESH_STARTS = ("cold", "prewarmed", "recreated", "recreatedPrewarm")
PREWARM_STARTS = ("prewarmed", "recreatedPrewarm")      # the container was made before the job: it may have died


class Requeue(Exception):
    """The container cannot serve this job though the job did nothing wrong: run it elsewhere."""


class ContainerProxy:
    def __init__(self, factory: ContainerFactory, spec: ContainerSpec, *, max_result_bytes: int,
                 on_created: Callable[[], None] | None = None,
                 on_initialized: Callable[[], None] | None = None, settle: Settle | None = None) -> None:
        self.spec = spec
        self.container: Container | None = None
        self._factory = factory
        self._max_result_bytes = max_result_bytes
        self._on_created = on_created
        self._on_initialized = on_initialized
        self._settle = settle
        self._creating: asyncio.Future[Container] | None = None
        # The first /init's outcome, awaited by jobs that joined before it ended (concurrency > 1):
        # None when the container is initialized, else the failed result.
        self._init: asyncio.Future[RunResult | None] = asyncio.get_running_loop().create_future()
        self._init_claimed = False
        self._runs = 0                   # jobs in `run` now: more than one only with concurrency above 1

    # --- creation ------------------------------------------------------------------------------------------
    async def create(self) -> Container:
        """Create the container once; concurrent callers share the outcome."""
        if self._creating is None:
            self._creating = asyncio.ensure_future(self._factory.create(self.spec))
        self.container = await asyncio.shield(self._creating)
        if self._on_created is not None:
            self._on_created()
            self._on_created = None
        return self.container

    # --- pause and resume, when the pool says so (its Slot holds whether the container is paused) ----------
    async def suspend(self) -> bool:
        """Pause the container; False when there is none (yet)."""
        if self.container is None:
            return False
        await self.container.suspend()
        return True

    async def resume(self) -> None:
        if self.container is not None:
            await self.container.resume()

    async def destroy(self) -> None:
        # The pool's callbacks close over its Slot, which holds this proxy: a cycle that would keep a destroyed
        # container's objects (its socket, pipes and log buffers) until the collector's next pass.
        self._on_created = self._on_initialized = None
        if self._creating is not None and not self._creating.done():
            try:
                await asyncio.shield(self._creating)
            except ContainerError:
                pass                     # nothing was made, nothing to destroy
        if self.container is not None:
            await self.container.destroy()

    # --- one job -------------------------------------------------------------------------------------------
    async def run(self, job: Job, start: str, on_response: OnResponse | None) -> tuple[RunResult, bool]:
        """Run `job` here: (its result with logs, whether the container may be kept)."""
        self._runs += 1
        try:
            return await self._run(job, start, on_response)
        finally:
            self._runs -= 1

    async def _run(self, job: Job, start: str, on_response: OnResponse | None) -> tuple[RunResult, bool]:
        init_ms = init_start = None
        if start in FRESH_STARTS and not self._init_claimed:
            self._init_claimed = True
            try:
                failure, init_ms, init_start = await self._initialize(job, start)
            except Requeue as exc:
                self._init.set_exception(Requeue(str(exc)))               # jobs that joined go elsewhere too
                self._init.exception()                                    # (retrieved: none may have joined)
                raise
            except BaseException:
                self._init.set_result(_failed(whisk_error(), start))      # jobs waiting on it must not hang
                raise
            self._init.set_result(failure)
            if failure is not None:
                if on_response is not None:
                    _notify(on_response, failure)
                if self.container is not None:
                    failure.logs, _ = await self._logs(job, keep=False)
                return failure, False
            if self._on_initialized is not None:
                self._on_initialized()
                self._on_initialized = None
        else:
            if not self._init.done():
                await asyncio.shield(self._init)
            failure = self._init.result()
            if failure is not None:      # joined a container whose first /init failed (concurrency > 1)
                result = _failed(dict(failure.response), start, failure.timed_out)
                if on_response is not None:
                    _notify(on_response, result)
                return result, False
        try:
            # The invoking namespace's payload limit bounds the result (OpenWhisk's `allowedMaxPayloadSize`).
            max_bytes = min(self._max_result_bytes, job.max_result_bytes or self._max_result_bytes)
            body = {**job.run_body, "deadline": _deadline(job)}
            reply = await self._made().run(body, job.timeout_ms / 1000, max_bytes)
        except ContainerError as exc:
            if init_ms is None:
                raise Requeue(str(exc)) from exc
            log.warning("container.run.failed", container=self.spec.name, error=str(exc))
            result = _failed(whisk_error(), start, at=init_start, init_ms=init_ms)
            if on_response is not None:
                _notify(on_response, result)
            return result, False
        if reply.status == 503 and init_ms is None:
            raise Requeue(f"container {self.spec.name} answered 503")
        response = run_response(reply, job.timeout_ms, max_bytes)
        begin = init_start if init_start is not None else reply.start_ms
        cut = timed_out(reply, job.timeout_ms)
        result = RunResult(response, begin, _end_ms(reply, job.timeout_ms, cut), init_ms, cut, start)
        keep = keeps_container(response)
        if on_response is not None:
            _notify(on_response, result)
            # With a lone job, the answer goes to its caller before this container's logs and release take the
            # loop's turns (docs/performance.md).
            settled = self._settle() if self._settle is not None else None
            if settled is not None:
                await settled
        result.logs, logs_ok = await self._logs(job, keep, cut_beside_others=cut and self._runs > 1)
        return result, keep and logs_ok

    async def _initialize(self, job: Job, start: str) -> tuple[RunResult | None, int | None, int | None]:
        """Create (cold) and /init: (the failed result or None, ms in /init, /init start)."""
        if self.container is None:
            try:
                await self.create()
            except ImageError as exc:
                return _failed(error_response(DEVELOPER_ERROR, str(exc)), start), None, None
            except ContainerError as exc:
                log.error("container.create.failed", container=self.spec.name, error=str(exc))
                return _failed(whisk_error(PROVISION_ERROR), start), None, None
        value: dict = {"name": job.action_name, "main": job.main or "main", "binary": job.binary,
                       "env": {**job.init_env, "__OW_DEADLINE": _deadline(job)}}
        if job.code is not None:
            value["code"] = job.code
        try:
            reply = await self._made().initialize(value, job.timeout_ms / 1000, self._max_result_bytes)
        except ContainerGone as exc:
            if start in PREWARM_STARTS:          # a stem cell that died while it waited: the job goes elsewhere
                raise Requeue(str(exc)) from exc
            log.error("container.init.failed", container=self.spec.name, error=str(exc))
            return _failed(whisk_error(PROVISION_ERROR), start), None, None
        except ContainerError as exc:
            log.error("container.init.failed", container=self.spec.name, error=str(exc))
            return _failed(whisk_error(PROVISION_ERROR), start), None, None
        failure = init_response(reply, job.timeout_ms)
        if failure is None:
            return None, reply.duration_ms, reply.start_ms
        cut = timed_out(reply, job.timeout_ms)
        end = _end_ms(reply, job.timeout_ms, cut)
        result = RunResult(failure, reply.start_ms, end, end - reply.start_ms, cut, start)
        return result, reply.duration_ms, reply.start_ms

    def _made(self) -> Container:
        if self.container is None:           # every caller runs after a successful create
            raise ContainerError(f"container {self.spec.name} was not made")
        return self.container

    async def _logs(self, job: Job, keep: bool, cut_beside_others: bool = False) -> tuple[list[str], bool]:
        """This activation's log lines, and False when they could not be read completely (destroy then). Its answer
        is given by now, and may be a blocking caller's already: a failure to read them is OpenWhisk's
        log-collection failure, a line saying so, never an error in place of that answer. `cut_beside_others`: it
        timed out while others run in this container, so its runtime writes no sentinels for it and the next ones are
        theirs; taken here, their reads would wait for them to a collection failure. Its lines, which cannot be told
        from theirs, are left to their records."""
        if cut_beside_others:
            return self._developer_error_lines(job, []), True
        try:
            return await self._read_logs(job, keep)
        except ContainerError as exc:
            log.warning("container.logs.failed", container=self.spec.name, error=str(exc))
            return [log_line(rfc3339_nanos(time.time_ns()), "stderr", LOG_COLLECTION_FAILED)], False

    async def _read_logs(self, job: Job, keep: bool) -> tuple[list[str], bool]:
        container = self._made()
        limit = job.logs_mb * 1_048_576
        alone = job.concurrency <= 1      # every sentinel read is this activation's (its proxy's or its own)
        if keep and job.kind == "blackbox":
            # Blackbox images are not assumed to print the sentinels (docs/openwhisk.md §4): take what is there, don't
            # wait.
            return await container.logs(limit, wait_for_sentinel=False, alone=alone), True
        if keep:
            lines = await container.logs(limit, wait_for_sentinel=True, alone=alone)
            return lines, not (lines and lines[-1].endswith(LOG_COLLECTION_FAILED))
        # After a developer error the sentinels may never come: take what is there (docs/openwhisk.md §4), once what
        # the runtime wrote before its answer has had a moment to reach the log (docker copies it on its own time).
        lines = await container.logs(limit, wait_for_sentinel=False, grace_s=DEVELOPER_ERROR_LOG_GRACE_S, alone=alone)
        return self._developer_error_lines(job, lines), True

    @staticmethod
    def _developer_error_lines(job: Job, lines: list[str]) -> list[str]:
        """A developer error's lines end with OpenWhisk's warning that some may be missing (none kept at limit 0)."""
        if job.logs_mb > 0:
            lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", LOG_WARNING_DEVELOPER_ERROR))
        return lines


def _deadline(job: Job) -> str:
    """`__OW_DEADLINE` of an exchange about to start: each of /init and /run gets the whole time limit, so the action's
    deadline is when it will be stopped, however long its job waited for a container or its init took (OpenWhisk's
    `ContainerProxy.initializeAndRun` computes it just before each)."""
    return str(now_ms() + job.timeout_ms)


def _end_ms(reply: Interaction, timeout_ms: int, cut: bool) -> int:
    """When the exchange ended; one `cut` off at its time limit lasted the limit at least (the deadline timer runs
    on the loop's clock, and the wall-clock milliseconds around it could show 999 of 1,000), as OpenWhisk records it."""
    return max(reply.end_ms, reply.start_ms + timeout_ms) if cut else reply.end_ms


def _failed(response: dict, start: str, timed_out_: bool = False, *, at: int | None = None,
            init_ms: int | None = None) -> RunResult:
    """A result for a job that ended before a /run reply (no container, failed /init, failed /run call)."""
    now = now_ms()
    begin = at if at is not None else now
    return RunResult(response, begin, now, init_ms, timed_out_, start)


def _notify(on_response: OnResponse, result: RunResult) -> None:
    try:
        on_response(result)
    except Exception:                    # the caller's bug must not cost the container or the logs
        log.exception("pool.on_response.failed")
