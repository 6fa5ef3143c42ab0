"""Activation records (docs/openwhisk.md §2.7, §1.10; OpenWhisk `E/WhiskActivation.scala`, `E/ActivationResult.scala`,
`E/ActivationId.scala`).

Stored form: `response = {statusCode, result?, size?}`. Every API read uses the extended form, which drops
`statusCode` and adds `success` and `status` (a word with spaces); list summaries carry `statusCode` on top.

A record is born in one of four ways, each a constructor of `Activation`: an action's run (`of_run`, the invoker),
an activation that could not run or was lost (`whisk_error`, invoker and controller), a trigger fire (`of_trigger`)
and a sequence or conductor composition (`of_composition`, the controller). The constructors own the annotations
each kind of record carries, so the stored shape is written down once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from whisk.entities.errors import Invalid

Annotations = list[dict[str, Any]]
# A primitive record's `limits` annotation: the action's limits as OpenWhisk's ActionLimits writes them, in its field
# order, `instances` only when the action sets it (`ContainerProxy.constructWhiskActivation`).
LIMITS_FIELDS = ("timeout", "memory", "logs", "concurrency", "instances")

SUCCESS, APPLICATION_ERROR, DEVELOPER_ERROR, WHISK_ERROR = 0, 1, 2, 3
STATUS_WORDS = ("success", "application error", "action developer error", "whisk internal error")
# The same statuses as label values: openwhisk_action_status{status=...} (metrics.py).
STATUS_IDS = ("success", "application_error", "action_developer_error", "whisk_internal_error")


def status_word(code: int) -> str:
    return STATUS_WORDS[code]


def parse_activation_id(text: str) -> str:
    if len(text) != 32:
        raise Invalid(f"Activation id length is {len(text)} but must be 32.")
    if any(c not in "0123456789abcdef" for c in text):
        raise Invalid("The activation id is not valid.")
    return text


class _RandomBytes:
    """16 random bytes at a time from urandom read 4 KB at once: one system call per 256 ids instead of one per id.
    Still the kernel's CSPRNG; a forked child starts on fresh bytes, never on its parent's."""

    _CHUNK = 4096

    def __init__(self) -> None:
        self._bytes = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._bytes, self._at = b"", 0

    def __call__(self) -> int:
        at = self._at
        if at + 16 > len(self._bytes):
            self._bytes, at = os.urandom(self._CHUNK), 0
        self._at = at + 16
        return int.from_bytes(self._bytes[at:at + 16])


_random128 = _RandomBytes()
_V7_RANDOM = ((1 << 80) - 1) & ~((0xF << 76) | (0x3 << 62))   # below the timestamp, less version and variant bits
_V7_SET = (0x7 << 76) | (0x2 << 62)                            # version 7, RFC 9562 variant


def new_activation_id() -> str:
    """A version-7 UUID as 32 hex digits (OpenWhisk's ActivationId): the Unix time in milliseconds, then 74 random
    bits. Ids made close in time sort together, so a batch of records lands in the store's id index on a page or two
    instead of one page per record (SQLite: 11-16 -> 5 us a row, docs/performance.md). No UUID object: 0.7 us, where
    uuid.uuid4().hex takes 1.5 us."""
    return f"{(time.time_ns() // 1_000_000) << 80 | (_random128() & _V7_RANDOM) | _V7_SET:032x}"


def accepted_ms(activation_id: str) -> int | None:
    """When whisk made this activation id (the time `new_activation_id` wrote into it), or None for an id of another
    kind (OpenWhisk's are random)."""
    if len(activation_id) != 32 or activation_id[12] != "7":
        return None
    try:
        at = int(activation_id[:12], 16)
    except ValueError:
        return None
    return at if 0 < at <= time.time_ns() // 1_000_000 else None


def random_hex32() -> str:
    """128 random bits as 32 hex digits (transaction ids)."""
    return f"{_random128():032x}"


def reply_size(text: str) -> int:
    """A reply's `size` as OpenWhisk records it: the length of its text as a Java string, in UTF-16 units (a
    character beyond the BMP counts twice)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class ActivationResponse:
    status_code: int = SUCCESS
    result: Any = None
    size: int | None = None

    @classmethod
    def success(cls, result: Any = None, size: int | None = None) -> ActivationResponse:
        return cls(SUCCESS, result, size)

    @classmethod
    def error(cls, code: int, value: Any, size: int | None = None) -> ActivationResponse:
        """Errors are always wrapped as `{"error": value}`."""
        if code not in (APPLICATION_ERROR, DEVELOPER_ERROR, WHISK_ERROR):
            raise ValueError(f"not an error status code: {code}")
        return cls(code, {"error": value}, size)

    @property
    def is_success(self) -> bool:
        return self.status_code == SUCCESS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"statusCode": self.status_code}
        if self.result is not None:
            out["result"] = self.result
        if self.size is not None:
            out["size"] = self.size
        return out

    def extended(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.result is not None:
            out["result"] = self.result
        if self.size is not None:
            out["size"] = self.size
        out.update(success=self.is_success, status=status_word(self.status_code))
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> ActivationResponse:
        value = value or {}
        code = value.get("statusCode", SUCCESS)
        return cls(code if code in (0, 1, 2, 3) else WHISK_ERROR, value.get("result"), value.get("size"))


@dataclass(frozen=True, slots=True)
class Activation:
    ENTITY_TYPE: ClassVar[str] = "activation"

    namespace: str                      # the invoking namespace
    name: str                           # action or trigger name, without package
    subject: str
    activation_id: str
    start: int
    end: int = 0                        # 0 for trigger activations
    response: ActivationResponse = ActivationResponse()
    logs: tuple[str, ...] = ()
    version: str = "0.0.1"
    publish: bool = False
    annotations: list[dict[str, Any]] = field(default_factory=list, hash=False)
    cause: str | None = None
    duration: int | None = None

    # --- how a record is born ---------------------------------------------------------------------------------------

    @classmethod
    def of_run(cls, *, namespace: str, name: str, subject: str, activation_id: str, version: str, path: str,
               kind: str, binding: str | None, cause: str | None, start: int, end: int, wait_ms: int,
               init_ms: int | None, timed_out: bool, limits: dict[str, Any], response: ActivationResponse,
               logs: tuple[str, ...]) -> Activation:
        """An action the invoker ran (OpenWhisk's `ContainerProxy.constructWhiskActivation`)."""
        annotations: Annotations = [
            {"key": "path", "value": path}, {"key": "waitTime", "value": max(0, wait_ms)},
            {"key": "kind", "value": kind}, {"key": "timeout", "value": timed_out},
            {"key": "limits", "value": {k: limits[k] for k in LIMITS_FIELDS if limits.get(k) is not None}},
        ]
        if init_ms is not None:
            annotations.append({"key": "initTime", "value": init_ms})
        if binding:
            annotations.append({"key": "binding", "value": binding})
        if cause:
            annotations.append({"key": "causedBy", "value": "sequence"})
        return cls(namespace, name, subject, activation_id, start, end, response, logs, version,
                   annotations=annotations, cause=cause or None, duration=end - start)

    @classmethod
    def whisk_error(cls, *, namespace: str, name: str, subject: str, activation_id: str, version: str, path: str,
                    binding: str | None, at: int, error: str, status_code: int = WHISK_ERROR,
                    wait_ms: int | None = None, cause: str | None = None) -> Activation:
        """An activation that never ran, or whose run was lost: zero duration, kind unknown, `{"error": error}`.
        `wait_ms` is known only to the invoker that took the message."""
        annotations: Annotations = [{"key": "path", "value": path}, {"key": "kind", "value": "unknown"}]
        if cause:
            # A component's, as OpenWhisk's fallback record marks one (`InvokerReactive.generateFallbackActivation`).
            annotations.append({"key": "causedBy", "value": "sequence"})
        if wait_ms is not None:
            annotations.append({"key": "waitTime", "value": max(0, wait_ms)})
        if binding:
            annotations.append({"key": "binding", "value": binding})
        return cls(namespace, name, subject, activation_id, at, at, ActivationResponse.error(status_code, error),
                   (), version, annotations=annotations, cause=cause or None, duration=0)

    @classmethod
    def of_trigger(cls, *, namespace: str, name: str, subject: str, activation_id: str, version: str, start: int,
                   payload: dict[str, Any] | None, logs: tuple[str, ...]) -> Activation:
        """A trigger fire: no end, the payload as its result, one log line per rule."""
        return cls(namespace, name, subject, activation_id, start, 0,
                   ActivationResponse.success(payload if payload is not None else {}), logs, version)

    @classmethod
    def of_composition(cls, *, namespace: str, name: str, subject: str, activation_id: str, version: str,
                       path: str, binding: str | None, cause: str | None, conductor: bool,
                       limits: dict[str, Any] | None, wait_ms: int, start: int, end: int, duration: int,
                       response: ActivationResponse, logs: tuple[str, ...]) -> Activation:
        """A sequence or conductor composition the controller ran: its components' ids as logs, `duration` the sum
        of theirs, `limits` with the largest memory among them (None when no component reported one)."""
        annotations: Annotations = [
            {"key": "topmost", "value": cause is None}, {"key": "path", "value": path},
            {"key": "kind", "value": "sequence"},
        ]
        if conductor:
            annotations.append({"key": "conductor", "value": True})
        if cause is not None:
            annotations.append({"key": "causedBy", "value": "sequence"})
        if binding:
            annotations.append({"key": "binding", "value": binding})
        if limits is not None:
            annotations.append({"key": "limits", "value": limits})
        annotations.append({"key": "waitTime", "value": max(0, wait_ms)})
        return cls(namespace, name, subject, activation_id, start, max(start, end), response, logs, version,
                   annotations=annotations, cause=cause, duration=duration)

    # --- reading --------------------------------------------------------------------------------------------------

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.activation_id}"

    @property
    def run_duration(self) -> int:
        """What a step adds to its composition's duration: the stored duration, else end - start."""
        return self.duration if self.duration is not None else max(0, self.end - self.start)

    @property
    def memory(self) -> int | None:
        """The memory limit the record's `limits` annotation names, if any."""
        limits = self.annotation("limits")
        memory = limits.get("memory") if isinstance(limits, dict) else None
        return memory if isinstance(memory, int) else None

    def without_logs(self) -> Activation:
        return replace(self, logs=()) if self.logs else self     # frozen: the record itself when it has none

    def annotation(self, key: str, default: Any = None) -> Any:
        for a in self.annotations:
            if a.get("key") == key:
                return a.get("value")
        return default

    def to_doc(self) -> dict[str, Any]:
        """The stored record (`_id` = "namespace/activationId")."""
        doc: dict[str, Any] = {
            "_id": self.doc_id, "entityType": self.ENTITY_TYPE, "namespace": self.namespace, "name": self.name,
            "subject": self.subject, "activationId": self.activation_id, "start": self.start, "end": self.end,
            "response": self.response.to_json(), "logs": list(self.logs), "version": self.version,
            "publish": self.publish, "annotations": list(self.annotations),
        }
        if self.duration is not None:
            doc["duration"] = self.duration
        if self.cause is not None:
            doc["cause"] = self.cause
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Activation:
        return cls(doc.get("namespace", ""), doc.get("name", ""), doc.get("subject", ""),
                   doc.get("activationId", ""), int(doc.get("start") or 0), int(doc.get("end") or 0),
                   ActivationResponse.from_json(doc.get("response")), tuple(doc.get("logs") or ()),
                   doc.get("version", "0.0.1"), bool(doc.get("publish", False)), list(doc.get("annotations") or ()),
                   doc.get("cause"), doc.get("duration"))

    def _duration(self) -> int:
        return self.duration if self.duration is not None else self.end - self.start

    def extended_json(self) -> dict[str, Any]:
        """Every API read and blocking invoke answer: record fields + extended response; `duration` when ended."""
        out: dict[str, Any] = {
            "namespace": self.namespace, "name": self.name, "subject": self.subject,
            "activationId": self.activation_id, "start": self.start,
        }
        if self.end != 0:
            out["end"] = self.end
        if self.cause is not None:
            out["cause"] = self.cause
        out.update(response=self.response.extended(), logs=list(self.logs), version=self.version,
                   publish=self.publish, annotations=list(self.annotations))
        if self.end != 0:
            out["duration"] = self._duration()
        return out

    def summary_json(self) -> dict[str, Any]:
        """A list entry without `docs`: no response, no logs; end/duration/statusCode only when ended. As the
        activations view computes it, `duration` is end - start here (a sequence stores the sum of its parts)."""
        out: dict[str, Any] = {
            "namespace": self.namespace, "name": self.name, "version": self.version, "publish": self.publish,
            "annotations": list(self.annotations), "activationId": self.activation_id, "start": self.start,
        }
        if self.cause is not None:
            out["cause"] = self.cause
        if self.end != 0:
            out.update(end=self.end, duration=self.end - self.start, statusCode=self.response.status_code)
        return out

    def result_json(self) -> dict[str, Any]:
        return self.response.extended()

    def logs_json(self) -> dict[str, Any]:
        return {"logs": list(self.logs)}
