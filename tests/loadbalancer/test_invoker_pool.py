"""Invoker health supervision (docs/openwhisk.md §6.4) and stalled-consumer detection, on a fake clock."""

from __future__ import annotations

import pytest

from whisk.loadbalancer.invoker_pool import InvokerHealth, InvokerPool, InvokerState, Outcome

UP, SICK, SLOW, DOWN = InvokerState.HEALTHY, InvokerState.UNHEALTHY, InvokerState.UNRESPONSIVE, InvokerState.OFFLINE
OK, ERR, TIMEOUT = Outcome.SUCCESS, Outcome.SYSTEM_ERROR, Outcome.TIMEOUT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, **kwargs: float) -> None:
        self.clock = Clock()
        self.tests: list[tuple[float, int]] = []
        self.changes: list[InvokerHealth] = []
        self.pool = InvokerPool(clock=self.clock, on_test_action=lambda i: self.tests.append((self.clock.now, i)),
                                on_change=self.changes.append, **kwargs)

    def advance(self, seconds: float, *, ping: tuple[int, ...] = (), step: float = 1.0, **ping_kwargs) -> None:
        """Let time pass in steps, with the given invokers pinging once per step, ticking as a driver would."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + step)
            for i in ping:
                self.pool.ping(i, 2048, **ping_kwargs)
            self.pool.tick()

    def healthy(self, instance: int = 0) -> None:
        self.pool.ping(instance, 2048)
        self.pool.completion(instance, OK)
        assert self.pool.state(instance) is UP


def test_states_have_openwhisk_words() -> None:
    assert [s.as_string for s in (UP, SICK, SLOW, DOWN)] == ["up", "unhealthy", "unresponsive", "down"]
    assert [s.usable for s in (UP, SICK, SLOW, DOWN)] == [True, False, False, False]


def test_a_new_invoker_starts_unhealthy_and_gets_a_test_action() -> None:
    h = Harness()
    h.pool.ping(0, 2048)
    assert h.pool.state(0) is SICK
    assert h.tests == [(1000.0, 0)]
    assert h.changes == [InvokerHealth(0, 2048, SICK)]
    h.pool.completion(0, OK)                      # the test action's completion
    assert h.pool.state(0) is UP
    assert h.pool.status_map() == {"invoker0": "up"}


def test_unknown_ids_are_padded_offline_and_shown_as_down() -> None:
    h = Harness()
    h.healthy(2)
    assert h.pool.snapshot() == [InvokerHealth(0, 0, DOWN), InvokerHealth(1, 0, DOWN), InvokerHealth(2, 2048, UP)]
    assert h.pool.status_map() == {"invoker0": "down", "invoker1": "down", "invoker2": "up"}


def test_no_ping_for_ten_seconds_is_offline_and_a_ping_brings_it_back_unhealthy() -> None:
    h = Harness()
    h.healthy()
    h.advance(9.5)
    assert h.pool.state(0) is UP
    assert h.pool.next_deadline() == 1010.0
    h.advance(0.5)
    assert h.pool.state(0) is DOWN
    assert h.pool.next_deadline() is None
    h.tests.clear()
    h.pool.ping(0, 2048)
    assert h.pool.state(0) is SICK and h.tests == [(h.clock.now, 0)]


def test_pings_keep_it_up_and_a_late_ping_counts_the_timeout_first() -> None:
    h = Harness()
    h.healthy()
    h.advance(60, ping=(0,))
    assert h.pool.state(0) is UP
    h.clock.now += 30                              # no tick in between: the ping itself applies the timeout
    h.pool.ping(0, 2048)
    assert h.pool.state(0) is SICK
    assert [c.state for c in h.changes[-2:]] == [DOWN, SICK]


def test_completions_do_not_restart_the_ping_timer() -> None:
    h = Harness()
    h.healthy()
    for _ in range(12):
        h.clock.now += 1
        h.pool.completion(0, OK)
    assert h.pool.state(0) is DOWN


def test_disabled_ping_is_offline_even_for_a_new_invoker() -> None:
    h = Harness()
    h.healthy()
    h.pool.ping(0, 2048, enabled=False)
    assert h.pool.state(0) is DOWN
    h.tests.clear()
    h.pool.ping(1, 2048, enabled=False)
    assert h.pool.state(1) is DOWN and h.tests == []
    h.pool.ping(1, 2048)
    assert h.pool.state(1) is SICK


def test_more_than_three_system_errors_in_ten_is_unhealthy() -> None:
    h = Harness()
    h.healthy()
    for outcome in [OK] * 6 + [ERR] * 3:
        h.pool.completion(0, outcome)
    assert h.pool.state(0) is UP                   # 3 errors are tolerated
    h.tests.clear()
    h.pool.completion(0, ERR)
    assert h.pool.state(0) is SICK and h.tests == [(h.clock.now, 0)]
    h.pool.completion(0, OK)                       # buffer still holds 4 errors: a test action to flush them
    assert h.pool.state(0) is SICK and len(h.tests) == 2
    for _ in range(5):
        h.pool.completion(0, OK)
    assert h.pool.state(0) is SICK                 # [ERR×4, OK×6]: errors age out only after 10 results
    h.pool.completion(0, OK)
    assert h.pool.state(0) is UP                   # [ERR×3, OK×7]
    assert len(h.tests) == 8                       # entering + one per Success received while Unhealthy
    h.pool.completion(0, OK)
    assert len(h.tests) == 8


def test_more_than_three_timeouts_is_unresponsive_and_errors_win() -> None:
    h = Harness()
    h.healthy()
    for outcome in [OK] * 5 + [TIMEOUT] * 4:
        h.pool.completion(0, outcome)
    assert h.pool.state(0) is SLOW
    h.tests.clear()
    h.pool.completion(0, OK)                       # a Success while Unresponsive sends no extra test action
    assert h.pool.state(0) is SLOW and h.tests == []
    for _ in range(4):
        h.pool.completion(0, ERR)                  # > 3 errors and > 3 timeouts: Unhealthy
    assert h.pool.state(0) is SICK


def test_one_early_failure_while_priming_is_enough() -> None:
    h = Harness()
    h.pool.ping(0, 2048)
    h.pool.completion(0, TIMEOUT)
    assert h.pool.state(0) is SLOW
    h.pool.completion(0, OK)
    assert h.pool.state(0) is UP
    h.pool.completion(0, ERR)
    assert h.pool.state(0) is SICK                 # 3 entries: still priming
    h.pool.completion(0, OK)
    h.pool.completion(0, ERR)                      # 5 entries, 2 errors: stays
    assert h.pool.state(0) is UP


def test_test_actions_repeat_every_minute_while_unhealthy() -> None:
    h = Harness()
    h.pool.ping(0, 2048)
    h.advance(185, ping=(0,))
    assert [t for t, _ in h.tests] == [1000.0, 1060.0, 1120.0, 1180.0]
    h.pool.completion(0, OK)
    h.tests.clear()
    h.advance(120, ping=(0,))
    assert h.tests == []                            # Healthy: no more test actions


def test_offline_ignores_completions() -> None:
    h = Harness()
    h.healthy()
    h.pool.ping(0, 2048, enabled=False)
    for _ in range(5):
        h.pool.completion(0, ERR)
    assert h.pool.state(0) is DOWN


def test_known_invokers_are_listed_offline_without_test_actions() -> None:
    h = Harness()
    h.pool.known(1, 4096)
    assert h.pool.snapshot()[1] == InvokerHealth(1, 4096, DOWN) and h.tests == []
    h.advance(30)
    assert h.pool.state(1) is DOWN and h.tests == []
    h.pool.ping(1, 4096)
    assert h.pool.state(1) is SICK and h.tests == [(h.clock.now, 1)]


def test_memory_changes_are_reported() -> None:
    h = Harness()
    h.healthy()
    h.pool.ping(0, 1024)
    assert h.changes[-1] == InvokerHealth(0, 1024, UP)


# -- stalled consumers (OpenWhisk #2285) --------------------------------------------------------------------

def stalled_harness() -> Harness:
    h = Harness(stall_after_s=15)
    h.pool.ping(0, 2048, taken=0)
    h.pool.completion(0, OK)
    return h


def test_pending_work_with_no_progress_and_room_is_a_stall() -> None:
    h = stalled_harness()
    h.pool.dispatched(0, "a1")
    h.advance(14, ping=(0,), taken=0)
    assert h.pool.state(0) is UP
    assert h.pool.next_deadline() == 1015.0
    h.advance(1, ping=(0,), taken=0)
    assert h.pool.state(0) is SICK and h.pool.stalled(0)
    h.pool.completion(0, OK, "old")                # a Success does not heal a stalled invoker
    assert h.pool.state(0) is SICK
    h.advance(1, ping=(0,), taken=1)               # it takes work again
    assert not h.pool.stalled(0) and h.pool.state(0) is SICK
    h.pool.completion(0, OK, "a1")
    assert h.pool.state(0) is UP


def test_progress_after_sending_is_no_stall() -> None:
    h = stalled_harness()
    h.pool.dispatched(0, "long-running")
    h.advance(1, ping=(0,), taken=1)               # taken, then runs for minutes
    h.advance(120, ping=(0,), taken=1)
    assert h.pool.state(0) is UP


def test_completed_work_is_no_longer_pending() -> None:
    h = stalled_harness()
    h.pool.dispatched(0, "a1")
    h.advance(5, ping=(0,), taken=0)
    h.pool.completion(0, OK, "a1")
    h.advance(60, ping=(0,), taken=0)
    assert h.pool.state(0) is UP


def test_a_busy_invoker_is_not_stalled_until_room_lasts() -> None:
    h = stalled_harness()
    h.pool.dispatched(0, "queued")
    h.advance(60, ping=(0,), taken=0, has_room=False)
    assert h.pool.state(0) is UP
    h.advance(15, ping=(0,), taken=0, has_room=True)
    assert h.pool.state(0) is UP                   # room claimed from 1061 on: 14 s at 1075
    h.advance(1, ping=(0,), taken=0, has_room=True)
    assert h.pool.state(0) is SICK


def test_a_restart_resetting_taken_is_progress() -> None:
    h = stalled_harness()
    h.advance(1, ping=(0,), taken=7)
    h.pool.dispatched(0, "a1")
    h.advance(10, ping=(0,), taken=7)
    h.advance(10, ping=(0,), taken=0)              # restarted at 11 s: counts from 0 again
    assert h.pool.state(0) is UP


def test_without_taken_in_pings_there_is_no_stall_detection() -> None:
    h = Harness()
    h.healthy()
    h.pool.dispatched(0, "a1")
    h.advance(300, ping=(0,))
    assert h.pool.state(0) is UP
    assert not h.pool.stalled(0)


@pytest.mark.parametrize("pending_since", [0.0, 5.0])
def test_stall_time_counts_from_the_oldest_work_sent_after_progress(pending_since: float) -> None:
    h = stalled_harness()
    h.advance(pending_since, ping=(0,), taken=0)
    h.pool.dispatched(0, "a1")
    h.advance(3, ping=(0,), taken=0)
    h.pool.dispatched(0, "a2")
    h.advance(11.5, ping=(0,), taken=0, step=0.5)
    assert h.pool.state(0) is UP
    h.advance(0.5, ping=(0,), taken=0, step=0.5)
    assert h.pool.state(0) is SICK
