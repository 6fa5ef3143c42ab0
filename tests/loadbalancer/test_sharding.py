"""The sharding balancer's scheduling core (docs/openwhisk.md §6.1–6.3): hashing, steps, partitions, slots, overload."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from whisk.entities.errors import NoInvokers
from whisk.loadbalancer.sharding import (
    InvokerView, ShardingScheduler, action_hash, coprime_steps, java_hash, partitions, probe_order,
)


def healthy(n: int, memory: int = 1024) -> list[InvokerView]:
    return [InvokerView(i, memory, True) for i in range(n)]


def scheduler(n: int, memory: int = 1024, **kwargs) -> ShardingScheduler:
    s = ShardingScheduler(rng=random.Random(7), **kwargs)
    s.update_invokers(healthy(n, memory))
    return s


# -- Java's String.hashCode ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("", 0), ("a", 97), ("hello", 99162322), ("guest", 98708952), ("guest/hello", 86723035),
    ("polygenelubricants", -2147483648),                  # the famous Integer.MIN_VALUE string
    ("é", 233), ("😀", 1772899),                          # a surrogate pair hashes as two UTF-16 units
    ("whisk.system/invokerHealthTestAction0", -1812739596), ("Aa", 2112), ("BB", 2112),
])
def test_java_hash_matches_java(text: str, expected: int) -> None:
    """Expected values printed by OpenJDK's String.hashCode."""
    assert java_hash(text) == expected


@given(st.text())
def test_java_hash_is_the_documented_polynomial(text: str) -> None:
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = h * 31 + int.from_bytes(units[i:i + 2], "big")
    h %= 2**32
    assert java_hash(text) == (h - 2**32 if h >= 2**31 else h)
    assert -(2**31) <= java_hash(text) < 2**31


def test_action_hash_keeps_java_abs_of_int_min() -> None:
    assert action_hash("", "polygenelubricants") == -(2**31)       # Java's Math.abs leaves it negative
    assert action_hash("guest", "guest/hello") == 13198339                 # Math.abs(h("guest") ^ h(...)) in Java


# -- steps, probe order, partitions -------------------------------------------------------------------------

def test_steps_and_probe_order_from_the_source() -> None:
    assert coprime_steps(10) == [1, 3, 7]
    assert probe_order(13, 10) == [3, 6, 9, 2, 5, 8, 1, 4, 7, 0]
    assert coprime_steps(1) == [1] and coprime_steps(0) == [1]
    # OpenWhisk's pairwiseCoprimeNumbersUntil(n) runs to n itself: n - 1 is always a step.
    assert (coprime_steps(2), coprime_steps(3), coprime_steps(4), coprime_steps(6)) == ([1], [1, 2], [1, 3], [1, 5])


@given(st.integers(min_value=1, max_value=200))
def test_steps_are_pairwise_coprime_and_coprime_to_n(n: int) -> None:
    steps = coprime_steps(n)
    assert steps[0] == 1
    from math import gcd
    assert all(gcd(s, n) == 1 for s in steps)
    assert all(gcd(a, b) == 1 for i, a in enumerate(steps) for b in steps[i + 1:])


@given(st.integers(min_value=0, max_value=2**31 - 1), st.integers(min_value=1, max_value=64))
def test_probe_order_visits_every_invoker_once(hash_: int, n: int) -> None:
    order = probe_order(hash_, n)
    assert sorted(order) == list(range(n))
    assert order[0] == hash_ % n


@pytest.mark.parametrize("n, managed, blackbox", [
    (1, [0], [0]), (2, [0, 1], [1]), (10, list(range(9)), [9]), (20, list(range(18)), [18, 19]),
])
def test_partitions_with_default_fractions(n: int, managed: list[int], blackbox: list[int]) -> None:
    m, b = partitions(n, 0.9, 0.1)
    assert (list(m), list(b)) == (managed, blackbox)


def test_fractions_are_clamped_and_blackbox_covers_the_rest() -> None:
    s = ShardingScheduler(managed_fraction=1.5, blackbox_fraction=-1)
    assert (s.managed_fraction, s.blackbox_fraction) == (1.0, 0.0)
    s = ShardingScheduler(managed_fraction=0.5, blackbox_fraction=0.1)
    assert s.blackbox_fraction == 0.5
    s.update_invokers(healthy(10))
    assert s.managed == [0, 1, 2, 3, 4] and s.blackbox == [5, 6, 7, 8, 9]
    # A small managed fraction still has its one invoker (OpenWhisk's max(1, ceil(n × fraction))), no more.
    assert [list(p) for p in partitions(4, 0.1, 0.9)] == [[0], [1, 2, 3]]


