"""Trigger fire (docs/openwhisk.md §3.5; OpenWhisk `CTL/Triggers.scala` activate): charge the fire rate, load the
trigger, and when it has an active rule answer at once with the trigger's activation id while each rule's action is
started, non-blocking, with the trigger parameters overlaid by the request headers and the payload. The trigger's
record, with one JSON log line per rule, is stored once every rule's activation was posted. Until then the fire is in
the controller's journal (`ledger.py`), as every accepted activation is: a crash in between leaves it a record after
the restart (OpenWhisk would have none).

OpenWhisk posts each rule's activation back to its own REST API with the caller's credentials; this does the same
steps in process: the invocation throttles, size check, entitlement and `final` check of a POST to the action, per
rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from whisk.controller.caller import caller_for
from whisk.controller.invoke import SHUTTING_DOWN
from whisk.controller.launcher import Launcher
from whisk.controller.ledger import Accepted, Ledger
from whisk.controller.entities import Entities
from whisk.controller.throttle import InvocationThrottle
from whisk.controller.webmedia import ENTITY_HEADERS
from whisk.entities.activation import APPLICATION_ERROR, SUCCESS, WHISK_ERROR, Activation, new_activation_id
from whisk.entities.document import now_ms
from whisk.entities.errors import (BackendUnavailable, Conflict, Forbidden, Invalid, NotFound, Throttled, TooLarge,
                                   Unauthenticated, Unprocessable, UnsupportedMediaType, WhiskError)
from whisk.entities.identity import Identity
from whisk.entities.json_value import compact
from whisk.entities.trigger import ACTIVE, RuleLink, Trigger

log = structlog.get_logger(__name__)

# Errors a REST POST would answer with a 4xx: the rule's log line says application error; anything else (5xx) is a
# whisk error, as OpenWhisk sorts the answers of its internal POST.
CLIENT_ERRORS = (Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, UnsupportedMediaType,
                 Unprocessable, Throttled)
INTERNAL = "There was an internal server error."
# A trigger's `__ow_headers` lack the entity's content type too (a web action gets it from the entity), and the
# firing caller's `Authorization` (its API key): a rule's action may be a package another namespace published, which
# never gets the caller's key (docs/runtimes.md, `__OW_API_KEY`).
HIDDEN_HEADERS = ENTITY_HEADERS | {"content-type", "authorization"}


def inactive(rule: str, action: str) -> str:
    return f"Rule '{rule}' is inactive, action '{action}' was not activated."


def rule_line(rule: str, action: str, status_code: int, *, activation_id: str | None = None,
              error: str | None = None) -> str:
    entry: dict[str, Any] = {"statusCode": status_code, "success": status_code == SUCCESS}
    if activation_id is not None:
        entry["activationId"] = activation_id
    else:
        entry["error"] = error
    entry.update(rule=rule, action=action)
    return compact(entry)


def arguments(trigger: Trigger, headers: dict[str, str], payload: dict[str, Any] | None) -> dict[str, Any]:
    """Trigger parameters, overlaid by `__ow_headers` (lower-case names, without HIDDEN_HEADERS), overlaid by the
    payload's fields."""
    shown = {k.lower(): v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS}
    return {**trigger.parameters.to_dict(), "__ow_headers": shown, **(payload or {})}


