"""Capacity slots of one invoker as the sharding balancer sees them (docs/openwhisk.md §6.2).

`ForcibleSemaphore` counts memory permits (MB); a forced acquisition (overload fallback) may drive them below zero.
`NestedSemaphore` adds OpenWhisk's per-action concurrency slots: with an action concurrency c > 1, one memory
acquisition (one "container equivalent") opens c slots; the memory returns when all c slots of one container
equivalent are free again. Pure bookkeeping: no I/O, no locks (one event loop owns it).
"""

from __future__ import annotations

from dataclasses import dataclass


class ForcibleSemaphore:
    def __init__(self, permits: int) -> None:
        self._total = permits
        self._available = permits

    @property
    def total(self) -> int:
        return self._total

    @property
    def available(self) -> int:
        """Free permits; negative after forced acquisitions beyond the total."""
        return self._available

    def try_acquire(self, permits: int) -> bool:
        _positive(permits)
        if self._available < permits:
            return False
        self._available -= permits
        return True

    def force_acquire(self, permits: int) -> None:
        _positive(permits)
        self._available -= permits

    def release(self, permits: int) -> None:
        _positive(permits)
        self._available += permits

    def resize(self, permits: int) -> None:
        """Change the total and keep what is in use: OpenWhisk rebuilds the semaphores instead, which forgets the
        activations in flight and lets their later releases overfill the new ones."""
        self._available += permits - self._total
        self._total = permits


@dataclass(slots=True)
class _Slots:
    free: int = 0          # concurrency slots open and unused, over all of this action's container equivalents
    containers: int = 0    # memory acquisitions held for this action


class NestedSemaphore:
    """Memory permits plus, per action key, concurrency slots (OpenWhisk's NestedSemaphore)."""

    def __init__(self, memory_permits: int) -> None:
        self.memory = ForcibleSemaphore(memory_permits)
        self._actions: dict[str, _Slots] = {}

    def try_acquire_concurrent(self, action: str, max_concurrent: int, memory_mb: int) -> bool:
        return self._acquire(action, max_concurrent, memory_mb, force=False)

    def force_acquire_concurrent(self, action: str, max_concurrent: int, memory_mb: int) -> None:
        self._acquire(action, max_concurrent, memory_mb, force=True)

    def release_concurrent(self, action: str, max_concurrent: int, memory_mb: int) -> None:
        if max_concurrent <= 1:
            self.memory.release(memory_mb)
            return
        slots = self._actions.get(action)
        if slots is None or slots.containers == 0:
            raise KeyError(f"release of {action!r} without a matching acquisition")
        slots.free += 1
        if slots.free >= max_concurrent:             # a whole container equivalent is idle: its memory returns
            slots.free -= max_concurrent
            slots.containers -= 1
            self.memory.release(memory_mb)
        if slots.containers == 0:
            del self._actions[action]

    def in_use(self, action: str, max_concurrent: int) -> int:
        """Activations of `action` holding a concurrency slot here (max_concurrent > 1; for tests and metrics)."""
        slots = self._actions.get(action)
        return 0 if slots is None else slots.containers * max_concurrent - slots.free

    def _acquire(self, action: str, max_concurrent: int, memory_mb: int, *, force: bool) -> bool:
        if max_concurrent <= 1:
            if force:
                self.memory.force_acquire(memory_mb)
                return True
            return self.memory.try_acquire(memory_mb)
        slots = self._actions.get(action)
        if slots is not None and slots.free > 0:
            slots.free -= 1
            return True
        if force:
            self.memory.force_acquire(memory_mb)
        elif not self.memory.try_acquire(memory_mb):
            return False
        slots = self._actions.setdefault(action, _Slots())
        slots.containers += 1
        slots.free += max_concurrent - 1
        return True


def _positive(permits: int) -> None:
    if permits <= 0:
        raise ValueError(f"cannot acquire or release {permits} permits")
