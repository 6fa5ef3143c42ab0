"""The one door through which every activation starts (OpenWhisk `PostActionActivation.invokeAction`): a primitive
action goes to the activator; a sequence (docs/openwhisk.md §3.6) or a conductor action (§3.7) runs here, in the
controller, as a chain of blocking component activations whose own record the controller writes.

Invoke, trigger fire and web actions call `start`. Sequences and compositions run each step through `primitive`,
`sequence` or `composition`, so a sequence inside a composition inside a sequence needs nothing special. The
launcher keeps the handles of the compositions it runs and of other background work (trigger records), and waits
for them on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog

from whisk import metrics
from whisk.controller import conductor, sequence
from whisk.controller.composition import Accounting, Run, Step, is_conductor, is_sequence
from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.caller import Caller, caller_for
from whisk.controller.drain import Drain
from whisk.controller.events import UserEvents
from whisk.controller.invoke import SHUTTING_DOWN, Activator, Outcome
from whisk.controller.ledger import STOPPED, Accepted, Ledger
from whisk.entities.activation import (APPLICATION_ERROR, SUCCESS, Activation, ActivationResponse, new_activation_id,
                                       reply_size)
from whisk.entities.document import now_ms
from whisk.entities.json_value import compact
from whisk.entities.errors import BackendUnavailable, WhiskError
from whisk.entities.identity import Identity
from whisk.logs import log_context
from whisk.stopping import cancel_then_settle
from whisk.store.base import ActivationStore, put_activation_retrying

log = structlog.get_logger(__name__)

INTERRUPTED = "The composition was interrupted by an internal error before it completed."
NATIVE_FAILED = "The action was interrupted by an internal error before it completed."

# An action the controller answers itself (the alarms feeds): (caller, action, payload) → (success, result).
Native = Callable[[Identity, ResolvedAction, Any], Awaitable[tuple[bool, Any]]]

# A component's blocking wait: its own time limit plus a minute (OpenWhisk's `timeout + 1.minute`).
COMPONENT_GRACE_MS = 60_000


class Launcher:
    def __init__(self, activator: Activator, entities: Entities, store: ActivationStore, *, ledger: Ledger,
                 drain: Drain, events: UserEvents) -> None:
        self._activator = activator
        self.entities = entities
        self.store = store
        self._ledger = ledger
        self._drain = drain
        self._events = events
        self.sequence_limit = entities.system.sequence_length
        self._tasks: set[asyncio.Task[Any]] = set()
        # Records this launcher could not store (the store away past its retries), by activation id: their journal
        # lines stay open when their work ends (`_tracked`), so that the restart records them.
        self._unstored: set[str] = set()
        # Actions served in the controller instead of a container, by the real action's path ("ns/pkg/name").
        self.natives: dict[str, Native] = {}

    # --- background work ----------------------------------------------------------------------------------------
    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        self._drain.track(task)             # a graceful stop waits for compositions and trigger records

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                # The type only: an exception's text may quote arguments and credentials.
                log.error("launcher.task.failed", what=what, error=type(t.exception()).__name__)

        task.add_done_callback(done)
        return task

    async def close(self, grace_s: float) -> None:
        """Let running compositions and record writes finish for up to `grace_s`, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        if pending:
            log.warning("launcher.cancelled", count=len(pending))
            # Each stores its record as the stop's (`_tracked`); one the store holds up is cancelled again.
            await cancel_then_settle(pending)

    @property
    def draining(self) -> bool:
        return self._drain.refusing

    # --- the entry point ------------------------------------------------------------------------------------------
    async def start(self, identity: Identity, resolved: ResolvedAction, payload: Any, *, blocking: bool,
                    wait_ms: int, tid: str, caller: Caller | None = None, received_ms: int | None = None) -> Outcome:
        """A topmost activation. Blocking callers get the record, or None once `wait_ms` has passed (202).
        `received_ms`: when its request came, where its `waitTime` starts (OpenWhisk's transaction start); None: now
        (a rule's activation, whose post OpenWhisk makes as a request of its own)."""
        if self._drain.refusing:
            raise BackendUnavailable(SHUTTING_DOWN)
        resolved.action.refuse_overrides(payload)      # a request's payload, whatever the action runs
        run = Run(identity, caller or caller_for(identity), tid, now_ms() if received_ms is None else received_ms)
        native = self.natives.get(resolved.path)
        if native is not None:          # no container runs it: its stored kind does not matter
            return await self._native(run, resolved, payload, native, blocking=blocking)
        # A kind deprecated since the action was made: refused here, as OpenWhisk's invokeAction does, rather than
        # sent to an invoker that has no image for it. Only the topmost action: OpenWhisk's sequences and
        # conductors run their components without this check (the component's record says why it failed).
        self.entities.actions.refuse_deprecated(resolved.action.exec)
        if not (is_sequence(resolved) or is_conductor(resolved)):
            return await self._activator.invoke(
                run.caller, resolved.action, path=resolved.path, binding=resolved.binding,
                revision=resolved.revision, payload=payload, blocking=blocking, wait_ms=wait_ms, tid=tid,
                received_ms=run.received_ms)
        activation_id = new_activation_id()
        # Journaled before the 202: a journal that cannot be written (a full disk) refuses the activation (503)
        # rather than answering an id that would never get a record.
        self._ledger.opened(_accepted(run, resolved, activation_id))
        task = self.spawn(self._compose(run, resolved, payload, activation_id), "composition")
        if not blocking:
            return Outcome(activation_id, None)
        try:
            record = await asyncio.wait_for(asyncio.shield(task), wait_ms / 1000)
        except asyncio.TimeoutError:
            return Outcome(activation_id, None)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise
            # The stop cancelled the composition past its grace (`close`), which records it (`_tracked`): the caller
            # gets its id, as past the blocking wait, not a dropped connection.
            return Outcome(activation_id, None)
        return Outcome(activation_id, record)

    async def _compose(self, run: Run, resolved: ResolvedAction, payload: Any, activation_id: str) -> Activation:
        if is_sequence(resolved):
            record, _ = await self.sequence(run, resolved, payload, cause=None, count=0, activation_id=activation_id,
                                            opened=True)
            return record
        return await self.composition(run, resolved, payload, cause=None, accounting=None,
                                      activation_id=activation_id, opened=True)

    async def _native(self, run: Run, resolved: ResolvedAction, payload: Any, native: Native, *,
                      blocking: bool) -> Outcome:
        """Run an action the controller serves itself and store its record as an invoker would. Journaled from its
        start to its stored record, as a composition is: a non-blocking one's id is answered before it runs."""
        activation_id = new_activation_id()
        self._ledger.opened(_accepted(run, resolved, activation_id))
        work = self._serve(run, resolved, payload, native, activation_id, cause=None, opened=True)
        if not blocking:
            self.spawn(work, "native")
            return Outcome(activation_id, None)
        return Outcome(activation_id, await work)

    async def _serve(self, run: Run, resolved: ResolvedAction, payload: Any, native: Native, activation_id: str, *,
                     cause: str | None, opened: bool) -> Activation:
        """Run a native action to its stored record: for a request (`_native`) or as a composition's step."""
        async with self._tracked(run, resolved, activation_id, opened=opened, error=NATIVE_FAILED, cause=cause):
            start = now_ms()
            params = {**resolved.action.parameters.to_dict(), **(payload if isinstance(payload, dict) else {})}
            ok, result = await native(run.identity, resolved, params)
            record = native_record(run, resolved, activation_id, start, ok, result, cause)
            await self.store_record(record, run)
            return record

    # --- steps of a composition -----------------------------------------------------------------------------------
    async def sequence(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str | None, count: int,
                       depth: int = 0, activation_id: str | None = None,
                       opened: bool = False) -> tuple[Activation, int]:
        """Run a sequence to its end; (its record, the atomic actions run so far in the whole tree). `depth`: how many
        sequences enclose it; `opened`: its journal line is written already."""
        activation_id = activation_id or new_activation_id()
        async with self._tracked(run, resolved, activation_id, opened=opened, cause=cause):
            return await sequence.run(self, run, resolved, payload, activation_id=activation_id, cause=cause,
                                      count=count, depth=depth)

    async def composition(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str | None,
                          accounting: Accounting | None, depth: int = 0, activation_id: str | None = None,
                          opened: bool = False) -> Activation:
        """Run a conductor action's composition to its end; its record. `depth`: how many sequences enclose it."""
        activation_id = activation_id or new_activation_id()
        async with self._tracked(run, resolved, activation_id, opened=opened, cause=cause):
            return await conductor.run(self, run, resolved, payload, activation_id=activation_id, cause=cause,
                                       accounting=accounting, depth=depth)

    @asynccontextmanager
    async def _tracked(self, run: Run, resolved: ResolvedAction, activation_id: str, *, opened: bool = False,
                       error: str = INTERRUPTED, cause: str | None = None) -> AsyncIterator[None]:
        """A sequence, composition or native action in progress: journaled until its record is stored, so that
        neither a crash nor a failure of its own leaves its activation id without a record; its log lines name it,
        as the activator's do for a primitive action (a component's own lines name the component)."""
        accepted = _accepted(run, resolved, activation_id, cause)
        if not opened:
            self._ledger.opened(accepted)
        try:
            with log_context(activation_id=activation_id, namespace=run.caller.namespace, action=resolved.path):
                yield
        except asyncio.CancelledError:
            if self._drain.refusing:
                # A stop past its grace (`close`): recorded now, as the balancer's activations are, not only by a
                # restart that may never come (a replaced pod's journal is gone with it). A store that fails, or a
                # second cancellation, leaves the journal line open for the restart.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                await self._ledger.abandoned(accepted, STOPPED)
            raise
        except Exception as exc:
            log.error("launcher.composition.failed", activation_id=activation_id, error=repr(exc))
            await self._ledger.abandoned(accepted, error)
            raise
        else:
            if activation_id in self._unstored:     # its record could not be stored: left for the restart
                self._unstored.discard(activation_id)
            else:
                self._ledger.closed(activation_id)

    async def primitive(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str) -> Step:
        """A blocking activation of a primitive action on behalf of a composition. Components are not subject to
        the `final` check: OpenWhisk makes it at the REST edge only (`start`), and a component's input is the
        previous component's result, not a request. A native action (an alarms feed) is served here as for a
        request: on OpenWhisk it is an action like any other, which a sequence or conductor may run."""
        native = self.natives.get(resolved.path)
        if native is not None:
            activation_id = new_activation_id()
            record = await self._serve(run.child(), resolved, payload, native, activation_id, cause=cause,
                                       opened=False)
            return Step(activation_id, record)
        wait_ms = resolved.action.limits.timeout + COMPONENT_GRACE_MS
        outcome = await self._activator.invoke(
            run.caller, resolved.action, path=resolved.path, binding=resolved.binding, revision=resolved.revision,
            payload=payload, blocking=True, wait_ms=wait_ms, tid=run.tid, cause=cause)
        return Step(outcome.activation_id, outcome.record)

    async def store_record(self, record: Activation, run: Run | None = None, *, stored: bool = True) -> bool:
        """Store a record the controller wrote, unless its namespace keeps none (`stored`, or the run's caller's
        `storeActivations`); that of a sequence or composition (`run`) is also counted and reported as a user
        event, as the invoker does for primitive activations. False when the store failed: the activation's journal
        line must then stay open (for a `run`, `_tracked` sees to it)."""
        written = True
        try:
            if stored and (run is None or run.caller.store_activations):
                await put_activation_retrying(self.store, record)
        except WhiskError as exc:   # the record is still the caller's answer; the restart stores it (the journal)
            log.error("launcher.record.store_failed", activation_id=record.activation_id, error=str(exc))
            written = False
            self._ledger.unstored(record)
            if run is not None:
                self._unstored.add(record.activation_id)
        if run is not None:
            metrics.observe_activation(record)
            self._events.activation(record, run.caller.to_json())
        return written


