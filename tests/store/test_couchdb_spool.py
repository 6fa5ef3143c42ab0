"""The CouchDB activation writer's spool (`whisk/store/couchdb_writer.py`), against a stand-in for CouchDB's
`_bulk_docs`: who owns the file, what a start reads from it, and what keeping it small costs."""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path

import pytest

from whisk.entities.errors import BackendUnavailable
from whisk.store import couchdb_writer
from whisk.store.base import Doc
from whisk.store.couchdb_writer import ActivationWriter, BatchTooLarge, SpoolInUse


class Couch:
    """`_bulk_docs` and `_current_revs` of a database that can be away."""

    def __init__(self) -> None:
        self.away = False
        self.docs: dict[str, Doc] = {}
        self.requests = 0
        self.conflicts = 0
        self.gate: asyncio.Event | None = None               # when set, a request waits for it
        self.arrived = asyncio.Event()
        self.max_document_size: int | None = None          # CouchDB 3's own default is 8 MB
        self.refused = 0                                    # requests refused as too large

    async def bulk_docs(self, docs: list[Doc]) -> list[Doc]:
        await asyncio.sleep(0)
        if self.away:
            raise BackendUnavailable("away")
        if self.max_document_size is not None and any(
                len(json.dumps(doc)) > self.max_document_size for doc in docs):
            self.requests += 1
            self.refused += 1
            raise BatchTooLarge("413 {'error': 'document_too_large', 'reason': ''}")   # the whole request refused
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        self.requests += 1
        results: list[Doc] = []
        for doc in docs:
            if doc["_id"] in self.docs and doc.get("_rev") != self.docs[doc["_id"]]["_rev"]:
                self.conflicts += 1
                results.append({"id": doc["_id"], "error": "conflict"})
                continue
            rev = int(self.docs.get(doc["_id"], {"_rev": "0"})["_rev"].split("-")[0]) + 1
            self.docs[doc["_id"]] = {**doc, "_rev": f"{rev}-x"}
            results.append({"id": doc["_id"], "ok": True})
        return results

    async def current_revs(self, ids: list[str]) -> dict[str, str]:
        return {i: self.docs[i]["_rev"] for i in ids if i in self.docs}


def record(i: int, size: int = 100) -> Doc:
    return {"_id": f"ns/{i:032x}", "activationId": f"{i:032x}", "response": {"result": {"pad": "x" * size}}}


async def written(couch: Couch, count: int) -> None:
    for _ in range(2000):
        if len(couch.docs) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{len(couch.docs)} of {count} records written")


async def started_until_written(couch: Couch, spool: str, count: int) -> None:
    """A writer started on `spool` (sending what it finds there), closed once `couch` holds `count` records."""
    writer = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await writer.start()
    try:
        await written(couch, count)
        await asyncio.sleep(0.05)
    finally:
        await writer.close()


async def test_a_spool_has_one_owner(tmp_path: Path) -> None:
    """A second server of the same role and instance started on the data folder read the first one's spool, sent
    its records again and replaced the file, so that the first one went on writing to a file no longer there: a
    kill of it while CouchDB was away then lost what it had acknowledged. The second one now refuses to start."""
    spool = str(tmp_path / "invoker0.couchdb-records")
    couch = Couch()
    couch.away = True
    first = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await first.start()
    try:
        first.put(record(1))
        second = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
        with pytest.raises(SpoolInUse, match="another whisk server is running on the data folder"):
            await second.start()
        first.put(record(2))
        lines = Path(spool).read_bytes().splitlines()
        assert [json.loads(line)["_id"] for line in lines] == [record(1)["_id"], record(2)["_id"]]
        other = ActivationWriter(couch.bulk_docs, couch.current_revs, str(tmp_path / "invoker1.couchdb-records"))
        await other.start()                                  # another instance: its own spool
        await other.close()
    finally:
        couch.away = False
        await first.close()
    assert len(couch.docs) == 2
    again = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await again.start()                                      # free once its owner closed it
    await again.close()


async def test_a_start_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    """A start read the spool with Python's lenient reader: a foreign line with NaN was queued, and CouchDB refuses
    the whole batch that carries it, so no record was ever written again (each listing waiting 5 s for them); a
    line nested deep enough stopped the start with a RecursionError."""
    spool = tmp_path / "invoker0.couchdb-records"
    good = [record(1), record(2)]
    spool.write_bytes(b"".join([
        json.dumps(good[0]).encode() + b"\n",
        b'{"_id": "ns/nan", "start": NaN}\n',
        b'{"_id": "ns/inf", "start": -Infinity}\n',
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'["not", "a", "record"]\n{"_id": 7}\n\xff\xfe\n',
        json.dumps(good[1]).encode() + b"\n",
        b'{"_id": "ns/torn", "resp',
    ]))
    couch = Couch()
    await started_until_written(couch, str(spool), 2)
    assert sorted(couch.docs) == [good[0]["_id"], good[1]["_id"]]
    assert spool.read_bytes() == b""


