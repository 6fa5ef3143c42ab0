"""The controller's activation of a primitive action (docs/openwhisk.md §3.2): build the activation message, publish
it through the load balancer, and wait for a blocking result. HTTP mapping lives in `whisk/api/activate.py`.

The other jobs around an activation are their own modules, wired together by `whisk/controller/services.py`:
`throttle.py` refuses over-limit callers, `message.py` builds the message, `ledger.py` journals it until it has a
record, `results.py` reads a record the ack did not carry, and `drain.py` refuses new work during a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whisk.controller.caller import Caller
from whisk.controller.drain import Drain
from whisk.controller.ledger import Accepted, Ledger
from whisk.controller.message import activation_message
from whisk.controller.results import Answered, await_record
from whisk.entities.action import Action
from whisk.entities.activation import Activation, new_activation_id
from whisk.entities.errors import BackendUnavailable
from whisk.loadbalancer.base import Entry, LoadBalancer
from whisk.logs import log_context
from whisk.messages import controller_instance
from whisk.store.base import ActivationStore

SHUTTING_DOWN = "The server is shutting down and accepts no new activations."


@dataclass(slots=True)
class Outcome:
    activation_id: str
    record: Activation | None           # None when the blocking wait ran out (202) or non-blocking


class Activator:
    def __init__(self, instance: int, store: ActivationStore, balancer: LoadBalancer, ledger: Ledger,
                 drain: Drain, concurrent: Callable[[str], bool] = lambda kind: True) -> None:
        """`concurrent`: whether a container of a kind runs several activations at once (the runtime manifest's
        word); an action of any other kind takes a whole slot per activation, as its invoker gives it a container."""
        self._concurrent = concurrent
        self._controller = controller_instance(instance)
        self._store = store
        self._balancer = balancer
        self._ledger = ledger
        self._drain = drain
        self._answered = Answered()

    async def answered_record(self, namespace: str, activation_id: str) -> None:
        """Wait a little for the record of a blocking activation answered here, if it is one (`Answered`)."""
        await self._answered.stored(self._store, namespace, activation_id)

    def pending(self, namespace: str, activation_id: str) -> Entry | None:
        entry = self._balancer.pending(activation_id)
        return entry if entry is not None and entry.namespace == namespace else None

    async def invoke(self, caller: Caller, action: Action, *, path: str, binding: str | None,
                     revision: str | None, payload: Any, blocking: bool, wait_ms: int, tid: str,
                     cause: str | None = None, activation_id: str | None = None,
                     received_ms: int | None = None) -> Outcome:
        """Publish one activation of `action` (with package parameters merged). The caller has already refused
        payloads that override `final` parameters (`Launcher.start`, the one door for requests)."""
        if self._drain.refusing and cause is None:     # a composition accepted before the stop may finish
            raise BackendUnavailable(SHUTTING_DOWN)
        activation_id = activation_id or new_activation_id()
        msg = activation_message(self._controller, caller, action, path=path, binding=binding, revision=revision,
                                 payload=payload, blocking=blocking, tid=tid, cause=cause,
                                 activation_id=activation_id, received_ms=received_ms)
        limits = action.limits
        self._ledger.publishing(Accepted(caller.namespace, activation_id, caller.subject, path,
                                         msg.action["version"], binding, caller.store_activations, cause))
        with log_context(activation_id=activation_id, namespace=caller.namespace, action=path):
            try:
                waiter = await self._balancer.publish(
                    msg, namespace_uuid=caller.uuid, memory_mb=limits.memory, timeout_ms=limits.timeout,
                    concurrency=limits.concurrency if self._concurrent(action.kind) else 1,
                    blackbox=action.kind == "blackbox")
            except BaseException:
                self._ledger.withdrawn(activation_id)
                raise
            if not blocking or waiter is None:
                return Outcome(activation_id, None)
            record = await await_record(self._store, caller.namespace, activation_id, waiter, wait_ms)
            if record is not None:
                self._answered.note(caller.namespace, activation_id)
                self._ledger.answered(record)       # if not yet stored: what a crash before the store leaves
            return Outcome(activation_id, record)
