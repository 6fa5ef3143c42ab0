"""What sequences (docs/openwhisk.md §3.6) and conductor compositions (§3.7) share: the run context, a finished step,
how a component is resolved, the activation record the controller writes for the whole (docs/openwhisk.md §2.7
annotations), and `Steps`, what they need of the launcher that runs them (so that `sequence` and `conductor` do not
import it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.caller import Caller
from whisk.entities.action import CONDUCTOR
from whisk.entities.activation import Activation, ActivationResponse
from whisk.entities.document import now_ms
from whisk.entities.exec import SequenceExec
from whisk.entities.identity import Identity
from whisk.entities.names import FullyQualifiedEntityName


@dataclass(frozen=True, slots=True)
class Run:
    """What every step of one activation tree shares: who runs it, the request's transaction and when it came (a
    nested sequence's or composition's: when its enclosing one turned to it)."""

    identity: Identity
    caller: Caller
    tid: str
    received_ms: int

    def child(self) -> Run:
        """The run of a nested sequence or composition: its wait counts from now, as OpenWhisk's child transaction
        (`TransactionId.childOf`) starts its clock when the enclosing one turns to it."""
        return dataclasses.replace(self, received_ms=now_ms())


@dataclass(slots=True)
class Step:
    """One finished component: its activation id and record (None when the wait ran out)."""

    activation_id: str
    record: Activation | None


@dataclass(slots=True)
class Accounting:
    """Invocation counts shared by a composition and the compositions nested in it."""

    components: int = 0
    conductors: int = 0


class Steps(Protocol):
    """The launcher as sequences and compositions see it: where components are resolved, the atomic-action limit,
    and how each kind of step runs (nested sequences and compositions come back through here, with `depth` the
    sequences that enclose them: see `too_deep`)."""

    entities: Entities
    sequence_limit: int

    async def sequence(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str | None, count: int,
                       depth: int = 0, activation_id: str | None = None) -> tuple[Activation, int]: ...

    async def composition(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str | None,
                          accounting: Accounting | None, depth: int = 0,
                          activation_id: str | None = None) -> Activation: ...

    async def primitive(self, run: Run, resolved: ResolvedAction, payload: Any, *, cause: str) -> Step: ...

    async def store_record(self, record: Activation, run: Run | None = None, *, stored: bool = True) -> bool: ...


def is_sequence(resolved: ResolvedAction) -> bool:
    return isinstance(resolved.action.exec, SequenceExec)


def is_conductor(resolved: ResolvedAction) -> bool:
    # OpenWhisk: "Sequences cannot be compositions: the conductor annotation on a sequence has no effect."
    return not is_sequence(resolved) and resolved.action.annotations.is_truthy(CONDUCTOR)


async def resolve(entities: Entities, run: Run, fqn: FullyQualifiedEntityName) -> ResolvedAction:
    """A conductor's next component, with the caller's right to activate it checked (OpenWhisk
    `PrimitiveActions.tryInvokeNext`) and package/binding parameters merged."""
    return await entities.resolve_action(run.identity, fqn.path.root, fqn.path.package, fqn.name)


async def locate(entities: Entities, run: Run, fqn: FullyQualifiedEntityName) -> ResolvedAction:
    """A sequence's component with package/binding parameters merged, no right checked: OpenWhisk checks a
    sequence's own components once, before it runs, and none while it runs, a nested sequence's included
    (`SequenceActions.invokeNextAction` only resolves)."""
    return await entities.locate_action(run.identity, fqn.path.root, fqn.path.package, fqn.name)


def too_deep(depth: int, limit: int) -> bool:
    """Whether a sequence inside `depth` others may not run. PUT lets sequences nest `limit` deep at most, but a
    cycle can still arise (a binding moved to another package, or updates that raced past each other's checks), and
    a sequence that reaches a conductor which names the sequence again is one by design: nested sequences add no
    atomic action and each composition counts its own components, so neither limit ends it (OpenWhisk runs such a
    cycle without end). Compositions nested in compositions share their counts, so need no bound of their own."""
    return depth > limit


def next_payload(record: Activation) -> Any:
    """A component's result as the next step's input: an object or array, else nothing."""
    result = record.response.result
    return result if isinstance(result, dict | list) else None


def error_response(status_code: int, message: str) -> ActivationResponse:
    return ActivationResponse.error(status_code, message)


def composition_record(run: Run, resolved: ResolvedAction, *, activation_id: str, start: int, cause: str | None,
                       response: ActivationResponse, logs: list[str], duration: int, max_memory: int | None,
                       conductor: bool) -> Activation:
    """The record of a sequence or composition: the invoking namespace's, with the component ids as logs."""
    action = resolved.action
    limits = None
    if max_memory is not None:
        limits = {"timeout": action.limits.timeout, "memory": max_memory, "logs": action.limits.logs,
                  "concurrency": action.limits.concurrency}
    return Activation.of_composition(
        namespace=run.identity.namespace, name=action.name, subject=run.identity.subject,
        activation_id=activation_id, version=str(action.version), path=resolved.path, binding=resolved.binding,
        cause=cause, conductor=conductor, limits=limits, wait_ms=start - run.received_ms, start=start, end=now_ms(),
        duration=duration, response=response, logs=tuple(logs))
