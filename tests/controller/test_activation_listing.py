"""A listing of activations with docs reads its page's records a batch at a time (controller/activations.py): the same
records in the same order as a listing of the whole page, never more than DOCS_BATCH of them read at once."""

from __future__ import annotations

from typing import Any

from whisk.controller import activations
from whisk.controller.activations import ActivationFilter, Activations
from whisk.entities.activation import Activation, ActivationResponse
from whisk.entities.names import EntityPath
from whisk.store.memory import MemoryStore


class Allowed:
    async def authorize(self, *args: Any) -> None:
        return None


class Counting(MemoryStore):
    """The memory store, noting how many records each bulk read asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    async def get_activations(self, namespace: str, activation_ids: list[str]) -> list[dict[str, Any]]:
        self.reads.append(len(activation_ids))
        return await super().get_activations(namespace, activation_ids)


async def test_a_listing_with_docs_reads_its_records_a_batch_at_a_time() -> None:
    async with Counting() as store:
        for n in range(25):
            await store.put_activation(Activation("guest", "a" if n % 2 else "b", "guest", f"{n:032x}", 1000 + n,
                                                  1005 + n, ActivationResponse.success({"n": n}), logs=(f"line {n}",)))
        listing = Activations(store, Allowed())       # type: ignore[arg-type]   # nothing refused here
        guest = EntityPath.of("guest")
        for f, expected in ((ActivationFilter(limit=0, docs=True), list(range(24, -1, -1))),
                            (ActivationFilter(skip=3, limit=14, docs=True), list(range(21, 7, -1))),
                            (ActivationFilter(limit=30, docs=True, name="a"), list(range(23, 0, -2)))):
            store.reads.clear()
            got = [record async for record in await listing.list(guest, guest, f)]
            assert [r.response.result for r in got] == [{"n": n} for n in expected]
            assert [r.logs for r in got] == [(f"line {n}",) for n in expected]
            assert sum(store.reads) == len(expected) and max(store.reads) <= activations.DOCS_BATCH


async def test_after_a_large_record_the_rest_are_read_one_at_a_time() -> None:
    """A store answers a batch in one piece, parsed at once (CouchDB's _all_docs): once a record past
    LARGE_RECORD_BYTES is seen, the next are read alone, so that a page of such records never holds the loop or
    the memory for five of them together. The records and their order stay the same."""
    large = ("x" * 1000,) * (activations.LARGE_RECORD_BYTES // 1000 + 1)
    async with Counting() as store:
        for n in range(12):
            await store.put_activation(Activation("guest", "a", "guest", f"{n:032x}", 1000 + n, 1005 + n,
                                                  ActivationResponse.success({"n": n}),
                                                  logs=large if n <= 6 else (f"line {n}",)))
        listing = Activations(store, Allowed())       # type: ignore[arg-type]   # nothing refused here
        guest = EntityPath.of("guest")
        got = [r.response.result async for r in await listing.list(guest, guest, ActivationFilter(docs=True))]
    assert got == [{"n": n} for n in range(11, -1, -1)]
    assert store.reads == [5, 5, 1, 1]     # five small, five with the first large ones, then one at a time
