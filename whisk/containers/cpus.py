"""The CPUs containers may run on, for the backends' `confine` (the policy is whisk/invoker/loop_core.py).

A `process://` container's processes and threads each carry an affinity mask: setting it on every task of the
container moves it at once, and whatever it starts afterwards inherits it. `tasks` and `pin` block (procfs and
sysfs reads): call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterable


def allowed() -> frozenset[int]:
    """The CPUs this process may use (its affinity at the time: a cpuset or `taskset` may have narrowed it)."""
    return frozenset(os.sched_getaffinity(0))


def text(cpus: Collection[int]) -> str:
    """As launcher.py and docker's CpusetCpus take them: "0,1"."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def tasks(pid: int, cgroup: str | None) -> list[int]:
    """Every thread of a container: its cgroup's task list when it has one (the cgroup holds whatever it started),
    else the threads of its process and of that process's descendants, each thread's children read from /proc (as
    `sandbox.proxy_pid` finds the proxy)."""
    if cgroup is not None:
        try:
            with open(os.path.join(cgroup, "tasks")) as f:
                return [int(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return []
    found: list[int] = []
    todo = [pid]
    while todo:
        process = todo.pop()
        try:
            threads = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue                                       # gone meanwhile
        for tid in threads:
            found.append(int(tid))
            try:
                with open(f"/proc/{process}/task/{tid}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
            except OSError:
                continue
    return found


def pin(tids: Iterable[int], cpus: Collection[int]) -> None:
    """Set the mask of each thread; threads that ended meanwhile (or that are not the platform's to change) are
    skipped."""
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
