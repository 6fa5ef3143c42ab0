"""Processes a `process://` container's action started and that left its process group (setsid, daemons).

Every process of a container inherits `WHISK_PROXY_SOCKET=<its folder>/proxy.sock`, so the processes still
carrying a socket under a platform's folder are what that platform's containers left behind. The memory cgroup
finds them too where there is one; this scan also works without. `process_start` tells whether a platform that
made a folder still runs. Blocking (/proc): run it in a thread.
"""

from __future__ import annotations

import os
import signal


def kill_strays(root: str) -> list[int]:
    """SIGKILL every process whose environment names a proxy socket under `root`; returns their pids."""
    marker = f"WHISK_PROXY_SOCKET={root.rstrip('/')}/".encode()
    killed = []
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read():
                    continue
            os.kill(int(entry), signal.SIGKILL)
            killed.append(int(entry))
        except (OSError, ValueError):
            continue                      # gone meanwhile, or not ours to read
    return killed


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, field 22 of /proc/<pid>/stat), None when there is no
    such process: with its pid, it tells a live owner of a folder from a later process that reuses the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rpartition(b")")[2].split()      # the name, in parentheses, may hold spaces
    return fields[19].decode() if len(fields) > 19 else None
