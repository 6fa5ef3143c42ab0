"""The container pool's decisions over plain state (docs/openwhisk.md §7.2–§7.3; OpenWhisk's
ContainerPool.schedule/remove): which container serves a job, what to evict, when to buffer, which prewarms to refill,
when to pause and remove, and, on each scheduled prewarm check, which prewarms expired and how many a reactive stem cell
wants now.

No I/O and no clock of its own: callers pass `now`, and carry out what a Placement says (resume, create, destroy
the victims). Memory counts every slot in the table (starting, prewarmed, creating, warm, paused, busy); a slot
leaves the table, and frees its memory, the moment its removal is decided, as OpenWhisk's pool forgets it then.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whisk.runtimes.manifest import Reactive

Key = tuple[str, str]                 # (action digest, invoking namespace)
EXPIRY_LIMIT = 100                    # expired prewarms removed per check at most (prewarm-expiration-limit)


class Phase(Enum):
    STARTING = "starting"             # a prewarm being created
    PREWARMED = "prewarmed"           # created, uninitialized, waiting for any action of its kind and memory
    COLD = "cold"                     # being created for an action (OpenWhisk's WarmingColdData)
    WARMING = "warming"               # created, /init in progress for an action (WarmingData)
    WARM = "warm"                     # initialized for an action (WarmedData); may be paused

    # Members are singletons: hashed by identity in C, not by Enum's Python-level hash of the name (per lookup, on
    # every placement).
    __hash__ = object.__hash__


_PHASE_ORDER = {Phase.WARM: 0, Phase.WARMING: 1, Phase.COLD: 2}      # which of an action's containers to use first


@dataclass(frozen=True, slots=True)
class Prewarm:
    """One stem cell (docs/openwhisk.md §7.1): `count` (initialCount) prewarms of a kind and memory; a reactive one then
    keeps between minCount and maxCount, after the cold starts of its kind and memory."""
    kind: str
    memory_mb: int
    count: int
    reactive: Reactive | None = None

    def backfill(self) -> int:
        """How many to keep after a removal: minCount (reactive) or initialCount."""
        return self.count if self.reactive is None else self.reactive.min_count

    def desired(self, cold_starts: int) -> int:
        """How many to keep at a scheduled check: (cold starts // threshold) * increment within minCount..maxCount
        (reactive; OpenWhisk's getReactiveCold rounds down), else initialCount."""
        r = self.reactive
        if r is None:
            return self.count
        return min(max(r.min_count, cold_starts // r.threshold * r.increment), r.max_count)


@dataclass(slots=True, eq=False)
class Slot:
    id: int
    kind: str
    memory_mb: int
    phase: Phase
    created: float
    key: Key | None = None
    concurrency: int = 1
    active: int = 0
    last_used: float = 0.0
    paused: bool = False              # paused or being paused: the next job resumes it
    doomed: bool = False              # destroy once its running activations end; takes no new jobs
    owner: Any = None                 # the pool's object for this slot (opaque here)
    # The pool's handles, kept here so that one record holds all of a container's state (opaque here):
    timer: Any = None                 # the pending pause-grace or idle timer
    pausing: Any = None               # the suspend started when the slot was paused; a resume waits for it
    waking: Any = None                # the resume its first job started; jobs that join meanwhile wait for it
    expires: float | None = None      # a reactive prewarm: when it is removed at a check, unless taken before

    @property
    def idle(self) -> bool:
        return self.phase is Phase.WARM and self.active == 0 and not self.doomed


@dataclass(frozen=True, slots=True)
class Demand:
    key: Key
    kind: str
    memory_mb: int
    concurrency: int
    action: str = ""                  # the action's name and image, for a container made for it
    image: str = ""


@dataclass(slots=True)
class Placement:
    slot: Slot
    demand: Demand
    start: str                        # warmed | warming | warmingCold | prewarmed | cold | recreated | recreatedPrewarm
    victims: list[Slot] = field(default_factory=list)    # already out of the table: destroy them
    resume: bool = False              # the slot is paused: resume before /run
    create: bool = False              # a new container must be made for the slot
    took_prewarm: bool = False        # a prewarm was used: refill


class Scheduler:
    def __init__(self, memory_mb: int, prewarm: list[Prewarm] | list[tuple[str, int, int]] | None = None) -> None:
        self.memory_mb = memory_mb
        self.prewarm_config = [p if isinstance(p, Prewarm) else Prewarm(*p) for p in prewarm or []]
        self.cold_starts: dict[tuple[str, int], int] = {}  # (kind, memory) of a stem cell -> since the last check
        self.expired_total = 0                              # prewarms removed past their ttl, since start
        self.slots: dict[int, Slot] = {}
        self.buffer: deque[tuple[Demand, Any]] = deque()
        self._warm: dict[Key, list[Slot]] = {}
        self._next_id = 1

    # --- accounting ----------------------------------------------------------------------------------------
    @property
    def used_mb(self) -> int:
        return sum(s.memory_mb for s in self.slots.values())

    def fits(self, memory_mb: int) -> bool:
        return self.used_mb + memory_mb <= self.memory_mb

    def _new_slot(self, kind: str, memory_mb: int, phase: Phase, now: float, key: Key | None = None,
                  concurrency: int = 1) -> Slot:
        slot = Slot(self._next_id, kind, memory_mb, phase, now, key, concurrency, last_used=now)
        self._next_id += 1
        self.slots[slot.id] = slot
        if key is not None:
            self._warm.setdefault(key, []).append(slot)
        return slot

    def forget(self, slot: Slot) -> None:
        """Take a slot out of the table (its container is being destroyed, or was never made)."""
        if self.slots.pop(slot.id, None) is not None and slot.key is not None:
            bound = self._warm.get(slot.key)
            if bound is not None:
                bound.remove(slot)
                if not bound:
                    del self._warm[slot.key]

    # --- scheduling ----------------------------------------------------------------------------------------
    def submit(self, demand: Demand, request: Any, now: float) -> Placement | None:
        """Place a new job, or buffer it (None) behind earlier buffered jobs so that jobs keep their order."""
        if not self.buffer:
            placement = self.place(demand, now)
            if placement is not None:
                return placement
        self.buffer.append((demand, request))
        return None

    def drain(self, now: float) -> list[tuple[Any, Placement]]:
        """Place buffered jobs from the head while they fit."""
        placed = []
        while self.buffer:
            demand, request = self.buffer[0]
            placement = self.place(demand, now)
            if placement is None:
                break
            self.buffer.popleft()
            placed.append((request, placement))
        return placed

    def unbuffer(self, request: Any) -> None:
        """Drop a buffered job whose caller gave up."""
        for entry in self.buffer:
            if entry[1] is request:
                self.buffer.remove(entry)
                return

    def place(self, demand: Demand, now: float) -> Placement | None:
        """docs/openwhisk.md §7.3, in order: warm, prewarm, cold, evict-then-(prewarm|cold); None when nothing fits."""
        slot = self._warm_slot(demand)
        if slot is not None:
            start = {Phase.WARM: "warmed", Phase.WARMING: "warming", Phase.COLD: "warmingCold"}[slot.phase]
            resume, slot.paused = slot.paused, False
            return self._take(Placement(slot, demand, start, resume=resume), now)
        slot = self._prewarm_slot(demand)
        if slot is not None:
            return self._take(Placement(self._bind(slot, demand), demand, "prewarmed", took_prewarm=True), now)
        if self.fits(demand.memory_mb):
            self._count_cold(demand)
            return self._take(Placement(self._cold(demand, now), demand, "cold", create=True), now)
        victims = self._victims(demand.memory_mb)
        if not victims:
            return None
        for victim in victims:
            self.forget(victim)
        slot = self._prewarm_slot(demand)
        if slot is not None:
            return self._take(Placement(self._bind(slot, demand), demand, "recreatedPrewarm", victims,
                                        took_prewarm=True), now)
        self._count_cold(demand)
        return self._take(Placement(self._cold(demand, now), demand, "recreated", victims, create=True), now)

    @staticmethod
    def _take(placement: Placement, now: float) -> Placement:
        placement.slot.active += 1
        placement.slot.last_used = now
        return placement

    def _warm_slot(self, demand: Demand) -> Slot | None:
        # Warmed before warming before cold; running ones before paused; then the most recently used, so the
        # others age towards pause and removal. One pass, no list, the rank compared field by field (not a tuple
        # per container), the capacity test written out (a property call per container was 60 % of the pass): this
        # runs for every activation over every container of the action.
        best: Slot | None = None
        best_order, best_paused, best_used = 3, True, 0.0
        for slot in self._warm.get(demand.key, ()):
            if slot.doomed or slot.active >= slot.concurrency:
                continue
            order = _PHASE_ORDER[slot.phase]
            if order > best_order:
                continue
            paused = slot.paused
            if order == best_order:
                if paused and not best_paused:
                    continue
                if paused == best_paused and slot.last_used <= best_used:
                    continue
            best, best_order, best_paused, best_used = slot, order, paused, slot.last_used
        return best

    def _prewarm_slot(self, demand: Demand) -> Slot | None:
        matching = [s for s in self.slots.values() if s.phase is Phase.PREWARMED and s.kind == demand.kind
                    and s.memory_mb == demand.memory_mb]
        return min(matching, key=lambda s: s.created) if matching else None

    def _bind(self, slot: Slot, demand: Demand) -> Slot:
        slot.phase = Phase.WARMING
        slot.key = demand.key
        slot.concurrency = demand.concurrency
        self._warm.setdefault(demand.key, []).append(slot)
        return slot

    def _cold(self, demand: Demand, now: float) -> Slot:
        return self._new_slot(demand.kind, demand.memory_mb, Phase.COLD, now, demand.key, demand.concurrency)

    def _count_cold(self, demand: Demand) -> None:
        """Count a cold start of a kind and memory that a stem cell prewarms (others are never prewarmed)."""
        key = (demand.kind, demand.memory_mb)
        if any((p.kind, p.memory_mb) == key for p in self.prewarm_config):
            self.cold_starts[key] = self.cold_starts.get(key, 0) + 1

    def _victims(self, memory_mb: int) -> list[Slot]:
        """Least recently used idle warm containers whose memory makes room for `memory_mb`; none unless they
        suffice together. Prewarms are not evicted (OpenWhisk never does), unless they leave the job no room even
        once every other container is gone: then the ready ones follow, oldest first. Such a job (a pool hardly
        larger than its stem cells, or one filled with reactive prewarms) otherwise waited at the buffer's head
        for good, and every job behind it."""
        needed = self.used_mb + memory_mb - self.memory_mb
        candidates = sorted((s for s in self.slots.values() if s.idle), key=lambda s: s.last_used)
        prewarms = [s for s in self.slots.values() if s.phase in (Phase.STARTING, Phase.PREWARMED)]
        if sum(s.memory_mb for s in prewarms) + memory_mb > self.memory_mb:
            candidates += sorted((s for s in prewarms if s.phase is Phase.PREWARMED), key=lambda s: s.created)
        if needed <= 0 or sum(s.memory_mb for s in candidates) < needed:
            return []
        victims = []
        for slot in candidates:
            victims.append(slot)
            needed -= slot.memory_mb
            if needed <= 0:
                return victims
        return []

    # --- life events ---------------------------------------------------------------------------------------
    def created(self, slot: Slot, now: float | None = None) -> None:
        """The container of a slot exists now; a reactive prewarm's ttl starts (at `now`, else its creation)."""
        if slot.phase is Phase.STARTING:
            slot.phase = Phase.PREWARMED
            reactive = next((p.reactive for p in self.prewarm_config
                             if (p.kind, p.memory_mb) == (slot.kind, slot.memory_mb)), None)
            if reactive is not None:
                slot.expires = (slot.created if now is None else now) + reactive.ttl_s
        elif slot.phase is Phase.COLD:
            slot.phase = Phase.WARMING

    def initialized(self, slot: Slot) -> None:
        if slot.phase in (Phase.COLD, Phase.WARMING):
            slot.phase = Phase.WARM

    def release(self, slot: Slot, now: float, keep: bool) -> bool:
        """One activation on `slot` ended; `keep` False dooms the slot. True when it must be destroyed now."""
        slot.active -= 1
        slot.last_used = now
        if not keep:
            slot.doomed = True
        if slot.doomed and slot.active == 0:
            self.forget(slot)
            return True
        return False

    def pause_due(self, slot: Slot) -> bool:
        """The pause-grace timer fired: pause the slot if it is still idle and running."""
        if slot.idle and not slot.paused and slot.id in self.slots:
            slot.paused = True
            return True
        return False

    def expire(self, slot: Slot) -> bool:
        """The idle timer fired: remove the slot (True) if it is still idle and paused."""
        if slot.idle and slot.paused and slot.id in self.slots:
            self.forget(slot)
            return True
        return False

    def prewarms_to_start(self, now: float, *, initial: bool = False,
                          replacing: tuple[str, int] | None = None) -> list[Slot]:
        """New STARTING slots for missing prewarms that fit in memory: up to initialCount at the pool's start
        (`initial`), else up to minCount (reactive) or initialCount. `replacing` (kind, memory) of a prewarm just
        taken adds one more of those, as OpenWhisk starts one replacement for each prewarm it takes."""
        def wanted(p: Prewarm) -> int:
            if initial:
                return p.count
            if replacing == (p.kind, p.memory_mb):
                return max(p.backfill(), self._prewarms_of(p) + 1)
            return p.backfill()
        return self._start_missing(now, wanted)

    def check_prewarms(self, now: float) -> tuple[list[Slot], list[Slot]]:
        """A scheduled prewarm check (OpenWhisk's adjustPrewarmedContainer): (expired, started). Expired
        prewarms leave the table, oldest first and at most EXPIRY_LIMIT (destroy them); then each stem cell is
        filled up to its desired count from the cold starts since the last check, which are forgotten."""
        expired = sorted((s for s in self.slots.values() if s.phase is Phase.PREWARMED
                          and s.expires is not None and s.expires <= now), key=lambda s: s.expires or 0.0)
        expired = expired[:EXPIRY_LIMIT]
        for slot in expired:
            self.forget(slot)
        self.expired_total += len(expired)
        started = self._start_missing(now, lambda p: p.desired(self.cold_starts.get((p.kind, p.memory_mb), 0)))
        self.cold_starts.clear()
        return expired, started

    @property
    def reactive(self) -> bool:
        """Some stem cell is reactive: the pool must run scheduled checks."""
        return any(p.reactive is not None for p in self.prewarm_config)

    def _prewarms_of(self, p: Prewarm) -> int:
        return sum(1 for s in self.slots.values() if s.phase in (Phase.STARTING, Phase.PREWARMED)
                   and s.kind == p.kind and s.memory_mb == p.memory_mb)

    def _start_missing(self, now: float, wanted: Callable[[Prewarm], int]) -> list[Slot]:
        started = []
        for p in self.prewarm_config:
            for _ in range(wanted(p) - self._prewarms_of(p)):
                if not self.fits(p.memory_mb):
                    break
                started.append(self._new_slot(p.kind, p.memory_mb, Phase.STARTING, now))
        return started

    def prewarmed(self) -> dict[str, int]:
        """Ready prewarms by kind."""
        kinds: dict[str, int] = {}
        for s in self.slots.values():
            if s.phase is Phase.PREWARMED:
                kinds[s.kind] = kinds.get(s.kind, 0) + 1
        return kinds

    def stats(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for s in self.slots.values():
            name = s.phase.value
            if s.phase is Phase.WARM:
                name = "paused" if s.paused else ("busy" if s.active else "ready")
            states[name] = states.get(name, 0) + 1
        return {"containers": states, "memory_used_mb": self.used_mb, "memory_mb": self.memory_mb,
                "buffered": len(self.buffer), "active": sum(s.active for s in self.slots.values()),
                "prewarms_expired": self.expired_total}
