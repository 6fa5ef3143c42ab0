"""Memory and concurrency slots (docs/openwhisk.md §6.2), including a random walk against a simple model."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from whisk.loadbalancer.semaphores import ForcibleSemaphore, NestedSemaphore


def test_try_acquire_stops_at_zero_and_force_goes_below() -> None:
    sem = ForcibleSemaphore(256)
    assert sem.try_acquire(128) and sem.try_acquire(128)
    assert not sem.try_acquire(1)
    assert sem.available == 0
    sem.force_acquire(128)
    assert sem.available == -128
    assert not sem.try_acquire(1)
    sem.release(256)
    assert sem.available == 128


def test_non_positive_permits_are_refused() -> None:
    sem = ForcibleSemaphore(10)
    for bad in (0, -1):
        with pytest.raises(ValueError):
            sem.try_acquire(bad)
        with pytest.raises(ValueError):
            sem.release(bad)


def test_resize_keeps_what_is_in_use() -> None:
    sem = ForcibleSemaphore(1024)
    assert sem.try_acquire(256)
    sem.resize(512)
    assert (sem.total, sem.available) == (512, 256)
    sem.resize(128)
    assert sem.available == -128                       # still 256 in use
    sem.release(256)
    assert sem.available == 128


def test_concurrency_one_is_plain_memory() -> None:
    sem = NestedSemaphore(256)
    assert sem.try_acquire_concurrent("a", 1, 256)
    assert not sem.try_acquire_concurrent("a", 1, 256)
    sem.release_concurrent("a", 1, 256)
    assert sem.memory.available == 256


def test_one_memory_acquisition_opens_c_slots() -> None:
    sem = NestedSemaphore(256)
    for _ in range(3):                                 # c = 3: three activations share one 256 MB acquisition
        assert sem.try_acquire_concurrent("a", 3, 256)
    assert sem.memory.available == 0
    assert not sem.try_acquire_concurrent("a", 3, 256)     # the fourth needs memory that is not there
    assert not sem.try_acquire_concurrent("b", 3, 256)
    sem.release_concurrent("a", 3, 256)
    assert sem.memory.available == 0                   # one slot free, the container equivalent still in use
    assert sem.try_acquire_concurrent("a", 3, 256)     # ... and that free slot is reused without memory
    for _ in range(3):
        sem.release_concurrent("a", 3, 256)
    assert sem.memory.available == 256
    assert sem.in_use("a", 3) == 0


def test_forced_concurrent_acquisition_opens_slots_below_zero() -> None:
    sem = NestedSemaphore(128)
    assert sem.try_acquire_concurrent("a", 2, 128)
    assert sem.try_acquire_concurrent("a", 2, 128)
    sem.force_acquire_concurrent("a", 2, 128)
    assert sem.memory.available == -128
    assert sem.try_acquire_concurrent("a", 2, 128)     # the forced acquisition opened a second slot
    for _ in range(4):
        sem.release_concurrent("a", 2, 128)
    assert sem.memory.available == 128


def test_release_without_acquisition_is_an_error() -> None:
    with pytest.raises(KeyError):
        NestedSemaphore(128).release_concurrent("a", 2, 128)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=200),
       st.integers(min_value=1, max_value=4))
def test_random_walk_matches_container_equivalents(ops: list[tuple[str, bool]], c: int) -> None:
    """Memory in use is always memory × Σ ceil(in-flight / c) over actions, and never exceeds the total unforced."""
    memory, total = 128, 640
    sem = NestedSemaphore(total)
    flight = {"a": 0, "b": 0, "c": 0}
    for action, acquire in ops:
        if acquire:
            if sem.try_acquire_concurrent(action, c, memory):
                flight[action] += 1
        elif flight[action]:
            sem.release_concurrent(action, c, memory)
            flight[action] -= 1
        containers = sum(-(-n // c) for n in flight.values())
        assert total - sem.memory.available == containers * memory
        assert sem.memory.available >= 0
        if c > 1:
            assert all(sem.in_use(a, c) == n for a, n in flight.items())