class Firing:
    def __init__(self, launcher: Launcher, entities: Entities, invocations: InvocationThrottle,
                 ledger: Ledger) -> None:
        self._launcher = launcher
        self._entities = entities
        self._invocations = invocations
        self._ledger = ledger

    def throttle(self, identity: Identity) -> None:
        """The namespace's fires per minute (calendar minute; every fire is charged, docs/openwhisk.md §8)."""
        self._invocations.check_fire(caller_for(identity), identity.limits.fires_per_minute)

    async def fire(self, identity: Identity, namespace: str, name: str, payload: dict[str, Any] | None,
                   headers: dict[str, str], tid: str) -> str | None:
        """The trigger activation id, or None (204) when no rule of the trigger is active."""
        trigger = await self._entities.trigger_to_fire(identity, namespace, name)
        if not trigger.active_rules():
            return None
        if self._launcher.draining:     # as an invoke is: a 202 now would only record every rule refused
            raise BackendUnavailable(SHUTTING_DOWN)
        activation_id, start = new_activation_id(), now_ms()
        args = arguments(trigger, headers, payload)

        def record(logs: list[str]) -> Activation:
            return Activation.of_trigger(namespace=identity.namespace, name=trigger.name, subject=identity.subject,
                                         activation_id=activation_id, version=str(trigger.version), start=start,
                                         payload=payload, logs=tuple(logs))

        self._ledger.opened(Accepted(identity.namespace, activation_id, identity.subject,
                                     f"{identity.namespace}/{trigger.name}", str(trigger.version), None,
                                     identity.limits.store_activations))
        self._launcher.spawn(self._activate_rules(identity, trigger, payload, args, record, tid), "trigger.rules")
        return activation_id

    async def _activate_rules(self, identity: Identity, trigger: Trigger, payload: dict[str, Any] | None,
                              args: dict[str, Any], record: Callable[[list[str]], Activation], tid: str) -> None:
        try:
            lines = await self._rule_lines(identity, trigger, payload, args, tid)
        except Exception as exc:
            # A bug, not a refusal: the accepted fire still gets its record, without logs, as OpenWhisk's recover
            # stores it. The exception's text may quote the arguments (the caller's Authorization header among
            # them), so only its type is logged.
            log.error("fire.rules.crashed", trigger=trigger.name, error=type(exc).__name__)
            lines = []
        done = record(lines)
        # Cancelled before (a stop past its grace), or the store away past its retries: left for the restart.
        if await self._launcher.store_record(done, stored=identity.limits.store_activations):
            self._ledger.closed(done.activation_id)

    async def _rule_lines(self, identity: Identity, trigger: Trigger, payload: dict[str, Any] | None,
                          args: dict[str, Any], tid: str) -> list[str]:
        rules = list((trigger.rules or {}).items())
        # The body OpenWhisk posts for each rule is the trigger's parameters under the payload; over the payload
        # limit that post is a 413. The `__ow_headers` whisk adds are not part of it, so they do not count.
        size = len(compact({**trigger.parameters.to_dict(), **(payload or {})}).encode())
        allowed = identity.limits.max_payload_size
        too_large = f"Request larger than allowed: {size} > {allowed} bytes." if size > allowed else None
        results = await asyncio.gather(*(self._activate(identity, rule, link, args, tid, too_large)
                                         for rule, link in rules), return_exceptions=True)
        lines = []
        for (rule, link), result in zip(rules, results):
            if isinstance(result, BaseException):   # a bug, not a refusal: still recorded, as OpenWhisk's recover
                log.error("fire.rule.crashed", rule=rule, error=type(result).__name__)   # no text: see above
                result = rule_line(rule, link.action.doc_id, WHISK_ERROR, error=INTERNAL)
            lines.append(result)
        return lines

    async def _activate(self, identity: Identity, rule: str, link: RuleLink, args: dict[str, Any], tid: str,
                        too_large: str | None) -> str:
        action = link.action.doc_id
        if link.status != ACTIVE:
            return rule_line(rule, action, APPLICATION_ERROR, error=inactive(rule, action))
        try:
            caller = caller_for(identity)
            self._invocations.check(caller)
            if too_large is not None:
                raise TooLarge(too_large)
            path = link.action.path
            resolved = await self._entities.resolve_request(identity, path.root, path.package, link.action.name)
            outcome = await self._launcher.start(identity, resolved, args, blocking=False, wait_ms=0, tid=tid,
                                                 caller=caller)
        except CLIENT_ERRORS as exc:
            return rule_line(rule, action, APPLICATION_ERROR, error=str(exc))
        except WhiskError as exc:
            log.error("fire.rule.failed", rule=rule, action=action, error=str(exc))
            return rule_line(rule, action, WHISK_ERROR, error=str(exc) or INTERNAL)
        return rule_line(rule, action, SUCCESS, activation_id=outcome.activation_id)
