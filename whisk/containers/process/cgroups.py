"""Memory cgroups (v1) for `process://` containers, where the platform may create them (root, writable hierarchy).

A cgroup gives what docker's `--memory` gives: the kernel OOM-kills the container at its limit, the kill is
counted (so "The action exhausted its memory" can be told apart from a crash), and every process the action
starts stays inside it, so destroy and cleanup find them all. Layout: `<memory root>/whisk/<invoker>-<platform
pid>.<n>/<container>`; `cleanup` removes the groups of platforms that are gone. All methods block (sysfs I/O): call
them through `asyncio.to_thread`.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

MEMORY_ROOT = "/sys/fs/cgroup/memory"
_factories = itertools.count(1)      # several factories in one process each get a group of their own
TCP_MIN_BYTES = 16 * 1_048_576         # socket buffers a container may hold at least (memory.kmem.tcp)


class MemoryCgroups:
    def __init__(self, invoker_instance: int, root: str = MEMORY_ROOT) -> None:
        self.base = os.path.join(root, "whisk")
        self.prefix = f"{invoker_instance}-"
        self.home = os.path.join(self.base, f"{self.prefix}{os.getpid()}.{next(_factories)}")

    def open(self) -> bool:
        """Create this platform's group; False when cgroups cannot be used here (then rlimits apply). One that is
        there already is an earlier process's with this pid (a server restarted in a container gets its
        predecessor's): emptied first, or its containers' groups, named as this one names them, refused its own."""
        try:
            if os.path.isdir(self.home):
                self.close()
            os.makedirs(self.home, exist_ok=True)
            probe = os.path.join(self.home, "probe")
            os.mkdir(probe)
            os.rmdir(probe)
        except OSError:
            return False
        return os.path.exists(os.path.join(self.home, "memory.limit_in_bytes"))

    def create(self, name: str, memory_bytes: int) -> str:
        path = os.path.join(self.home, name)
        os.mkdir(path)
        _write(path, "memory.limit_in_bytes", memory_bytes)
        if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
            _write(path, "memory.memsw.limit_in_bytes", memory_bytes)      # no swapping past the limit either
        if os.path.exists(os.path.join(path, "memory.kmem.tcp.limit_in_bytes")):
            # v1 counts socket buffers apart from the limit above, and only once this is set: without it an action's
            # loopback TCP pairs held ~4 MB each of kernel memory (a few containers reach the host's tcp_mem). A
            # quarter of the memory, at least TCP_MIN_BYTES: an action's TCP is its API calls, through the relay.
            _write(path, "memory.kmem.tcp.limit_in_bytes", max(memory_bytes // 4, TCP_MIN_BYTES))
        return path

    @staticmethod
    def oom_kills(path: str) -> int:
        try:
            with open(os.path.join(path, "memory.oom_control")) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    @staticmethod
    def remove(path: str) -> None:
        """Kill whatever still runs in the group (processes the action started), then remove it."""
        for _ in range(50):
            pids = _pids(path)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:                                  # EBUSY until the killed processes are reaped
                time.sleep(0.01)

    @staticmethod
    def signal_all(path: str, signum: int) -> int:
        """Send `signum` to every process in the group, again until no new one appears (a process may fork while
        the first are signalled; a stopped one cannot). How many processes were signalled."""
        done: set[int] = set()
        for _ in range(20):
            fresh = [pid for pid in _pids(path) if pid not in done]
            if not fresh:
                break
            for pid in fresh:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
                done.add(pid)
        return len(done)

    def close(self) -> None:
        if os.path.isdir(self.home):
            for name in os.listdir(self.home):
                child = os.path.join(self.home, name)
                if os.path.isdir(child):
                    self.remove(child)
            self.remove(self.home)

    def cleanup(self) -> int:
        """Remove the groups left by this invoker's earlier platforms that are no longer running."""
        removed = 0
        if not os.path.isdir(self.base):
            return 0
        for name in os.listdir(self.base):
            if not name.startswith(self.prefix):
                continue
            pid = name[len(self.prefix):].split(".")[0]
            if pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
                continue
            stale = os.path.join(self.base, name)
            for child in os.listdir(stale):
                if os.path.isdir(os.path.join(stale, child)):
                    self.remove(os.path.join(stale, child))
                    removed += 1
            self.remove(stale)
        return removed


def _write(path: str, name: str, value: int) -> None:
    with open(os.path.join(path, name), "w") as f:
        f.write(str(value))


def _pids(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(line) for line in f if line.strip()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
