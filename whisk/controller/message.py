"""The activation message the controller publishes for one activation of a primitive action."""

from __future__ import annotations

from typing import Any

from whisk.controller.caller import Caller
from whisk.entities.action import PROVIDE_API_KEY, Action
from whisk.entities.document import now_ms
from whisk.messages import ActivationMessage


def arguments(params: dict[str, Any], payload: Any) -> Any:
    """The action's parameters (package parameters merged) overlaid by the payload's; a JSON array replaces them
    (a sequence passes a component's array result on as it is, docs/openwhisk.md §3.1)."""
    if isinstance(payload, dict) and payload:
        return params | payload
    if isinstance(payload, list):
        return payload
    return params


def activation_message(controller: dict[str, str], caller: Caller, action: Action, *, path: str,
                       binding: str | None, revision: str | None, payload: Any, blocking: bool, tid: str,
                       cause: str | None, activation_id: str, received_ms: int | None = None) -> ActivationMessage:
    """`path` is the action's fully qualified path ("ns/pkg/name"); `controller` this controller's instance;
    `received_ms` when the request came (the transaction's start, where the record's `waitTime` counts from), None:
    now (a composition's component, counted from its own publication)."""
    params = action.parameters.to_dict()
    init = action.parameters.init_keys()
    ns_path, name = path.rsplit("/", 1)
    action_ref: dict[str, Any] = {"path": ns_path, "name": name, "version": str(action.version)}
    if binding:
        action_ref["binding"] = binding
    user = caller.to_json()
    # The caller's key travels only to an action that gets it (the invoker's rule, invoker/records.py): every other
    # message would put a plaintext key on the bus, whose topics keep it on disk, where the store keeps only hashes.
    if not (ns_path.split("/", 1)[0] == caller.namespace and action.annotations.is_truthy(PROVIDE_API_KEY, True)):
        user["authkey"] = {"api_key": ""}
    return ActivationMessage(
        transid=[tid, now_ms() if received_ms is None else received_ms], action=action_ref, revision=revision,
        user=user, activation_id=activation_id, root_controller=controller, blocking=blocking,
        content=arguments(params, payload), init_args=[k for k in params if k in init],
        cause=cause)
