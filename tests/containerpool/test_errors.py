"""Every error path of docs/openwhisk.md §4 through the pool, over real proxies: the response, the `timeout` flag, the
logs, whether the container is kept or destroyed, and that the next invocation works."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.containerpool.jobs import NODE, PY, job
from tests.containerpool.support import gone, make_pool, ok, until
from whisk.containerpool.job import RunResult
from whisk.containerpool.pool import ContainerPool
from whisk.containerpool.proxy import ContainerProxy

WARNING = "The action did not initialize or run as expected. Log data might be missing."


@pytest_asyncio.fixture(loop_scope="session")
async def pool(factory, manifest) -> AsyncIterator[ContainerPool]:
    made = make_pool(factory, manifest, memory_mb=2048)
    yield made
    await made.close()


async def fails(pool: ContainerPool, factory, j, status: int) -> RunResult:
    """Run a failing job: its status, its container destroyed, and a good job of the same kind works after."""
    before = set(factory.pids)
    result = await pool.run(j)
    assert result.response["statusCode"] == status, result.response
    assert result.logs and result.logs[-1].endswith(f"stderr: {WARNING}")
    made = set(factory.pids) - before
    await until(lambda: all(gone(p) for p in made) and set(factory.pids) <= before)
    assert ok(await pool.run(job(kind=j.kind, value={"after": j.action_path}))) == {"after": j.action_path}
    return result


def error(result: RunResult) -> str:
    return result.response["result"]["error"]


async def test_syntax_error_fails_init(pool, factory):
    r = await fails(pool, factory, job("def main(a)\n    return a\n", name="syntax"), 2)
    assert error(r) == "The action failed to generate or locate a binary. See logs for details."
    assert r.init_ms is not None
    assert r.logs[-2].endswith("stderr: SyntaxError: expected ':'")


async def test_code_raising_at_import_fails_init(pool, factory):
    r = await fails(pool, factory, job("raise RuntimeError('broken on load')\n", name="broken"), 2)
    assert any("broken on load" in line for line in r.logs)


async def test_missing_main(pool, factory):
    r = await fails(pool, factory, job("def other(a):\n    return a\n", name="nomain", main="main"), 2)
    assert any("cannot import name 'main'" in line for line in r.logs)
    r = await fails(pool, factory, job("function other() {}", kind=NODE, name="nomain-js"), 2)
    assert error(r).startswith("Initialization has failed due to:")


async def test_exception_in_main(pool, factory):
    # Python: the result {"error": ...}, an application error (OpenWhisk's Python runtime); Node.js: a developer error.
    raising = job("def main(a):\n    raise ValueError('bad input')\n", name="raises")
    r = await pool.run(raising)
    assert r.response["statusCode"] == 1 and error(r) == "bad input" and r.init_ms is not None
    assert any("ValueError: bad input" in line for line in r.logs)          # the traceback is in the logs
    again = await pool.run(raising)                                          # the container is kept, warm
    assert again.response["statusCode"] == 1 and again.init_ms is None
    r = await fails(pool, factory, job("function main() { throw new Error('nope'); }", kind=NODE, name="throws"), 2)
    assert error(r) == "An error has occurred: Error: nope"


async def test_non_json_response(pool, factory):
    # The action replaces the runtime's JSON encoder: the proxy then really sends a body that is not JSON.
    code = "import json\ndef main(a):\n    json.dumps = lambda *x, **k: 'this is not json'\n    return {}\n"
    r = await fails(pool, factory, job(code, name="nonjson"), 2)
    assert error(r) == "The action did not produce a valid JSON or JSON Array response: this is not json"


async def test_non_dictionary_result(pool, factory):
    r = await fails(pool, factory, job("def main(a):\n    return 42\n", name="number"), 2)
    assert error(r) == "The action did not return a dictionary or array."


async def test_action_that_exits(pool, factory):
    r = await fails(pool, factory, job("import sys\ndef main(a):\n    print('leaving')\n    sys.exit(4)\n",
                                       name="exits"), 2)
    # OpenWhisk's Python runtime: its proxy outlives the action's process and answers 400 "command exited".
    assert error(r) == "command exited" and r.response["statusCode"] == 2
    assert any(line.endswith("stdout: leaving") for line in r.logs)
    assert not any("issue while collecting" in line for line in r.logs)        # the sentinels were written
    r = await fails(pool, factory, job("function main() { process.exit(1); }", kind=NODE, name="exits-js"), 2)
    assert error(r) == "The action did not produce a valid response and exited unexpectedly."


async def test_action_that_kills_itself(pool, factory):
    code = "import os, signal\ndef main(a):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    r = await fails(pool, factory, job(code, name="suicide"), 2)
    assert error(r) == "The action did not produce a valid response and exited unexpectedly."


async def test_action_that_exits_while_loading(pool, factory):
    r = await fails(pool, factory, job("import os\nos._exit(2)\n", name="exit-on-load"), 2)
    assert error(r) == "The action did not initialize and exited unexpectedly."


async def test_infinite_loop_times_out_and_the_container_is_destroyed(pool, factory):
    r = await fails(pool, factory, job("def main(a):\n    while True:\n        pass\n", name="loop",
                                       timeout_ms=300), 2)
    assert error(r) == "The action exceeded its time limits of 300 milliseconds." and r.timed_out
    assert r.end_ms - r.start_ms >= 300
    r = await fails(pool, factory, job("function main() { for (;;) {} }", kind=NODE, name="loop-js",
                                       timeout_ms=300), 2)
    assert error(r) == "The action exceeded its time limits of 300 milliseconds." and r.timed_out



async def test_a_destroyed_container_is_freed_without_the_collector(pool, factory):
    """A container destroyed after a timeout is freed by reference counting, not left in a cycle for the collector:
    the server runs it rarely (whisk/roles.py), and a soak's timing-out action destroys a container every few
    seconds. The pool's callbacks closed over its Slot, which holds the container's proxy."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)       # what the collector finds is kept in gc.garbage for the check
    try:
        await fails(pool, factory, job("def main(a):\n    while True:\n        pass\n", name="loop-freed",
                                       timeout_ms=300), 2)
        gc.collect()
        assert [o.spec.name for o in gc.garbage if isinstance(o, ContainerProxy)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()

async def test_init_that_outlasts_the_timeout(pool, factory):
    code = "import time\ntime.sleep(60)\ndef main(a):\n    return a\n"
    r = await fails(pool, factory, job(code, name="slow-init", timeout_ms=300), 2)
    assert error(r) == "The action exceeded its time limits of 300 milliseconds during initialization."
    assert r.timed_out


async def test_memory_hog(pool, factory):
    code = "def main(a):\n    hog = bytearray(600 * 1024 * 1024)\n    return {'n': len(hog)}\n"
    r = await fails(pool, factory, job(code, name="hog", memory_mb=128), 2)
    if factory.uses_cgroups:
        assert error(r) == "The action exhausted its memory and was aborted."
    else:                                   # the allocation fails inside the action, which reports it
        assert error(r) == "MemoryError"


async def test_result_over_the_limit_is_an_application_error_and_keeps_the_container(pool, factory):
    code = "def main(a):\n    return {'big': 'x' * (2 * 1024 * 1024)}\n"
    r = await pool.run(job(code, name="big"))
    assert r.response["statusCode"] == 1
    assert error(r).startswith("The action produced a response that exceeded the allowed length: 2097163 > "
                               "1048576 bytes. The truncated response was: {\"big\": \"xxx")
    assert len(error(r)) < 1_048_576 + 200
    again = await pool.run(job(code, name="big"))
    assert again.container_start == "warmed"


async def test_application_error_keeps_the_container(pool, factory):
    code = "def main(a):\n    return {'error': {'code': a.get('n')}}\n"
    r = await pool.run(job(code, name="apperr", value={"n": 1}))
    assert r.response["statusCode"] == 1 and r.response["result"] == {"error": {"code": 1}}
    assert not any(WARNING in line for line in r.logs)
    again = await pool.run(job(code, name="apperr", value={"n": 2}))
    assert again.container_start == "warmed" and again.response["result"] == {"error": {"code": 2}}
    code = "function main(a) { return Promise.reject({why: a.n}); }"
    r = await pool.run(job(code, kind=NODE, name="reject", value={"n": 3}))
    assert r.response["statusCode"] == 1 and r.response["result"] == {"error": {"why": 3}}


async def test_huge_logs_are_truncated_and_the_next_activation_starts_clean(pool, factory):
    code = ("import sys\ndef main(a):\n    for i in range(a['lines']):\n        print('line', i, 'x' * 100)\n"
            "    return {}\n")
    r = await pool.run(job(code, name="chatty", logs_mb=1, value={"lines": 30_000}))
    ok(r)
    assert r.logs[-1].endswith(
        "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes.")
    assert 9000 < len(r.logs) < 11_000
    small = await pool.run(job(code, name="chatty", logs_mb=1, value={"lines": 2}))
    assert small.container_start == "warmed"
    assert [line.split(" stdout: ")[1][:7] for line in small.logs] == ["line 0 ", "line 1 "]


async def test_zero_log_limit_collects_nothing(pool, factory):
    code = "def main(a):\n    print('secret')\n    return {}\n"
    r = await pool.run(job(code, name="quiet", logs_mb=0))
    assert ok(r) == {} and r.logs == []


@pytest.mark.parametrize("kind", [PY, NODE])
async def test_init_parameters_and_run_context_reach_the_action(pool, factory, kind):
    code = {PY: "import os\ndef main(a):\n    return {k: os.environ.get(k) for k in "
                "('__OW_NAMESPACE', '__OW_ACTIVATION_ID', '__OW_DEADLINE', 'TMPDIR')}\n",
            NODE: "function main(a) { const e = process.env; return {__OW_NAMESPACE: e.__OW_NAMESPACE, "
                  "__OW_ACTIVATION_ID: e.__OW_ACTIVATION_ID, __OW_DEADLINE: e.__OW_DEADLINE, TMPDIR: e.TMPDIR}; }"}
    j = job(code[kind], kind=kind, name="env")
    before = time.time_ns() // 1_000_000
    got = ok(await pool.run(j))
    assert got["__OW_NAMESPACE"] == "guest" and got["__OW_ACTIVATION_ID"] == j.activation_id
    # The run's own deadline: the whole limit from when /run started (tests/containerpool/test_pool.py).
    assert before + j.timeout_ms <= int(got["__OW_DEADLINE"]) <= time.time_ns() // 1_000_000 + j.timeout_ms
    # A sandbox's working folder is its own /tmp; an unconfined proxy's is a folder under the factory's.
    assert got["TMPDIR"] == "/tmp" if factory.sandboxed else got["TMPDIR"].startswith(factory.root)


HIJACK = '''
import gc, os, socket
def main(args):
    # Take over the proxy's connection to the invoker (any connected socket object of the process, whatever the
    # proxy's own classes) and answer with far more than the result limit.
    held = [o for o in gc.get_objects() if isinstance(o, socket.socket) and o.fileno() >= 0
            and not o.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)]
    raw = socket.socket(fileno=os.dup(held[0].fileno()))
    raw.setblocking(True)
    raw.settimeout(10)
    total, block, sent = 200 * 1024 * 1024, b"x" * (1024 * 1024), 0
    try:
        raw.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % total)
        while sent < total:
            raw.sendall(block)
            sent += len(block)
    except OSError:
        pass
    return {"sent": sent}
'''


def _peak_rss_mb() -> float:
    """This process's peak resident memory since the last `_reset_peak_rss` (the invoker runs in it here)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")                      # resets VmHWM to the current resident size (Linux 4.0+)


async def test_an_action_answering_on_its_own_cannot_make_the_invoker_hold_more_than_the_limit(pool, factory):
    """The action's code shares its proxy's process: it can write to the invoker's connection itself. The invoker
    reads no more than the result limit of what it says, and drops the connection."""
    _reset_peak_rss()
    before = _peak_rss_mb()
    r = await pool.run(job(HIJACK, name="hijack"))
    assert r.response["statusCode"] == 1
    assert error(r).startswith("The action produced a response that exceeded the allowed length: 209715200 > "
                               "1048576 bytes. The truncated response was: xxx")
    assert _peak_rss_mb() - before < 64, "the invoker held the oversized answer"
    assert ok(await pool.run(job(value={"after": "hijack"}))) == {"after": "hijack"}
