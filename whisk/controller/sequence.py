"""Sequences (docs/openwhisk.md §3.6; OpenWhisk `SequenceActions.scala`): the components run strictly one after another,
each a blocking activation caused by the sequence, the result of one being the input of the next; the first error ends
the sequence with that component's response. Nested sequences run inline with their own record; the count of
atomic actions across the whole tree is capped by the sequence limit, and so is how deep sequences nest
(`composition.too_deep`).
"""

from __future__ import annotations

from typing import Any

import structlog

from whisk.controller.composition import (Run, Step, Steps, composition_record, error_response, is_conductor,
                                          is_sequence, locate, next_payload, too_deep)
from whisk.controller.entities import ResolvedAction
from whisk.entities.activation import APPLICATION_ERROR, WHISK_ERROR, Activation, ActivationResponse
from whisk.entities.document import now_ms
from whisk.entities.errors import Conflict, Invalid, NotFound, WhiskError
from whisk.entities.exec import SEQUENCE_COMPONENT_MISSING, SEQUENCE_TOO_LONG, SequenceExec

log = structlog.get_logger(__name__)

FAILED = "Sequence failed."


def timed_out(activation_id: str) -> str:
    return f"Timeout reached when retrieving activation {activation_id} for sequence component."


async def run(launcher: Steps, run: Run, resolved: ResolvedAction, payload: Any, *, activation_id: str,
              cause: str | None, count: int, depth: int) -> tuple[Activation, int]:
    """Run the sequence `resolved` on `payload`; store and return its record with the updated atomic count.
    `cause` is the enclosing sequence's or composition's activation id (None when topmost), `depth` how many
    sequences enclose it."""
    assert isinstance(resolved.action.exec, SequenceExec)
    start = now_ms()
    logs: list[str] = []
    duration, max_memory = 0, None
    response = ActivationResponse.success(payload if payload is not None else {})
    current = payload
    components = resolved.action.exec.components
    if too_deep(depth, launcher.sequence_limit):
        response = error_response(APPLICATION_ERROR, SEQUENCE_TOO_LONG)
        components = ()
    for fqn in components:
        if count >= launcher.sequence_limit:
            response = error_response(APPLICATION_ERROR, SEQUENCE_TOO_LONG)
            break
        try:
            component = await locate(launcher.entities, run, fqn)
        except (NotFound, Conflict, Invalid):
            response = error_response(APPLICATION_ERROR, SEQUENCE_COMPONENT_MISSING)
            break
        except WhiskError as exc:
            log.error("sequence.component.unresolved", component=str(fqn), error=str(exc))
            response = error_response(WHISK_ERROR, FAILED)
            break
        try:
            step, count = await _invoke(launcher, run, component, current, activation_id, count, depth + 1)
        except WhiskError as exc:
            log.error("sequence.component.failed", component=str(fqn), error=str(exc))
            response = error_response(WHISK_ERROR, FAILED)
            break
        logs.append(step.activation_id)
        if step.record is None:
            response = error_response(WHISK_ERROR, timed_out(step.activation_id))
            break
        duration += step.record.run_duration
        memory = step.record.memory
        if memory is not None:
            max_memory = memory if max_memory is None else max(max_memory, memory)
        response = step.record.response
        # An `error` in a result stops the sequence even when its status is success (a composition can end so),
        # as OpenWhisk's SequenceAccounting.maybe does.
        if not response.is_success or (isinstance(response.result, dict) and "error" in response.result):
            break
        current = next_payload(step.record)
    record = composition_record(run, resolved, activation_id=activation_id, start=start, cause=cause,
                                response=response, logs=logs, duration=duration, max_memory=max_memory,
                                conductor=False)
    await launcher.store_record(record, run)
    return record, count


async def _invoke(launcher: Steps, run: Run, component: ResolvedAction, payload: Any, activation_id: str,
                  count: int, depth: int) -> tuple[Step, int]:
    """One component: a nested sequence inline, else one atomic step (a primitive action or a composition)."""
    if is_sequence(component):
        record, count = await launcher.sequence(run.child(), component, payload, cause=activation_id, count=count,
                                                depth=depth)
        return Step(record.activation_id, record), count
    if is_conductor(component):
        record = await launcher.composition(run.child(), component, payload, cause=activation_id, accounting=None,
                                            depth=depth)
        return Step(record.activation_id, record), count + 1
    return await launcher.primitive(run, component, payload, cause=activation_id), count + 1
