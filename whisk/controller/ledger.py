"""Every activation the controller accepts ends with a stored record: the ledger of those still open.

The journal (`journal.py`) keeps them across a crash: at start `recover` closes, as whisk errors, those a previous
run accepted and never recorded. While running, the ledger learns from the balancer (`released`) that a published
activation ended, and stores a whisk-error record for one whose invoker never acknowledged it (it may have died
with it). The launcher opens and closes the sequences and compositions it runs itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from whisk import metrics
from whisk.controller.drain import Drain
from whisk.controller.journal import Journal
from whisk.entities.activation import Activation, accepted_ms
from whisk.entities.document import now_ms
from whisk.entities.errors import WhiskError
from whisk.entities.log_lines import log_line, rfc3339_nanos
from whisk.loadbalancer.base import Entry
from whisk.retry import while_unavailable
from whisk.store.base import RECORD_RETRY_S, ActivationStore

log = structlog.get_logger(__name__)

RESTARTED = "The activation was interrupted: the platform restarted before it completed."
LOGS_LOST = "The platform restarted before this activation's logs were collected."
LOST = "The activation did not complete: its invoker did not acknowledge it in time."
STOPPED = "The activation was interrupted: the platform stopped before it completed."
# The log line of an answered record stored by the controller when the activation was forced closed (by outcome).
LOGS_NOT_COLLECTED = {
    "stopped": "The activation's logs were not collected: the platform stopped before it completed.",
    "lost": "The activation's logs were not collected: its invoker did not acknowledge it in time."}


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the controller keeps of an activation in flight, to record it if its invoker never does."""

    namespace: str
    activation_id: str
    subject: str
    path: str
    version: str
    binding: str | None
    stored: bool = True         # False: the namespace keeps no records (`storeActivations`), not even this one
    cause: str | None = None    # the sequence's or composition's activation id, for one of its components


