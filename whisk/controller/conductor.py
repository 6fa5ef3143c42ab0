"""Conductor actions (docs/openwhisk.md §3.7; OpenWhisk's `PrimitiveActions.invokeComposition`): an
action with a truthy `conductor` annotation steers a composition. Each conductor result may name the next component
(`action`), its input (`params`) and state to hand back on the next conductor call (`state`); without `action` the
composition ends. Failures to reach a component are fed back to the conductor as `{"error": ...}`.

The trace is conductor (component conductor)*; every id goes to the composition's `logs`. Invocations are counted
across nested compositions: at most `limit` components and 2 × limit + 1 conductor calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from whisk.controller.composition import (Accounting, Run, Step, Steps, composition_record, error_response,
                                          is_conductor, is_sequence, resolve)
from whisk.controller.entities import ResolvedAction
from whisk.entities.activation import APPLICATION_ERROR, WHISK_ERROR, Activation, ActivationResponse
from whisk.entities.document import now_ms
from whisk.entities.errors import Forbidden, WhiskError
from whisk.entities.json_value import compact
from whisk.entities.names import resolve_name

log = structlog.get_logger(__name__)

TOO_LONG = "Too many actions in the composition."
FAILURE = "Activation failure during composition."


def timed_out(activation_id: str) -> str:
    return f"Timeout reached when retrieving activation {activation_id} during composition."


def invalid(value: Any) -> str:
    return f"Failed to parse action name from json value {compact(value)} during composition."


def not_found(name: str) -> str:
    return f"Failed to resolve action with name '{name}' during composition."


def not_accessible(name: str) -> str:
    return f"Failed entitlement check for action with name '{name}' during composition."


@dataclass(slots=True)
class Session:
    """One composition's progress: what goes into its record."""

    activation_id: str
    depth: int = 0                  # how many sequences enclose it
    logs: list[str] = field(default_factory=list)
    duration: int = 0
    max_memory: int | None = None
    state: dict[str, Any] | None = None

    def took(self, step: Step) -> Activation | None:
        """Account for a finished step; its record, or None when the wait ran out."""
        self.logs.append(step.activation_id)
        if step.record is None:
            return None
        self.duration += step.record.run_duration
        memory = step.record.memory
        if memory is not None:
            self.max_memory = memory if self.max_memory is None else max(self.max_memory, memory)
        return step.record


def _boxed(value: Any, key: str) -> dict[str, Any]:
    return value if isinstance(value, dict) else {key: value}


def _result(record: Activation) -> dict[str, Any]:
    result = record.response.result
    return result if isinstance(result, dict) else {}


async def run(launcher: Steps, run: Run, resolved: ResolvedAction, payload: Any, *, activation_id: str,
              cause: str | None, accounting: Accounting | None, depth: int) -> Activation:
    """Run the composition the conductor action `resolved` steers; store and return its record."""
    start = now_ms()
    session = Session(activation_id, depth, max_memory=resolved.action.limits.memory)
    response = await _drive(launcher, run, resolved, payload, session, accounting or Accounting())
    record = composition_record(run, resolved, activation_id=activation_id, start=start, cause=cause,
                                response=response, logs=session.logs, duration=session.duration,
                                max_memory=session.max_memory, conductor=True)
    await launcher.store_record(record, run)
    return record


async def _drive(launcher: Steps, run: Run, conductor: ResolvedAction, payload: Any, session: Session,
                 accounting: Accounting) -> ActivationResponse:
    """Alternate conductor and component calls until the conductor names no next action; the final response."""
    limit = launcher.sequence_limit
    while True:
        if accounting.conductors > 2 * limit:
            return error_response(APPLICATION_ERROR, TOO_LONG)
        # An object goes on with the saved state merged in; anything else (a sequence's previous component may
        # answer an array) not at all, so the conductor runs on its own parameters (OpenWhisk's invokeConductor).
        params: dict[str, Any] | None = None
        if isinstance(payload, dict):
            params = {**payload, **session.state} if session.state is not None else payload
        accounting.conductors += 1
        try:
            step = await launcher.primitive(run, conductor, params, cause=session.activation_id)
        except WhiskError as exc:
            log.error("composition.conductor.failed", error=str(exc))
            return error_response(WHISK_ERROR, FAILURE)
        record = session.took(step)
        if record is None:
            return error_response(WHISK_ERROR, timed_out(step.activation_id))
        result = _result(record)
        next_params = _boxed(result["params"], "value") if "params" in result else None
        session.state = _boxed(result["state"], "state") if "state" in result else None
        if "action" not in result:
            return ActivationResponse(record.response.status_code,
                                      next_params if next_params is not None else result)
        name = result["action"]
        fqn = resolve_name(name, run.identity.namespace)
        if fqn is None:
            payload = {"error": invalid(name)}
            continue
        if accounting.components >= limit:
            payload = {"error": TOO_LONG}
            continue
        try:
            component = await resolve(launcher.entities, run, fqn)
        except Forbidden:
            payload = {"error": not_accessible(str(fqn))}
            continue
        except WhiskError:
            payload = {"error": not_found(str(fqn))}
            continue
        try:
            step = await _invoke(launcher, run, component, next_params, session, accounting)
        except WhiskError as exc:
            log.error("composition.component.failed", component=str(fqn), error=str(exc))
            return error_response(WHISK_ERROR, FAILURE)
        record = session.took(step)
        if record is None:
            return error_response(WHISK_ERROR, timed_out(step.activation_id))
        payload = _result(record)


async def _invoke(launcher: Steps, run: Run, component: ResolvedAction, payload: Any, session: Session,
                  accounting: Accounting) -> Step:
    """A component: a nested composition (sharing the counts), a sequence or a primitive action."""
    if is_conductor(component):
        record = await launcher.composition(run.child(), component, payload, cause=session.activation_id,
                                            accounting=accounting, depth=session.depth)
        return Step(record.activation_id, record)
    accounting.components += 1
    if is_sequence(component):
        record, _ = await launcher.sequence(run.child(), component, payload, cause=session.activation_id, count=0,
                                            depth=session.depth)
        return Step(record.activation_id, record)
    return await launcher.primitive(run, component, payload, cause=session.activation_id)
