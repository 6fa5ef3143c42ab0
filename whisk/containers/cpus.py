"""The CPUs containers may run on, for the backends' `confine` (the policy is whisk/invoker/loop_core.py).

A `process://` container's processes and threads each carry an affinity mask: setting it on every task of the
container moves it at once, and whatever it starts afterwards inherits it. `tasks` and `pin` block (procfs and
sysfs reads): call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable


def allowed() -> frozenset[int]:
    """The CPUs this process may use (its affinity at the time: a cpuset or `taskset` may have narrowed it)."""
    return frozenset(os.sched_getaffinity(0))


def text(cpus: Collection[int]) -> str:
    """As launcher.py and docker's CpusetCpus take them: "0,1"."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def tasks(pid: int, cgroup: str | None, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every thread of a container: its cgroup's task list when it has one (the cgroup holds whatever it started),
    else the threads of its process and of that process's descendants, found by their parents in /proc (`children`:
    the map `parents()` made, to read /proc once for many containers)."""
    if cgroup is not None:
        try:
            with open(os.path.join(cgroup, "tasks")) as f:
                return [int(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return []
    if children is None:
        children = parents()
    found: list[int] = []
    todo = [pid]
    while todo:
        process = todo.pop()
        try:
            found.extend(int(tid) for tid in os.listdir(f"/proc/{process}/task"))
        except OSError:
            continue                                       # gone meanwhile
        todo.extend(children.get(process, ()))
    return found


def parents() -> dict[int, list[int]]:
    """Each process's children, from every process's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    return children


def pin(tids: Iterable[int], cpus: Collection[int]) -> int:
    """Set the mask of each thread; threads that ended meanwhile (or that are not the platform's to change) are
    skipped. How many were set."""
    done = 0
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue
        done += 1
    return done
