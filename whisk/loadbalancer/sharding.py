"""The scheduling core of OpenWhisk's ShardingContainerPoolBalancer (docs/openwhisk.md §6.1–6.3), free of I/O.

An action goes to its home invoker (a hash of the invoking namespace and the action's name) while that invoker is
usable and has room; otherwise the probe walks the partition with a step coprime to its size, so each action has
its own order and every invoker is visited. When none has room, a random usable invoker is forced to take it
(overload); when none is usable, `NoInvokers`. The caller tells the scheduler which invokers are usable (health
supervision, `invoker_pool.py`) and how many controllers share them, and releases each slot on completion.

Beyond OpenWhisk: a change of the controller count or of an invoker's memory resizes the slots and keeps what is in
flight (OpenWhisk rebuilds them and forgets it); the highest invokers can be forgotten once they left the cluster
(OpenWhisk keeps every invoker it has seen, `forget_from`); `abs(Integer.MIN_VALUE)` stays negative in Java, where
that hash fails the request with an index error, and here takes Python's modulo instead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import gcd

from whisk.entities.errors import NoInvokers
from whisk.loadbalancer.semaphores import NestedSemaphore

MIN_MEMORY_MB = 128     # an invoker's share is never below the smallest action (MemoryLimit.MIN_MEMORY)
_INT_MIN = -(2**31)


def java_hash(text: str) -> int:
    """Java's String.hashCode: s[0]·31^(n−1) + … + s[n−1] over UTF-16 code units, as a signed 32-bit int."""
    data = text.encode("utf-16-le")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] | data[i + 1] << 8)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def action_hash(namespace: str, action: str) -> int:
    """`abs(hash(namespace) ^ hash(action))` with Java's int abs: `action` is the fully qualified name without
    version and without a leading slash ("ns/pkg/name"), `namespace` the invoking subject's namespace."""
    h = java_hash(namespace) ^ java_hash(action)
    return h if h == _INT_MIN else abs(h)


def coprime_steps(n: int) -> list[int]:
    """k = 1..n kept when coprime to n and to every k kept before (n=10 → [1, 3, 7]); [1] for an empty set."""
    steps: list[int] = []
    for k in range(1, n + 1):
        if gcd(k, n) == 1 and all(gcd(k, s) == 1 for s in steps):
            steps.append(k)
    return steps or [1]


def probe_order(hash_: int, n: int, steps: list[int] | None = None) -> list[int]:
    """Positions visited for `hash_` in a partition of n: home, home+step, … (n=10, hash 13 → 3, 6, 9, 2, …, 0).
    `steps` are `coprime_steps(n)`, when the caller keeps them."""
    if n <= 0:
        return []
    steps = steps or coprime_steps(n)
    home, step = hash_ % n, steps[hash_ % len(steps)]
    return [(home + i * step) % n for i in range(n)]


def partitions(n: int, managed_fraction: float, blackbox_fraction: float) -> tuple[range, range]:
    """Positions of the managed invokers (the first ones) and of the blackbox invokers (the last ones); the two
    overlap for small n (n=1: both are invoker 0)."""
    managed = max(1, math.ceil(n * managed_fraction))
    blackbox = max(1, math.floor(n * blackbox_fraction))
    return range(min(managed, n)), range(max(0, n - blackbox), n)


@dataclass(frozen=True, slots=True)
class InvokerView:
    """What scheduling needs to know of one invoker: its id, its user memory, whether it is Healthy."""
    instance: int
    user_memory_mb: int
    usable: bool


