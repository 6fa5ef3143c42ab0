"""The process:// backend against the real Python and Node.js proxies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.conftest import missing
from tests.containerpool.jobs import ECHO, NODE, PY
from tests.containerpool.support import gone, process_state, until
from whisk.containerpool.proxy import DEVELOPER_ERROR_LOG_GRACE_S
from whisk.containers import cpus
from whisk.containers.base import ContainerError, ContainerSpec, ImageError
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.containers.process.sandbox import UID_BASE, inside_root

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr): (.*)$")
MB = 1_048_576


def spec(kind: str = PY, memory_mb: int = 256, name: str = "wsk0_1_guest_t") -> ContainerSpec:
    return ContainerSpec(name=name, kind=kind, image="", memory_mb=memory_mb)


def init_value(code: str, main: str = "main") -> dict:
    return {"name": "t", "main": main, "code": code, "binary": False, "env": {"__OW_NAMESPACE": "guest"}}


@pytest.mark.parametrize("kind", [PY, NODE])
async def test_init_run_logs_pause_resume_destroy(factory: ProcessContainerFactory, kind: str):
    code = {PY: "import sys\ndef main(a):\n    print('out', a['n'])\n    print('err', file=sys.stderr)\n"
                "    return {'n': a['n']}\n",
            NODE: "function main(a) { console.log('out', a.n); console.error('err'); return {n: a.n}; }"}[kind]
    c = await factory.create(spec(kind))
    try:
        init = await c.initialize(init_value(code), timeout_s=10)        # retried until the proxy listens
        assert init.status == 200 and not init.exited
        for n in (1, 2):
            r = await c.run({"value": {"n": n}, "namespace": "guest"}, timeout_s=10)
            assert (r.status, r.body.replace(b" ", b"")) == (200, b'{"n":%d}' % n)
            lines = await c.logs(MB, wait_for_sentinel=True)
            assert [LINE.match(line).groups() for line in lines] == [("stdout", f"out {n}"), ("stderr", "err")]
        await c.suspend()
        await until(lambda: process_state(c.pid) == "T")
        await c.resume()
        await until(lambda: process_state(c.pid) not in ("T", "t"))
        r = await c.run({"value": {"n": 3}}, timeout_s=10)
        assert r.status == 200
        assert len(await c.logs(MB, True)) == 2
        folder = inside_root(c.pid, c._folder) if factory.sandboxed else c._folder   # a sandbox's is its own tmpfs
        assert os.path.isdir(folder)
    finally:
        await c.destroy()
    assert gone(c.pid) and not os.path.exists(folder)
    await c.destroy()                                                  # idempotent


async def test_second_init_is_refused_by_the_runtime(factory: ProcessContainerFactory):
    c = await factory.create(spec())
    try:
        assert (await c.initialize(init_value(ECHO[PY]), 10)).status == 200
        assert (await c.initialize(init_value(ECHO[PY]), 10)).status == 403
    finally:
        await c.destroy()


async def test_process_death_during_run_is_reported_as_exited(factory: ProcessContainerFactory):
    c = await factory.create(spec())
    try:
        await c.initialize(init_value("import os\ndef main(a):\n    print('bye', flush=True)\n    os._exit(3)\n"), 10)
        r = await c.run({"value": {}}, timeout_s=10)
        assert r.status is None and r.exited and not r.timed_out and not r.oom_killed
        # Read as the proxy reads a developer error's logs: with its grace, the "bye" still in the pipe arrives (with
        # no grace, a read that came before the loop had drained the pipe found nothing).
        lines = await c.logs(MB, wait_for_sentinel=False, grace_s=DEVELOPER_ERROR_LOG_GRACE_S)
        assert [LINE.match(line).groups() for line in lines] == [("stdout", "bye")]
        with pytest.raises(ContainerError):                           # a dead container is a health error
            await c.run({"value": {}}, timeout_s=10)
        with pytest.raises(ContainerError):
            await c.resume()
    finally:
        await c.destroy()


def _process_group_at(pid: int) -> subprocess.Popen[bytes] | None:
    """A new process group with the id `pid`, or None when that pid cannot be had (root steers the next pid through
    ns_last_pid; another process may take it first, hence the tries)."""
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        group = subprocess.Popen(["sleep", "60"], start_new_session=True)
        if group.pid == pid:
            return group
        group.kill()
        group.wait()
    return None


async def test_a_dead_containers_process_group_id_is_not_given_away_before_its_destroy(
        open_factory: ProcessContainerFactory):
    """An action can end its container when it likes (after its answer, while it idles); the pool still pauses it
    after the grace and destroys it later, each a signal from root to the process group the launcher's pid names.
    Reaped at its exit, that pid could meanwhile become another process group's id, another tenant's container's
    (whose launcher leads one) or any of the host's, which the pause stopped and the destroy killed. Unconfined
    here: in the sandbox bwrap's init, orphaned in that group, holds the id until the host's init reaps it (which
    this machine's never does)."""
    if os.geteuid() != 0:
        missing("root (to steer the next pid through ns_last_pid)")
    c = await open_factory.create(spec(name="wsk0_1_mallory_dies"))
    pid, victim = c.pid, None
    try:
        os.killpg(pid, signal.SIGKILL)                        # as its own os._exit, or a fatal signal, would end it
        await until(lambda: not c.alive)
        victim = _process_group_at(pid)
        with contextlib.suppress(ContainerError):
            await c.suspend()                                 # the pool pauses an idle container after the grace
        await c.destroy()
        if victim is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                victim.wait(timeout=1)
        assert victim is None, (f"process group {pid} was another's before the destroy, which "
                                f"{'killed' if victim.returncode is not None else 'spared'} it")
        assert gone(pid)                                      # reaped by the destroy
    finally:
        if victim is not None:
            victim.kill()
            victim.wait()
        await c.destroy()


async def test_death_during_init_and_init_timeout(factory: ProcessContainerFactory):
    c = await factory.create(spec())
    try:
        r = await c.initialize(init_value("import os\nos._exit(1)\n"), 10)
        assert r.status is None and r.exited
    finally:
        await c.destroy()
    c = await factory.create(spec())
    try:
        t0 = time.monotonic()
        r = await c.initialize(init_value("import time\ntime.sleep(30)\ndef main(a):\n    return a\n"), 0.5)
        assert r.timed_out and r.status is None and time.monotonic() - t0 < 5
    finally:
        await c.destroy()


async def test_run_timeout(factory: ProcessContainerFactory):
    c = await factory.create(spec(NODE))
    try:
        await c.initialize(init_value("function main() { for(;;){} }"), 10)
        r = await c.run({"value": {}}, timeout_s=0.3)
        assert r.timed_out and r.status is None and 250 <= r.duration_ms < 5000
    finally:
        await c.destroy()
    assert gone(c.pid)


async def test_memory_limit_kills_with_oom_detected(factory: ProcessContainerFactory):
    if not factory.uses_cgroups:
        pytest.skip("no writable memory cgroup here; the RLIMIT_DATA path is tested below")
    c = await factory.create(spec(memory_mb=128))
    try:
        await c.initialize(init_value("def main(a):\n    b = bytearray(400 * 1024 * 1024)\n    return {}\n"), 10)
        r = await c.run({"value": {}}, timeout_s=20)
        assert r.status is None and r.exited and r.oom_killed
    finally:
        await c.destroy()


OOM_CHILD = ("import subprocess, sys, time\ndef main(a):\n    if a.get('child'):\n"
             "        return {'rc': subprocess.run([sys.executable, '-c', 'b = bytearray(400 * 2**20)']).returncode}\n"
             "    time.sleep(30)\n")


async def test_a_timeout_after_a_child_was_oom_killed_is_a_timeout(factory: ProcessContainerFactory):
    # The cgroup counts OOM kills over the container's life: a child killed in an earlier activation (which
    # succeeded, so the container was kept) does not make a later timeout "exhausted its memory". OpenWhisk looks
    # for an OOM kill only when the connection broke, never after a timeout (DockerContainer.callContainer).
    if not factory.uses_cgroups:
        pytest.skip("no writable memory cgroup here")
    c = await factory.create(spec(memory_mb=128))
    try:
        await c.initialize(init_value(OOM_CHILD), 10)
        first = await c.run({"value": {"child": True}}, timeout_s=20)
        assert first.status == 200 and json.loads(first.body) == {"rc": -9}, first
        r = await c.run({"value": {}}, timeout_s=0.5)
        assert r.timed_out and not r.oom_killed and r.status is None, r
    finally:
        await c.destroy()


TCP_FILL = """
import socket
def main(a):
    queued, pairs = 0, []
    server = socket.create_server(("127.0.0.1", 0))
    for _ in range(100):
        out = socket.create_connection(server.getsockname())
        pairs += [out, server.accept()[0]]
        out.setblocking(False)
        try:
            while True:
                queued += out.send(b"x" * 65536)
        except OSError:
            pass
    return {"queued": queued}
"""


async def test_socket_buffers_count_in_the_memory_limit(factory: ProcessContainerFactory):
    if not factory.uses_cgroups:
        pytest.skip("no writable memory cgroup here")
    c = await factory.create(spec(memory_mb=128))
    try:
        if not os.path.exists(os.path.join(c._cgroup or "", "memory.kmem.tcp.limit_in_bytes")):
            pytest.skip("this kernel's memory cgroup does not count socket buffers")
        await c.initialize(init_value(TCP_FILL), 10)
        r = await c.run({"value": {}}, timeout_s=30)
        # Uncounted, 100 loopback pairs queued ~400 MB of the host's kernel memory; now a quarter of the memory.
        assert r.status == 200 and json.loads(r.body)["queued"] <= 48 * MB, r
    finally:
        await c.destroy()


async def test_memory_limit_without_cgroups(rlimit_factory: ProcessContainerFactory):
    # Python: the allocation fails inside the action; the proxy answers it as the action's error.
    c = await rlimit_factory.create(spec(memory_mb=128))
    try:
        await c.initialize(init_value("def main(a):\n    b = bytearray(400 * 1024 * 1024)\n    return {}\n"), 10)
        r = await c.run({"value": {}}, timeout_s=20)
        assert r.status == 502 and b"MemoryError" in r.body
    finally:
        await c.destroy()
    # Node.js: V8 aborts the process; its last words tell that memory ran out.
    c = await rlimit_factory.create(spec(NODE, memory_mb=128))
    try:
        await c.initialize(init_value("function main() { const a = []; for (;;) a.push(new Array(1e6).fill(1)); }"), 10)
        r = await c.run({"value": {}}, timeout_s=30)
        assert r.status is None and r.exited and r.oom_killed
    finally:
        await c.destroy()


async def test_node_starts_under_its_memory_limit_without_cgroups(rlimit_factory: ProcessContainerFactory):
    c = await rlimit_factory.create(spec(NODE, memory_mb=128))
    try:
        assert (await c.initialize(init_value(ECHO[NODE]), 10)).status == 200
        assert (await c.run({"value": {"a": 1}}, 10)).status == 200
    finally:
        await c.destroy()


async def test_destroy_kills_what_the_action_started(open_factory: ProcessContainerFactory):
    code = ("import subprocess\ndef main(a):\n    p = subprocess.Popen(['sleep', '1000'])\n"
            "    return {'pid': p.pid}\n")
    c = await open_factory.create(spec())
    try:
        await c.initialize(init_value(code), 10)
        r = await c.run({"value": {}}, 10)
        child = int(re.search(rb'"pid": ?(\d+)', r.body).group(1))
        assert not gone(child)
    finally:
        await c.destroy()
    await until(lambda: gone(child))


async def test_a_sandbox_ends_with_everything_it_started_even_in_a_session_of_its_own(factory):
    """Sandboxed, what the action starts lives in the container's PID namespace and runs as its user: destroy ends it
    all, including a process that left the group. Paused, the whole group stops."""
    code = ("import os, subprocess\ndef main(a):\n"
            "    subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
            "    subprocess.Popen(['sleep', '1000'])\n    return {'uid': os.getuid()}\n")
    c = await factory.create(spec())
    try:
        await c.initialize(init_value(code), 10)
        uid = json.loads((await c.run({"value": {}}, 10)).body)["uid"]
        assert uid == UID_BASE + c.pid
        assert len(processes_of(uid)) == 3                         # the proxy and the two sleeps
        assert c.proxy_pid in processes_of(uid) and c.pid not in processes_of(uid)   # bwrap's monitor is root's
        await c.suspend()
        await until(lambda: process_state(c.pid) == "T")
        await c.resume()
    finally:
        await c.destroy()
    await until(lambda: processes_of(uid) == [])


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except (OSError, ValueError):
            continue
        if int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] != "Z":
            found.append(int(entry))
    return found


