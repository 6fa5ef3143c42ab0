"""The ledger: every accepted activation ends with a record, across a restart and when its invoker goes silent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.controller.down_store import DownStore
from whisk.controller.drain import Drain
from whisk.controller.journal import Journal
from whisk.controller.ledger import LOGS_LOST, LOST, RESTARTED, STOPPED, Accepted, Ledger
from whisk.entities.errors import BackendUnavailable
from whisk.entities.activation import Activation, ActivationResponse, accepted_ms, new_activation_id
from whisk.entities.document import now_ms
from whisk.loadbalancer.base import Entry
from whisk.store.memory import MemoryStore

A, B, C, D = "a" * 32, "b" * 32, "c" * 32, "d" * 32


def entry(activation_id: str) -> Entry:
    return Entry(activation_id, "uuid", "guest", "guest/x", invoker=0, memory_mb=256, concurrency=1,
                 blocking=False)


async def test_a_restart_closes_what_the_previous_run_left_open(tmp_path) -> None:
    path = tmp_path / "controller0.journal"
    crashed = Journal(path)
    crashed.open()
    crashed.accepted(A, "guest", "guest", "guest/pkg/x", "0.0.2", "guest/bound")
    crashed.accepted(B, "guest", "guest", "guest/y", "0.0.1", None)
    crashed.accepted(C, "guest", "guest", "guest/z", "0.0.1", None)
    crashed.completed(C)
    crashed.close()
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        assert await ledger.recover() == 2
        record = await store.get_activation("guest", A)
        assert record is not None and record["response"]["result"] == {"error": RESTARTED}
        assert record["name"] == "x" and record["version"] == "0.0.2"
        assert await store.get_activation("guest", C) is None      # completed: its invoker stored it
        await ledger.close()
        again = Ledger(store, path, Drain())
        assert await again.recover() == 0                          # the journal started afresh
        await again.close()


@pytest.mark.parametrize("forced", ["timeout", "lost"])
async def test_a_release_ends_the_work_and_a_forced_one_leaves_a_record(tmp_path, forced: str) -> None:
    drain = Drain()
    async with MemoryStore() as store:
        ledger = Ledger(store, tmp_path / "controller0.journal", drain)
        await ledger.recover()
        for activation_id in (A, B, C):
            ledger.publishing(Accepted("guest", activation_id, "guest", "guest/x", "0.0.1", None))
        assert drain.in_flight == 3
        ledger.released(entry(A), "success")
        ledger.released(entry(A), "success")                       # a second release counts nothing
        ledger.withdrawn(C)                                        # publishing failed
        assert drain.in_flight == 1
        ledger.released(entry(B), forced)
        assert drain.in_flight == 0
        await ledger.close()                                       # waits for the record of the lost one
        lost = await store.get_activation("guest", B)
        assert lost is not None and lost["response"]["result"] == {"error": LOST}
        assert await store.get_activation("guest", A) is None
        assert Journal(tmp_path / "controller0.journal").unfinished() == []


async def test_a_namespace_that_keeps_no_records_gets_none_from_the_ledger(tmp_path) -> None:
    """`storeActivations: false` holds for the whisk-error records too: neither a forced release nor a restart
    stores one, and the journal holds nothing of such activations."""
    path = tmp_path / "controller0.journal"
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        await ledger.recover()
        ledger.publishing(Accepted("quiet", A, "quiet", "quiet/x", "0.0.1", None, stored=False))
        ledger.opened(Accepted("quiet", B, "quiet", "quiet/seq", "0.0.1", None, stored=False))
        ledger.publishing(Accepted("guest", C, "guest", "guest/x", "0.0.1", None))
        assert [e["id"] for e in Journal(path).unfinished()] == [C]
        ledger.released(entry(A), "lost")
        await ledger.abandoned(Accepted("quiet", B, "quiet", "quiet/seq", "0.0.1", None, stored=False), "gone")
        await ledger.close()                                        # a crash with C still open
        assert await store.get_activation("quiet", A) is None
        assert await store.get_activation("quiet", B) is None
        restarted = Ledger(store, path, Drain())
        assert await restarted.recover() == 1                       # C only
        assert await store.get_activation("guest", C) is not None
        await restarted.close()


def answer(activation_id: str) -> Activation:
    return Activation("guest", "x", "guest", activation_id, 1000, 1005, ActivationResponse.success({"ok": 1}), (),
                      "0.0.1", annotations=[{"key": "path", "value": "guest/x"}], duration=5)


async def test_an_answered_activation_left_open_gets_the_record_its_caller_got(tmp_path) -> None:
    """A blocking caller was answered, then the platform died before the record was stored: the restart stores
    that record, with a line saying its logs are missing, not an error that contradicts the answer."""
    path = tmp_path / "controller0.journal"
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        await ledger.recover()
        for activation_id in (A, B, C):
            ledger.publishing(Accepted("guest", activation_id, "guest", "guest/x", "0.0.1", None))
        ledger.answered(answer(A))
        ledger.answered(answer(B))
        ledger.released(entry(B), "success")              # B's record was stored: completed
        ledger.released(entry(C), "success")
        ledger.answered(answer(C))                         # an answer after the store (a combined ack): no line
        await asyncio.sleep(0)
        assert path.read_bytes().count(b"\n= ") == 2
        ledger.publishing(Accepted("guest", D, "guest", "guest/x", "0.0.1", None))   # never answered
        await ledger.close()                               # a crash with A (answered) and D (not) still open
        restarted = Ledger(store, path, Drain())
        assert await restarted.recover() == 2
        record = await store.get_activation("guest", A)
        assert record is not None and record["response"] == {"statusCode": 0, "result": {"ok": 1}}
        assert record["start"] == 1000 and record["duration"] == 5 and len(record["logs"]) == 1
        assert record["logs"][0].endswith(f"stderr: {LOGS_LOST}")
        assert (await store.get_activation("guest", D))["response"]["result"] == {"error": RESTARTED}
        assert await store.get_activation("guest", B) is None and await store.get_activation("guest", C) is None
        await restarted.close()


async def test_compaction_keeps_the_answers_of_open_activations(tmp_path) -> None:
    path = tmp_path / "controller0.journal"
    journal = Journal(path, compact_bytes=2000)
    journal.open()
    journal.accepted(A, "guest", "guest", "guest/x", "0.0.1", None)
    journal.answered(answer(A))
    for n in range(40):                                    # enough lines to compact
        other = f"{n:032x}"
        journal.accepted(other, "guest", "guest", "guest/x", "0.0.1", None)
        journal.completed(other)
        await asyncio.sleep(0)
    assert path.stat().st_size < 2000
    [left] = journal.unfinished()
    assert left["id"] == A and left["answered"]["activationId"] == A
    journal.close()


async def test_a_record_the_ledger_writes_is_dated_when_its_activation_was_accepted(tmp_path) -> None:
    """After a restart, a whisk-error record listed at the restart's time came after the trigger that started it."""
    accepted = new_activation_id()
    await asyncio.sleep(0.05)
    path = tmp_path / "controller0.journal"
    crashed = Journal(path)
    crashed.open()
    crashed.accepted(accepted, "guest", "guest", "guest/x", "0.0.1", None)
    crashed.close()
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        assert await ledger.recover() == 1
        record = await store.get_activation("guest", accepted)
        assert record["start"] == record["end"] == accepted_ms(accepted) and now_ms() - record["start"] >= 50
        await ledger.close()
    assert accepted_ms("a" * 32) is None                    # not an id whisk made: dated when it is recorded