class Ledger:
    def __init__(self, store: ActivationStore, journal_path: Path, drain: Drain) -> None:
        self._store = store
        self._journal = Journal(journal_path)
        self._drain = drain
        self._published: dict[str, Accepted] = {}     # sent to an invoker, until the balancer releases them
        self._answers: dict[str, Activation] = {}      # of those, what their blocking callers were answered
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()                # a store still away at the stop: left to the restart

    async def recover(self) -> int:
        """Close, as whisk errors, the activations a previous run accepted and never recorded; one whose blocking
        caller was answered gets the record that caller got, with a line saying its logs are missing, and one the
        controller wrote and could not store gets that record."""
        self._journal.lock()
        closed = 0
        for entry in self._journal.unfinished():
            answered = entry.get("answered")
            if answered is not None:
                record = Activation.from_doc(answered)
                if not record.logs:         # an invoker's, answered before its logs were collected
                    record = replace(record, logs=(log_line(rfc3339_nanos(time.time_ns()), "stderr", LOGS_LOST),))
                stored = await self._store_missing(record)
            else:
                stored = await self._close_unrecorded(Accepted(
                    entry["ns"], entry["id"], entry.get("subject", entry["ns"]), entry["path"],
                    entry.get("version", "0.0.1"), entry.get("binding"), cause=entry.get("cause")), RESTARTED)
            closed += stored
        if closed:
            log.warning("controller.recovered", closed=closed)
        self._journal.open()
        return closed

    # --- activations an invoker runs --------------------------------------------------------------------------------

    def publishing(self, accepted: Accepted) -> None:
        """An activation is about to be published: journaled (if its namespace keeps records), and work in flight
        until released or withdrawn."""
        self._journal_accepted(accepted)
        self._published[accepted.activation_id] = accepted
        self._drain.enter()

    def answered(self, record: Activation) -> None:
        """A blocking caller got `record` (its logs not yet collected) before it was stored: journaled, so that a
        crash before the store leaves this record rather than an error that contradicts the answer."""
        self._journal.answered(record)
        if record.activation_id in self._published:   # and so does a forced release (`released`)
            self._answers[record.activation_id] = record

    def unstored(self, record: Activation) -> None:
        """A record the controller wrote itself (a fire's, a composition's, a served action's) that the store
        refused: journaled whole, so that the restart stores it, not an error that contradicts what its caller got
        (its line stays open: the launcher, the firing)."""
        self._journal.answered(record)

    def withdrawn(self, activation_id: str) -> None:
        """Publishing failed: the caller got the error, so there is nothing to record."""
        self._journal.completed(activation_id)
        self._answers.pop(activation_id, None)
        if self._published.pop(activation_id, None) is not None:
            self._drain.leave()

    def released(self, entry: Entry, outcome: str) -> None:
        """Balancer callback: an activation completed, or was forced (no ack in time, or its invoker is gone)."""
        metrics.observe_completion(outcome)
        accepted = self._published.pop(entry.activation_id, None)
        answered = self._answers.pop(entry.activation_id, None)
        if accepted is None or outcome not in ("timeout", "lost", "stopped"):
            self._journal.completed(entry.activation_id)     # its invoker stored its record
            if accepted is not None:
                self._drain.leave()
            return
        self._drain.leave()
        # The invoker may have died with it, or the stop's grace ran out: make sure it still ends with a record, and
        # one that does not contradict what a blocking caller was answered (as `recover` does).
        stopped = outcome == "stopped"
        record = None
        if answered is not None:
            missing = log_line(rfc3339_nanos(time.time_ns()), "stderr",
                               LOGS_NOT_COLLECTED["stopped" if stopped else "lost"])
            record = replace(answered, logs=(missing,))
        task = asyncio.create_task(self._close_forced(accepted, record, STOPPED if stopped else LOST))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- activations the controller runs itself (sequences, compositions) -------------------------------------------

    def opened(self, accepted: Accepted) -> None:
        """A controller-run activation began: journal it, so that a crash before its record is stored still leaves
        one after the restart."""
        self._journal_accepted(accepted)

    def closed(self, activation_id: str) -> None:
        self._journal.completed(activation_id)

    async def abandoned(self, accepted: Accepted, error: str) -> None:
        """A controller-run activation failed without a record of its own: store a whisk-error one."""
        await self._close_forced(accepted, None, error)

    def _journal_accepted(self, accepted: Accepted) -> None:
        # A namespace that keeps no records gets no whisk-error record either, so there is nothing to journal.
        if accepted.stored:
            self._journal.accepted(accepted.activation_id, accepted.namespace, accepted.subject, accepted.path,
                                   accepted.version, accepted.binding, accepted.cause)

    async def _close_forced(self, accepted: Accepted, record: Activation | None, error: str) -> None:
        """Store `record`, or else a whisk-error record, for an activation that has none yet; its journal line closes
        once it has one. A store that fails leaves the line open, so that the restart records it."""
        try:
            if accepted.stored:
                await self._put_missing(record or self._error_record(accepted, error), RECORD_RETRY_S)
        except WhiskError as exc:
            log.error("controller.record.failed", activation_id=accepted.activation_id, error=str(exc))
            return
        self._journal.completed(accepted.activation_id)

    async def _close_unrecorded(self, accepted: Accepted, error: str) -> bool:
        """Store a whisk-error record for an activation that has none (every accepted activation ends with one,
        unless its namespace keeps no records)."""
        if not accepted.stored:
            return False
        return await self._store_missing(self._error_record(accepted, error))

    @staticmethod
    def _error_record(accepted: Accepted, error: str) -> Activation:
        # Dated when it was accepted, so that it lists among its neighbours (a trigger's rules, a sequence's steps).
        at = accepted_ms(accepted.activation_id) or now_ms()
        return Activation.whisk_error(
            namespace=accepted.namespace, name=accepted.path.rsplit("/", 1)[-1], subject=accepted.subject,
            activation_id=accepted.activation_id, version=accepted.version, path=accepted.path,
            binding=accepted.binding, at=at, error=error, cause=accepted.cause)

    async def _store_missing(self, record: Activation) -> bool:
        """Store `record` unless its activation has one already; whether it was stored (a failure is logged)."""
        try:
            return await self._put_missing(record, 0.0)   # at start: a store away fails the next one too
        except WhiskError as exc:
            log.error("controller.record.failed", activation_id=record.activation_id, error=str(exc))
            return False

    async def _put_missing(self, record: Activation, retry_s: float) -> bool:
        """Store `record` unless its activation has one already; whether it was stored. WhiskError when the store
        fails. While it is unavailable, tried again for up to `retry_s`, as the records the invoker and the launcher
        write are (the CouchDB store queues the record while the database is away, but the check reads the
        database), unless the ledger is closing."""
        async def check_and_put() -> bool:
            if await self._store.get_activation(record.namespace, record.activation_id) is not None:
                return False
            await self._store.put_activation(record)
            # No invoker stored it, so none counted it: the metrics count every stored record (a whisk error, or
            # the answer a blocking caller got).
            metrics.observe_activation(record)
            return True
        return await while_unavailable(check_and_put, within_s=retry_s, event="store.record", stop=self._closing,
                                       activation_id=record.activation_id)

    async def close(self) -> None:
        """Let the records of lost activations be written (or left to the restart while the store is away), then close
        the journal."""
        self._closing.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._journal.close()
