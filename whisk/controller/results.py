"""A blocking caller's record: the one the invoker's ack carried, or else (the record was too large for the bus,
or the ack did not come in time) the one the invoker stored, read at growing intervals until the wait runs out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from whisk.entities.activation import Activation
from whisk.loadbalancer.base import Forced
from whisk.store.base import ActivationStore

# The shrunk ack's record is read from the store (docs/openwhisk.md §3.2).
STORE_POLL_DELAYS_S = (0.05, 0.2, 1.0, 3.0, 5.0, 7.0)


async def await_record(store: ActivationStore, namespace: str, activation_id: str, waiter: asyncio.Future[Any],
                       wait_ms: int) -> Activation | None:
    """The record, or None once `wait_ms` has passed without one (the caller answers 202)."""
    deadline = time.monotonic() + wait_ms / 1000
    try:
        answer = await within(waiter, wait_ms / 1000)
    except Forced:
        answer = None
    if answer is None:
        answer = activation_id
    if isinstance(answer, Activation):        # from an invoker in this process: the very record it built
        return answer
    if isinstance(answer, dict):
        return Activation.from_doc(answer)
    for delay in STORE_POLL_DELAYS_S:
        record = await store.get_activation(namespace, activation_id)
        if record is not None:
            return Activation.from_doc(record)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
    record = await store.get_activation(namespace, activation_id)
    return Activation.from_doc(record) if record is not None else None


async def within(waiter: asyncio.Future[Any], wait_s: float) -> Any:
    """The waiter's result, or None once `wait_s` has passed; the waiter is never cancelled, as with
    `wait_for(shield(waiter))`, which costs three futures and a task where this takes one future and a timer."""
    if not waiter.done():
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        timer = loop.call_later(wait_s, wake)
        waiter.add_done_callback(wake)
        try:
            await woken
        finally:
            timer.cancel()
            waiter.remove_done_callback(wake)
        if not waiter.done():
            return None
    return waiter.result()
