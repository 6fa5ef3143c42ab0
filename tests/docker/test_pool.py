"""The container pool over the docker:// backend: cold, warm, pause after the grace period, resume, idle removal,
prewarms, and the faults (OOM, timeout, crash), each seen through Docker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiodocker
import pytest
import pytest_asyncio

from tests.containerpool.jobs import NODE, PY, job
from tests.containerpool.support import make_pool, ok
from tests.docker.conftest import NODEJS_IMAGE, PYTHON_IMAGE, labelled
from whisk.containerpool.clock import ManualClock
from whisk.containerpool.pool import ContainerPool
from whisk.containers.docker.factory import DockerContainerFactory
from whisk.runtimes.manifest import Manifest, load_manifest

pytestmark = pytest.mark.docker

IMAGES = {PY: PYTHON_IMAGE, NODE: NODEJS_IMAGE}
WARNING = "The action did not initialize or run as expected. Log data might be missing."


def djob(code: str | None = None, kind: str = PY, **kw):
    return job(code, kind, image=IMAGES[kind], **kw)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


@pytest_asyncio.fixture(loop_scope="session")
async def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture(loop_scope="session")
async def pool(factory: DockerContainerFactory, manifest: Manifest, clock: ManualClock,
               docker: aiodocker.Docker) -> AsyncIterator[ContainerPool]:
    made = make_pool(factory, manifest, clock, memory_mb=2048)
    await made.start()
    yield made
    await made.close()
    assert await labelled(docker, factory.invoker) == []


async def state(docker: aiodocker.Docker, invoker: int) -> list[dict]:
    states = []
    for i in await labelled(docker, invoker):
        try:
            states.append((await docker.containers.container(i).show())["State"])
        except aiodocker.DockerError as exc:
            if exc.status != 404:          # removed between the listing and now: no longer one of them
                raise
    return states


async def test_cold_warm_pause_resume_and_idle_removal(pool: ContainerPool, factory: DockerContainerFactory,
                                                       clock: ManualClock, docker: aiodocker.Docker) -> None:
    first = await pool.run(djob(value={"n": 1}))
    assert ok(first) == {"n": 1} and first.container_start == "cold" and first.init_ms is not None
    assert first.logs == []                                       # the echo action prints nothing
    second = await pool.run(djob(value={"n": 2}))
    assert ok(second) == {"n": 2} and second.container_start == "warmed"
    [before] = await labelled(docker, factory.invoker)

    clock.advance(10)                                             # the pause grace is over: docker pause
    assert pool.stats()["containers"] == {"paused": 1}
    await _until_state(docker, factory.invoker, lambda s: s["Paused"])
    third = await pool.run(djob(value={"n": 3}))                  # unpause, then /run
    assert ok(third) == {"n": 3} and third.container_start == "warmed"
    assert await labelled(docker, factory.invoker) == [before]
    assert [s["Paused"] for s in await state(docker, factory.invoker)] == [False]

    clock.advance(10)
    clock.advance(600)                                            # idle timeout: removed
    await _until_state(docker, factory.invoker, None)
    assert pool.stats()["containers"] == {}


async def _until_state(docker: aiodocker.Docker, invoker: int, check) -> None:
    """Wait until every container of the invoker passes `check`; with None, until there are none."""
    end = time.monotonic() + 20
    while True:
        states = await state(docker, invoker)
        if (check is None and not states) or (check is not None and states and all(check(s) for s in states)):
            return
        assert time.monotonic() < end, states
        await asyncio.sleep(0.02)


async def test_prewarms(factory: DockerContainerFactory, manifest: Manifest, docker: aiodocker.Docker) -> None:
    made = make_pool(factory, manifest, prewarm=True, memory_mb=2048)
    await made.start()
    try:
        assert made.stats()["containers"] == {"prewarmed": 2}
        names = sorted(c["Names"][0] for c in await docker.containers.list(
            filters={"label": [f"whisk.invoker={factory.invoker}"]}))
        assert [n.split("_", 2)[2] for n in names] == ["prewarm_nodejs20", "prewarm_python311"], names
        result = await made.run(djob(kind=NODE, value={"x": 1}))
        assert ok(result) == {"x": 1} and result.container_start == "prewarmed"
    finally:
        await made.close()


async def _kill_all(docker: aiodocker.Docker, invoker: int) -> None:
    """What a restarted dockerd (or an operator's `docker kill`) does to the invoker's containers."""
    for container in await docker.containers.list(filters={"label": [f"whisk.invoker={invoker}"]}):
        await container.kill()
    await _until_state(docker, invoker, lambda s: not s["Running"])


async def test_a_warm_container_that_died_idle_is_replaced(pool: ContainerPool, factory: DockerContainerFactory,
                                                           docker: aiodocker.Docker) -> None:
    """Nothing of the job reached a container that had died while it waited: the job goes to a new one, as for the
    process backend, and is not charged to the action as "exited unexpectedly"."""
    assert ok(await pool.run(djob(value={"n": 1}))) == {"n": 1}
    [dead] = await labelled(docker, factory.invoker)
    await _kill_all(docker, factory.invoker)
    again = await pool.run(djob(value={"n": 2}))
    assert ok(again) == {"n": 2} and again.container_start == "cold"
    assert dead not in await labelled(docker, factory.invoker)
    assert pool.stats()["containers"] == {"ready": 1}


async def test_a_prewarm_that_died_is_replaced(factory: DockerContainerFactory, manifest: Manifest,
                                               docker: aiodocker.Docker) -> None:
    made = make_pool(factory, manifest, prewarm=True, memory_mb=2048)
    await made.start()
    try:
        await asyncio.sleep(0.3)               # a stem cell waits: more than a cold start's first moments
        await _kill_all(docker, factory.invoker)
        result = await made.run(djob(kind=NODE, value={"x": 1}))
        assert ok(result) == {"x": 1}
    finally:
        await made.close()


@pytest.mark.parametrize("code, memory_mb, timeout_ms, message", [
    ("def main(a):\n    hog = []\n    while True:\n        hog.append(bytearray(8 << 20))\n", 128, 30_000,
     "The action exhausted its memory and was aborted."),
    ("import time\ndef main(a):\n    time.sleep(30)\n", 256, 500,
     "The action exceeded its time limits of 500 milliseconds."),
    ("import os\ndef main(a):\n    print('leaving')\n    os._exit(1)\n", 256, 10_000,
     "The action did not produce a valid response and exited unexpectedly."),
])
async def test_faults_end_the_container(pool: ContainerPool, factory: DockerContainerFactory,
                                        docker: aiodocker.Docker, code: str, memory_mb: int, timeout_ms: int,
                                        message: str) -> None:
    result = await pool.run(djob(code, name="fault", memory_mb=memory_mb, timeout_ms=timeout_ms))
    assert result.response["statusCode"] == 2, result.response               # developer error
    assert result.response["result"] == {"error": message}
    assert result.logs[-1].endswith(f"stderr: {WARNING}")
    await _until_state(docker, factory.invoker, None)                       # destroyed
    assert ok(await pool.run(djob(value={"after": 1}))) == {"after": 1}


CONCURRENT_NODE = """
function main(a) {
    console.log('start ' + a.tag);
    return new Promise(done => setTimeout(() => { console.log('end ' + a.tag); done({tag: a.tag}); }, a.ms));
}
"""


async def test_intra_container_concurrency(pool: ContainerPool, factory: DockerContainerFactory, clock: ManualClock,
                                           docker: aiodocker.Docker) -> None:
    """A Node.js action with concurrency 3: three activations share one container, each gets its own result, and
    its log lines are all collected, each once, in one of the three records (which one cannot be told, as in
    OpenWhisk), with no collection failure that would cost the container; paused, it takes three again at once."""
    for round_ in range(2):
        jobs = [djob(CONCURRENT_NODE, NODE, name="conc3", concurrency=3, value={"tag": f"{round_}{i}", "ms": ms})
                for i, ms in enumerate((300, 100, 200))]
        results = await asyncio.gather(*(pool.run(j) for j in jobs))
        assert [ok(r)["tag"] for r in results] == [f"{round_}{i}" for i in range(3)]
        assert len(await labelled(docker, factory.invoker)) == 1
        texts = sorted(line.split(": ", 1)[1] for r in results for line in r.logs)
        assert texts == sorted(f"{what} {round_}{i}" for i in range(3) for what in ("start", "end")), texts
        assert pool.stats()["containers"] == {"ready": 1}
        clock.advance(10)                                         # paused before the second round
    clock.advance(600)
    await _until_state(docker, factory.invoker, None)
