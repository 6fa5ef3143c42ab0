"""No container outlives the platform, even when the platform is killed with SIGKILL; the next platform's
cleanup removes what the dead one left on disk (and in its memory cgroups)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from tests.containerpool.conftest import cgroups_writable
from tests.containerpool.support import gone, until
from tests.containerpool.test_process import processes_of
from whisk.containers.process.factory import ProcessContainerFactory

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("mode", ["open", "sandboxed"])
async def test_sigkilled_platform_leaves_no_container(proc_root, manifest, mode):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.containerpool.platform_child", proc_root, "5", mode, cwd=ROOT_DIR,
        stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        info = json.loads(line)
        pids = info["pids"]
        assert len(pids) == 4                                  # two prewarms (refilled) and two warm containers
        assert not any(gone(p) for p in pids)
        for pid in pids:                                       # the proxies are the platform's children
            with open(f"/proc/{pid}/stat") as f:
                assert int(f.read().rsplit(")", 1)[1].split()[1]) == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    await until(lambda: all(gone(p) for p in pids), deadline_s=10)
    if mode == "sandboxed":
        # What the action started, even in a session of its own, dies with the container's PID namespace.
        await until(lambda: processes_of(info["stray_uid"]) == [], deadline_s=10)
        stray = None
    else:
        # What the action started in a session of its own outlives the platform, until the next one cleans up.
        stray = info["stray"]
        assert not gone(stray)
    assert os.path.isdir(info["root"])
    groups = "/sys/fs/cgroup/memory/whisk"
    left = lambda: [d for d in os.listdir(groups) if d.startswith(f"5-{proc.pid}.")]  # noqa: E731
    if cgroups_writable():
        assert left()
    async with ProcessContainerFactory(manifest, root_dir=proc_root, invoker_instance=5) as next_platform:
        await next_platform.cleanup()
        assert not os.path.exists(info["root"])
        await until(lambda: stray is None or gone(stray), deadline_s=10)
        if next_platform.uses_cgroups:
            assert left() == []
