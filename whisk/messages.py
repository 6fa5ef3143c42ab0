"""Controller ⇄ invoker messages with OpenWhisk's JSON shapes (docs/openwhisk.md §5.2), so a Kafka peer sees what it
expects, the topics they go on, and the user events of the `events` topic (§9.2).

Each message is a dataclass with `to_bytes()` and a `from_bytes()` that reads OpenWhisk's field names; acknowledgements
are told apart as OpenWhisk does: `instance` and `response` → combined, only `instance` → completion, else → result.
Activation messages and acks are sent as objects (the in-process bus hands them over as they are, docs/architecture.md)
and taken with `read`; none is changed once built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from whisk.entities.activation import Activation
from whisk.entities.json_value import compact, decode, encode
from whisk.messaging.base import Message, encoded


def invoker_topic(instance: int) -> str:
    return f"invoker{instance}"


def completed_topic(controller: int | str) -> str:
    return f"completed{controller}"


HEALTH_TOPIC = "health"
CACHE_INVALIDATION_TOPIC = "cacheInvalidation"
EVENTS_TOPIC = "events"


def controller_instance(index: int | str) -> dict[str, str]:
    return {"asString": str(index), "instanceType": "controller"}


def invoker_instance(index: int, user_memory_mb: int) -> dict[str, Any]:
    return {"instance": index, "userMemory": f"{user_memory_mb} MB", "instanceType": "invoker", "tags": [],
            "dedicatedNamespaces": [], "uniqueName": f"invoker{index}", "displayedName": f"invoker{index}"}


@dataclass(slots=True)
class ActivationMessage:
    transid: list[Any]               # [tid, start epoch ms]
    action: dict[str, Any]           # {"path": "ns[/pkg]", "name": "a", "version": "0.0.1", "binding"?: "ns/b"}
    revision: str | None
    user: dict[str, Any]             # Identity JSON: subject, namespace {name, uuid}, authkey {api_key}, rights, limits
    activation_id: str
    root_controller: dict[str, str]
    blocking: bool
    content: Any = None              # merged arguments
    init_args: list[str] = field(default_factory=list)
    locked_args: dict[str, str] = field(default_factory=dict)
    cause: str | None = None
    trace_context: dict[str, str] | None = None

    @property
    def transaction_id(self) -> str:
        return self.transid[0]

    @property
    def received_ms(self) -> int:
        return int(self.transid[1])

    @property
    def action_path(self) -> str:
        return f"{self.action['path']}/{self.action['name']}"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "transid": self.transid, "action": self.action, "revision": self.revision, "user": self.user,
            "activationId": self.activation_id, "rootControllerIndex": self.root_controller,
            "blocking": self.blocking, "content": self.content, "initArgs": self.init_args,
            "lockedArgs": self.locked_args,
        }
        if self.cause:
            doc["cause"] = self.cause
        if self.trace_context:
            doc["traceContext"] = self.trace_context
        return doc

    def to_bytes(self) -> bytes:
        return encode(self.to_json())

    @classmethod
    def read(cls, data: bytes | Message) -> ActivationMessage:
        """What a feed gave: the message itself (the in-process bus), or its bytes."""
        return data if isinstance(data, ActivationMessage) else cls.from_bytes(encoded(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> ActivationMessage:
        d = decode(data)
        return cls(transid=d["transid"], action=d["action"], revision=d.get("revision"), user=d["user"],
                   activation_id=d["activationId"], root_controller=d["rootControllerIndex"],
                   blocking=bool(d.get("blocking")), content=d.get("content"), init_args=d.get("initArgs") or [],
                   locked_args=d.get("lockedArgs") or {}, cause=d.get("cause"), trace_context=d.get("traceContext"))


@dataclass(slots=True)
class Acknowledgement:
    """Result, completion or combined ack (docs/openwhisk.md §5.2–§5.3). `response` is the activation record or, shrunk,
    just its id. `instance` is set for completion and combined acks. `record` is the record `response` was made from,
    for a consumer in the same process (the in-process bus hands the ack over as it is): it is never encoded, and the
    controller then takes it instead of building the record again from `response`."""

    transid: list[Any]
    activation_id: str
    response: dict[str, Any] | str | None = None
    instance: dict[str, Any] | None = None
    is_system_error: bool = False
    record: Activation | None = field(default=None, compare=False, repr=False)

    @property
    def is_result(self) -> bool:
        return self.response is not None

    @property
    def is_completion(self) -> bool:
        return self.instance is not None

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"transid": self.transid}
        if self.response is not None:
            doc["response"] = self.response
        if self.instance is not None:
            doc["isSystemError"] = self.is_system_error
            doc["instance"] = self.instance
            if self.response is None:
                doc["activationId"] = self.activation_id
        return encode(doc)

    def shrunk(self) -> Acknowledgement:
        return Acknowledgement(self.transid, self.activation_id, self.activation_id if self.response is not None
                               else None, self.instance, self.is_system_error)

    @classmethod
    def read(cls, data: bytes | Message) -> Acknowledgement:
        """What a feed gave: the ack itself (the in-process bus), or its bytes."""
        return data if isinstance(data, Acknowledgement) else cls.from_bytes(encoded(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> Acknowledgement:
        d = decode(data)
        response = d.get("response")
        if isinstance(response, dict):
            activation_id = response.get("activationId", "")
        elif isinstance(response, str):
            activation_id = response
        else:
            activation_id = d.get("activationId", "")
        return cls(transid=d.get("transid") or ["", 0], activation_id=activation_id, response=response,
                   instance=d.get("instance"), is_system_error=bool(d.get("isSystemError", False)))


@dataclass(slots=True)
class PingMessage:
    instance: dict[str, Any]
    is_enabled: bool = True
    taken: int | None = 0            # beyond OpenWhisk: activations taken from the topic so far (progress signal)
    has_room: bool = True            # beyond OpenWhisk: the invoker's feed was waiting for work when it pinged

    def to_bytes(self) -> bytes:
        return encode({"name": self.instance, "isEnabled": self.is_enabled, "taken": self.taken,
                       "hasRoom": self.has_room})

    @classmethod
    def from_bytes(cls, data: bytes) -> PingMessage:
        """An OpenWhisk invoker's ping has neither `taken` nor `hasRoom`: progress unknown (None), never stalled."""
        d = decode(data)
        taken = d.get("taken")
        return cls(instance=d["name"], is_enabled=d.get("isEnabled", True) is not False,
                   taken=None if taken is None else int(taken), has_room=d.get("hasRoom", True) is not False)