class ShardingScheduler:
    def __init__(self, *, managed_fraction: float = 0.9, blackbox_fraction: float = 0.1, controllers: int = 1,
                 rng: random.Random | None = None) -> None:
        self.managed_fraction = max(0.0, min(1.0, managed_fraction))
        self.blackbox_fraction = max(1.0 - self.managed_fraction, min(1.0, blackbox_fraction))
        self._controllers = max(1, controllers)
        self._rng = rng or random.Random()
        self._invokers: list[InvokerView] = []
        self._slots: list[NestedSemaphore] = []
        self._managed: range = range(0)
        self._blackbox: range = range(0)
        self._steps: dict[int, list[int]] = {}        # partition size -> its coprime steps

    # -- the cluster as the scheduler sees it ---------------------------------------------------------------

    def update_invokers(self, invokers: Iterable[InvokerView]) -> None:
        """Replace the view of the invokers. Ids are positions: missing ids below the highest are unusable
        placeholders, and ids once seen stay (a gone invoker is reported unusable, not dropped) until
        `forget_from`."""
        given = {view.instance: view for view in invokers}
        size = max(len(self._invokers), max(given, default=-1) + 1)
        views = []
        for i in range(size):
            old = self._invokers[i] if i < len(self._invokers) else InvokerView(i, 0, False)
            views.append(given.get(i, InvokerView(i, old.user_memory_mb, False)))
        for i, view in enumerate(views):
            if i >= len(self._slots):
                self._slots.append(NestedSemaphore(self._share(view.user_memory_mb)))
            elif view.user_memory_mb != self._invokers[i].user_memory_mb:
                self._slots[i].memory.resize(self._share(view.user_memory_mb))
        self._invokers = views
        self._partition()

    def forget_from(self, size: int) -> None:
        """Drop the invokers at positions `size` and above: they left the cluster, and nothing of this controller is
        in flight on them (their slots go with them)."""
        if size < len(self._invokers):
            del self._invokers[size:], self._slots[size:]
            self._partition()

    def _partition(self) -> None:
        size = len(self._invokers)
        self._managed, self._blackbox = partitions(size, self.managed_fraction, self.blackbox_fraction)
        self._steps = {len(p): coprime_steps(len(p)) for p in (self._managed, self._blackbox)}

    def update_controllers(self, count: int) -> None:
        """How many controllers share the invokers: each gets userMemory / count of every invoker
        (docs/openwhisk.md §6.2)."""
        count = max(1, count)
        if count != self._controllers:
            self._controllers = count
            for view, slots in zip(self._invokers, self._slots):
                slots.memory.resize(self._share(view.user_memory_mb))

    @property
    def controllers(self) -> int:
        """How many controllers share the invokers (and each namespace's throttles, docs/openwhisk.md §8)."""
        return self._controllers

    @property
    def invokers(self) -> Sequence[InvokerView]:
        return tuple(self._invokers)

    @property
    def managed(self) -> list[int]:
        return [self._invokers[i].instance for i in self._managed]

    @property
    def blackbox(self) -> list[int]:
        return [self._invokers[i].instance for i in self._blackbox]

    def free_mb(self, instance: int) -> int:
        """This controller's free memory permits on the invoker (negative after forced placements)."""
        return self._slots[instance].memory.available

    def in_use(self, instance: int, slot_key: str, max_concurrent: int = 1) -> int:
        return self._slots[instance].in_use(slot_key, max_concurrent)

    # -- placing and releasing one activation ---------------------------------------------------------------

    def schedule(self, namespace: str, action: str, memory_mb: int, *, max_concurrent: int = 1,
                 blackbox: bool = False, slot_key: str | None = None) -> tuple[int, bool]:
        """Take a slot for one activation; returns (invoker instance, forced). `action` is the fully qualified
        name without version ("ns/pkg/name"); `slot_key` names the concurrency slots (default `action`; the
        balancer may pass the name with its version). Raises NoInvokers when no invoker of the partition is
        usable."""
        positions = self._blackbox if blackbox else self._managed
        n = len(positions)
        if n == 0:
            raise NoInvokers()
        key = slot_key or action
        # OpenWhisk probes home plus n+1 steps; the last two revisit the first two positions, which nothing
        # between the tries can have changed, so every invoker once is the same walk.
        for index in probe_order(action_hash(namespace, action), n, self._steps[n]):
            view = self._invokers[positions[index]]
            if view.usable and self._slots[view.instance].try_acquire_concurrent(key, max_concurrent, memory_mb):
                return view.instance, False
        usable = [self._invokers[p].instance for p in positions if self._invokers[p].usable]
        if not usable:
            raise NoInvokers()
        chosen = self._rng.choice(usable)
        self._slots[chosen].force_acquire_concurrent(key, max_concurrent, memory_mb)
        return chosen, True

    def release(self, invoker: int, action: str, memory_mb: int, *, max_concurrent: int = 1,
                slot_key: str | None = None) -> None:
        """Give back the slot taken by `schedule` (on completion or forced completion)."""
        self._slots[invoker].release_concurrent(slot_key or action, max_concurrent, memory_mb)

    def _share(self, user_memory_mb: int) -> int:
        return max(MIN_MEMORY_MB, user_memory_mb // self._controllers)
