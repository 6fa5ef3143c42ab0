"""A blocking caller's record: the one the invoker's ack carried, or else (the record was too large for the bus,
or the ack did not come in time) the one the invoker stored, read at growing intervals until the wait runs out.
And the other side of that early answer (`Answered`): a caller that reads the record it was answered with may come
before the invoker has stored it, and waits a little for it rather than getting a 404."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable
from whisk.loadbalancer.base import Forced
from whisk.store.base import ActivationStore, Doc

# The shrunk ack's record is read from the store (docs/openwhisk.md §3.2).
STORE_POLL_DELAYS_S = (0.05, 0.2, 1.0, 3.0, 5.0, 7.0)
# A record an answered caller reads before its invoker's store has written it: read again at these intervals.
STORED_POLL_DELAYS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)
STORED_WAIT_S = sum(STORED_POLL_DELAYS_S)
ANSWERED_KEPT = 4096


class Answered:
    """The blocking activations this controller answered lately. The invoker stores their records after the answer,
    and in a cluster from another process (its CouchDB writer batches them): a caller that reads its record at once
    may come before it. A read that finds none of these waits for it a little (`stored`), rather than the invoker
    holding the activation's completion, and with it its place on the invoker, until the write."""

    def __init__(self, kept: int = ANSWERED_KEPT) -> None:
        self._kept = kept
        self._ids: OrderedDict[str, str] = OrderedDict()     # activation id -> namespace, oldest first

    def note(self, namespace: str, activation_id: str) -> None:
        self._ids[activation_id] = namespace
        if len(self._ids) > self._kept:
            self._ids.popitem(last=False)

    async def stored(self, store: ActivationStore, namespace: str, activation_id: str) -> None:
        """Return once the record of an activation answered here can be read, or after ~1.6 s; at once for any
        other activation (never answered, or long ago: a 404 is the answer)."""
        if self._ids.get(activation_id) == namespace:
            await _read(store, namespace, activation_id, STORED_POLL_DELAYS_S, time.monotonic() + STORED_WAIT_S)


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
    try:
        record = await _read(store, namespace, activation_id, STORE_POLL_DELAYS_S, deadline)
    except BackendUnavailable:
        # The store is away (the record is written once it is back): the id, as past the wait. A 503 told a caller
        # whose activation was accepted, and may still run, to invoke it again.
        return None
    return Activation.from_doc(record) if record is not None else None


async def _read(store: ActivationStore, namespace: str, activation_id: str, delays: tuple[float, ...],
                deadline: float) -> Doc | None:
    """The stored record, read again after each of `delays` until it is there or `deadline` (monotonic) passes."""
    for delay in delays:
        record = await store.get_activation(namespace, activation_id)
        if record is not None:
            return record
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
    return await store.get_activation(namespace, activation_id)


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