def _user_status_code(result: Any) -> int | None:
    """`result.error.statusCode` or `result.statusCode` (docs/openwhisk.md §9.2); a present non-integer reads as 400."""
    if not isinstance(result, dict):
        return None
    error = result.get("error")
    code = error.get("statusCode") if isinstance(error, dict) and "statusCode" in error else result.get("statusCode")
    if code is None:
        return None
    return code if isinstance(code, int) and not isinstance(code, bool) else 400


def activation_event(record: Activation, *, source: str, user: dict[str, Any]) -> bytes:
    """The user-event of one activation on the `events` topic (docs/openwhisk.md §9.2: EventMessage with an Activation
    body), as OpenWhisk's user-events service consumes it."""
    notes = {a.get("key"): a.get("value") for a in record.annotations}
    result = record.response.result
    body: dict[str, Any] = {
        "name": notes.get("path", record.name), "activationId": record.activation_id,
        "statusCode": record.response.status_code, "duration": int(record.duration or 0),
        "waitTime": int(notes.get("waitTime") or 0), "initTime": int(notes.get("initTime") or 0),
        "kind": notes.get("kind", "unknown"), "conductor": bool(notes.get("conductor", False)),
        "memory": int((notes.get("limits") or {}).get("memory", 0)),
        "size": record.response.size or (len(compact(result)) if result is not None else 0),
    }
    if notes.get("causedBy"):
        body["causedBy"] = notes["causedBy"]
    code = _user_status_code(result)
    if code is not None:
        body["userDefinedStatusCode"] = code
    return _event(body, "Activation", source, user, record.end or record.start)


def metric_event(name: str, value: int, *, source: str, user: dict[str, Any]) -> bytes:
    """A `Metric` user-event (docs/openwhisk.md §9.2), e.g. `TimedRateLimit` when a throttle refuses an invocation."""
    return _event({"metricName": name, "metricValue": value}, "Metric", source, user, int(time.time() * 1000))


def _event(body: dict[str, Any], kind: str, source: str, user: dict[str, Any], timestamp: int) -> bytes:
    namespace = user.get("namespace") or {}
    return encode({"source": source, "body": body, "subject": user.get("subject", ""),
                   "namespace": namespace.get("name", ""), "userId": namespace.get("uuid", ""), "eventType": kind,
                   "timestamp": timestamp})
