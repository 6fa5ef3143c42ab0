"""BusAnswers: the two times the invoker and the sharding balancer keep of the bus, and the questions they ask."""
from __future__ import annotations

import pytest

from whisk.messaging import base
from whisk.messaging.base import BusAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(base.time, "monotonic", c)
    return c


def test_a_new_process_counts_the_bus_as_answering_throughout(clock: Clock) -> None:
    bus = BusAnswers(late_s=5.0)
    assert bus.answers() and bus.answered_throughout(60.0)


def test_a_failure_is_away_until_the_next_answer_and_says_how_long(clock: Clock) -> None:
    bus = BusAnswers(late_s=5.0)
    assert bus.failed() is True          # the first since an answer: logged
    clock.now += 1
    assert bus.failed() is False         # still away: not logged again
    assert not bus.answers()
    clock.now += 2
    assert bus.answered() == pytest.approx(2.0)
    assert bus.answers()
    assert bus.answered() is None        # not away before this one


def test_silence_past_late_s_is_away_and_none_means_never(clock: Clock) -> None:
    late = BusAnswers(late_s=5.0)
    never = BusAnswers(late_s=None)
    clock.now += 5.0
    assert late.answers() and never.answers()
    clock.now += 0.1
    assert not late.answers() and never.answers()


def test_answered_throughout_needs_a_span_without_failure_and_a_late_answer(clock: Clock) -> None:
    bus = BusAnswers(late_s=5.0)
    bus.failed()
    clock.now += 1
    bus.answered()
    assert bus.answers() and not bus.answered_throughout(10.0)
    clock.now += 4
    bus.answered()
    clock.now += 5
    assert bus.answered_throughout(10.0)
    clock.now += 1                       # the last answer is now late
    assert not bus.answered_throughout(10.0)
