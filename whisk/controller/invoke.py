"""The controller's activation service (spec §3.2): throttle, build the activation message, publish it through the
load balancer, and wait for a blocking result. HTTP mapping lives in `whisk/api/activate.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from whisk import metrics
from whisk.config import Settings
from whisk.controller.events import CONCURRENT_RATE_LIMIT, TIMED_RATE_LIMIT, UserEvents
from whisk.controller.journal import Journal
from whisk.controller.throttle import RateThrottle, check_concurrency
from whisk.entities.action import Action
from whisk.entities.activation import Activation, new_activation_id
from whisk.entities.document import now_ms
from whisk.entities.errors import BackendUnavailable, Throttled, WhiskError
from whisk.loadbalancer.base import Entry, Forced, LoadBalancer
from whisk.messages import ActivationMessage, controller_instance
from whisk.store.base import ActivationStore

log = structlog.get_logger(__name__)

# After a shrunk ack (the record was too large for the bus) the record is read from the store (spec §3.2).
STORE_POLL_DELAYS_S = (0.05, 0.2, 1.0, 3.0, 5.0, 7.0)


RESTARTED = "The activation was interrupted: the platform restarted before it completed."
LOST = "The activation did not complete: its invoker did not acknowledge it in time."


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the controller keeps of an activation in flight, to record it if its invoker never does."""

    namespace: str
    activation_id: str
    subject: str
    path: str
    version: str
    binding: str | None


@dataclass(slots=True)
class Outcome:
    activation_id: str
    record: Activation | None           # None when the blocking wait ran out (202) or non-blocking


@dataclass(frozen=True, slots=True)
class Caller:
    """Who invokes: the authenticated identity as the activation message carries it (spec §5.2)."""

    subject: str
    namespace: str
    uuid: str
    api_key: str
    invocations_per_minute: int
    concurrent_invocations: int

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "namespace": {"name": self.namespace, "uuid": self.uuid},
                "authkey": {"api_key": self.api_key}, "rights": ["READ", "PUT", "DELETE", "ACTIVATE"],
                "limits": {}}


