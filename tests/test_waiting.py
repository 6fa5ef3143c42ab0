"""tests/support/waiting.py: the one polling helper of the suite (and of bench/)."""

from __future__ import annotations

import time

import pytest

from tests.support.waiting import until


async def test_until_returns_the_first_result_that_holds() -> None:
    calls: list[int] = []

    def probe() -> int:
        calls.append(len(calls))
        return len(calls)

    assert await until("three calls", probe, ok=lambda n: n >= 3, interval_s=0) == 3
    assert calls == [0, 1, 2]


async def test_until_awaits_async_probes_and_retries_named_errors() -> None:
    left = [ConnectionError("down"), None, "up"]

    async def probe() -> str | None:
        item = left.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert await until("the server", probe, retry=(OSError,), interval_s=0) == "up"


async def test_until_fails_at_the_deadline_naming_what_and_the_last_result() -> None:
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"the flag: not met after 0.1 s; last: False"):
        await until("the flag", lambda: False, 0.1)
    assert 0.1 <= time.monotonic() - start < 5


async def test_until_lets_other_errors_through() -> None:
    def probe() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await until("never", probe, retry=(OSError,))
