"""The pool's polling while it runs a lone job (whisk/containerpool/spin.py), seen as what it costs: the event loop
thread's CPU time while it waits. Polling, the thread is busy for most of the wait; asleep, hardly at all. And the
idle moments it reports: two polls with nothing run between them; and the answer it lets go first."""

from __future__ import annotations

import asyncio
import time

from tests.containerpool.jobs import PY, job
from tests.containerpool.support import make_pool, ok
from whisk.containerpool.pool import ContainerPool
from whisk.containerpool.spin import SETTLE_POLLS, Spin

WAIT_S = 0.1
# Shares of the wait on the CPU: polling it is nearly all of it on an idle machine, asleep nearly none; the bounds
# leave room for a machine busy with other tests.
POLLING, ASLEEP = 0.3, 0.1


async def busy_share(wait_s: float = WAIT_S) -> float:
    """The share of `wait_s` of sleeping in which this thread was on the CPU."""
    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.sleep(wait_s)
    return (time.thread_time() - cpu) / (time.perf_counter() - wall)


class BusyTurns:
    """Other work on every turn of the loop, longer than the idle gap, until `stop`."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._on = True
        self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        until = time.perf_counter() + 100e-6
        while time.perf_counter() < until:
            pass
        if self._on:
            self._loop.call_soon(self._turn)

    def stop(self) -> None:
        self._on = False


async def test_a_lone_job_keeps_the_loop_polling_until_it_ends():
    spin = Spin(10.0)
    spin.begin()
    try:
        assert await busy_share() > POLLING
    finally:
        spin.end()
    await asyncio.sleep(0)                 # the callback that was scheduled sees the end and stops
    assert await busy_share() < ASLEEP


async def test_polling_stops_after_the_budget():
    spin = Spin(0.02)
    spin.begin()
    try:
        share = await busy_share(0.2)
    finally:
        spin.end()
    assert 0.025 < share < POLLING, share  # at most 0.02 s of the 0.2


async def test_no_polling_with_two_jobs_nor_with_a_budget_of_zero():
    spin = Spin(10.0)
    spin.begin()
    spin.begin()
    try:
        await asyncio.sleep(0)
        assert await busy_share() < ASLEEP
    finally:
        spin.end()
        spin.end()
    off = Spin(0)
    off.begin()
    try:
        assert await busy_share() < ASLEEP
    finally:
        off.end()


async def test_a_job_that_comes_in_after_the_last_polls_again():
    spin = Spin(10.0)
    for _ in range(2):
        spin.begin()
        try:
            assert await busy_share() > POLLING
        finally:
            spin.end()
        assert await busy_share() < ASLEEP


SLEEPY = "import time\ndef main(a):\n    time.sleep(a['s'])\n    return {'slept': a['s']}\n"


async def test_the_pool_polls_while_its_one_job_runs(factory, manifest):
    pool: ContainerPool = make_pool(factory, manifest, spin_s=10.0)
    quiet = make_pool(factory, manifest)
    try:
        for subject in (pool, quiet):
            ok(await subject.run(job(SLEEPY, PY, value={"s": 0.0})))        # warm: no start's CPU below
        shares = {}
        for name, subject in (("polling", pool), ("quiet", quiet)):
            cpu, wall = time.thread_time(), time.perf_counter()
            assert ok(await subject.run(job(SLEEPY, PY, value={"s": WAIT_S}))) == {"slept": WAIT_S}
            shares[name] = (time.thread_time() - cpu) / (time.perf_counter() - wall)
        assert shares["polling"] > POLLING and shares["quiet"] < ASLEEP, shares
    finally:
        await pool.close()
        await quiet.close()


async def test_polls_with_nothing_between_them_report_the_loop_idle():
    idle = []
    spin = Spin(10.0, on_idle=lambda: idle.append(time.monotonic()))
    spin.begin()
    try:
        await asyncio.sleep(0.02)
    finally:
        spin.end()
    assert len(idle) > 10                   # the loop only polled: every poll after the first reports it
    idle.clear()
    await asyncio.sleep(0.01)
    assert len(idle) == 1                   # after the last job: one more, once its record can be in the store
    idle.clear()
    assert await busy_share() < ASLEEP      # and then no polling, no report
    assert idle == []


async def test_a_loop_busy_between_polls_is_not_idle_nor_are_two_jobs():
    idle = []
    spin = Spin(10.0, on_idle=lambda: idle.append(1))
    busy = BusyTurns()
    spin.begin()
    try:
        await asyncio.sleep(0.05)
    finally:
        spin.end()
        busy.stop()
    assert idle == []
    spin.begin()
    spin.begin()
    try:
        await asyncio.sleep(0.02)
    finally:
        spin.end()
        spin.end()
    assert idle == []


async def test_the_pool_reports_the_loop_idle_while_its_one_job_runs(factory, manifest):
    idle = []
    pool: ContainerPool = make_pool(factory, manifest, spin_s=10.0, on_idle=lambda: idle.append(1))
    try:
        ok(await pool.run(job(SLEEPY, PY, value={"s": 0.0})))
        idle.clear()
        assert ok(await pool.run(job(SLEEPY, PY, value={"s": 0.05}))) == {"slept": 0.05}
        assert len(idle) > 10               # while the action slept, the loop only polled
    finally:
        await pool.close()


async def test_a_failing_idle_report_does_not_end_the_polling():
    calls = []

    def failing() -> None:
        calls.append(1)
        raise RuntimeError("the store's hook failed")

    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, _context: None)     # each failure goes to the loop's handler
    spin = Spin(10.0, on_idle=failing)
    spin.begin()
    try:
        await asyncio.sleep(0.02)
    finally:
        spin.end()
        loop.set_exception_handler(handler)
    assert len(calls) > 10                  # polled, and reported, on every turn after the first failure


async def test_idle_gives_nothing_to_wait_for_without_polling():
    assert Spin(10.0).idle() is None                     # no job
    off = Spin(0)
    off.begin()
    try:
        assert off.idle() is None                        # polling turned off
    finally:
        off.end()
    spin = Spin(10.0)
    spin.begin()
    spin.begin()
    try:
        await asyncio.sleep(0)
        assert spin.idle() is None                       # two jobs
    finally:
        spin.end()
        spin.end()


async def test_idle_lets_a_chain_of_turns_go_first_and_ends_when_polling_does():
    spin = Spin(10.0)
    spin.begin()
    try:
        await asyncio.sleep(0)
        turns = []

        async def answer() -> None:                      # the answer's way to its caller: a few short turns
            for n in range(SETTLE_POLLS - 1):
                await asyncio.sleep(0)
                turns.append(n)

        chain = asyncio.create_task(answer())
        settled = spin.idle()
        assert settled is not None
        await settled
        assert chain.done() and len(turns) == SETTLE_POLLS - 1
        later = spin.idle()
        assert later is not None and not later.done()
        spin.begin()                                     # a second job: polling stops, and nothing waits on
        try:
            await asyncio.wait_for(later, 1.0)
        finally:
            spin.end()
    finally:
        spin.end()
    budget = Spin(0.01)
    budget.begin()
    busy = BusyTurns()                                   # never idle: only the budget's end resolves it
    try:
        waiting = budget.idle()
        assert waiting is not None
        await asyncio.wait_for(waiting, 1.0)
    finally:
        busy.stop()
        budget.end()


async def test_the_pool_answers_before_it_collects_the_logs_of_a_lone_job(factory, manifest):
    """With a lone job, what on_response starts (the answer's way to its caller) runs before the container's logs
    are collected and the run returns."""
    pool: ContainerPool = make_pool(factory, manifest, spin_s=10.0)
    try:
        ok(await pool.run(job(SLEEPY, PY, value={"s": 0.0})))
        for _ in range(5):
            answered = []

            async def answer() -> None:
                for _ in range(SETTLE_POLLS - 1):
                    await asyncio.sleep(0)
                answered.append(1)

            tasks = []
            result = await pool.run(job(SLEEPY, PY, value={"s": 0.0}),
                                    on_response=lambda r: tasks.append(asyncio.create_task(answer())))
            ok(result)
            assert answered == [1]
            await asyncio.gather(*tasks)
    finally:
        await pool.close()


async def test_after_the_last_job_the_store_hears_once_a_few_turns_on_however_busy_the_loop():
    """The job's record is put in the turns after its end: `on_idle` comes SETTLE_POLLS turns later, once, even on a
    loop with no idle moment (where it would otherwise wait for the next job's wait)."""
    calls = []
    spin = Spin(10.0, on_idle=lambda: calls.append(1))
    busy = BusyTurns()
    try:
        spin.begin()
        await asyncio.sleep(0.02)
        assert calls == []                  # never idle while the job ran
        spin.end()
        for _ in range(SETTLE_POLLS - 1):
            await asyncio.sleep(0)
        assert calls == []
        for _ in range(3):
            await asyncio.sleep(0)
        assert calls == [1]
        await asyncio.sleep(0.01)
        assert calls == [1]
    finally:
        busy.stop()
    assert await busy_share() < ASLEEP      # and no polling after it


async def test_past_the_budget_idle_counts_turns_without_polling():
    spin = Spin(0.001)
    spin.begin()
    try:
        await asyncio.sleep(0.01)           # the budget is spent: the loop sleeps again
        settled = spin.idle()
        assert settled is not None
        for _ in range(SETTLE_POLLS - 1):
            await asyncio.sleep(0)
        assert not settled.done()
        for _ in range(3):
            await asyncio.sleep(0)
        assert settled.done()
        assert await busy_share() < ASLEEP  # and nothing goes on turning
    finally:
        spin.end()
