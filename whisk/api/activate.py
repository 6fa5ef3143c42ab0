"""Routes that start activations (docs/openwhisk.md §1.6, §3.2, §3.5): invoke an action and fire a trigger (web
actions are `whisk.api.web`'s). HTTP statuses are decided here; the work is the controller's services
(`whisk.controller.services`): the invocation throttle, the launcher (primitive actions through
`whisk.controller.invoke.Activator`, sequences and conductor compositions in the controller) and trigger firing
(`whisk.controller.fire`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from whisk.api import headers as header_values
from whisk.api.body import check_json_type, parse_body, read_body, reply
from whisk.api.keys import IDENTITY, RECEIVED_MS, SERVICES, SETTINGS, TID
from whisk.api.query import flag, wait_ms
from whisk.controller.caller import caller_for
from whisk.controller.results import within
from whisk.controller.services import ControllerServices
from whisk.controller.web import ACTIVATION_HEADER
from whisk.entities.errors import BackendUnavailable, Invalid

RECORD_WAIT_S = 5.0      # how long a GET waits for the record of a blocking activation already answered
# Blocking outcome → HTTP status (docs/openwhisk.md §1.6): success 200, application and developer errors 502, whisk
# errors 500.
BLOCKING_STATUS = (200, 502, 502, 500)


def services_of(request: web.Request) -> ControllerServices:
    services = request.app.get(SERVICES)
    if services is None:
        raise BackendUnavailable("Activations are not available on this server.")
    return services


async def read_payload(request: web.Request, max_bytes: int) -> Any:
    """The invoke/fire body: empty → None, else a JSON object (413 past the payload limit, docs/openwhisk.md §8; 415
    when it is declared as something other than JSON)."""
    raw = await read_body(request, max_bytes)
    if not raw.strip():
        return None
    # Pekko's JSON unmarshaller (`entity(as[Option[JsObject]])`) refuses a body of another type before reading it.
    payload = parse_body(raw, check_json_type(request))
    if not isinstance(payload, dict):
        raise Invalid("The request content was malformed:\nJSON object expected")  # spray's asJsObject
    return payload


async def invoke_action(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    services = services_of(request)
    caller = caller_for(request[IDENTITY])
    services.invocations.check(caller)                # before the lookup, as OpenWhisk does (docs/openwhisk.md §8)
    namespace, package, name = request.match_info["namespace"], request.match_info.get("package"), \
        request.match_info["name"]
    # Authorized before the query and the body are read (another namespace's malformed invoke is 403), as
    # OpenWhisk's route reads them only then; the action itself is looked up after (an owner's malformed one is 400).
    path = await services.entities.entitle_action(request[IDENTITY], namespace, package, name)
    blocking = flag(request, "blocking")
    result_only = flag(request, "result")
    wait = wait_ms(request, settings.max_blocking_wait_ms)
    payload = await read_payload(request, request[IDENTITY].limits.max_payload_size)
    resolved = await services.entities.request_at(request[IDENTITY], path, name)
    outcome = await services.launcher.start(request[IDENTITY], resolved, payload, blocking=blocking,
                                             wait_ms=wait, tid=request[TID], caller=caller,
                                             received_ms=request.get(RECEIVED_MS))
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
    """POST .../triggers/{name}: 202 with the trigger activation id, or 204 when no rule is active
    (docs/openwhisk.md §3.5)."""
    services = services_of(request)
    firing = services.firing
    identity = request[IDENTITY]
    firing.throttle(identity)                         # before the lookup, as invokes are (docs/openwhisk.md §8)
    # Authorized before the body is read, as invokes are.
    await services.entities.entitle_fire(identity, request.match_info["namespace"], request.match_info["name"])
    payload = await read_payload(request, identity.limits.max_payload_size)
    activation_id = await firing.fire(identity, request.match_info["namespace"], request.match_info["name"],
                                      payload, dict(header_values.items(request.headers.items())),
                                      request[TID])
    if activation_id is None:
        return web.Response(status=204)
    return reply({"activationId": activation_id}, status=202, headers={ACTIVATION_HEADER: activation_id})


async def record_stored(request: web.Request, namespace: str, activation_id: str) -> None:
    """A blocking activation whose caller already has its result is answered before the invoker has collected its
    logs and stored its record: wait (at most RECORD_WAIT_S) until its entry closes, which the invoker's completion
    ack does once the record is stored, so that the caller can read its record at once. In a cluster the record is
    then on its way to CouchDB from the invoker's process: wait a little more for it to be readable here. A namespace
    that keeps no records (`storeActivations: false`) has none to wait for: its 404 comes at once, as on OpenWhisk."""
    services = request.app.get(SERVICES)
    if services is None or not request[IDENTITY].limits.store_activations:
        return
    entry = services.activator.pending(namespace, activation_id)
    if entry is not None:
        if entry.closed is None or entry.result is None or not entry.result.done():
            return                               # still running, or not answered: a 404, as on OpenWhisk
        await within(entry.closed, RECORD_WAIT_S)
    await services.activator.answered_record(namespace, activation_id)
