"""The background writer of CouchDB activation records: off the invoke path, batched, retried until written.

`put` only queues the record. One task sends what is queued through `_bulk_docs` (up to BATCH records a request);
records that arrive while a request is under way go into the next one. When the database does not answer, the batch
goes back to the queue and is retried with a growing pause, so a record is never lost while the database is briefly
down; a record that already exists (an overwrite) is retried with its current revision. Until it is written, `get`
answers a record from the queue.

The activation is acknowledged once its record is queued (waiting for CouchDB held the invoker's place, see
docs/architecture.md), so a queued record must outlive the process: with a spool file (the server's data folder)
each record is appended to it as it is queued, the ids of each batch written after that batch (a JSON array), and
the file is emptied whenever nothing is left to write. A start queues what a killed process, or one that stopped
while CouchDB was away, left in it and did not note as written. The spool has one owner: a
second server of the same role and instance on the data folder would take the first one's records and leave it
writing to a file no longer there (`SpoolInUse`).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import math
import os
from collections.abc import Awaitable, Callable

import structlog

from whisk.entities.errors import BackendUnavailable
from whisk.store.base import Doc

log = structlog.get_logger(__name__)

BATCH = 500
PAUSE_S = (0.05, 2.0)        # first and longest pause between retries while the database does not answer
CLOSE_DEADLINE_S = 10.0      # how long closing keeps trying to write what is still queued
DRAIN_DEADLINE_S = 5.0       # how long a listing waits for earlier records to be written
# A spool never emptied (a steady stream of records) is rewritten past this, and past twice what its last rewrite
# left in it: rewritten whenever it was past this, a backlog larger than this (CouchDB back after a long absence)
# was rewritten whole after every batch, on the event loop, the writes growing with the square of the backlog.
SPOOL_COMPACT_BYTES = 64 << 20

BulkDocs = Callable[[list[Doc]], Awaitable[list[Doc]]]
CurrentRevs = Callable[[list[str]], Awaitable[dict[str, str]]]


class SpoolInUse(OSError):
    """Another running process holds this spool: a second server of one role and instance on the data folder."""


class BatchTooLarge(Exception):
    """CouchDB refused a whole `_bulk_docs` request as too large (413 `document_too_large`: a record past its
    `max_document_size`, 8 MB by default in CouchDB 3, which a record of 10 MB of logs passes; apache/couchdb#3354).
    Sent again as it was, the batch is refused again, for ever, and every record after it waits behind it."""


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


class ActivationWriter:
    def __init__(self, bulk_docs: BulkDocs, current_revs: CurrentRevs, spool: str | None = None) -> None:
        self._spool_path = spool
        self._spool: int | None = None                    # its descriptor, opened for appending
        self._spool_lock: int | None = None
        self._spool_rewritten = 0                         # the bytes its last rewrite left in it
        self._bulk_docs = bulk_docs
        self._current_revs = current_revs
        self._seq = itertools.count(1)
        self._last = 0
        self._queued: dict[str, tuple[int, Doc]] = {}     # id -> (sequence number, record); newest put wins
        self._sending: dict[str, tuple[int, Doc]] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._batch = BATCH                               # halved while CouchDB refuses batches as too large
        self._suspects: set[str] = set()                  # the last batch refused so, not yet written or given up

    async def start(self) -> None:
        if self._spool_path is not None:
            self._lock_spool()
            try:
                recovered = self._recover()
                self._rewrite_spool()
            except BaseException:
                self._close_spool()
                raise
            if recovered:
                log.warning("store.activations_recovered", count=recovered, spool=self._spool_path)
        self._task = asyncio.create_task(self._run(), name="couchdb-activation-writer")

    def _lock_spool(self) -> None:
        """Own the spool before reading it (flock on a file beside it, as it is replaced when rewritten; the lock
        goes with the process, a SIGKILL included)."""
        assert self._spool_path is not None
        fd = os.open(f"{self._spool_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            folder, name = os.path.split(self._spool_path)
            raise SpoolInUse(f"another whisk server is running on the data folder {folder} (its spool {name} "
                             f"is locked)") from None
        self._spool_lock = fd

    def _close_spool(self) -> None:
        for fd in (self._spool, self._spool_lock):
            if fd is not None:
                os.close(fd)
        self._spool = self._spool_lock = None

    def _recover(self) -> int:
        """Queue the records a previous process left in the spool. A line cut short by a kill is skipped, and a foreign
        one: not a record, nested past the parser's recursion, or holding NaN or Infinity, which CouchDB refuses
        with the whole batch (400), so that the writer retried that batch for ever and wrote nothing more."""
        assert self._spool_path is not None
        try:
            with open(self._spool_path, "rb") as spool:
                lines = spool.readlines()
        except FileNotFoundError:
            return 0
        for line in lines:
            try:
                record = json.loads(line, parse_constant=_no_constants)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and isinstance(record.get("_id"), str):
                self._queue(record)
            elif isinstance(record, list):      # a batch written: its records are not sent again
                for doc_id in record:
                    if isinstance(doc_id, str):
                        self._queued.pop(doc_id, None)
        return len(self._queued)

    def _rewrite_spool(self) -> None:
        """The spool holds exactly the records still to write (queued or being sent), written anew."""
        assert self._spool_path is not None
        pending = {**self._sending, **self._queued}
        temporary = f"{self._spool_path}.new"
        data = b"".join(json.dumps(record).encode() + b"\n" for _, record in pending.values())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.replace(temporary, self._spool_path)
        except BaseException:
            os.close(fd)
            raise
        if self._spool is not None:
            os.close(self._spool)
        self._spool = fd
        self._spool_rewritten = len(data)

    async def close(self) -> None:
        """Write what is still queued (up to CLOSE_DEADLINE_S), then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), CLOSE_DEADLINE_S)
        except asyncio.TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            left = len(self._queued.keys() | self._sending.keys())
            if self._spool is None:
                log.error("store.activations_lost", count=left, reason="couchdb did not answer before shutdown")
            else:
                log.warning("store.activations_spooled", count=left, spool=self._spool_path,
                            reason="couchdb did not answer before shutdown: the next start writes them")
        finally:
            self._close_spool()

    def put(self, record: Doc) -> None:
        if self._closing:
            raise BackendUnavailable("couchdb: the store is closing")
        text = json.dumps({k: v for k, v in record.items() if k != "_rev"})
        if self._spool is not None:
            try:
                os.write(self._spool, text.encode() + b"\n")
            except OSError as exc:   # a full disk: the record is still written to CouchDB, unless this one dies
                log.warning("store.spool_failed", spool=self._spool_path, error=str(exc))
        self._queue(json.loads(text))   # a copy: the caller may reuse its dict

    def _queue(self, stored: Doc) -> None:
        self._last = next(self._seq)
        self._queued[stored["_id"]] = (self._last, stored)
        self._wake.set()

    def get(self, doc_id: str) -> Doc | None:
        """The newest record queued or being sent under this id, or None."""
        item = self._queued.get(doc_id) or self._sending.get(doc_id)
        if item is None:
            return None
        return {k: v for k, v in json.loads(json.dumps(item[1])).items() if k != "_rev"}

    async def drained(self) -> None:
        """Wait until every record put before this call is written (or DRAIN_DEADLINE_S passes)."""
        target = self._last
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self._oldest() > target), DRAIN_DEADLINE_S)
        except asyncio.TimeoutError:
            pass   # the database is slow or down: the query that follows answers or fails on its own

    def _oldest(self) -> float:
        return min((seq for seq, _ in itertools.chain(self._queued.values(), self._sending.values())),
                   default=math.inf)

    async def _run(self) -> None:
        pause = PAUSE_S[0]
        while True:
            if not self._queued:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            ids = list(itertools.islice(self._queued, self._batch))
            self._sending = {doc_id: self._queued.pop(doc_id) for doc_id in ids}
            try:
                await self._send()
                pause = PAUSE_S[0]
                self._cleared(ids)
                self._trim_spool(ids)
            except BatchTooLarge as exc:
                self._refused_as_too_large(ids, exc)
            except Exception as exc:   # BackendUnavailable, or an answer we did not expect: keep the records, retry
                log.warning("store.activations_retry", count=len(self._sending), pause_s=pause, error=repr(exc))
                for doc_id, item in self._sending.items():
                    self._queued.setdefault(doc_id, item)   # unless a newer record came meanwhile
                self._sending = {}
                await asyncio.sleep(pause)
                pause = min(pause * 2, PAUSE_S[1])
            async with self._progress:
                self._progress.notify_all()

    def _refused_as_too_large(self, ids: list[str], exc: BatchTooLarge) -> None:
        """Halve the batch until the record CouchDB refuses is sent alone (the others are written meanwhile), then
        give that one up, as a record CouchDB rejects in a batch's answer is given up: no retry makes it fit."""
        if len(ids) == 1:
            log.error("store.activation_rejected", id=ids[0], error="document_too_large", reason=str(exc))
            self._sending = {}
            self._cleared(ids)
            self._trim_spool(ids)
            return
        # Back at the front, in their order; a newer record of one that came meanwhile is the one kept.
        self._queued = {**self._sending, **self._queued}
        self._sending = {}
        self._suspects = set(ids)
        self._batch = max(1, len(ids) // 2)

    def _cleared(self, ids: list[str]) -> None:
        """`ids` are written or given up: the batch is whole again once the last refused one's records all are. Were
        it whole again after any write, the half of a refused batch that went through brought the record back in a
        full batch, refused again: up to three times the refusals of a bisection, each carrying that record."""
        self._suspects.difference_update(ids)
        if not self._suspects:
            self._batch = BATCH

    def _trim_spool(self, sent: list[str]) -> None:
        """After a write: empty the spool when nothing is left to write, rewrite it when it has grown large, or else
        note the batch's ids as written. Under a steady stream it is never empty, and a start after a kill sent
        every record it held again (up to SPOOL_COMPACT_BYTES of them): each a conflict, then an overwrite."""
        if self._spool is None:
            return
        try:
            if not self._queued and not self._sending:
                os.ftruncate(self._spool, 0)
                self._spool_rewritten = 0
            elif os.fstat(self._spool).st_size > max(SPOOL_COMPACT_BYTES, 2 * self._spool_rewritten):
                self._rewrite_spool()
            else:   # not those queued again: a newer record of the id, or a conflict to send with its revision
                written = [doc_id for doc_id in sent if doc_id not in self._queued]
                if written:
                    os.write(self._spool, json.dumps(written).encode() + b"\n")
        except OSError as exc:
            log.warning("store.spool_failed", spool=self._spool_path, error=str(exc))

    async def _send(self) -> None:
        results = await self._bulk_docs([record for _, record in self._sending.values()])
        conflicts = []
        for result in results:
            doc_id = result.get("id")
            if result.get("error") == "conflict" and doc_id in self._sending:
                conflicts.append(doc_id)
            elif result.get("error"):
                log.error("store.activation_rejected", id=doc_id, error=result.get("error"),
                          reason=result.get("reason"))
        if conflicts:   # an overwrite: send again with the revision the database has now
            # Only the conflicts are still to send: should the lookup fail, the batch's others, written, must not go
            # back to the queue (each would be sent again, a conflict, then a second revision).
            self._sending = {doc_id: self._sending[doc_id] for doc_id in conflicts}
            revs = await self._current_revs(conflicts)
            for doc_id in conflicts:
                seq, record = self._sending[doc_id]
                if doc_id not in self._queued:
                    self._queued[doc_id] = (seq, {**record, "_rev": revs[doc_id]} if doc_id in revs else record)
        self._sending = {}
