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


def _object(data: bytes) -> dict[str, Any]:
    """A message's JSON object. Anything else a foreign or old producer may have put on a topic (an array, a string,
    bytes that are no JSON, arrays nested past Python's recursion limit) is malformed: ValueError, which a consumer
    skips with a log line."""
    try:
        d = decode(data)
    except RecursionError:              # whisk nests none past MAX_DEPTH (500); RecursionError ended the consumer
        raise ValueError("a message nested too deep") from None
    if not isinstance(d, dict):
        raise ValueError(f"a message is a JSON object, not {type(d).__name__}")
    return d


def _field(d: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """`d[key]` when it has the type the consumers count on, `default` when absent or null; else ValueError (a
    field of the wrong type ended the consumer that read it, or the activation's task, with no record)."""
    value = d.get(key)
    if value is None:
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):   # JSON's true is no number
        raise ValueError(f"malformed {key}: {type(value).__name__}")
    return value


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
    content: Any = None              # merged arguments; a sequence's array result passed on as it is
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
        """OpenWhisk's fields, each of the type the invoker counts on (unknown fields are ignored); the required
        ones missing or any of the wrong type is malformed (ValueError)."""
        d = _object(data)
        transid = _field(d, "transid", list)
        action = _field(d, "action", dict)
        user = _field(d, "user", dict)
        namespace = _field(user or {}, "namespace", dict) or {}
        if not (transid and isinstance(transid[0], str) and len(transid) > 1 and isinstance(transid[1], int | float)
                and action and isinstance(action.get("path"), str) and isinstance(action.get("name"), str)
                and isinstance(namespace.get("name"), str)):
            raise ValueError("an activation message needs transid, action, user.namespace")
        _field(user, "limits", dict)
        return cls(transid=transid, action=action, revision=_field(d, "revision", str), user=user,
                   activation_id=_field(d, "activationId", str) or _missing("activationId"),
                   root_controller=_field(d, "rootControllerIndex", dict) or _missing("rootControllerIndex"),
                   blocking=bool(d.get("blocking")), content=_field(d, "content", (dict, list)),
                   init_args=_field(d, "initArgs", list, []), locked_args=_field(d, "lockedArgs", dict, {}),
                   cause=_field(d, "cause", str), trace_context=_field(d, "traceContext", dict))


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
        """An ack names its activation (the record's `activationId`, the shrunk response, or `activationId`); its
        `instance` is an InstanceId object. Otherwise it is malformed (ValueError)."""
        d = _object(data)
        response = _field(d, "response", (dict, str))
        instance = _field(d, "instance", dict)
        if isinstance(response, dict):
            activation_id = response.get("activationId")
        else:
            activation_id = response if isinstance(response, str) else d.get("activationId")
        if not isinstance(activation_id, str) or not activation_id:
            raise ValueError("an ack names no activation")
        if instance is not None:
            _field(instance, "instance", int)
        return cls(transid=_field(d, "transid", list) or ["", 0], activation_id=activation_id, response=response,
                   instance=instance, is_system_error=bool(d.get("isSystemError", False)))


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
        d = _object(data)
        instance = _field(d, "name", dict) or _missing("name")
        if _field(instance, "instance", int, -1) < 0:
            raise ValueError("a ping names no invoker instance")
        return cls(instance=instance, is_enabled=d.get("isEnabled", True) is not False,
                   taken=_field(d, "taken", int), has_room=d.get("hasRoom", True) is not False)


def _missing(key: str) -> Any:
    raise ValueError(f"no {key}")


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