@pytest.mark.parametrize("forced", ["timeout", "lost", "stopped"])
async def test_an_answered_activation_forced_closed_keeps_the_record_its_caller_got(tmp_path, forced: str) -> None:
    """A blocking caller was answered, then its invoker went silent (or the stop's grace ran out) before the record
    was stored: the record the ledger stores is the one the caller got, with a line saying its logs were not
    collected, not an error that contradicts the answer (as a restart does, above)."""
    async with MemoryStore() as store:
        ledger = Ledger(store, tmp_path / "controller0.journal", Drain())
        await ledger.recover()
        for activation_id in (A, B):
            ledger.publishing(Accepted("guest", activation_id, "guest", "guest/x", "0.0.1", None))
        ledger.answered(answer(A))
        ledger.released(entry(A), forced)
        ledger.released(entry(B), forced)                  # never answered: the error record
        await ledger.close()
        record = await store.get_activation("guest", A)
        assert record is not None and record["response"] == {"statusCode": 0, "result": {"ok": 1}}, record
        assert len(record["logs"]) == 1 and "logs were not collected" in record["logs"][0]
        assert (await store.get_activation("guest", B))["response"]["result"] == {
            "error": STOPPED if forced == "stopped" else LOST}


@pytest.mark.parametrize("forced", ["lost", "restarted"])
async def test_a_sequence_components_record_the_ledger_writes_names_its_sequence(tmp_path, forced: str) -> None:
    """A component of a sequence or composition whose invoker never acknowledged it (or that the platform's restart
    closed) got a whisk-error record without `cause` and without the `causedBy` annotation, so that it could not be
    told from a top-level activation, nor traced to the sequence whose logs list it (OpenWhisk's fallback record
    of a component carries both: `InvokerReactive.generateFallbackActivation`)."""
    path = tmp_path / "controller0.journal"
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        await ledger.recover()
        ledger.publishing(Accepted("guest", A, "guest", "guest/x", "0.0.1", None, cause=B))
        if forced == "lost":
            ledger.released(entry(A), forced)
        await ledger.close()
        if forced == "restarted":                                     # its journal line was left open
            ledger = Ledger(store, path, Drain())
            assert await ledger.recover() == 1
            await ledger.close()
        record = await store.get_activation("guest", A)
        assert record is not None and record["cause"] == B, record
        assert {"key": "causedBy", "value": "sequence"} in record["annotations"]


