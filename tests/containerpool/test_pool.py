"""The container pool over real proxy processes: every state transition of docs/openwhisk.md §7.3/§7.4, timers on a
manual clock, the buffer, intra-container concurrency, and the early response callback."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.containerpool.support import gone, make_pool, ok, process_state, until
from tests.containerpool.jobs import NODE, PY, job
from whisk.containerpool.clock import ManualClock
from whisk.containerpool.job import NO_CONTAINER, RunResult
from whisk.containerpool.pool import ContainerPool, container_name
from whisk.containerpool.response import LOG_WARNING_DEVELOPER_ERROR
from whisk.containers.base import LOG_COLLECTION_FAILED, ContainerError

GATED = {  # wait until the file named by the argument "gate" exists: the test decides when the action ends
    PY: "import os, time\ndef main(a):\n    while not os.path.exists(a['gate']):\n        time.sleep(0.005)\n"
        "    return {'done': a.get('tag')}\n",
    NODE: "const fs = require('fs');\nfunction main(a) { return new Promise(r => { const t = setInterval(() => {"
          " if (fs.existsSync(a.gate)) { clearInterval(t); r({done: a.tag}); } }, 5); }); }\n",
}


@pytest_asyncio.fixture(loop_scope="session")
async def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture(loop_scope="session")
async def pool(factory, manifest, clock) -> AsyncIterator[ContainerPool]:
    made = make_pool(factory, manifest, clock)
    await made.start()
    yield made
    await made.close()
    assert factory.pids == []


def test_container_names_are_docker_safe():
    assert container_name(0, 3, "guest@x.org", "my-action.v2") == "wsk0_3_guestxorg_myactionv2"
    assert container_name(12, 1, "prewarm", "nodejs:20") == "wsk12_1_prewarm_nodejs20"


async def test_cold_warm_pause_resume_and_idle_removal(pool: ContainerPool, factory, clock: ManualClock):
    j = job(value={"n": 1})
    first = await pool.run(j)
    assert ok(first) == {"n": 1} and first.container_start == "cold" and first.init_ms is not None
    assert first.start_ms <= first.end_ms
    (pid,) = factory.pids
    assert pool.stats()["containers"] == {"ready": 1}
    second = await pool.run(job(value={"n": 2}))
    assert ok(second) == {"n": 2} and second.container_start == "warmed" and second.init_ms is None
    clock.advance(9.9)
    assert pool.stats()["containers"] == {"ready": 1}
    clock.advance(0.1)                                                # pause grace over
    assert pool.stats()["containers"] == {"paused": 1}
    await until(lambda: process_state(pid) == "T")
    third = await pool.run(job(value={"n": 3}))                        # resumed
    assert ok(third) == {"n": 3} and third.container_start == "warmed" and factory.pids == [pid]
    clock.advance(10)
    await until(lambda: process_state(pid) == "T")
    clock.advance(599)
    assert not gone(pid)
    clock.advance(1)                                                  # idle timeout over: removed
    assert pool.stats()["containers"] == {} and pool.stats()["memory_used_mb"] == 0
    await until(lambda: gone(pid))
    assert ok(await pool.run(job(value={"n": 4}))) == {"n": 4}        # and a new one is made when needed


async def test_a_job_that_arrives_as_the_pause_timer_fires_keeps_the_container_running(pool: ContainerPool, factory,
                                                                                     clock: ManualClock):
    await pool.run(job(value={"n": 1}))
    (pid,) = factory.pids
    clock.advance(10)                                                 # pause decided, the suspend not yet run
    assert pool.stats()["containers"] == {"paused": 1}
    result = await pool.run(job(value={"n": 2}))                      # takes it before the suspend could start
    assert ok(result) == {"n": 2} and result.container_start == "warmed"
    assert pool.stats()["containers"] == {"ready": 1} and process_state(pid) != "T"   # never suspended
    clock.advance(10)                                                 # the next pause goes through
    await until(lambda: process_state(pid) == "T")
    assert ok(await pool.run(job(value={"n": 3}))) == {"n": 3} and process_state(pid) != "T"


async def test_a_job_larger_than_the_pool_gets_no_container_and_says_so(pool: ContainerPool, factory):
    """A whisk error with no container sought: its start is NO_CONTAINER, not a cold start (the invoker counts
    each run's start in whisk_invoker_container_starts_total)."""
    result = await pool.run(job(memory_mb=2048))
    assert result.response["statusCode"] == 3 and result.container_start == NO_CONTAINER
    assert factory.pids == []


async def test_warm_containers_are_per_invoking_namespace(pool: ContainerPool, factory):
    a = await pool.run(job(namespace="alice"))
    b = await pool.run(job(namespace="bob"))
    again = await pool.run(job(namespace="alice"))
    assert (a.container_start, b.container_start, again.container_start) == ("cold", "cold", "warmed")
    assert len(factory.pids) == 2


async def test_prewarms_are_started_used_and_refilled(factory, manifest):
    made = make_pool(factory, manifest, prewarm=True, memory_mb=2048)
    await made.start()
    try:
        assert made.stats()["containers"] == {"prewarmed": 2}             # python:3.11 and nodejs:20, 256 MB
        result = await made.run(job(kind=NODE, value={"x": 1}))
        assert ok(result) == {"x": 1} and result.container_start == "prewarmed" and result.init_ms is not None
        await until(lambda: made.stats()["containers"].get("prewarmed") == 2)
        other_memory = await made.run(job(kind=PY, memory_mb=512))
        assert other_memory.container_start == "cold"                   # prewarms match kind and memory
        assert ok(await made.run(job(kind=PY))) == {} and made.stats()["containers"]["ready"] == 3
    finally:
        await made.close()
    assert factory.pids == []


async def test_reactive_prewarms_follow_a_burst_of_cold_starts_then_expire(factory, manifest, clock: ManualClock):
    # runtimes.json: python and nodejs stem cells, initialCount 1, reactive minCount 1, maxCount 4, ttl 2 minutes.
    made = make_pool(factory, manifest, clock, prewarm=True, memory_mb=4096, prewarm_check_s=60)
    await made.start()
    try:
        assert made.prewarmed() == {PY: 1, NODE: 1}
        burst = await asyncio.gather(*(made.run(job(kind=PY, name=f"burst{n}")) for n in range(5)))
        assert sorted(r.container_start for r in burst) == ["cold"] * 4 + ["prewarmed"]
        await until(lambda: made.prewarmed() == {PY: 1, NODE: 1})      # the taken one was replaced
        clock.advance(60)                                               # the check: 4 cold starts -> 4 prewarms
        await until(lambda: made.prewarmed() == {PY: 4, NODE: 1})
        clock.advance(60)        # ttl over for those made at the burst: python keeps 3, nodejs backfills to 1
        await until(lambda: made.prewarmed() == {PY: 3, NODE: 1} and len(factory.pids) == 5 + 4)
        clock.advance(60)                                               # the rest expire: back to minCount
        await until(lambda: made.prewarmed() == {PY: 1, NODE: 1} and len(factory.pids) == 5 + 2)
    finally:
        await made.close()
    assert factory.pids == []


async def test_least_recently_used_idle_container_is_evicted(factory, manifest):
    made = make_pool(factory, manifest, memory_mb=512)
    try:
        await made.run(job(name="a"))
        (pid_a,) = factory.pids
        await made.run(job(name="b"))
        (pid_b,) = set(factory.pids) - {pid_a}
        c = await made.run(job(name="c"))
        assert c.container_start == "recreated" and ok(c) == {}
        await until(lambda: gone(pid_a))
        assert not gone(pid_b) and made.stats()["memory_used_mb"] == 512
    finally:
        await made.close()


async def test_buffered_jobs_run_in_order_when_capacity_frees(open_factory, manifest, tmp_path):
    factory = open_factory                      # the gate is a file the test makes
    made = make_pool(factory, manifest, memory_mb=256)
    gate = str(tmp_path / "gate")
    try:
        blocker = asyncio.create_task(made.run(job(GATED[PY], name="slow", value={"gate": gate, "tag": "x"})))
        await until(lambda: made.stats()["active"] == 1)
        order: list[str] = []
        later = [asyncio.create_task(made.run(job(name=n), on_response=lambda r, n=n: order.append(n)))
                 for n in ("y", "z")]
        same_action = asyncio.create_task(made.run(job(GATED[PY], name="slow", value={"gate": gate, "tag": "w"}),
                                                   on_response=lambda r: order.append("w")))
        await until(lambda: made.stats()["buffered"] == 3)
        open(gate, "w").close()
        assert ok(await blocker) == {"done": "x"}
        results = await asyncio.gather(*later, same_action)
        assert order == ["y", "z", "w"]                      # w queued behind y and z though its container was warm
        assert [r.container_start for r in results] == ["recreated", "recreated", "recreated"]
        assert made.stats()["buffered"] == 0
    finally:
        await made.close()


async def test_intra_container_concurrency(open_factory, manifest, tmp_path):
    factory = open_factory                      # the gate is a file the test makes
    made = make_pool(factory, manifest, memory_mb=1024)
    gate = str(tmp_path / "gate")
    try:
        runs = [asyncio.create_task(made.run(job(GATED[NODE], kind=NODE, name="conc", concurrency=2,
                                                 value={"gate": gate, "tag": i}))) for i in range(3)]
        await until(lambda: made.stats()["active"] == 3 and len(factory.pids) == 2)
        assert sum(made.stats()["containers"].values()) == 2   # two share one container, the third needs another
        open(gate, "w").close()
        results = await asyncio.gather(*runs)
        assert [ok(r)["done"] for r in results] == [0, 1, 2]
        assert sorted(r.container_start for r in results) == ["cold", "cold", "warmingCold"]
        assert [r.init_ms is None for r in results].count(True) == 1
    finally:
        await made.close()


async def test_a_runtime_that_runs_one_activation_at_a_time_gets_one(open_factory, manifest):
    """The Python runtime serves one /run at a time (OpenWhisk's lacks intra-container concurrency too): with
    concurrency 3, three activations sent to one container waited there for each other, their time limits and
    durations counting the wait, and the last timed out though it needed 0.5 s of its 1.5 s. Each gets a container
    of its own; a Node.js action's still share one."""
    code = "import time\ndef main(a):\n    time.sleep(0.5)\n    return {'tag': a['tag']}\n"
    made = make_pool(open_factory, manifest, memory_mb=1024)
    try:
        results = await asyncio.gather(*(made.run(job(code, name="serial", concurrency=3, timeout_ms=1500,
                                                      value={"tag": i})) for i in range(3)))
        assert [ok(r)["tag"] for r in results] == [0, 1, 2]
        assert all(r.end_ms - r.start_ms - (r.init_ms or 0) < 1000 for r in results)
        assert sum(made.stats()["containers"].values()) == 3
    finally:
        await made.close()
    assert not manifest.resolve(PY).concurrent and manifest.resolve(NODE).concurrent


async def test_on_response_comes_before_the_logs(pool: ContainerPool):
    seen: list[RunResult] = []
    code = "def main(a):\n    print('hello')\n    return {'ok': True}\n"
    result = await pool.run(job(code, name="early"), on_response=lambda r: seen.append(
        RunResult(dict(r.response), r.start_ms, r.end_ms, r.init_ms, r.timed_out,
                  r.container_start, list(r.logs))))
    assert len(seen) == 1 and seen[0].logs == [] and seen[0].response == result.response
    assert len(result.logs) == 1 and result.logs[0].endswith(" stdout: hello")


async def test_the_deadline_an_action_sees_counts_from_its_init_and_its_run(pool: ContainerPool):
    # OpenWhisk's proxy computes `__OW_DEADLINE` just before /init and again just before /run: each gets the whole
    # limit, so the action's deadline is when the platform stops it, however long the job waited (the pool's buffer,
    # a container to make) and its init took.
    code = ("import os, time\nAT_INIT = int(os.environ['__OW_DEADLINE']) - time.time_ns() // 1_000_000\n"
            "time.sleep(0.5)\n"
            "def main(a):\n    return {'init': AT_INIT,"
            " 'run': int(os.environ['__OW_DEADLINE']) - time.time_ns() // 1_000_000}\n")
    j = job(code, name="deadline", timeout_ms=10_000)
    await asyncio.sleep(0.5)                                  # the job waited before it got a container
    left = ok(await pool.run(j))
    assert 9_800 <= left["init"] <= 10_000 and 9_800 <= left["run"] <= 10_000, left


async def test_a_warm_container_that_died_is_replaced_and_the_job_requeued(pool: ContainerPool, factory):
    await pool.run(job(name="fragile"))
    (container,) = factory.containers
    os.kill(container.pid, signal.SIGKILL)                  # our own child: it dies while idle ...
    await until(lambda: not container.alive)                # ... and the platform has seen it die
    pid = container.pid
    result = await pool.run(job(name="fragile", value={"again": 1}))
    assert ok(result) == {"again": 1} and result.container_start == "cold"
    assert pid not in factory.pids and len(factory.pids) == 1


async def test_a_job_larger_than_the_pool_is_a_whisk_error(pool: ContainerPool):
    result = await pool.run(job(memory_mb=4096))
    assert result.response == {"statusCode": 3, "result": {"error": "Failed to provision resources to run the action."}}


async def test_close_fails_buffered_jobs_and_destroys_everything(open_factory, manifest, tmp_path):
    factory = open_factory                      # the gate is a file the test makes
    made = make_pool(factory, manifest, memory_mb=256)
    gate = str(tmp_path / "gate")
    running = asyncio.create_task(made.run(job(GATED[PY], name="slow", value={"gate": gate})))
    await until(lambda: made.stats()["active"] == 1)
    waiting = asyncio.create_task(made.run(job(name="other")))
    await until(lambda: made.stats()["buffered"] == 1)
    pids = factory.pids
    await made.close()
    with pytest.raises(ContainerError):
        await waiting
    result = await running                                   # its container was destroyed under it
    assert result.response["statusCode"] == 2
    assert all(gone(p) for p in pids) and factory.pids == []
    with pytest.raises(ContainerError):
        await made.run(job())


async def test_a_paused_container_that_died_is_replaced_and_the_job_requeued(pool: ContainerPool, factory,
                                                                            clock: ManualClock):
    await pool.run(job(name="frozen"))
    (container,) = factory.containers
    clock.advance(10)
    await until(lambda: process_state(container.pid) == "T")
    os.kill(container.pid, signal.SIGKILL)
    await until(lambda: not container.alive)
    result = await pool.run(job(name="frozen", value={"thawed": True}))
    assert ok(result) == {"thawed": True} and result.container_start == "cold"


async def test_a_failure_on_a_shared_container_waits_for_the_others_then_destroys_it(open_factory, manifest, tmp_path):
    factory = open_factory                      # the gate is a file the test makes
    made = make_pool(factory, manifest, memory_mb=1024)
    gate = str(tmp_path / "gate")
    code = ("const fs = require('fs');\nfunction main(a) { if (a.fail) throw new Error('failing');\n"
            " return new Promise(r => { const t = setInterval(() => { if (fs.existsSync(a.gate)) {"
            " clearInterval(t); r({ok: a.tag}); } }, 5); }); }\n")
    try:
        slow = asyncio.create_task(made.run(job(code, kind=NODE, name="shared", concurrency=2,
                                                value={"gate": gate, "tag": 1})))
        await until(lambda: len(factory.pids) == 1 and made.stats()["containers"].get("busy") == 1)
        (pid,) = factory.pids
        failing = await made.run(job(code, kind=NODE, name="shared", concurrency=2, value={"fail": True}))
        assert failing.response["statusCode"] == 2
        assert not gone(pid)                                # the other activation still runs there
        other = asyncio.create_task(made.run(job(code, kind=NODE, name="shared", concurrency=2,
                                                 value={"gate": gate, "tag": 3})))
        await until(lambda: len(factory.pids) == 2)          # a doomed container takes no new job
        open(gate, "w").close()
        assert ok(await slow) == {"ok": 1} and ok(await other) == {"ok": 3}
        await until(lambda: gone(pid))
        assert pid not in factory.pids and len(factory.pids) == 1
    finally:
        await made.close()


async def test_a_timeout_beside_running_activations_leaves_them_their_sentinels(open_factory, manifest):
    """Concurrency 2: one activation times out while another runs in its container and ends within the timed-out
    one's grace for log lines. The timed-out one's runtime writes no sentinels for it (it runs on), so the
    sentinels it waited for and took were the other's, whose own read then waited 2 s and ended with "There was an
    issue while collecting your logs", its lines in the timed-out record. Now the timed-out one leaves them: its
    record has the developer-error line, the other's the lines of both (which cannot be told apart)."""
    code = ("function main(a) { console.log('start ' + a.n); if (a.n === 0) return new Promise(() => {});\n"
            " return new Promise(r => setTimeout(() => { console.log('end ' + a.n); r({n: a.n}); }, 900)); }\n")
    made = make_pool(open_factory, manifest, memory_mb=1024)
    try:
        stuck = asyncio.create_task(made.run(job(code, kind=NODE, name="beside", concurrency=2, timeout_ms=1000,
                                                 value={"n": 0})))
        await until(lambda: made.stats()["containers"].get("busy") == 1)
        await asyncio.sleep(0.4)
        started = asyncio.get_running_loop().time()
        other = await made.run(job(code, kind=NODE, name="beside", concurrency=2, timeout_ms=1000, value={"n": 1}))
        timed_out = await stuck
        assert timed_out.timed_out and ok(other) == {"n": 1}
        assert asyncio.get_running_loop().time() - started < 1.5          # not the 2 s wait for sentinels
        assert [line.split(": ", 1)[1] for line in timed_out.logs] == [LOG_WARNING_DEVELOPER_ERROR]
        assert sorted(line.split(": ", 1)[1] for line in other.logs) == ["end 1", "start 0", "start 1"]
    finally:
        await made.close()


async def test_a_caller_that_gives_up_while_buffered_leaves_the_queue(open_factory, manifest, tmp_path):
    factory = open_factory                      # the gate is a file the test makes
    made = make_pool(factory, manifest, memory_mb=256)
    gate = str(tmp_path / "gate")
    try:
        running = asyncio.create_task(made.run(job(GATED[PY], name="slow", value={"gate": gate})))
        await until(lambda: made.stats()["active"] == 1)
        impatient = asyncio.create_task(made.run(job(name="impatient")))
        await until(lambda: made.stats()["buffered"] == 1)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        assert made.stats()["buffered"] == 0
        open(gate, "w").close()
        await running
        assert ok(await made.run(job(GATED[PY], name="slow", value={"gate": gate}))) == {"done": None}
    finally:
        await made.close()


async def test_a_failing_response_callback_does_not_fail_the_activation(pool: ContainerPool):
    def broken(result: RunResult) -> None:
        raise RuntimeError("caller bug")

    result = await pool.run(job(name="cb", value={"x": 1}), on_response=broken)
    assert ok(result) == {"x": 1}


async def test_logs_that_cannot_be_read_after_the_answer_keep_the_answer(pool: ContainerPool, factory):
    """Once /run has answered (and a blocking caller has that answer), a failure to read the logs (docker's log API
    failing, say) is OpenWhisk's log-collection failure: the result stands with a line saying so, and the container
    goes. It was raised instead, so the invoker stored a whisk error contradicting the answer."""
    await pool.run(job(name="unlogged"))
    (container,) = factory.containers

    async def unreadable(*args, **kwargs) -> list[str]:
        raise ContainerError("docker: cannot read the logs of the container")

    container.logs = unreadable
    seen: list[dict] = []
    result = await pool.run(job(name="unlogged", value={"x": 2}), on_response=lambda r: seen.append(r.response))
    assert ok(result) == {"x": 2} and seen == [result.response]
    assert len(result.logs) == 1 and result.logs[0].endswith(f"stderr: {LOG_COLLECTION_FAILED}")
    await until(lambda: container not in factory.containers)          # not kept: its logs are out of step


async def test_a_prewarmed_container_that_died_is_replaced_and_the_job_requeued(factory, manifest):
    """A stem cell that died while it waited (the OOM killer, a crash) was handed to the next activation, whose /init
    then failed as a developer error ("did not initialize and exited unexpectedly"): the platform's failure blamed on
    the action. As for a warm container that died, the job is placed again and the dead one replaced."""
    made = make_pool(factory, manifest, prewarm=True, memory_mb=2048)
    await made.start()
    try:
        (stem_cell,) = [c for c in factory.containers if "nodejs" in c.id]
        os.kill(stem_cell.pid, signal.SIGKILL)              # our own child: it dies while prewarmed ...
        await until(lambda: not stem_cell.alive)            # ... and the platform has seen it die
        result = await made.run(job(kind=NODE, value={"x": 1}))
        assert ok(result) == {"x": 1}, result.response
        assert stem_cell.pid not in factory.pids
    finally:
        await made.close()
    assert factory.pids == []


async def test_a_job_the_prewarms_leave_no_room_for_evicts_them(factory, manifest):
    """A pool of 512 MB keeps python and nodejs stem cells of 256 MB: a job of another memory never fit, as
    prewarms were never evicted, and waited in the buffer for good with every job behind it. The prewarms now
    make room for it; one of its own kind and memory is still taken first."""
    made = make_pool(factory, manifest, prewarm=True, memory_mb=512)
    await made.start()
    try:
        assert made.prewarmed() == {PY: 1, NODE: 1}
        big = await asyncio.wait_for(made.run(job(name="big", memory_mb=512, value={"x": 1})), 30)
        assert ok(big) == {"x": 1} and big.container_start == "recreated"
        assert made.prewarmed() == {} and made.stats()["memory_used_mb"] == 512
        small = await asyncio.wait_for(made.run(job(kind=NODE, name="small", memory_mb=128)), 30)
        assert ok(small) == {} and small.container_start == "recreated"          # the idle 512 MB one goes
        # The big one gone, a prewarm (the manifest's first stem cell that fits) is back in its room.
        await until(lambda: len(factory.pids) == 2 and sum(made.prewarmed().values()) == 1)
        assert made.stats()["memory_used_mb"] == 128 + 256
    finally:
        await made.close()
    assert factory.pids == []


async def test_a_container_whose_pause_failed_is_not_trusted_with_the_next_job(pool: ContainerPool, factory,
                                                                               clock: ManualClock):
    """A pause that fails leaves the container in a state nobody knows (docker's pause can time out and still take
    effect). It was kept as if running, so the next job's /run went to a frozen container and timed out, a
    developer error for a platform's fault. As OpenWhisk's proxy does, it is destroyed, and the job gets another."""
    await pool.run(job(name="frozen-by-error", timeout_ms=2000))
    (container,) = factory.containers
    real_suspend = container.suspend
    failed: list[bool] = []

    async def suspended_then_failed() -> None:
        await real_suspend()
        failed.append(True)
        raise ContainerError("docker: cannot pause the container: timed out")

    container.suspend = suspended_then_failed
    clock.advance(10)                                                 # pause grace over: the pause fails
    await until(lambda: failed == [True])
    result = await pool.run(job(name="frozen-by-error", timeout_ms=2000, value={"x": 1}))
    assert ok(result) == {"x": 1} and result.container_start == "cold"
    await until(lambda: container not in factory.containers)


async def test_a_job_joining_a_paused_container_waits_for_its_resume(open_factory, manifest):
    """Concurrency 2, the container paused: the first job placed on it resumes it, a second one joins. The second
    sent its /run at once, to the frozen container; when the resume failed the first went elsewhere and the second
    waited there until its time limit, a developer error for a platform's fault. It waits for the resume now, and
    goes elsewhere with the first."""
    clock = ManualClock()
    made = make_pool(open_factory, manifest, clock, memory_mb=1024)
    code = "function main(a) { return {n: a.n}; }\n"
    try:
        await made.run(job(code, kind=NODE, name="thaw", concurrency=2, timeout_ms=2000, value={"n": 0}))
        (container,) = open_factory.containers
        clock.advance(10)
        await until(lambda: process_state(container.pid) == "T")

        async def failing_resume() -> None:
            await asyncio.sleep(0.2)
            raise ContainerError("docker: cannot unpause the container: timed out")

        container.resume = failing_resume
        results = await asyncio.gather(*(made.run(job(code, kind=NODE, name="thaw", concurrency=2, timeout_ms=2000,
                                                      value={"n": n})) for n in (1, 2)))
        assert [ok(r) for r in results] == [{"n": 1}, {"n": 2}]
        assert [r.container_start for r in results] == ["cold", "warmingCold"]
        await until(lambda: container not in open_factory.containers)
    finally:
        await made.close()
