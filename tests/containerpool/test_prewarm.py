"""Reactive prewarm and prewarm expiry (docs/openwhisk.md §7.1, end of §7.3; OpenWhisk's
ContainerPool.adjustPrewarmedContainer), decided over plain state: the `now` of each call is the clock."""

from __future__ import annotations

import pytest

from tests.containerpool.test_schedule import NODE, PY, demand, warm
from whisk.containerpool.schedule import EXPIRY_LIMIT, Phase, Prewarm, Scheduler, Slot
from whisk.runtimes.manifest import Reactive

TTL = 120.0
REACTIVE = Reactive(min_count=1, max_count=4, ttl_s=TTL, threshold=1, increment=1)   # runtimes.json's


def ready(s: Scheduler, slots: list[Slot], now: float) -> list[Slot]:
    for slot in slots:
        s.created(slot, now)
    return slots


def prewarms(s: Scheduler, kind: str = PY) -> tuple[int, int]:
    """(starting, prewarmed) of a kind."""
    of = [x for x in s.slots.values() if x.kind == kind]
    return sum(x.phase is Phase.STARTING for x in of), sum(x.phase is Phase.PREWARMED for x in of)


@pytest.mark.parametrize(("reactive", "cold", "desired"), [
    (None, 9, 2),                                                      # not reactive: initialCount
    (REACTIVE, 0, 1), (REACTIVE, 3, 3), (REACTIVE, 4, 4), (REACTIVE, 50, 4),
    (Reactive(0, 6, TTL, threshold=2, increment=1), 0, 0),
    (Reactive(0, 6, TTL, threshold=2, increment=1), 3, 1),             # 3 // 2: rounded down, as OpenWhisk
    (Reactive(0, 6, TTL, threshold=2, increment=3), 5, 6),
    (Reactive(2, 6, TTL, threshold=3, increment=1), 5, 2),             # below minCount: minCount
])
def test_desired_count_is_clamped_between_min_and_max(reactive: Reactive | None, cold: int, desired: int) -> None:
    assert Prewarm(PY, 256, 2, reactive).desired(cold) == desired


