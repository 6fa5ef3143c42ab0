"""A blocking caller's wait for its ack (whisk/controller/results.py): the answer, a timeout or a forced end, and the
balancer's future never cancelled by the caller's wait."""

import asyncio

import pytest

from whisk.controller.results import within
from whisk.loadbalancer.base import Forced


async def test_the_answer_a_timeout_and_a_forced_end():
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    loop.call_later(0.01, waiter.set_result, {"activationId": "a"})
    assert await within(waiter, 5) == {"activationId": "a"}
    assert await within(waiter, 5) == {"activationId": "a"}          # already answered: at once
    pending = loop.create_future()
    assert await within(pending, 0.01) is None and not pending.done()  # a timeout leaves the future alone
    loop.call_soon(pending.set_exception, Forced("timeout"))
    with pytest.raises(Forced):
        await within(pending, 5)


async def test_a_cancelled_caller_leaves_the_balancers_future_alone():
    waiter = asyncio.get_running_loop().create_future()
    caller = asyncio.create_task(within(waiter, 5))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not waiter.done()
    waiter.set_result("id")                                           # nothing is left listening
    assert await within(waiter, 5) == "id"