async def test_kinds_that_cannot_run_here(factory: ProcessContainerFactory):
    with pytest.raises(ImageError, match="Failed to pull container image 'someone/image'"):
        await factory.create(ContainerSpec(name="x", kind="blackbox", image="someone/image", memory_mb=256))
    with pytest.raises(ImageError):
        await factory.create(ContainerSpec(name="x", kind="cobol:1", image="", memory_mb=256))


async def test_close_destroys_every_container_and_cleanup_removes_stale_folders(proc_root, manifest):
    made = ProcessContainerFactory(manifest, root_dir=proc_root, invoker_instance=7)
    containers = [await made.create(spec()) for _ in range(3)]
    pids = [c.pid for c in containers]
    root = made.root
    stale = os.path.join(proc_root, "whisk-proc7-stale")
    os.mkdir(stale)
    with open(os.path.join(stale, "owner"), "w") as f:
        f.write("999999999")                                        # no such process
    await made.cleanup()
    assert not os.path.exists(stale) and os.path.isdir(root)
    await made.close()
    assert all(gone(pid) for pid in pids) and not os.path.exists(root)


async def test_cleanup_removes_a_folder_whose_owner_pid_now_names_another_process(proc_root, manifest):
    """A pid is reused: a server restarted in a container gets its predecessor's pid (the same start order), and a
    folder left by a process killed on a host may name a pid another process has since. The folder was kept for
    good, with whatever unconfined actions had written in their containers' folders."""
    live = ProcessContainerFactory(manifest, root_dir=proc_root, invoker_instance=7, sandbox=False)
    await live.cleanup()                                    # another platform of this instance, in this process
    made = ProcessContainerFactory(manifest, root_dir=proc_root, invoker_instance=7, sandbox=False)
    stale = []
    # This pid in an earlier life (both formats of the owner file), and pid 1 started after its folder was made.
    for owner in (f"{os.getpid()} 1", f"{os.getpid()}", "1 1"):
        stale.append(os.path.join(proc_root, f"whisk-proc7-stale{len(stale)}"))
        os.makedirs(os.path.join(stale[-1], "c0ffee"))
        with open(os.path.join(stale[-1], "owner"), "w") as f:
            f.write(owner)
    await made.cleanup()
    assert not any(os.path.exists(path) for path in stale)
    assert os.path.isdir(live.root) and os.path.isdir(made.root)
    await made.close()
    await live.close()