# -- scheduling ---------------------------------------------------------------------------------------------

def test_an_action_goes_home_while_its_home_has_room() -> None:
    s = scheduler(10)
    home = probe_order(action_hash("guest", "guest/hello"), 9)[0]           # 9 managed invokers
    for _ in range(4):
        assert s.schedule("guest", "guest/hello", 256) == (home, False)
    assert s.free_mb(home) == 0


def test_a_full_home_sends_work_along_the_probe_order() -> None:
    s = scheduler(10, memory=256)
    order = probe_order(action_hash("guest", "guest/hello"), 9)
    placed = [s.schedule("guest", "guest/hello", 256)[0] for _ in range(9)]
    assert placed == order


def test_unusable_invokers_are_skipped() -> None:
    s = scheduler(10)
    order = probe_order(action_hash("guest", "guest/hello"), 9)
    s.update_invokers([InvokerView(i, 1024, i != order[0]) for i in range(10)])
    assert s.schedule("guest", "guest/hello", 128) == (order[1], False)


def test_overload_forces_a_random_healthy_invoker() -> None:
    s = scheduler(3, memory=256)
    s.update_invokers([InvokerView(0, 256, True), InvokerView(1, 256, True), InvokerView(2, 256, False)])
    assert sorted(s.schedule("guest", "guest/a", 256)[0] for _ in range(2)) == [0, 1]
    chosen = Counter()
    for _ in range(200):
        invoker, forced = s.schedule("guest", "guest/a", 256)
        assert forced and invoker in (0, 1)                                # never the unusable invoker 2
        chosen[invoker] += 1
    assert chosen[0] > 50 and chosen[1] > 50
    assert s.free_mb(0) + s.free_mb(1) == -200 * 256


def test_overload_without_a_given_random_source() -> None:
    """The balancer makes its scheduler without a seeded random source: a forced placement still finds one."""
    s = ShardingScheduler()
    s.update_invokers([InvokerView(0, 128, True)])
    assert s.schedule("guest", "guest/a", 128) == (0, False)
    assert s.schedule("guest", "guest/a", 128) == (0, True)


def test_no_usable_invoker_is_no_invokers() -> None:
    s = ShardingScheduler()
    with pytest.raises(NoInvokers, match="No invokers available."):
        s.schedule("guest", "guest/a", 128)
    with pytest.raises(NoInvokers, match="No invokers available."):
        s.schedule("guest", "guest/a", 128, blackbox=True)
    s.update_invokers([InvokerView(0, 1024, False), InvokerView(1, 1024, False)])
    with pytest.raises(NoInvokers):
        s.schedule("guest", "guest/a", 128)


def test_blackbox_actions_use_the_blackbox_partition() -> None:
    s = scheduler(10, memory=128 * 50)
    for i in range(50):
        assert s.schedule("guest", f"guest/a{i}", 128, blackbox=True) == (9, False)
        assert s.schedule("guest", f"guest/b{i}", 128)[0] in range(9)


def test_missing_ids_are_unusable_placeholders_and_ids_stay() -> None:
    s = ShardingScheduler(rng=random.Random(1))
    s.update_invokers([InvokerView(2, 512, True)])
    assert [v.usable for v in s.invokers] == [False, False, True]
    assert s.managed == [0, 1, 2]
    for _ in range(20):
        assert s.schedule("guest", "guest/x", 128)[0] == 2
    s.update_invokers([InvokerView(0, 512, True)])                           # 2 not reported: kept, unusable
    assert [v.usable for v in s.invokers] == [True, False, False]
    assert s.invokers[2].user_memory_mb == 512


