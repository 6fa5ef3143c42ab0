"""Starting a container's process (containers/process/child.py): its pipes, its exit status, and nothing left open."""

from __future__ import annotations

import asyncio
import os

from whisk.containers.process.child import spawn


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_pipes_exit_status_and_no_descriptor_left() -> None:
    before = open_fds()
    for n in range(20):
        child = await spawn(["/bin/sh", "-c", f"echo out{n}; echo err{n} >&2; exit {n % 3}"], {"PATH": "/bin"})
        assert child.returncode is None or child.returncode == n % 3
        assert await asyncio.wait_for(child.stdout.read(), 10) == b"out%d\n" % n
        assert await asyncio.wait_for(child.stderr.read(), 10) == b"err%d\n" % n
        assert await asyncio.wait_for(child.wait(), 10) == n % 3
        assert child.returncode == n % 3
    await asyncio.sleep(0)           # the pipes' transports close on the loop's next turn
    assert open_fds() <= before


async def test_a_killed_child_is_seen_ending() -> None:
    child = await spawn(["/bin/sleep", "60"], {"PATH": "/bin"}, ())
    assert child.returncode is None
    os.killpg(child.pid, 9)          # its own session, so its own process group
    assert await asyncio.wait_for(child.wait(), 10) == -9