def native_record(run: Run, resolved: ResolvedAction, activation_id: str, start: int, ok: bool,
                  result: Any, cause: str | None = None) -> Activation:
    """The record of an action the controller served: success, or an application error with the result; `cause`,
    the enclosing sequence's or composition's id, as an invoker writes a component's."""
    action = resolved.action
    limits = action.limits
    annotations: list[dict[str, Any]] = [
        {"key": "path", "value": resolved.path}, {"key": "kind", "value": action.exec.kind},
        {"key": "timeout", "value": False},
        {"key": "limits", "value": {"timeout": limits.timeout, "memory": limits.memory, "logs": limits.logs,
                                    "concurrency": limits.concurrency}},
        {"key": "waitTime", "value": max(0, start - run.received_ms)}]
    if resolved.binding:
        annotations.append({"key": "binding", "value": resolved.binding})
    if cause:
        annotations.append({"key": "causedBy", "value": "sequence"})
    end = max(start, now_ms())
    # A failed feed operation already answers {"error": ...}: its result is stored as it is. `size`: that of the
    # result's JSON, as a runtime's reply would have had it.
    response = ActivationResponse(SUCCESS if ok else APPLICATION_ERROR, result, reply_size(compact(result)))
    return Activation(run.identity.namespace, action.name, run.identity.subject, activation_id, start, end, response,
                      (), str(action.version), annotations=annotations, cause=cause, duration=end - start)


def _accepted(run: Run, resolved: ResolvedAction, activation_id: str, cause: str | None = None) -> Accepted:
    """What the ledger keeps to record this activation if nothing else does; `cause`: the enclosing sequence's or
    composition's activation id, for a nested one."""
    return Accepted(run.caller.namespace, activation_id, run.caller.subject, resolved.path,
                    str(resolved.action.version), resolved.binding, run.caller.store_activations, cause)
