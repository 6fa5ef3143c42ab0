"""A blocking caller's wait for its ack (whisk/controller/results.py): the answer, a timeout or a forced end, and the
balancer's future never cancelled by the caller's wait; the record an ack hands over in process or as bytes."""

import asyncio

import pytest

from whisk.controller.results import await_record, within
from whisk.entities.errors import BackendUnavailable
from whisk.entities.activation import Activation, ActivationResponse, new_activation_id
from whisk.loadbalancer.base import Entry, Forced
from whisk.loadbalancer.book import ActivationBook
from whisk.messages import Acknowledgement
from whisk.store.memory import MemoryStore


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


async def test_a_record_handed_over_in_process_is_the_answer_and_one_from_bytes_is_read_equal():
    """The in-process bus hands the invoker's ack over as it is: the caller gets the very record the invoker built,
    not one built again from its dict. Over Kafka the ack's bytes carry the dict alone, and the answer is equal."""
    activation_id = new_activation_id()
    record = Activation("guest", "noop", "guest", activation_id, 1, 2, ActivationResponse.success({"n": 1}, 9), (),
                        "0.0.1", annotations=[{"key": "path", "value": "guest/noop"}], duration=1)
    ack = Acknowledgement(["tid", 1], activation_id, record.to_doc(), record=record)
    over_kafka = Acknowledgement.from_bytes(ack.to_bytes())
    assert over_kafka.record is None and over_kafka == ack and b"record" not in ack.to_bytes()
    answers = []
    for given in (ack, over_kafka):
        book = ActivationBook(timeout_factor=1, timeout_addon_s=60)
        entry = book.add(Entry(activation_id, "uuid", "guest", "guest/noop", 0, 128, 1, True),
                         60_000)
        assert entry.result is not None
        book.acknowledge(given)
        answers.append(await await_record(MemoryStore(), "guest", activation_id, entry.result, 1_000))
        book.discard(activation_id)
    assert answers[0] is record
    assert answers[1] is not record and answers[1].extended_json() == record.extended_json()


class AwayStore(MemoryStore):
    async def get_activation(self, namespace: str, activation_id: str) -> dict | None:
        raise BackendUnavailable("The database is unavailable.")


@pytest.mark.parametrize("end", ["forced", "wait over"])
async def test_a_caller_whose_record_cannot_be_read_gets_the_id(end: str):
    """A blocking activation forced closed (its invoker killed) while CouchDB was away answered 503 "The database
    is unavailable." after its wait, without its id, though it was accepted and gets a record once CouchDB is back
    (and, sent to an invoker that comes back, may still run): a caller told 503 invokes again. It is answered as
    past the wait, 202 with the id (None here)."""
    waiter = asyncio.get_running_loop().create_future()
    if end == "forced":
        waiter.set_exception(Forced("lost"))
    assert await await_record(AwayStore(), "guest", new_activation_id(), waiter, 50) is None