def test_cold_starts_are_counted_per_stem_cell_kind_and_memory():
    s = Scheduler(4096, [(PY, 256, 1, REACTIVE)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    assert s.place(demand("a"), 1.0).start == "prewarmed"              # not a cold start
    assert s.place(demand("b"), 1.0).start == "cold"
    assert s.place(demand("c"), 1.0).start == "cold"
    assert s.place(demand("d", memory=512), 1.0).start == "cold"       # no stem cell of this memory
    assert s.place(demand("e", kind=NODE), 1.0).start == "cold"        # nor of this kind
    assert s.cold_starts == {(PY, 256): 2}


def test_a_recreated_container_is_a_cold_start_too():
    s = Scheduler(512, [(PY, 256, 1, REACTIVE)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    warm(s, demand("old", kind=NODE), 1.0)                             # 256 idle: full
    assert s.place(demand("new"), 2.0).start == "prewarmed"
    assert s.place(demand("new2"), 3.0).start == "recreated"           # evicts the idle nodejs container
    assert s.cold_starts == {(PY, 256): 1}


def test_a_burst_of_cold_starts_raises_the_prewarms_to_max_count_at_the_next_check():
    s = Scheduler(4096, [(PY, 256, 1, REACTIVE), (NODE, 256, 1, REACTIVE)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    for n in range(6):
        s.place(demand(f"a{n}", kind=NODE), 10.0)                      # one prewarmed, five cold
    expired, started = s.check_prewarms(60.0)
    assert expired == [] and [x.kind for x in started] == [NODE] * 4   # max 4, none left after the take
    assert s.cold_starts == {}                                         # counts start again
    ready(s, started, 61.0)
    assert prewarms(s, NODE) == (0, 4) and prewarms(s, PY) == (0, 1)
    assert s.check_prewarms(62.0) == ([], [])                          # no cold starts: no more, none fewer


def test_expired_prewarms_go_at_a_check_and_min_count_is_backfilled():
    s = Scheduler(4096, [(PY, 256, 1, REACTIVE)])
    (first,) = ready(s, s.prewarms_to_start(0.0, initial=True), 5.0)
    assert first.expires == 5.0 + TTL                                  # the ttl runs from when it is ready
    for n in range(3):
        s.place(demand(f"a{n}"), 10.0)                                 # takes `first`, then two cold starts
    (replacement,) = s.prewarms_to_start(10.0, replacing=(PY, 256))   # one replacement for the one taken
    ready(s, [replacement], 10.0)
    _, started = s.check_prewarms(60.0)
    ready(s, started, 60.0)
    assert prewarms(s) == (0, 2)
    assert s.check_prewarms(10.0 + TTL - 0.5) == ([], [])              # not yet
    expired, started = s.check_prewarms(10.0 + TTL)
    assert expired == [replacement] and replacement.id not in s.slots and started == []   # one left: minCount
    assert s.stats()["prewarms_expired"] == 1
    expired, started = s.check_prewarms(60.0 + TTL)
    assert len(expired) == 1 and len(started) == 1                     # all expired: backfilled to minCount
    assert prewarms(s) == (1, 0)


def test_starting_prewarms_and_non_reactive_ones_never_expire():
    s = Scheduler(4096, [(PY, 256, 1, REACTIVE), (NODE, 256, 2)])
    slots = s.prewarms_to_start(0.0, initial=True)
    node = [x for x in slots if x.kind == NODE]
    ready(s, node, 0.0)
    assert [x.expires for x in node] == [None, None]
    assert s.check_prewarms(10 * TTL) == ([], [])                      # python's is still starting
    assert prewarms(s, PY) == (1, 0) and prewarms(s, NODE) == (0, 2)


def test_initial_count_at_start_then_min_count_after_a_removal():
    s = Scheduler(4096, [(PY, 256, 3, Reactive(1, 4, TTL, 1, 1)), (NODE, 256, 2)])
    started = s.prewarms_to_start(0.0, initial=True)
    assert sorted(x.kind for x in started) == [NODE, NODE, PY, PY, PY]
    ready(s, started, 0.0)
    expired, refill = s.check_prewarms(TTL)
    assert len(expired) == 3 and [x.kind for x in refill] == [PY]      # expired python ones: minCount is 1
    for slot in [x for x in s.slots.values() if x.kind == NODE]:
        s.forget(slot)
    assert sorted(x.kind for x in s.prewarms_to_start(TTL)) == [NODE, NODE]   # non-reactive: initialCount


def test_a_taken_prewarm_is_replaced_even_above_min_count():
    s = Scheduler(4096, [(PY, 256, 1, REACTIVE)])
    for n in range(4):
        s.place(demand(f"a{n}"), 0.0)
    ready(s, s.check_prewarms(0.0)[1], 0.0)
    assert prewarms(s) == (0, 4)
    assert s.place(demand("b"), 1.0).start == "prewarmed"
    assert s.prewarms_to_start(1.0) == []                              # a backfill keeps minCount only
    assert len(s.prewarms_to_start(1.0, replacing=(PY, 256))) == 1     # a taken one is replaced: 4 again


def test_prewarms_start_only_within_pool_memory():
    s = Scheduler(1024, [(PY, 256, 1, REACTIVE)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    warm(s, demand("big", kind=NODE, memory=512), 1.0)                 # 256 prewarm + 512 warm
    s.place(demand("a"), 2.0)                                          # takes the prewarm
    s.cold_starts[(PY, 256)] = 10                                      # as after a burst
    _, started = s.check_prewarms(60.0)
    assert len(started) == 1 and s.used_mb == 1024                     # wanted 4; only one more fits


def test_at_most_the_expiry_limit_is_removed_per_check_oldest_first():
    n = EXPIRY_LIMIT + 5
    s = Scheduler(n, [(PY, 1, n, Reactive(0, n, TTL, 1, 1))])
    slots = s.prewarms_to_start(0.0, initial=True)
    for i, slot in enumerate(slots):
        s.created(slot, float(n - i))                                  # the last one is the oldest
    expired, started = s.check_prewarms(10 * TTL)
    assert expired == slots[::-1][:EXPIRY_LIMIT] and started == []
    assert len(s.check_prewarms(10 * TTL)[0]) == 5


def test_a_pool_filled_with_reactive_prewarms_makes_room_for_another_kind():
    """After a burst the check may fill the pool with prewarms of one kind; a job of another kind waited for the
    check after their ttl (up to 10 minutes), every job behind it too. The oldest ready one makes room now."""
    s = Scheduler(1024, [(PY, 256, 1, REACTIVE)])
    for n in range(4):
        s.place(demand(f"a{n}"), 0.0)
    for slot in list(s.slots.values()):
        s.forget(slot)                                                 # the burst's containers are gone
    started = s.check_prewarms(60.0)[1]
    ready(s, started, 60.0)
    assert prewarms(s) == (0, 4) and s.used_mb == 1024
    p = s.place(demand("n", kind=NODE), 61.0)
    assert p is not None and p.start == "recreated" and p.victims == [started[0]]
    assert prewarms(s) == (0, 3)


def test_a_taken_prewarm_is_the_actions_own_container_with_the_actions_concurrency() -> None:
    """OpenWhisk's prewarmed start binds the container to the action (WarmingData): the action's next jobs go to it,
    as many at once as its `limits.concurrency`, before any other container is made."""
    s = Scheduler(1024, [(PY, 256, 1)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    first = s.place(demand("c", concurrency=2), 1.0)
    assert first is not None and first.start == "prewarmed"
    second = s.place(demand("c", concurrency=2), 1.0)
    assert second is not None and (second.slot, second.start, second.create) == (first.slot, "warming", False)
    third = s.place(demand("c", concurrency=2), 1.0)
    assert third is not None and third.start == "cold" and third.slot is not first.slot


def test_a_job_that_fits_beside_the_prewarms_waits_for_a_busy_container_and_leaves_them() -> None:
    """Prewarms are evicted only for a job that could never fit beside them; one that fits exactly once a running
    container ends waits for it (OpenWhisk never evicts prewarms)."""
    s = Scheduler(1024, [(PY, 256, 2)])
    ready(s, s.prewarms_to_start(0.0, initial=True), 0.0)
    busy = s.place(demand("a", memory=512), 1.0)
    assert busy is not None and busy.start == "cold"
    assert s.place(demand("b", memory=512), 2.0) is None
    assert prewarms(s) == (0, 2)


def test_ready_prewarms_by_kind_and_whether_checks_are_needed() -> None:
    """What the pool reports of its stem cells (ready ones only, by kind), and whether it must run the scheduled
    prewarm checks (only when some stem cell is reactive)."""
    s = Scheduler(4096, [(PY, 256, 2), (NODE, 256, 1, REACTIVE)])
    assert s.reactive and not Scheduler(4096, [(PY, 256, 2)]).reactive
    started = s.prewarms_to_start(0.0, initial=True)
    assert s.prewarmed() == {}                                         # starting ones are not ready
    ready(s, started, 0.0)
    assert s.prewarmed() == {PY: 2, NODE: 1}
    s.place(demand("a"), 1.0)
    assert s.prewarmed() == {PY: 1, NODE: 1}