def test_forgotten_invokers_leave_the_partitions_and_come_back_with_fresh_slots() -> None:
    s = ShardingScheduler(rng=random.Random(1))
    s.update_invokers([InvokerView(i, 512, True) for i in range(3)])
    s.schedule("guest", "guest/img", 512, blackbox=True)
    assert s.blackbox == [2] and s.free_mb(2) == 0
    s.update_invokers([InvokerView(0, 512, True), InvokerView(1, 512, True)])
    s.forget_from(2)
    assert len(s.invokers) == 2 and s.managed == [0, 1] and s.blackbox == [1]
    assert s.schedule("guest", "guest/img", 256, blackbox=True) == (1, False)
    s.update_invokers([InvokerView(i, 512, True) for i in range(3)])        # back
    assert s.blackbox == [2] and s.free_mb(2) == 512


def test_memory_is_split_across_controllers_never_below_128() -> None:
    s = scheduler(2, memory=1024, controllers=2)
    assert s.free_mb(0) == 512
    s.update_controllers(16)
    assert s.free_mb(0) == 128
    s.update_controllers(0)                                                   # a reported 0 means alone
    assert s.free_mb(0) == 1024


def test_resizing_keeps_the_activations_in_flight() -> None:
    s = scheduler(1, memory=1024)
    invoker, _ = s.schedule("guest", "guest/a", 512)
    s.update_controllers(2)
    assert s.free_mb(invoker) == 0
    s.update_invokers([InvokerView(0, 2048, True)])
    assert s.free_mb(invoker) == 512
    s.release(invoker, "guest/a", 512)
    assert s.free_mb(invoker) == 1024


def test_concurrent_actions_share_a_memory_acquisition() -> None:
    s = scheduler(2, memory=256)
    placed = {s.schedule("guest", "guest/c", 256, max_concurrent=4)[0] for _ in range(4)}
    assert len(placed) == 1
    home = placed.pop()
    assert s.free_mb(home) == 0 and s.in_use(home, "guest/c", 4) == 4
    invoker, forced = s.schedule("guest", "guest/c", 256, max_concurrent=4)
    assert invoker != home and not forced
    for _ in range(4):
        s.release(home, "guest/c", 256, max_concurrent=4)
    assert s.free_mb(home) == 256


def test_slot_key_separates_versions() -> None:
    s = scheduler(1, memory=256)
    s.schedule("guest", "guest/c", 256, max_concurrent=2, slot_key="guest/c@0.0.1")
    _, forced = s.schedule("guest", "guest/c", 256, max_concurrent=2, slot_key="guest/c@0.0.2")
    assert forced                                                             # a new version needs its own memory


@settings(max_examples=150)
@given(n=st.integers(min_value=1, max_value=12), memory=st.sampled_from([128, 256, 512, 2048]),
       usable=st.lists(st.booleans(), min_size=12, max_size=12),
       ops=st.lists(st.tuples(st.integers(0, 5), st.sampled_from([128, 256]), st.booleans()), max_size=120))
def test_scheduling_invariants(n: int, memory: int, usable: list[bool], ops: list[tuple[int, int, bool]]) -> None:
    """Unforced placements fit; forced ones happen only when no usable invoker had room; releases restore all."""
    s = ShardingScheduler(rng=random.Random(0))
    s.update_invokers([InvokerView(i, memory, usable[i]) for i in range(n)])
    live: list[tuple[int, str, int]] = []
    for action, mb, release in ops:
        if release and live:
            invoker, name, size = live.pop(0)
            s.release(invoker, name, size)
            continue
        name = f"guest/a{action}"
        before = {i: s.free_mb(i) for i in range(n)}
        if not any(usable[i] for i in s.managed):
            with pytest.raises(NoInvokers):
                s.schedule("guest", name, mb)
            continue
        invoker, forced = s.schedule("guest", name, mb)
        assert usable[invoker] and invoker in s.managed
        if forced:
            assert all(before[i] < mb for i in s.managed if usable[i])
        else:
            assert before[invoker] >= mb
            home_first = [i for i in probe_order(action_hash("guest", name), len(s.managed))
                          if usable[i] and before[i] >= mb]
            assert invoker == home_first[0]                                  # the first fit along the probe
        live.append((invoker, name, mb))
    for invoker, name, size in live:
        s.release(invoker, name, size)
    assert all(s.free_mb(i) == memory for i in range(n))


def test_home_invokers_spread_actions_evenly() -> None:
    homes = Counter(probe_order(action_hash("guest", f"guest/action-{i}"), 10)[0] for i in range(2000))
    assert set(homes) == set(range(10))
    assert all(120 <= count <= 280 for count in homes.values())              # 200 each on average
