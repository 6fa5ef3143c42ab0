"""Invoker health supervision (OpenWhisk's InvokerPool and InvokerActor, docs/openwhisk.md §6.4), pure and driven from
outside.

One state machine per invoker, created on its first ping (or announced by discovery, as Offline), and kept until
the owner says it departed (`depart`):

    Offline ──ping(enabled)──> Unhealthy ──Success──> Healthy
    Healthy/Unhealthy/Unresponsive ──no ping for 10 s, or ping(enabled=false)──> Offline
    any usable-or-not state ──last 10 outcomes: > 3 system errors──> Unhealthy, else > 3 timeouts──> Unresponsive

A new invoker starts Unhealthy. While Unhealthy or Unresponsive the controller must send the invoker a health test
action: on entering the state, every minute after, and after each Success received while Unhealthy; the pool asks for
it through `on_test_action(instance)`. Every state change is reported through `on_change(InvokerHealth)`.

Nothing here reads a clock by itself except through `clock`, and nothing waits: the owner calls `ping`,
`completion`, `dispatched` as messages come and `tick` whenever `next_deadline()` passes (or every second).
Only pings restart the 10 s ping timer (in OpenWhisk any message to the actor does, so the forced completions of
a dead invoker could keep it from going Offline).

Stalled consumers (beyond OpenWhisk; its issue #2285: an invoker pings but no longer reads its topic). Our invokers
add two fields to each ping: `taken`, how many activation messages the invoker has taken from its topic since it
started, and `has_room`, whether its feed was waiting for work when it pinged. The controller records when it
sends an activation (`dispatched`) and when that activation completes. A ping showing a new `taken` value (up, or
down after a restart) is progress. An invoker is *stalled* when, for `stall_after_s`, an activation this controller
sent it after the last progress has been pending and every ping has said it had room: work waits on the topic of
an invoker that claims to want work and takes none. A stalled invoker goes Unhealthy (so it gets test actions) and
cannot become Healthy before progress is seen again. A busy invoker (`has_room` false: its pool is full, e.g. of
long-running actions) or one whose pings lack `taken` is never judged stalled.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

BUFFER_SIZE = 10            # outcomes remembered per invoker
ERROR_TOLERANCE = 3         # more than this many system errors (or timeouts) in the buffer is a state change


class InvokerState(Enum):
    HEALTHY = "up"
    UNHEALTHY = "unhealthy"
    UNRESPONSIVE = "unresponsive"
    OFFLINE = "down"

    @property
    def as_string(self) -> str:
        """The word GET /invokers shows."""
        return self.value

    @property
    def usable(self) -> bool:
        return self is InvokerState.HEALTHY


class Outcome(Enum):
    """How an activation ended, as supervision counts it (OpenWhisk's InvocationFinishedResult)."""
    SUCCESS = "success"
    SYSTEM_ERROR = "system_error"     # the completion said isSystemError
    TIMEOUT = "timeout"               # forced completion: no ack before the completion-ack timeout


@dataclass(frozen=True, slots=True)
class InvokerHealth:
    instance: int
    user_memory_mb: int
    state: InvokerState


@dataclass(slots=True)
class _Invoker:
    instance: int
    user_memory_mb: int
    state: InvokerState
    last_ping: float
    outcomes: deque[Outcome] = field(default_factory=lambda: deque(maxlen=BUFFER_SIZE))
    next_test: float | None = None        # when the next periodic test action is due (Unhealthy/Unresponsive)
    taken: int | None = None              # last `taken` seen in a ping; None = progress unknown
    progress_at: float = 0.0              # when a ping last showed a new `taken`
    room_since: float | None = None      # since when every ping said the invoker had room; None = busy
    pending: dict[str, float] = field(default_factory=dict)   # activation id -> when this controller sent it
    stalled: bool = False


def _ignore(*_: object) -> None:
    return None


class InvokerPool:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 on_test_action: Callable[[int], None] = _ignore,
                 on_change: Callable[[InvokerHealth], None] = _ignore,
                 ping_timeout_s: float = 10.0, test_interval_s: float = 60.0, stall_after_s: float = 15.0) -> None:
        """`on_test_action(instance)`: send the health test action to that invoker now. `on_change(health)`: an
        invoker appeared or changed state or memory (update the scheduler). Both are called synchronously and must
        not block."""
        self._clock = clock
        self._on_test_action = on_test_action
        self._on_change = on_change
        self.ping_timeout_s = ping_timeout_s
        self.test_interval_s = test_interval_s
        self.stall_after_s = stall_after_s
        self._invokers: dict[int, _Invoker] = {}

    # -- inputs -----------------------------------------------------------------------------------------------

    def known(self, instance: int, user_memory_mb: int) -> None:
        """An invoker seen through discovery before any ping: listed Offline, so ids and memory are right early."""
        if instance not in self._invokers:
            self._invokers[instance] = _Invoker(instance, user_memory_mb, InvokerState.OFFLINE, self._clock())
            self._changed(self._invokers[instance])

    def ping(self, instance: int, user_memory_mb: int, *, enabled: bool = True, taken: int | None = None,
             has_room: bool = True) -> None:
        self.tick()
        now = self._clock()
        inv = self._invokers.get(instance)
        if inv is None:                              # first sign of life: a new actor, Unhealthy unless disabled
            inv = self._invokers[instance] = _Invoker(instance, user_memory_mb, InvokerState.OFFLINE, now)
            if not enabled:
                self._changed(inv)
        inv.last_ping = now
        if inv.user_memory_mb != user_memory_mb:
            inv.user_memory_mb = user_memory_mb
            self._changed(inv)
        if taken is not None:
            if taken != inv.taken:
                inv.progress_at = now
                inv.stalled = False
            inv.taken = taken
        if not has_room:
            inv.room_since = None
        elif inv.room_since is None:
            inv.room_since = now
        if not enabled:
            self._goto(inv, InvokerState.OFFLINE)
        elif inv.state is InvokerState.OFFLINE:
            self._goto(inv, InvokerState.UNHEALTHY)

    def silent(self, instance: int) -> bool:
        """Offline because its pings stopped (dead, or cut off), not because it was disabled and is finishing."""
        inv = self._invokers.get(instance)
        return (inv is not None and inv.state is InvokerState.OFFLINE
                and self._clock() - inv.last_ping >= self.ping_timeout_s)

    def silent_s(self, instance: int) -> float:
        """How long an Offline invoker has not pinged (0 for one in any other state, infinite for an unknown one)."""
        inv = self._invokers.get(instance)
        if inv is None:
            return float("inf")
        return self._clock() - inv.last_ping if inv.state is InvokerState.OFFLINE else 0.0

    def depart(self, instance: int) -> None:
        """Forget an invoker that has left the cluster (the owner's judgement); a ping or `known` adds it again."""
        self._invokers.pop(instance, None)

    def dispatched(self, instance: int, activation_id: str) -> None:
        """This controller published `activation_id` to the invoker's topic (for stall detection)."""
        inv = self._invokers.get(instance)
        if inv is not None:
            inv.pending[activation_id] = self._clock()

    def forget(self, instance: int, activation_id: str) -> None:
        """`activation_id` is no longer pending on `instance`, and its end says nothing about the invoker."""
        inv = self._invokers.get(instance)
        if inv is not None:
            inv.pending.pop(activation_id, None)

    def completion(self, instance: int, outcome: Outcome, activation_id: str | None = None) -> None:
        """An activation on `instance` completed (or was force-completed: Outcome.TIMEOUT)."""
        self.tick()
        inv = self._invokers.get(instance)
        if inv is None:
            return
        if activation_id is not None:
            inv.pending.pop(activation_id, None)
        inv.outcomes.append(outcome)
        if inv.state is InvokerState.OFFLINE:
            return
        if inv.state is InvokerState.UNHEALTHY and outcome is Outcome.SUCCESS:
            self._on_test_action(inv.instance)       # push the old errors out of the buffer quickly
        errors = sum(o is Outcome.SYSTEM_ERROR for o in inv.outcomes)
        timeouts = sum(o is Outcome.TIMEOUT for o in inv.outcomes)
        if errors > ERROR_TOLERANCE:
            self._goto(inv, InvokerState.UNHEALTHY)
        elif timeouts > ERROR_TOLERANCE:
            self._goto(inv, InvokerState.UNRESPONSIVE)
        elif outcome is Outcome.SUCCESS:
            if not inv.stalled:
                self._goto(inv, InvokerState.HEALTHY)
        elif len(inv.outcomes) <= ERROR_TOLERANCE:   # still priming: one early failure is enough
            self._goto(inv, InvokerState.UNHEALTHY if outcome is Outcome.SYSTEM_ERROR else InvokerState.UNRESPONSIVE)

    def tick(self) -> None:
        """Apply what time alone changes: ping timeouts, periodic test actions, stalled consumers."""
        now = self._clock()
        for inv in self._invokers.values():
            if inv.state is InvokerState.OFFLINE:
                continue
            if now - inv.last_ping >= self.ping_timeout_s:
                self._goto(inv, InvokerState.OFFLINE)
                continue
            since = None if inv.stalled else self._stall_since(inv)
            if since is not None and now - since >= self.stall_after_s:
                inv.stalled = True
                self._goto(inv, InvokerState.UNHEALTHY)
            if inv.next_test is not None and now >= inv.next_test:
                inv.next_test = now + self.test_interval_s
                self._on_test_action(inv.instance)

    def next_deadline(self) -> float | None:
        """The earliest clock value at which `tick` may change something, or None when nothing is timed."""
        times: list[float] = []
        for inv in self._invokers.values():
            if inv.state is InvokerState.OFFLINE:
                continue
            times.append(inv.last_ping + self.ping_timeout_s)
            if inv.next_test is not None:
                times.append(inv.next_test)
            since = None if inv.stalled else self._stall_since(inv)
            if since is not None:
                times.append(since + self.stall_after_s)
        return min(times, default=None)

    # -- reads ------------------------------------------------------------------------------------------------

    def state(self, instance: int) -> InvokerState:
        inv = self._invokers.get(instance)
        return InvokerState.OFFLINE if inv is None else inv.state

    def stalled(self, instance: int) -> bool:
        inv = self._invokers.get(instance)
        return inv is not None and inv.stalled

    def snapshot(self) -> list[InvokerHealth]:
        """Every invoker by id, ids never seen padded as Offline with 0 MB (OpenWhisk pads the same way)."""
        size = max(self._invokers, default=-1) + 1
        return [self._health(self._invokers[i]) if i in self._invokers else InvokerHealth(i, 0, InvokerState.OFFLINE)
                for i in range(size)]

    def status_map(self) -> dict[str, str]:
        """The body of GET /invokers: {"invoker0": "up", "invoker1": "down", ...}."""
        return {f"invoker{h.instance}": h.state.as_string for h in self.snapshot()}

    # -- internals --------------------------------------------------------------------------------------------

    def _stall_since(self, inv: _Invoker) -> float | None:
        """Since when work has been waiting for an invoker that keeps saying it has room: the later of the oldest
        activation sent after the last progress and the start of the current run of has_room pings."""
        if inv.taken is None or inv.room_since is None:
            return None
        waiting = [sent for sent in inv.pending.values() if sent >= inv.progress_at]
        return max(min(waiting), inv.room_since) if waiting else None

    def _goto(self, inv: _Invoker, state: InvokerState) -> None:
        if inv.state is state:
            return
        inv.state = state
        if state in (InvokerState.UNHEALTHY, InvokerState.UNRESPONSIVE):
            inv.next_test = self._clock() + self.test_interval_s
            self._changed(inv)
            self._on_test_action(inv.instance)
        else:
            inv.next_test = None
            if state is InvokerState.OFFLINE:
                inv.stalled = False
            self._changed(inv)

    def _changed(self, inv: _Invoker) -> None:
        self._on_change(self._health(inv))

    @staticmethod
    def _health(inv: _Invoker) -> InvokerHealth:
        return InvokerHealth(inv.instance, inv.user_memory_mb, inv.state)