class Activator:
    def __init__(self, settings: Settings, store: ActivationStore, balancer: LoadBalancer,
                 events: UserEvents | None = None) -> None:
        self._settings = settings
        self.events = events or UserEvents(None, controller=settings.instance)
        self._store = store
        self._balancer = balancer
        self._rate = RateThrottle()
        self._controller = controller_instance(settings.instance)
        self._journal = Journal(Path(settings.data_dir) / f"controller{settings.instance}.journal")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accepted: dict[str, Accepted] = {}
        self._draining = False
        # Work in progress outside the balancer (the launcher's sequences and compositions); drain waits for it.
        self.busy: Callable[[], int] = lambda: 0

    # --- lifecycle --------------------------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Close, as whisk errors, the activations a previous run accepted and never recorded."""
        closed = 0
        for entry in self._journal.unfinished():
            if await self._close_unrecorded(Accepted(entry["ns"], entry["id"], entry.get("subject", entry["ns"]),
                                                     entry["path"], entry.get("version", "0.0.1"),
                                                     entry.get("binding")), RESTARTED):
                closed += 1
        if closed:
            log.warning("controller.recovered", closed=closed)
        self._journal.open()
        return closed

    def opened(self, accepted: Accepted) -> None:
        """An activation the controller runs itself (a sequence or composition) began: journal it, so that a crash
        before its record is stored still leaves one after the restart."""
        self._journal.accepted(accepted.activation_id, accepted.namespace, accepted.subject, accepted.path,
                               accepted.version, accepted.binding)

    def closed(self, activation_id: str) -> None:
        self._journal.completed(activation_id)

    async def abandoned(self, accepted: Accepted, error: str) -> None:
        """A controller-run activation failed without a record of its own: store a whisk-error one."""
        await self._close_unrecorded(accepted, error)
        self._journal.completed(accepted.activation_id)

    async def _close_unrecorded(self, accepted: Accepted, error: str) -> bool:
        """Store a whisk-error record for an activation that has none (every accepted activation ends with one)."""
        namespace, activation_id = accepted.namespace, accepted.activation_id
        try:
            if await self._store.get_activation(namespace, activation_id) is not None:
                return False
            await self._store.put_activation(Activation.whisk_error(
                namespace=namespace, name=accepted.path.rsplit("/", 1)[-1], subject=accepted.subject,
                activation_id=activation_id, version=accepted.version, path=accepted.path, binding=accepted.binding,
                at=now_ms(), error=error))
            return True
        except WhiskError as exc:
            log.error("controller.record.failed", activation_id=activation_id, error=str(exc))
            return False

    async def drain(self, grace_s: float) -> None:
        """Graceful stop: refuse new activations, then wait up to `grace_s` for those in flight to complete."""
        self._draining = True
        deadline = time.monotonic() + grace_s
        while (self._balancer.in_flight_total() or self.busy()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = self._balancer.in_flight_total() + self.busy()
        if left:
            log.warning("controller.drain.timeout", in_flight=left)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.events.close()
        self._journal.close()

    def released(self, entry: Entry, outcome: str) -> None:
        """Balancer callback: an activation completed, or was forced (no ack in time, or its invoker is gone)."""
        self._journal.completed(entry.activation_id)
        metrics.observe_completion(outcome)
        accepted = self._accepted.pop(entry.activation_id, None)
        if outcome == "timeout" and accepted is not None:
            # The invoker may have died with it: make sure it still ends with a record.
            task = asyncio.create_task(self._close_unrecorded(accepted, LOST))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- invoke -----------------------------------------------------------------------------------------------------

    def throttle(self, caller: Caller) -> None:
        """Per-minute then concurrent (spec §8: both before the action is even looked up)."""
        try:
            self._rate.charge(caller.uuid, caller.invocations_per_minute)
        except Throttled:
            metrics.observe_throttle(caller.namespace, "timed")
            self.events.refused(TIMED_RATE_LIMIT, caller.to_json())
            raise
        try:
            check_concurrency(self._balancer.in_flight(caller.uuid), caller.concurrent_invocations)
        except Throttled:
            metrics.observe_throttle(caller.namespace, "concurrent")
            self.events.refused(CONCURRENT_RATE_LIMIT, caller.to_json())
            raise

    @property
    def draining(self) -> bool:
        return self._draining

    def pending(self, namespace: str, activation_id: str) -> Entry | None:
        entry = self._balancer.pending(activation_id)
        return entry if entry is not None and entry.namespace == namespace else None

    async def invoke(self, caller: Caller, action: Action, *, path: str, binding: str | None,
                     revision: str | None, payload: Any, blocking: bool, wait_ms: int, tid: str,
                     cause: str | None = None, activation_id: str | None = None) -> Outcome:
        """Publish one activation of `action` (with package parameters merged). The caller has already refused
        payloads that override `final` parameters (`Launcher.start`, the one door for requests)."""
        if self._draining and cause is None:     # a composition accepted before the stop may finish
            raise BackendUnavailable("The server is shutting down and accepts no new activations.")
        params = action.parameters.to_dict()
        init = action.parameters.init_keys()
        init_args = [k for k in params if k in init]
        if isinstance(payload, dict) and payload:
            content: Any = params | payload
        elif isinstance(payload, list):
            content = payload                     # a JSON array replaces the parameters (sequences, spec §3.1)
        else:
            content = params
        limits = action.limits
        activation_id = activation_id or new_activation_id()
        ns_path, name = path.rsplit("/", 1)
        action_ref: dict[str, Any] = {"path": ns_path, "name": name, "version": str(action.version)}
        if binding:
            action_ref["binding"] = binding
        msg = ActivationMessage(
            transid=[tid, now_ms()], action=action_ref, revision=revision, user=caller.to_json(),
            activation_id=activation_id, root_controller=self._controller, blocking=blocking, content=content,
            init_args=init_args, cause=cause)
        timeout_ms = limits.timeout
        self._journal.accepted(activation_id, caller.namespace, caller.subject, path, action_ref["version"], binding)
        self._accepted[activation_id] = Accepted(caller.namespace, activation_id, caller.subject, path,
                                                 action_ref["version"], binding)
        with structlog.contextvars.bound_contextvars(activation_id=activation_id, namespace=caller.namespace,
                                                     action=path):
            try:
                waiter = await self._balancer.publish(
                    msg, namespace_uuid=caller.uuid, memory_mb=limits.memory, timeout_ms=timeout_ms,
                    concurrency=limits.concurrency, blackbox=action.kind == "blackbox")
            except BaseException:
                self._journal.completed(activation_id)
                self._accepted.pop(activation_id, None)
                raise
            if not blocking or waiter is None:
                return Outcome(activation_id, None)
            return Outcome(activation_id, await self._wait(caller.namespace, activation_id, waiter, wait_ms))

    async def _wait(self, namespace: str, activation_id: str, waiter: asyncio.Future[Any],
                    wait_ms: int) -> Activation | None:
        deadline = time.monotonic() + wait_ms / 1000
        try:
            answer = await asyncio.wait_for(asyncio.shield(waiter), wait_ms / 1000)
        except (asyncio.TimeoutError, Forced):
            answer = activation_id
        if isinstance(answer, dict):
            return Activation.from_doc(answer)
        for delay in STORE_POLL_DELAYS_S:
            record = await self._store.get_activation(namespace, activation_id)
            if record is not None:
                return Activation.from_doc(record)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(delay, left))
        record = await self._store.get_activation(namespace, activation_id)
        return Activation.from_doc(record) if record is not None else None
