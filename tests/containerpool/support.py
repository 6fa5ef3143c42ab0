"""Helpers shared by the container pool tests: process states, waiting on conditions, a pool to test."""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.support import waiting
from whisk.containerpool.job import RunResult
from whisk.containerpool.pool import ContainerPool


def proxies_under(root: str) -> list[int]:
    """Live processes (not zombies) whose environment names a socket under `root`: proxies and anything they
    started. Any left after the suite is a leak."""
    marker = f"WHISK_PROXY_SOCKET={root}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


def process_state(pid: int) -> str | None:
    """The one-letter state of a process ("T" when stopped), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def gone(pid: int) -> bool:
    return process_state(pid) in (None, "Z")


async def until(condition: Callable[[], bool], deadline_s: float = 10.0) -> None:
    """The pool tests' conditions are about processes and counters: `tests.support.waiting.until` for them."""
    await waiting.until("the pool's condition", condition, deadline_s, interval_s=0.01)


def make_pool(factory, manifest, clock=None, *, memory_mb: int = 1024, prewarm: bool = False,
              pause_grace_s: float = 10.0, idle_timeout_s: float = 600.0, prewarm_check_s: float = 600.0,
              spin_s: float = 0.0, on_idle=None) -> ContainerPool:
    return ContainerPool(factory, manifest, invoker_instance=0, memory_mb=memory_mb, pause_grace_s=pause_grace_s,
                         idle_timeout_s=idle_timeout_s, prewarm=prewarm, clock=clock,
                         prewarm_check_s=prewarm_check_s, prewarm_check_jitter_s=0.0, spin_s=spin_s,
                         on_idle=on_idle)


def ok(result: RunResult) -> dict:
    assert result.response["statusCode"] == 0, result.response
    return result.response["result"]
