"""whisk/retry.py: a write tried again while its backend is away, and only then."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from whisk.entities.errors import BackendUnavailable, Conflict
from whisk.retry import FIRST_PAUSE_S, while_unavailable


class Away:
    """An attempt that fails as an unavailable backend `failures` times, then answers "done"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BackendUnavailable("the store is away")
        return "done"


async def test_pauses_double_up_to_the_cap_until_the_backend_answers(monkeypatch: Any) -> None:
    real_sleep = asyncio.sleep
    pauses: list[float] = []

    async def sleep(delay: float, *args: Any) -> Any:
        pauses.append(delay)
        return await real_sleep(0, *args)
    monkeypatch.setattr(asyncio, "sleep", sleep)
    away = Away(failures=5)
    assert await while_unavailable(away, within_s=60, event="test.write", max_pause_s=0.3) == "done"
    assert away.attempts == 6
    assert pauses == [FIRST_PAUSE_S, FIRST_PAUSE_S * 2, FIRST_PAUSE_S * 4, 0.3, 0.3]


async def test_the_last_failure_is_raised_once_the_time_is_up() -> None:
    away = Away(failures=1000)
    with pytest.raises(BackendUnavailable):
        await asyncio.wait_for(while_unavailable(away, within_s=0.2, event="test.write"), 5)
    assert 2 <= away.attempts <= 5


async def test_other_errors_are_raised_at_once() -> None:
    attempts = 0

    async def conflict() -> None:
        nonlocal attempts
        attempts += 1
        raise Conflict("The record is already there.")
    with pytest.raises(Conflict):
        await while_unavailable(conflict, within_s=60, event="test.write")
    assert attempts == 1


async def test_a_stop_ends_the_pause_and_the_retries() -> None:
    """A closing ledger leaves what it cannot write to the restart instead of holding the shutdown for a minute."""
    stop = asyncio.Event()
    away = Away(failures=1000)
    retrying = asyncio.ensure_future(while_unavailable(away, within_s=60, event="test.write", max_pause_s=30,
                                                       stop=stop))
    await asyncio.sleep(0.5)                 # the pauses have grown past 0.2 s by now
    attempts = away.attempts
    stop.set()
    with pytest.raises(BackendUnavailable):
        await asyncio.wait_for(retrying, 1)
    assert away.attempts == attempts + 1     # one more try when woken, then given up
