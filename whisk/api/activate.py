"""Routes that start activations (spec §1.6, §3.2, §3.5, §1.12): invoke an action, fire a trigger, and (from
`whisk.api.web`) web actions. HTTP statuses are decided here; the work is the controller's: the launcher
(`whisk.controller.launcher`: primitive actions through `whisk.controller.invoke.Activator`, sequences and
conductor compositions in the controller) and trigger firing (`whisk.controller.fire`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from whisk.api.body import check_json_type, reply
from whisk.api.keys import ACTIVATOR, APIS, ENTITIES, FIRING, IDENTITY, LAUNCHER, SETTINGS, STORE, SUBJECTS, TID, \
    WEB_ACTIONS
from whisk.api.query import flag, wait_ms
from whisk.api.web import web_action  # noqa: F401  (mounted by whisk/api/app.py from here)
from whisk.controller.apigw import Apis
from whisk.controller.fire import Firing
from whisk.controller.invoke import Activator, Caller
from whisk.controller.launcher import Launcher
from whisk.controller.web import WebActions
from whisk.entities.errors import BackendUnavailable, Invalid, TooLarge

ACTIVATION_HEADER = "x-openwhisk-activation-id"
# Blocking outcome → HTTP status (spec §1.6): success 200, application and developer errors 502, whisk errors 500.
BLOCKING_STATUS = (200, 502, 502, 500)


async def not_yet(request: web.Request) -> web.StreamResponse:
    raise BackendUnavailable("Activations are not available on this server yet.")


async def read_payload(request: web.Request, max_bytes: int) -> Any:
    """The invoke/fire body: empty → None, else a JSON object (413 past the payload limit, spec §8; 415 when it
    is declared as something other than JSON)."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(f"Request larger than allowed: {length} > {max_bytes} bytes.")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise TooLarge(f"Request larger than allowed: {len(raw)} > {max_bytes} bytes.")
    if not raw.strip():
        return None
    # Pekko's JSON unmarshaller (`entity(as[Option[JsObject]])`) refuses a body of another type before reading it.
    check_json_type(request)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise Invalid("The request content was malformed:\nRequest body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise Invalid("The request content was malformed:\nJSON object expected")  # spray's asJsObject
    return payload


def caller_of(request: web.Request) -> Caller:
    identity = request[IDENTITY]
    return Caller(subject=identity.subject, namespace=identity.namespace, uuid=identity.uuid,
                  api_key=identity.api_key or "",
                  invocations_per_minute=identity.limits.invocations_per_minute,
                  concurrent_invocations=identity.limits.concurrent_invocations)


async def invoke_action(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    activator: Activator | None = request.app.get(ACTIVATOR)
    if activator is None:
        raise BackendUnavailable("Activations are not available on this server.")
    caller = caller_of(request)
    activator.throttle(caller)                        # before the lookup, as OpenWhisk does (spec §8)
    namespace, package, name = request.match_info["namespace"], request.match_info.get("package"), \
        request.match_info["name"]
    blocking = flag(request, "blocking")
    result_only = flag(request, "result")
    wait = wait_ms(request, settings.max_blocking_wait_ms)
    payload = await read_payload(request, request[IDENTITY].limits.max_payload_size)
    resolved = await request.app[ENTITIES].resolve_action(request[IDENTITY], namespace, package, name)
    outcome = await request.app[LAUNCHER].start(request[IDENTITY], resolved, payload, blocking=blocking,
                                                wait_ms=wait, tid=request[TID], caller=caller)
    headers = {ACTIVATION_HEADER: outcome.activation_id}
    if outcome.record is None:
        return reply({"activationId": outcome.activation_id}, status=202, headers=headers)
    record = outcome.record
    status = BLOCKING_STATUS[record.response.status_code]
    result = record.response.result
    if isinstance(result, list):
        return reply(result, status=status, headers=headers)
    if result_only:
        return reply(result if result is not None else {}, status=status, headers=headers)
    return reply(record.extended_json(), status=status, headers=headers)


async def fire_trigger(request: web.Request) -> web.StreamResponse:
    """POST .../triggers/{name}: 202 with the trigger activation id, or 204 when no rule is active (spec §3.5)."""
    firing: Firing | None = request.app.get(FIRING)
    if firing is None:
        raise BackendUnavailable("Activations are not available on this server.")
    identity = request[IDENTITY]
    firing.throttle(identity)                         # before the lookup, as invokes are (spec §8)
    payload = await read_payload(request, identity.limits.max_payload_size)
    activation_id = await firing.fire(identity, request.match_info["namespace"], request.match_info["name"],
                                      payload, dict(request.headers), request[TID])
    if activation_id is None:
        return web.Response(status=204)
    return reply({"activationId": activation_id}, status=202, headers={ACTIVATION_HEADER: activation_id})


async def start_services(app: web.Application) -> None:
    """On startup, after the activator (roles.py) and the entity service exist: the services of this module."""
    app[APIS] = Apis(app[STORE])
    activator = app.get(ACTIVATOR)
    if activator is None:
        return                                        # no activations on this server: the routes answer 503
    launcher = Launcher(activator, app[ENTITIES], app[STORE])
    app[LAUNCHER] = launcher
    app[FIRING] = Firing(launcher)
    app[WEB_ACTIONS] = WebActions(launcher, app[ENTITIES], app[SUBJECTS], app[SETTINGS].max_blocking_wait_ms)


async def stop_services(app: web.Application) -> None:
    """On shutdown, before the activator closes: let compositions and trigger records finish (or cancel them)."""
    launcher = app.get(LAUNCHER)
    if launcher is not None:
        await launcher.close(app[SETTINGS].shutdown_grace_s)


def pending_activation(request: web.Request, namespace: str, activation_id: str) -> web.Response | None:
    """Beyond OpenWhisk (issue #373): an activation this controller still has in flight answers 202 with a clear
    running state instead of 404; its record replaces this once it is stored."""
    activator: Activator | None = request.app.get(ACTIVATOR)
    entry = activator.pending(namespace, activation_id) if activator is not None else None
    if entry is None:
        launcher: Launcher | None = request.app.get(LAUNCHER)     # a running sequence or composition
        entry = launcher.running(namespace, activation_id) if launcher is not None else None
    if entry is None:
        return None
    body: dict[str, Any] = {"activationId": activation_id, "namespace": namespace,
                            "name": entry.action_path.rsplit("/", 1)[-1], "path": entry.action_path,
                            "start": entry.started_ms, "status": "running",
                            "message": "The activation is still running; its record is stored when it ends."}
    if request.match_info.get("part") == "logs":
        body["logs"] = []
    return reply(body, status=202, headers={ACTIVATION_HEADER: activation_id})
