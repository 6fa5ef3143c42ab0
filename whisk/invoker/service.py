"""The invoker (docs/openwhisk.md §5.3–§5.4, OpenWhisk's InvokerReactive): consume `invoker{N}`, run each activation in
the container pool, store its record, acknowledge to the controller that published it, and ping `health`.

Acks follow docs/openwhisk.md §5.3: a blocking activation gets a result ack as soon as /run has answered (before its
logs are collected), then a completion ack once the record is stored; a failure before the pool runs anything gets one
combined ack. Every message taken ends with a stored record, whatever fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from whisk import metrics
from whisk.containerpool.job import NO_CONTAINER, RunResult
from whisk.containerpool.pool import ContainerPool
from whisk.containerpool.response import PROVISION_ERROR
from whisk.entities.activation import APPLICATION_ERROR, WHISK_ERROR, Activation
from whisk.entities.errors import BackendUnavailable, Invalid, TooLarge, WhiskError
from whisk.entities.json_value import held_size
from whisk.entities.limits import check_runnable, parse_size
from whisk.entities.log_lines import log_line, rfc3339_nanos
from whisk.invoker.blocklist import BLOCKED_MESSAGE, DELETED_MESSAGE, Blocklist, Refusal
from whisk.invoker.records import (STOPPED, STOPPED_LOGS, action_digest, activation_record, failure_record,
                                   make_job)
from whisk.logs import log_context
from whisk.messages import (EVENTS_TOPIC, HEALTH_TOPIC, Acknowledgement, ActivationMessage, PingMessage,
                            activation_event, completed_topic,
                            invoker_instance, invoker_topic)
from whisk.messaging.base import Bus, BusAnswers, Message
from whisk.retry import while_unavailable
from whisk.stopping import STOP_RECORDS_S, cancel_then_settle
from whisk.store.base import Store, put_activation_retrying

log = structlog.get_logger(__name__)

# The action documents held (`Invoker._action`): at most this many, holding at most this much (`held_size`). An
# action's code may be 48 MB: by count alone one tenant's large actions, run once each, held gigabytes.
ACTIONS_HELD = 4096
ACTION_BYTES_HELD = 128 * 1024 * 1024
# An ack the bus does not take (the broker away) is sent again, at most ACK_RETRY_PAUSE_S apart, for up to
# ACK_RETRY_S: given up after one try (the bus's 30 s timeout), the controller held the activation's slot until its
# ack timeout (3 min by default), then counted it as the invoker's timeout. Past the default ack timeout and more, it
# is given up: the controller has forced the activation by then, and the record is stored. (Kafka's Java producer,
# OpenWhisk's, gives a record 2 min by default: delivery.timeout.ms.)
ACK_RETRY_S = 300.0
ACK_RETRY_PAUSE_S = 1.0
# `bus_answers` (the gauge whisk_bus_up): the bus is away once no ping or ack has gone through for a ping interval and
# this long (a send to a stopped broker hangs until the bus's 30 s timeout; the balancer's check waits 5 s).
BUS_SILENT_S = 5.0


class Invoker:
    def __init__(self, *, instance: int, bus: Bus, store: Store, pool: ContainerPool,
                 image_of: Callable[[dict[str, Any]], str], api_host: str, user_memory_mb: int,
                 max_intake: int, ping_interval_s: float | None = 1.0, user_events: bool = False,
                 ack_retry_s: float = ACK_RETRY_S, blocklist: Blocklist | None = None,
                 exit_grace_s: float | None = None) -> None:
        self.instance = instance
        # The grace of a drain at exit (`__aexit__`), which an orderly stop has already done: one left by an error
        # (a start that failed or was signalled after the feed took work) is bounded as a stop is. None: no bound.
        self._exit_grace_s = exit_grace_s
        self._bus = bus
        self._store = store
        self._pool = pool
        self._image_of = image_of
        self._api_host = api_host
        self._identity = invoker_instance(instance, user_memory_mb)
        self._intake = asyncio.Semaphore(max_intake)
        self._ping_interval_s = ping_interval_s
        self._user_events = user_events
        self._ack_retry_s = ack_retry_s
        self._blocklist = blocklist
        self._running: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._actions: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}    # (doc id, revision) ->
        self._latest: dict[str, tuple[dict[str, Any], str]] = {}                 # doc id -> the newest fetched
        self._actions_bytes = 0             # held_size of the documents in `_actions` (`_latest` shares them)
        self._waiting = False               # the feed is asking the topic for work (has room, enabled)
        # Whether the bus took the pings and acks. Only an invoker that pings (one with a controller to tell) knows
        # it lately; one that does not cannot tell silence from an idle bus.
        self._bus_answers = BusAnswers(late_s=None if ping_interval_s is None else ping_interval_s + BUS_SILENT_S)
        self.enabled = True
        self.taken = 0
        self.stop_records_s = STOP_RECORDS_S
        self._stopping = False              # the stop's grace is over: what it cancels still ends with a record
        self._cut: set[asyncio.Task[None]] = set()   # activations whose stop cancellation is handled (`_stop_absorbed`)

    async def __aenter__(self) -> Invoker:
        await self._bus.ensure_topic(invoker_topic(self.instance))
        await self._bus.ensure_topic(HEALTH_TOPIC)
        if self._blocklist is not None:
            # Read before the first message is taken: a backlog left on the topic by a namespace blocked or deleted
            # while this invoker was down is refused from the start.
            await self._blocklist.refresh()
        self._tasks = [asyncio.create_task(self._consume(), name=f"invoker{self.instance}-feed")]
        if self._blocklist is not None:
            self._tasks.append(asyncio.create_task(self._blocklist.run(), name=f"invoker{self.instance}-blocklist"))
        if self._ping_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._ping(), name=f"invoker{self.instance}-ping"))
        return self

    async def disable(self) -> None:
        """POST /disable (docs/openwhisk.md §1.14): tell the controllers at once (a ping with isEnabled=false,
        repeated every second so that a controller started later knows too), so that they send nothing new. As
        OpenWhisk's invoker, it goes on consuming its topic: what a controller sent before it knew still runs, where
        a message left on the topic would be forced to an error by its controller's ack timeout and then run, late,
        once enabled again."""
        if not self.enabled:
            return
        self.enabled = False
        log.info("invoker.disabled")          # an operator's act: the invoker's own log says when it was taken out
        await self._send_ping()

    async def enable(self) -> None:
        """POST /enable: ping as enabled."""
        if self.enabled:
            return
        self.enabled = True
        log.info("invoker.enabled")
        await self._send_ping()

    async def __aexit__(self, *exc: object) -> None:
        await self.drain(self._exit_grace_s)

    async def drain(self, grace_s: float | None) -> None:
        """Stop taking work, let running activations finish within `grace_s` (None: however long they take; 0:
        cancel them at once), then stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._running:
            done, pending = await asyncio.wait(self._running, timeout=grace_s)
            if pending:
                # Each cancelled activation still stores its record and sends its ack (`_handle`), so that the
                # controller frees its slot and answers its blocking caller now, with what happened, rather than
                # once it finds this invoker silent, as "did not acknowledge it in time".
                self._stopping = True
                await cancel_then_settle(pending, self.stop_records_s)

    async def _consume(self) -> None:
        topic = invoker_topic(self.instance)
        # Committed at once: an invoker that dies (SIGKILL) leaves its successor only what it never took, as
        # OpenWhisk's commits what it takes before running it. What it was running is lost with it, and the
        # controller records it as such at its ack timeout; run again, it would run twice.
        async with contextlib.aclosing(self._bus.consume(topic, topic, commit_at_once=True)) as feed:
            while True:
                # Ask the feed for the next message only when there is room for it (docs/openwhisk.md §5.4): what is not
                # taken stays on the topic, uncommitted, for this invoker after a restart.
                await self._intake.acquire()
                try:
                    self._waiting = True
                    try:
                        data = await anext(feed)
                    finally:
                        self._waiting = False
                except BaseException:
                    self._intake.release()
                    raise
                self.taken += 1
                task = asyncio.create_task(self._handle(data))
                self._running.add(task)
                task.add_done_callback(self._finished)
                # Taken is handled: the drain runs it to the end or records it as interrupted. Left in the feed's
                # hand while the intake is full, a stop left it uncommitted and the restarted invoker ran it again.
                feed.handled()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._cut.discard(task)
        self._intake.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("invoker.activation.crashed", error=repr(task.exception()))

    async def _ping(self) -> None:
        assert self._ping_interval_s is not None
        while True:
            await self._send_ping()
            await asyncio.sleep(self._ping_interval_s)

    async def _send_ping(self) -> None:
        if self._ping_interval_s is None:   # no controller supervises this invoker (standalone): nobody to tell
            return
        # has_room: the feed is asking the topic for work, so work waiting there should be taken: the controller's
        # stall detection (whisk/loadbalancer/invoker_pool.py) counts on it.
        ping = PingMessage(self._identity, self.enabled, self.taken, has_room=self._waiting)
        try:
            await self._bus.send(HEALTH_TOPIC, ping.to_bytes())
        except WhiskError as exc:
            self._bus_answers.failed()
            log.warning("invoker.ping.failed", error=str(exc))
        else:
            self._bus_answers.answered()

    def bus_answers(self) -> bool:
        """The bus took the last ping or ack, and lately (`whisk_bus_up`): what this invoker knows of the bus
        without asking it more."""
        return self._bus_answers.answers()

    async def _handle(self, data: bytes | Message) -> None:
        try:
            msg = ActivationMessage.read(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("invoker.message.malformed", error=str(exc))
            return
        with log_context(activation_id=msg.activation_id, tid=msg.transaction_id,
                         namespace=msg.user["namespace"]["name"], action=msg.action_path):
            refusal = None
            if self._blocklist is not None:
                refusal = self._blocklist.refusal(msg)
                if refusal is Refusal.BLOCKED and not await self._blocklist.still_blocked(msg):
                    refusal = None          # unblocked since the last read
            if refusal is not None:
                await self._refuse(msg, refusal)
                return
            try:
                action, digest = await self._action(msg)
            except LookupError:
                await self._finish(msg, failure_record(
                    msg, APPLICATION_ERROR, "Action could not be found or may have been deleted."), combined=True)
                return
            except WhiskError as exc:
                log.error("invoker.action.fetch_failed", error=str(exc))
                await self._finish(msg, failure_record(msg, WHISK_ERROR, "Action could not be fetched."),
                                   combined=True)
                return
            except asyncio.CancelledError:
                if not self._stop_absorbed():
                    raise
                await self._finish(msg, failure_record(msg, WHISK_ERROR, STOPPED), combined=True)
                return
            bounds = msg.user.get("limits") or {}
            refused = _over_limits(action, bounds)
            if refused is not None:
                await self._finish(msg, failure_record(msg, APPLICATION_ERROR, refused), combined=True)
                return
            result_ack: asyncio.Task[None] | None = None
            answered: tuple[RunResult, Activation] | None = None     # what the result ack was built from

            def on_response(early: RunResult) -> None:
                # Answer a blocking caller as soon as /run has answered, before logs are collected
                # (docs/openwhisk.md §5.3).
                nonlocal result_ack, answered
                if msg.blocking:
                    record = activation_record(msg, action, early)
                    answered = (early, record)
                    bare = record.without_logs()
                    result_ack = asyncio.create_task(self._send_ack(
                        msg, Acknowledgement(msg.transid, msg.activation_id, bare.to_doc(), record=bare)))

            try:
                kind = (action.get("exec") or {}).get("kind", "")
                job = make_job(msg, action, digest, image=self._image_of(action), api_host=self._api_host,
                               max_result_bytes=_payload_limit(bounds))
                log.debug("activation.started", action=msg.action_path, kind=kind)
                result = await self._pool.run(job, on_response=on_response)
                if answered is not None and answered[0] is result and not result.logs:
                    record = answered[1]     # the run printed nothing: the record is the one the caller got
                else:
                    record = activation_record(msg, action, result)
                if result.container_start != NO_CONTAINER:
                    metrics.observe_container_start(result.container_start)
                log.debug("activation.finished", status=result.response.get("statusCode"),
                          duration_ms=result.end_ms - result.start_ms)
            except asyncio.CancelledError:
                if not self._stop_absorbed():
                    raise
                # The stop's grace is over (`drain`): interrupted, or, for a blocking caller that has its answer,
                # that answer without its logs, as the controller records what its own stop cuts short.
                record = (replace(answered[1], logs=(log_line(rfc3339_nanos(time.time_ns()), "stderr", STOPPED_LOGS),))
                          if answered is not None else failure_record(msg, WHISK_ERROR, STOPPED))
            except Exception as exc:     # a bug too: a record and an ack all the same, or the slot waits (ack timeout)
                if isinstance(exc, WhiskError):
                    log.error("invoker.run.failed", error=str(exc))
                else:
                    log.exception("invoker.run.crashed", error=repr(exc))
                # A blocking caller that has its answer keeps it: the record is the one it got.
                record = answered[1] if answered is not None else failure_record(msg, WHISK_ERROR, PROVISION_ERROR)
            if result_ack is not None:
                try:
                    await result_ack        # the completion ack must never overtake the result
                except asyncio.CancelledError:
                    if not self._stop_absorbed():
                        raise
            # A result ack the stop cut (cancelled with this task) goes with the completion: one combined ack.
            await self._finish(msg, record, combined=msg.blocking and (result_ack is None or result_ack.cancelled()))

    def _stop_absorbed(self) -> bool:
        """Whether the cancellation just raised is the stop's first of this activation's task (its grace is over):
        handled here, the activation goes on to its record and ack, which the drain bounds by cancelling it again.
        Wherever it lands: in the run, the action's fetch, or the record's write and the ack (a slow store, the bus
        retrying), which it otherwise cut with nothing stored or sent."""
        current = asyncio.current_task()
        if not self._stopping or current is None or current in self._cut:
            return False
        self._cut.add(current)
        current.uncancel()
        log.warning("invoker.activation.stopped")
        return True

    async def _refuse(self, msg: ActivationMessage, refusal: Refusal) -> None:
        """An activation of a blocked or deleted namespace (whisk/invoker/blocklist.py): not run, an application
        error record, one combined ack (a blocking caller gets the record). A blocked namespace's record is stored,
        as every accepted activation's is (OpenWhisk writes none); a deleted namespace's is not: the purge emptied
        the name for whoever owns it next."""
        log.warning("invoker.namespace.refused", reason=refusal.value)
        message = BLOCKED_MESSAGE if refusal is Refusal.BLOCKED else DELETED_MESSAGE
        await self._finish(msg, failure_record(msg, APPLICATION_ERROR, message), combined=True,
                           keep=refusal is Refusal.BLOCKED)

    async def _action(self, msg: ActivationMessage) -> tuple[dict[str, Any], str]:
        """The action document at the message's revision, cached. A message without a revision (the balancer's
        health test actions) takes the newest copy held. While the store is away, the newest copy held of the
        action serves too: a controller that has not seen an update yet asks for an older revision than the
        invoker holds, and an outage must not turn that into a failed activation (a newer one still fails)."""
        doc_id = msg.action_path
        cached = self._actions.get((doc_id, msg.revision)) if msg.revision else self._latest.get(doc_id)
        if cached is not None:
            return cached
        try:
            doc = await self._store.get(doc_id)
        except BackendUnavailable:
            newest = self._latest.get(doc_id)
            if newest is None or _generation(newest[0].get("_rev")) < _generation(msg.revision):
                raise                       # never run older code than the controller asked for
            log.warning("invoker.action.held_copy", revision=newest[0].get("_rev"))
            return newest
        if doc is None or doc.get("entityType", "action") != "action":
            raise LookupError(doc_id)
        entry = (doc, action_digest(doc))
        size = held_size(doc)
        if size > ACTION_BYTES_HELD:
            return entry                    # used for this activation only
        if len(self._actions) >= ACTIONS_HELD or self._actions_bytes + size > ACTION_BYTES_HELD:
            self._actions.clear()
            self._latest.clear()
            self._actions_bytes = 0
        key = (doc_id, doc.get("_rev", ""))
        if key not in self._actions:
            self._actions_bytes += size
        self._actions[key] = entry
        self._latest[doc_id] = entry
        return entry

    async def _finish(self, msg: ActivationMessage, record: Activation, *, combined: bool, keep: bool = True) -> None:
        """Store the record (unless not `keep`), then send the completion (or combined) ack. The record is stored
        even when the ack cannot be sent, and the ack is sent even when the store fails: the controller must free the
        slot. A namespace whose limits say `storeActivations: false` keeps no records (OpenWhisk's
        ActivationStore). The stop's grace ending here starts it again (`_stop_absorbed`): a record written twice is
        the same record."""
        try:
            await self._record_and_ack(msg, record, combined=combined, keep=keep)
        except asyncio.CancelledError:
            if not self._stop_absorbed():
                raise
            await self._record_and_ack(msg, record, combined=combined, keep=keep)

    async def _record_and_ack(self, msg: ActivationMessage, record: Activation, *, combined: bool, keep: bool) -> None:
        try:
            if keep and msg.user.get("limits", {}).get("storeActivations", True) is not False:
                await put_activation_retrying(self._store, record)
        except WhiskError as exc:
            log.error("invoker.record.store_failed", error=str(exc))
        except (ValueError, RecursionError) as exc:   # not encodable (results are checked when read: a last guard)
            log.error("invoker.record.unencodable", error=repr(exc))
            record = failure_record(msg, WHISK_ERROR, "The activation record could not be stored.")
            await self._record_and_ack(msg, record, combined=combined, keep=keep)
            return
        metrics.observe_activation(record)
        if self._user_events:
            await self._send_event(msg, record)
        response = record.to_doc() if combined else None
        await self._send_ack(msg, Acknowledgement(msg.transid, msg.activation_id, response, self._identity,
                                                  is_system_error=record.response.status_code == WHISK_ERROR,
                                                  record=record if combined else None))

    async def _send_event(self, msg: ActivationMessage, record: Activation) -> None:
        try:
            await self._bus.send(EVENTS_TOPIC, activation_event(record, source=f"invoker{self.instance}",
                                                                user=msg.user))
        except WhiskError as exc:                # events are best effort: the record and the ack matter more
            log.warning("invoker.event.failed", error=str(exc))

    async def _send_ack(self, msg: ActivationMessage, ack: Acknowledgement) -> None:
        topic = completed_topic(msg.root_controller.get("asString", "0"))

        async def send() -> None:
            try:
                try:
                    await self._bus.send(topic, ack)
                except (TooLarge, ValueError, RecursionError):   # too large, or not encodable: the id alone
                    await self._bus.send(topic, ack.shrunk())
            except BackendUnavailable:
                self._bus_answers.failed()
                raise
            self._bus_answers.answered()
        try:
            # The bus away: the ack frees the controller's slot, so it is sent again.
            await while_unavailable(send, within_s=self._ack_retry_s, event="invoker.ack",
                                    max_pause_s=ACK_RETRY_PAUSE_S)
        except WhiskError as exc:   # the shrunk one's too: a failed result ack must not cost the record its store
            log.error("invoker.ack.failed", error=str(exc))


def _generation(revision: str | None) -> int:
    """The update count a store revision starts with ("3-a1b2..." -> 3; CouchDB's and the SQLite store's form)."""
    head = (revision or "0").split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _over_limits(action: dict[str, Any], bounds: dict[str, Any]) -> str | None:
    """Why the invoking namespace may not run this action, if it may not: its bounds on action limits (`bounds`, the
    message's `user.limits`), not the owner's, hold (OpenWhisk's `action.limits.checkLimits(msg.user)`), so another
    namespace's published action or one made before the namespace's limits were narrowed can be refused."""
    if not bounds:                      # most namespaces set none: nothing to check on the warm path
        return None
    limits = action.get("limits")
    try:
        check_runnable(limits if isinstance(limits, dict) else {}, bounds)
    except Invalid as exc:
        return str(exc)
    return None


def _payload_limit(bounds: dict[str, Any]) -> int | None:
    """The invoking namespace's payload limit, which its results are held to (OpenWhisk's `allowedMaxPayloadSize`);
    None: the system's."""
    given = bounds.get("maxPayloadSize")
    if given is None:
        return None
    try:
        return parse_size(given)
    except Invalid:
        return None
