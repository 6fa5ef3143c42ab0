"""Throttles (docs/openwhisk.md §8) and the restart journal, on their own."""

from __future__ import annotations

import asyncio

import pytest

from whisk.controller.journal import Journal
from whisk.controller.throttle import RateThrottle, check_concurrency
from whisk.entities.errors import Throttled


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_rate_counts_per_calendar_minute_and_charges_rejected_requests() -> None:
    clock = Clock(120.0)
    rate = RateThrottle(clock)
    rate.charge("ns", 2)
    rate.charge("ns", 2)
    with pytest.raises(Throttled, match=r"Too many requests in the last minute \(count: 3, allowed: 2\)\."):
        rate.charge("ns", 2)
    with pytest.raises(Throttled, match=r"count: 4"):
        rate.charge("ns", 2)
    rate.charge("other", 2)                      # namespaces are counted apart
    clock.t = 179.9                              # same calendar minute
    with pytest.raises(Throttled):
        rate.charge("ns", 2)
    clock.t = 180.0                              # a new minute starts from zero
    rate.charge("ns", 2)


def test_concurrency_allows_strictly_below_the_limit() -> None:
    check_concurrency(29, 30)
    with pytest.raises(Throttled, match=r"Too many concurrent requests in flight \(count: 30, allowed: 30\)\."):
        check_concurrency(30, 30)


def test_journal_lists_accepted_but_not_completed(tmp_path) -> None:
    path = tmp_path / "c0.journal"
    journal = Journal(path)
    assert journal.unfinished() == []
    journal.open()
    journal.accepted("a" * 32, "guest", "guest", "guest/pkg/x", "0.0.1", "guest/bound")
    journal.accepted("b" * 32, "guest", "guest", "guest/y", "0.0.2", None)
    journal.completed("a" * 32)
    journal.close()
    with path.open("a") as f:
        f.write('+ {"id": "torn')                # a crash mid-write leaves a torn line: ignored
    left = Journal(path).unfinished()
    assert [e["id"] for e in left] == ["b" * 32]
    assert left[0]["path"] == "guest/y" and left[0]["version"] == "0.0.2"
    reopened = Journal(path)
    reopened.open()                              # a new run starts the journal afresh
    reopened.close()
    assert Journal(path).unfinished() == []


def test_journal_stays_small_and_keeps_the_open_activations(tmp_path) -> None:
    """Two lines an activation would grow the file forever: past its threshold the journal is rewritten with only
    the activations still open, and a crash at any point still finds them."""
    path = tmp_path / "c0.journal"
    journal = Journal(path, compact_bytes=4096)
    journal.open()
    journal.accepted("k" * 32, "guest", "guest", "guest/slow", "0.0.1", None)     # open throughout
    sizes = []
    for n in range(2000):
        aid = f"{n:032x}"
        journal.accepted(aid, "guest", "guest", "guest/echo", "0.0.1", None)
        if n % 3:                                                          # every third one stays open a while
            journal.completed(aid)
        if n % 3 == 0 and n >= 3:
            journal.completed(f"{n - 3:032x}")
        sizes.append(path.stat().st_size)
    assert max(sizes) < 4096 + 200          # 2000 activations would be about 300 KB of lines
    assert min(sizes[100:]) < 1000          # rewritten, not just grown
    # Not closed, as after a kill: the file lists exactly the open ones.
    assert sorted(e["id"] for e in Journal(path).unfinished()) == sorted(["k" * 32, f"{1998:032x}"])
    assert not (tmp_path / "c0.journal.new").exists()
    journal.completed("k" * 32)
    journal.close()
    assert [e["id"] for e in Journal(path).unfinished()] == [f"{1998:032x}"]


async def test_completions_of_one_loop_turn_are_written_together_on_the_next(tmp_path) -> None:
    path = tmp_path / "c0.journal"
    journal = Journal(path)
    journal.open()
    for n in range(3):
        journal.accepted(f"{n:032x}", "guest", "guest", "guest/echo", "0.0.1", None)
    journal.completed(f"{0:032x}")
    journal.completed(f"{1:032x}")
    assert len(Journal(path).unfinished()) == 3           # not yet written: the loop has not turned
    await asyncio.sleep(0)
    assert [e["id"] for e in Journal(path).unfinished()] == [f"{2:032x}"]
    journal.completed(f"{2:032x}")
    journal.close()                                       # a close writes what is pending
    assert Journal(path).unfinished() == []