async def publishing_one(store: MemoryStore, path: Path) -> Ledger:
    """A ledger recovered from `path`, with activation A of guest/x published (its journal line open)."""
    ledger = Ledger(store, path, Drain())
    await ledger.recover()
    ledger.publishing(Accepted("guest", A, "guest", "guest/x", "0.0.1", None))
    return ledger


@pytest.mark.parametrize("forced", ["timeout", "lost", "stopped"])
async def test_a_forced_release_whose_record_cannot_be_written_stays_open_for_the_restart(tmp_path,
                                                                                        forced: str) -> None:
    """The journal line of a forced activation was closed before its whisk-error record was written: with the store
    away then, nothing was left to record it, not even a restart."""
    path = tmp_path / "controller0.journal"
    async with DownStore() as store:
        ledger = await publishing_one(store, path)
        store.down = True
        ledger.released(entry(A), forced)
        await ledger.close()
        assert await store.get_activation("guest", A) is None
        store.down = False
        restarted = Ledger(store, path, Drain())
        assert await restarted.recover() == 1
        assert (await store.get_activation("guest", A))["response"]["result"] == {"error": RESTARTED}
        await restarted.close()


class AwayStore(MemoryStore):
    """Reads fail while `away`, and writes are taken, as with CouchDB: its writer queues (and spools) a record while
    the database is away, but reading whether one is there needs the database."""

    away = False

    async def get_activation(self, namespace: str, activation_id: str) -> dict | None:
        if self.away:
            raise BackendUnavailable("The database is unavailable.")
        return await super().get_activation(namespace, activation_id)


@pytest.mark.parametrize("forced", ["timeout", "lost"])
async def test_a_forced_release_while_the_store_is_briefly_away_gets_its_record(tmp_path, forced: str) -> None:
    """The check for an existing record failed at once while CouchDB was away, and the whisk-error record was left
    to the controller's next restart, which may be weeks away: in a cluster, an invoker killed while CouchDB was
    cut left its in-flight activations without records. The ledger now tries again while the store is
    unavailable, as the records the invoker and the launcher write are (docs/architecture.md)."""
    path = tmp_path / "controller0.journal"
    async with AwayStore() as store:
        ledger = await publishing_one(store, path)
        store.away = True
        ledger.released(entry(A), forced)
        await asyncio.sleep(0.3)
        store.away = False
        for _ in range(200):
            if await store.get_activation("guest", A) is not None:
                break
            await asyncio.sleep(0.02)
        record = await store.get_activation("guest", A)
        assert record is not None and record["response"]["result"] == {"error": LOST}
        await ledger.close()
        assert Journal(path).unfinished() == []


@pytest.mark.parametrize("forced", ["lost", "stopped"])
async def test_the_records_the_ledger_writes_are_counted_in_the_activation_metrics(tmp_path, forced: str) -> None:
    """openwhisk_action_* count every stored record: a forced one, or one written at a restart, is a
    whisk_internal_error that no invoker counted (it never stored a record); one already there is not counted
    again."""
    from prometheus_client import REGISTRY

    ns = f"ledger{new_activation_id()[-8:]}"

    def count(status: str) -> float:
        return REGISTRY.get_sample_value("openwhisk_action_status", {
            "namespace": ns, "initiator": ns, "action": "x", "status": status}) or 0.0

    path = tmp_path / "controller0.journal"
    crashed = Journal(path)
    crashed.open()
    crashed.accepted(D, ns, ns, f"{ns}/x", "0.0.1", None)
    crashed.close()
    async with MemoryStore() as store:
        ledger = Ledger(store, path, Drain())
        assert await ledger.recover() == 1
        assert count("whisk_internal_error") == 1
        for activation_id in (A, B, C):
            ledger.publishing(Accepted(ns, activation_id, ns, f"{ns}/x", "0.0.1", None))
        ledger.released(entry(A), "success")                       # its invoker stored and counted it
        await store.put_activation(Activation.whisk_error(
            namespace=ns, name="x", subject=ns, activation_id=C, version="0.0.1", path=f"{ns}/x", binding=None,
            at=now_ms(), error="stored by its invoker"))
        ledger.released(entry(B), forced)
        ledger.released(entry(C), forced)                          # its record is there already
        await ledger.close()
    assert count("whisk_internal_error") == 2
    assert REGISTRY.get_sample_value("openwhisk_action_activations_total", {
        "namespace": ns, "initiator": ns, "action": "x", "kind": "unknown", "memory": ""}) == 2