SPAWNS = ("import subprocess, sys\nchild = None\ndef main(a):\n    global child\n"
          "    child = child or subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
          "    return {'child': child.pid}\n")


async def test_confine_moves_every_thread_of_every_container_and_new_ones_start_there(factory):
    """invoker/loop_core.py keeps containers off the event loop's CPU: each thread of a running container (and of
    what it started: its cgroup's) moves, and a container made afterwards starts on those CPUs; `confine(all)`
    undoes it."""
    await confined(factory)


async def test_confine_finds_a_containers_processes_without_a_cgroup(rlimit_factory):
    await confined(rlimit_factory)                  # by each thread's children in /proc


async def confined(backend: ProcessContainerFactory) -> None:
    allowed = cpus.allowed()
    narrow = allowed - {min(allowed)} or allowed         # one CPU here: a trivial mask, still every thread's
    c = await backend.create(spec())
    later = None
    try:
        await c.initialize(init_value(SPAWNS), 10)
        assert (await c.run({"value": {}}, timeout_s=10)).status == 200
        threads = await asyncio.to_thread(c.tasks)
        assert len(threads) >= 3                        # the proxy and the action's child process at least
        await backend.confine(narrow)
        assert {tid: os.sched_getaffinity(tid) for tid in threads} == {tid: narrow for tid in threads}
        later = await backend.create(spec())
        assert all(os.sched_getaffinity(tid) == narrow for tid in await asyncio.to_thread(later.tasks))
        await backend.confine(allowed)
        assert all(os.sched_getaffinity(tid) == allowed for tid in await asyncio.to_thread(c.tasks))
    finally:
        await c.destroy()
        if later is not None:
            await later.destroy()


