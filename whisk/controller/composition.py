"""What sequences (spec §3.6) and conductor compositions (§3.7) share: the run context, a finished step, how a
component is resolved, and the activation record the controller writes for the whole (spec §2.7 annotations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.invoke import Caller, now_ms
from whisk.entities.action import CONDUCTOR
from whisk.entities.exec import SEQUENCE, SequenceExec
from whisk.entities.identity import Identity
from whisk.entities.names import FullyQualifiedEntityName


@dataclass(frozen=True, slots=True)
class Run:
    """What every step of one activation tree shares: who runs it and the request's transaction."""

    identity: Identity
    caller: Caller
    tid: str
    received_ms: int


@dataclass(slots=True)
class Step:
    """One finished component: its activation id and stored-form record (None when the wait ran out)."""

    activation_id: str
    record: dict[str, Any] | None


def caller_for(identity: Identity) -> Caller:
    """The activation message's user for an identity (without a key when it was looked up by namespace)."""
    return Caller(subject=identity.subject, namespace=identity.namespace, uuid=identity.uuid,
                  api_key=identity.api_key or "", invocations_per_minute=identity.limits.invocations_per_minute,
                  concurrent_invocations=identity.limits.concurrent_invocations)


def is_sequence(resolved: ResolvedAction) -> bool:
    return isinstance(resolved.action.exec, SequenceExec)


def is_conductor(resolved: ResolvedAction) -> bool:
    # OpenWhisk: "Sequences cannot be compositions: the conductor annotation on a sequence has no effect."
    return not is_sequence(resolved) and resolved.action.annotations.is_truthy(CONDUCTOR)


async def resolve(entities: Entities, run: Run, fqn: FullyQualifiedEntityName) -> ResolvedAction:
    """A component, with the caller's right to activate it checked and package/binding parameters merged."""
    return await entities.resolve_action(run.identity, fqn.path.root, fqn.path.package, fqn.name)


def record_duration(record: dict[str, Any]) -> int:
    duration = record.get("duration")
    if isinstance(duration, int):
        return duration
    return max(0, int(record.get("end") or 0) - int(record.get("start") or 0))


def record_memory(record: dict[str, Any]) -> int | None:
    for a in record.get("annotations") or ():
        if a.get("key") == "limits" and isinstance(a.get("value"), dict):
            memory = a["value"].get("memory")
            return memory if isinstance(memory, int) else None
    return None


def next_payload(record: dict[str, Any]) -> Any:
    """A component's result as the next step's input: an object or array, else nothing."""
    result = (record.get("response") or {}).get("result")
    return result if isinstance(result, dict | list) else None


def is_success(response: dict[str, Any]) -> bool:
    return int(response.get("statusCode", 0)) == 0


def error_response(status_code: int, message: str) -> dict[str, Any]:
    return {"statusCode": status_code, "result": {"error": message}}


def composition_record(run: Run, resolved: ResolvedAction, *, activation_id: str, start: int, cause: str | None,
                       response: dict[str, Any], logs: list[str], duration: int, max_memory: int | None,
                       conductor: bool) -> dict[str, Any]:
    """The stored record of a sequence or composition: the invoking namespace's, with the component ids as logs."""
    action = resolved.action
    annotations: list[dict[str, Any]] = [
        {"key": "topmost", "value": cause is None},
        {"key": "path", "value": resolved.path},
        {"key": "kind", "value": SEQUENCE},
    ]
    if conductor:
        annotations.append({"key": "conductor", "value": True})
    if cause is not None:
        annotations.append({"key": "causedBy", "value": SEQUENCE})
    if resolved.binding:
        annotations.append({"key": "binding", "value": resolved.binding})
    if max_memory is not None:
        limits = action.limits
        annotations.append({"key": "limits", "value": {"timeout": limits.timeout, "memory": max_memory,
                                                       "logs": limits.logs, "concurrency": limits.concurrency}})
    annotations.append({"key": "waitTime", "value": max(0, start - run.received_ms)})
    namespace = run.identity.namespace
    record: dict[str, Any] = {
        "_id": f"{namespace}/{activation_id}", "entityType": "activation", "namespace": namespace,
        "name": action.name, "subject": run.identity.subject, "activationId": activation_id, "start": start,
        "end": max(start, now_ms()), "response": response, "logs": logs, "version": str(action.version),
        "publish": False, "annotations": annotations, "duration": duration,
    }
    if cause is not None:
        record["cause"] = cause
    return record