async def test_a_large_backlog_is_not_rewritten_after_every_batch(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Once more was queued than SPOOL_COMPACT_BYTES (CouchDB away for a while under load), every batch written
    after its return rewrote the whole remaining backlog, on the event loop: here 20 batches rewrote ~10 times the
    backlog; the writes grew with the square of the backlog (a 200 MB backlog of 700-byte records in batches of
    500: ~50 GB)."""
    monkeypatch.setattr(couchdb_writer, "SPOOL_COMPACT_BYTES", 50_000)
    monkeypatch.setattr(couchdb_writer, "BATCH", 100)
    spool = str(tmp_path / "invoker0.couchdb-records")
    couch = Couch()
    couch.away = True
    writer = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await writer.start()
    rewrites: list[int] = []
    rewrite = writer._rewrite_spool

    def counted() -> None:
        rewrite()
        assert writer._spool is not None
        rewrites.append(os.fstat(writer._spool).st_size)

    monkeypatch.setattr(writer, "_rewrite_spool", counted)
    try:
        for i in range(2000):                                # ~400 kB: 8 times the threshold, 20 batches
            writer.put(record(i))
        couch.away = False
        await written(couch, 2000)
        await asyncio.sleep(0.05)
    finally:
        await writer.close()
    assert couch.requests == 20
    assert sum(rewrites) < 2 * 2000 * 200, rewrites           # at most about the backlog once more, not 20 times
    assert Path(spool).read_bytes() == b""


async def test_a_start_sends_again_only_what_was_not_written(tmp_path: Path) -> None:
    """The spool was emptied only when nothing was left to write, so under a steady stream it held every record
    since it was last empty (up to SPOOL_COMPACT_BYTES, some 90,000 records), written or not. A kill then sent them
    all again at the next start: each a conflict, a revision lookup and an overwrite, a second revision of every
    record. Written batches are now noted in the spool, and a start skips them."""
    spool = str(tmp_path / "invoker0.couchdb-records")
    couch = Couch()
    couch.gate = asyncio.Event()
    writer = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await writer.start()
    for i in range(3):
        writer.put(record(i))
    await couch.arrived.wait()                               # the three are being sent
    writer.put(record(3))                                    # the next one arrives meanwhile
    couch.away = True                                        # and is not written before the kill
    couch.gate.set()
    await written(couch, 3)
    await asyncio.sleep(0.05)
    assert writer._task is not None
    writer._task.cancel()                                    # a SIGKILL: nothing more is done
    await asyncio.gather(writer._task, return_exceptions=True)
    writer._close_spool()
    couch.away = False
    await started_until_written(couch, spool, 4)
    assert couch.conflicts == 0
    assert {doc["_rev"] for doc in couch.docs.values()} == {"1-x"}
    assert Path(spool).read_bytes() == b""


async def test_a_failed_revision_lookup_sends_again_only_the_conflicts(tmp_path: Path) -> None:
    """A batch with an overwrite in it: CouchDB wrote the others and answered a conflict for it, and the lookup of
    its current revision failed (CouchDB gone that moment). The whole batch went back to the queue, and every record
    it had just written was sent again: a conflict each, then a second revision."""
    couch = Couch()
    couch.docs["ns/old"] = {"_id": "ns/old", "_rev": "1-x"}
    lookups = 0
    current_revs = couch.current_revs

    async def failing_once(ids: list[str]) -> dict[str, str]:
        nonlocal lookups
        lookups += 1
        if lookups == 1:
            raise BackendUnavailable("away")
        return await current_revs(ids)

    writer = ActivationWriter(couch.bulk_docs, failing_once, str(tmp_path / "invoker0.couchdb-records"))
    await writer.start()
    try:
        writer.put({"_id": "ns/old", "activationId": "old", "start": 2})
        for i in range(3):
            writer.put(record(i))
        for _ in range(400):
            if couch.docs["ns/old"].get("start") == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await writer.close()
    assert couch.docs["ns/old"]["start"] == 2 and couch.docs["ns/old"]["_rev"] == "2-x"
    assert {doc["_rev"] for doc_id, doc in couch.docs.items() if doc_id != "ns/old"} == {"1-x"}
    assert couch.conflicts == 2                              # the overwrite's alone, before and after the lookup


async def test_a_record_past_couchdbs_document_size_does_not_hold_back_the_others(tmp_path: Path) -> None:
    """CouchDB 3 refuses a whole `_bulk_docs` request with 413 when one record is past its `max_document_size` (8 MB
    by default; a record of 10 MB of logs is allowed). The writer took that for a database away and sent the same
    batch again for ever: no record after it was ever written. Now the batch is halved until the record goes alone,
    and that one is given up, as a record rejected in a batch's answer is."""
    couch = Couch()
    couch.max_document_size = 1000
    spool = str(tmp_path / "invoker0.couchdb-records")
    writer = ActivationWriter(couch.bulk_docs, couch.current_revs, spool)
    await writer.start()
    try:
        for i in range(40):
            writer.put(record(i, size=5000 if i == 13 else 100))
        await written(couch, 39)
        writer.put(record(40))                               # and what comes after
        await written(couch, 40)
    finally:
        await asyncio.wait_for(writer.close(), 5)
    assert sorted(couch.docs) == sorted(f"ns/{i:032x}" for i in range(41) if i != 13)
    assert couch.requests < 20                               # halvings, not a request per record
    assert Path(spool).read_bytes() == b""                   # nothing left for a start to send again


async def test_a_record_past_couchdbs_document_size_is_found_by_bisection(tmp_path: Path) -> None:
    """Each refused request carries the record past CouchDB's limit (up to 64 MB on the wire). The batch was made
    whole again after every write, so the refused batch's first half went through and the record came back in a full
    batch, refused again: 28 refusals for a record at position 377 of 1000. The batch stays halved until the refused
    one's records are all through: a bisection, log2(500) refusals."""
    couch = Couch()
    couch.max_document_size = 1000
    writer = ActivationWriter(couch.bulk_docs, couch.current_revs, str(tmp_path / "invoker0.couchdb-records"))
    await writer.start()
    try:
        for i in range(1000):
            writer.put(record(i, size=5000 if i == 377 else 100))
        await written(couch, 999)
        writer.put(record(1000))
        await written(couch, 1000)
    finally:
        await asyncio.wait_for(writer.close(), 5)
    assert len(couch.docs) == 1000 and f"ns/{377:032x}" not in couch.docs
    assert couch.refused <= math.ceil(math.log2(couchdb_writer.BATCH))