ESCAPES = ("import subprocess, sys\nchild = None\ndef main(a):\n    global child\n"
           "    child = child or subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.01)'],"
           " start_new_session=True)\n    return {'child': child.pid}\n")


async def test_pause_stops_the_processes_that_left_the_process_group(factory: ProcessContainerFactory):
    """A process the action started in a session of its own is out of the container's process group, but not out
    of its cgroup: pausing stops it too, as docker's freezer stops all of a container."""
    if not factory.uses_cgroups:
        missing("a writable memory cgroup (without one, a paused container's other sessions keep running)")
    c = await factory.create(spec())
    try:
        await c.initialize(init_value(ESCAPES), 10)
        r = await c.run({"value": {}}, timeout_s=10)
        child = next(pid for pid in await asyncio.to_thread(c.tasks)
                     if os.getpgid(pid) != c.pid and process_state(pid) != "Z")
        assert r.status == 200 and os.getsid(child) != os.getsid(c.pid)
        await c.suspend()
        await until(lambda: process_state(c.pid) == "T" and process_state(child) == "T")
        await c.resume()
        await until(lambda: process_state(child) not in ("T", "t"))
        assert (await c.run({"value": {}}, timeout_s=10)).status == 200
    finally:
        await c.destroy()
    assert gone(child)
