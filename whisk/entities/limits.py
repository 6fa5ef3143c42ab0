"""Action limits and namespace limits (docs/openwhisk.md §2.3, §1.11, §8; OpenWhisk `E/*Limit.scala`,
`E/Identity.scala`).

Entities do not read settings: the caller passes a `SystemLimits` (built from `Settings` by the controller). A
namespace's limits document (`UserLimits`) may narrow the system ranges; `UserLimits.effective` clamps it into them.
Units: memory and logs in MB, timeout in ms, sizes in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from whisk.entities.errors import Invalid

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bounds:
    min: int
    max: int
    std: int


@dataclass(frozen=True, slots=True)
class SystemLimits:
    """The deployment's limits (from Settings): action limit ranges, throttles and sizes."""

    memory: Bounds = Bounds(128, 512, 256)
    timeout: Bounds = Bounds(100, 300_000, 60_000)
    logs: Bounds = Bounds(0, 10, 10)
    concurrency: Bounds = Bounds(1, 1, 1)
    invocations_per_minute: int = 60
    concurrent_invocations: int = 30
    fires_per_minute: int = 60
    sequence_length: int = 50
    max_parameter_size: int = MB
    max_payload_size: int = MB
    max_exec_size: int = 48 * MB
    max_code_unpacked: int = 256 * MB          # what a zip may unpack to (WHISK_LIMIT_MAX_CODE_UNPACKED_MB)

    def standard_action_limits(self) -> ActionLimits:
        return ActionLimits(self.timeout.std, self.memory.std, self.logs.std, self.concurrency.std)


@dataclass(frozen=True, slots=True)
class ActionLimits:
    timeout: int
    memory: int
    logs: int
    concurrency: int
    instances: int | None = None

    def to_json(self) -> dict[str, int]:
        out = {"timeout": self.timeout, "memory": self.memory, "logs": self.logs, "concurrency": self.concurrency}
        if self.instances is not None:
            out["instances"] = self.instances
        return out

    @classmethod
    def from_doc(cls, value: Any, standard: ActionLimits) -> ActionLimits:
        """A stored document's limits; fields missing from old documents take the standard values."""
        value = value if isinstance(value, dict) else {}
        return cls(int(value.get("timeout", standard.timeout)), int(value.get("memory", standard.memory)),
                   int(value.get("logs", standard.logs)), int(value.get("concurrency", standard.concurrency)),
                   value.get("instances"))


def _whole(value: Any, what: str, *, sized: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        # OpenWhisk's texts: "intra concurrency limit must be whole number" but "concurrency limit malformed"
        raise Invalid(f"{what.removeprefix('intra ')} limit malformed")
    if isinstance(value, float) and not value.is_integer():
        raise Invalid(f"{what} limit must be whole number")
    if sized and value < 0:
        raise Invalid("a negative size of an object is not allowed.")
    return int(value)


@dataclass(frozen=True, slots=True)
class ActionLimitsPut:
    """The `limits` of an action PUT: each field optional, whole numbers only."""

    timeout: int | None = None
    memory: int | None = None
    logs: int | None = None
    concurrency: int | None = None
    instances: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> ActionLimitsPut:
        if not isinstance(value, dict):         # spray's text: its reader's first field is `timeout`
            raise Invalid("Object expected in field 'timeout'")

        def get(key: str, what: str, sized: bool = False) -> int | None:
            v = value.get(key)
            return None if v is None else _whole(v, what, sized=sized)

        instances = get("instances", "instance concurrency")
        if instances is not None and instances < 0:
            raise Invalid("Action container concurrency must be greater than or equal to 0.")
        return cls(get("timeout", "time"), get("memory", "memory", True), get("logs", "log", True),
                   get("concurrency", "intra concurrency"), instances)

    def check(self, allowed: NamespaceLimits) -> None:
        """Each given limit must lie in the namespace's range (OpenWhisk checks memory, timeout, logs, concurrency)."""
        if self.memory is not None:
            _check_range(self.memory, allowed.min_memory, allowed.max_memory, *_MEMORY)
        if self.timeout is not None:
            _check_range(self.timeout, allowed.min_timeout, allowed.max_timeout, *_TIMEOUT)
        if self.logs is not None:
            _check_range(self.logs, allowed.min_logs, allowed.max_logs, *_LOGS)
        if self.concurrency is not None:
            _check_range(self.concurrency, allowed.min_concurrency, allowed.max_concurrency, *_CONCURRENCY)
        if self.instances is not None and self.instances > allowed.concurrent_invocations:
            raise Invalid("Max action instance concurrency must not exceed your namespace concurrency of "
                          f"{allowed.concurrent_invocations}.")

    def apply(self, base: ActionLimits) -> ActionLimits:
        return ActionLimits(
            self.timeout if self.timeout is not None else base.timeout,
            self.memory if self.memory is not None else base.memory,
            self.logs if self.logs is not None else base.logs,
            self.concurrency if self.concurrency is not None else base.concurrency,
            self.instances if self.instances is not None else base.instances,
        )


def _check_range(value: int, low: int, high: int, above: str, below: str) -> None:
    if value > high:
        raise Invalid(above.format(value, high))
    if value < low:
        raise Invalid(below.format(value, low))


# OpenWhisk's texts for an action limit out of a namespace's range: (above, below).
_MEMORY = ("memory size {} MB exceeds allowed threshold of {} MB", "memory size {} MB below allowed threshold of {} MB")
_TIMEOUT = ("duration {} milliseconds exceeds allowed threshold of {} milliseconds",
            "duration {} milliseconds below allowed threshold of {} milliseconds")
_LOGS = ("log size {} MB exceeds allowed threshold of {} MB", "log size {} MB below allowed threshold of {} MB")
_CONCURRENCY = ("concurrency {} exceeds allowed threshold of {}", "concurrency {} below allowed threshold of {}")


def check_runnable(limits: Mapping[str, Any], bounds: Mapping[str, Any]) -> None:
    """Whether the invoking namespace may run an action with these `limits` (a stored action's), `bounds` being what
    the activation message's `user.limits` gives of the namespace's (`NamespaceLimits.invoker_limits`; one absent
    bounds nothing): OpenWhisk's invoker checks each activation so, in this order (`ActionLimits.checkLimits`), so
    another namespace's published action, or one made before its own namespace's limits were narrowed, may be
    refused (Invalid, the application error's text)."""
    for field, name, texts in (("timeout", "ActionTimeout", _TIMEOUT), ("memory", "ActionMemory", _MEMORY),
                               ("concurrency", "ActionConcurrency", _CONCURRENCY), ("logs", "ActionLogs", _LOGS)):
        value, low, high = limits.get(field), bounds.get(f"min{name}"), bounds.get(f"max{name}")
        if isinstance(value, int):
            _check_range(value, low if isinstance(low, int) else value, high if isinstance(high, int) else value,
                         *texts)


_SIZE = re.compile(r"\s*(\d+)\s*(B|KB|MB|GB|K|M|G|b|kb|mb|gb|k|m|g)?\s*")
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": MB, "mb": MB, "g": 1024 * MB, "gb": 1024 * MB}


def parse_size(value: Any) -> int:
    """A byte size: an integer (bytes) or OpenWhisk's size string ("1 MB", "512 KB", "1m")."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (m := _SIZE.fullmatch(value)):
        return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    raise Invalid(f"size malformed: {value!r}")


def format_size(n: int) -> str:
    for unit, factor in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)):
        if n and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


# The limits document's fields (OpenWhisk UserLimits), JSON name → python name.
_USER_FIELDS = {
    "invocationsPerMinute": "invocations_per_minute", "concurrentInvocations": "concurrent_invocations",
    "firesPerMinute": "fires_per_minute", "allowedKinds": "allowed_kinds", "storeActivations": "store_activations",
    "minActionMemory": "min_memory", "maxActionMemory": "max_memory", "minActionLogs": "min_logs",
    "maxActionLogs": "max_logs", "minActionTimeout": "min_timeout", "maxActionTimeout": "max_timeout",
    "minActionConcurrency": "min_concurrency", "maxActionConcurrency": "max_concurrency",
    "maxParameterSize": "max_parameter_size", "maxPayloadSize": "max_payload_size",
    "truncationSize": "truncation_size", "warmedContainerKeepingCount": "warmed_container_keeping_count",
    "warmedContainerKeepingTimeout": "warmed_container_keeping_timeout", "maxActionInstances": "max_action_instances",
}
_SIZES = {"max_parameter_size", "max_payload_size", "truncation_size"}
# The bounds on action limits an invoker applies (`NamespaceLimits.invoker_limits`), besides the payload limit.
_INVOKER_FIELDS = [(key, name) for key, name in _USER_FIELDS.items() if key.startswith(("minAction", "maxAction"))
                   and key != "maxActionInstances"]
_RANGES = [(f"min{what}", f"max{what}") for what in ("ActionMemory", "ActionLogs", "ActionTimeout",
                                                     "ActionConcurrency")]


@dataclass(frozen=True, slots=True)
class UserLimits:
    """A namespace's overrides (the "{ns}/limits" document); None = the system default."""

    invocations_per_minute: int | None = None
    concurrent_invocations: int | None = None
    fires_per_minute: int | None = None
    allowed_kinds: frozenset[str] | None = None
    store_activations: bool | None = None
    min_memory: int | None = None
    max_memory: int | None = None
    min_logs: int | None = None
    max_logs: int | None = None
    min_timeout: int | None = None
    max_timeout: int | None = None
    min_concurrency: int | None = None
    max_concurrency: int | None = None
    max_parameter_size: int | None = None
    max_payload_size: int | None = None
    truncation_size: int | None = None
    warmed_container_keeping_count: int | None = None
    warmed_container_keeping_timeout: str | None = None
    max_action_instances: int | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> UserLimits:
        """Parse a limits document; raises Invalid on a malformed field (admin input)."""
        values: dict[str, Any] = {}
        for key, value in (doc or {}).items():
            name = _USER_FIELDS.get(key)
            if name is None or value is None:
                continue
            if name in _SIZES:
                values[name] = parse_size(value)
            elif name == "allowed_kinds":
                if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
                    raise Invalid(f"{key} must be an array of kinds")
                values[name] = frozenset(value)
            elif name == "store_activations":
                if not isinstance(value, bool):
                    raise Invalid(f"{key} must be a boolean")
                values[name] = value
            elif name == "warmed_container_keeping_timeout":
                values[name] = str(value)
            else:
                values[name] = _whole(value, key)
        return cls(**values)

    def check(self) -> UserLimits:
        """Refuse what an operator cannot have meant (`whisk admin limits set`; wskadmin takes no negative throttle):
        a negative count or size, a minimum above its maximum. Servers read such a document as it is."""
        for key, name in _USER_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise Invalid(f"{key} must not be negative.")
        for low, high in _RANGES:
            a, b = getattr(self, _USER_FIELDS[low]), getattr(self, _USER_FIELDS[high])
            if a is not None and b is not None and a > b:
                raise Invalid(f"{low} ({a}) must not be above {high} ({b}).")
        return self

    @classmethod
    def lenient(cls, doc: dict[str, Any] | None) -> UserLimits:
        """As OpenWhisk reads identities: a malformed limits document means standard limits."""
        try:
            return cls.from_json(doc)
        except Invalid:
            return cls()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name in _USER_FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if name in _SIZES:
                value = format_size(value)
            elif name == "allowed_kinds":
                value = sorted(value)
            out[key] = value
        return out

    def effective(self, system: SystemLimits) -> NamespaceLimits:
        def low(override: int | None, b: Bounds) -> int:
            return max(override if override is not None else b.min, b.min)

        def high(override: int | None, b: Bounds) -> int:
            return min(override if override is not None else b.max, b.max)

        def cap(override: int | None, ceiling: int) -> int:
            return min(override if override is not None else ceiling, ceiling)

        concurrent = self.concurrent_invocations if self.concurrent_invocations is not None \
            else system.concurrent_invocations
        return NamespaceLimits(
            invocations_per_minute=self.invocations_per_minute if self.invocations_per_minute is not None
            else system.invocations_per_minute,
            concurrent_invocations=concurrent,
            fires_per_minute=self.fires_per_minute if self.fires_per_minute is not None else system.fires_per_minute,
            min_memory=low(self.min_memory, system.memory), max_memory=high(self.max_memory, system.memory),
            min_timeout=low(self.min_timeout, system.timeout), max_timeout=high(self.max_timeout, system.timeout),
            min_logs=low(self.min_logs, system.logs), max_logs=high(self.max_logs, system.logs),
            min_concurrency=low(self.min_concurrency, system.concurrency),
            max_concurrency=high(self.max_concurrency, system.concurrency),
            max_parameter_size=cap(self.max_parameter_size, system.max_parameter_size),
            max_payload_size=cap(self.max_payload_size, system.max_payload_size),
            max_action_instances=self.max_action_instances if self.max_action_instances is not None else concurrent,
            allowed_kinds=self.allowed_kinds,
            store_activations=self.store_activations if self.store_activations is not None else True,
            sequence_length=system.sequence_length,
            max_exec_size=system.max_exec_size,
            overrides=self,
        )


@dataclass(frozen=True, slots=True)
class NamespaceLimits:
    """The limits in force for one namespace: system defaults overlaid by its limits document."""

    invocations_per_minute: int
    concurrent_invocations: int
    fires_per_minute: int
    min_memory: int
    max_memory: int
    min_timeout: int
    max_timeout: int
    min_logs: int
    max_logs: int
    min_concurrency: int
    max_concurrency: int
    max_parameter_size: int
    max_payload_size: int
    max_action_instances: int
    allowed_kinds: frozenset[str] | None
    store_activations: bool
    sequence_length: int
    max_exec_size: int
    overrides: UserLimits = UserLimits()
    # `invoker_limits()`, as every activation message carries it: made once with the limits (an identity is cached,
    # and reused by each of its invokes), not on the invoke path.
    invoker: tuple[tuple[str, Any], ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "invoker", tuple(self.invoker_limits().items()))

    @property
    def blocked(self) -> bool:
        """OpenWhisk's blockedNamespaces view: a namespace throttled to zero may not run anything
        (docs/openwhisk.md §2.8)."""
        return self.invocations_per_minute == 0 or self.concurrent_invocations == 0

    def kind_allowed(self, kind: str, whitelist: frozenset[str] | None = None,
                     canonical: Callable[[str], str] = str) -> bool:
        """OpenWhisk's KindRestrictor: the union of the namespace's and the system's lists; empty = all kinds.
        `canonical` names a listed kind as actions are stored with it (an alias or `nodejs:default` resolved)."""
        kinds = (self.allowed_kinds or frozenset()) | (whitelist or frozenset())
        return not kinds or kind in kinds or kind in {canonical(k) for k in kinds}

    def invoker_limits(self) -> dict[str, Any]:
        """What an invoker applies of this namespace's limits to each action it runs for it, as the activation
        message's `user.limits` carries them (OpenWhisk's invoker reads them there): the bounds on an action's own
        limits and the payload limit, which bounds a result too. Only those the namespace's document sets, each as
        in force here (within the system's), so that an invoker needs no settings of its own to apply them."""
        # Read for every activation (the message's user): the fields the document sets, found without rendering it.
        given = self.overrides
        out: dict[str, Any] = {key: getattr(self, name) for key, name in _INVOKER_FIELDS
                               if getattr(given, name) is not None}
        if given.max_payload_size is not None:
            out["maxPayloadSize"] = format_size(self.max_payload_size)
        return out

    def to_json(self) -> dict[str, Any]:
        """The body of GET /namespaces/{ns}/limits (docs/openwhisk.md §1.11)."""
        out = self.overrides.to_json()
        out.update({
            "invocationsPerMinute": self.invocations_per_minute,
            "concurrentInvocations": self.concurrent_invocations,
            "firesPerMinute": self.fires_per_minute,
            "minActionMemory": self.min_memory, "maxActionMemory": self.max_memory,
            "minActionLogs": self.min_logs, "maxActionLogs": self.max_logs,
            "minActionTimeout": self.min_timeout, "maxActionTimeout": self.max_timeout,
            "minActionConcurrency": self.min_concurrency, "maxActionConcurrency": self.max_concurrency,
            "maxParameterSize": format_size(self.max_parameter_size),
            # CTL/Limits.scala answers the namespace's concurrentInvocations here, whatever the document says.
            "maxActionInstances": self.concurrent_invocations,
        })
        return out


def field_names() -> list[str]:
    """The limits document's JSON field names (for admin tools)."""
    return list(_USER_FIELDS)


assert {f.name for f in fields(UserLimits)} == set(_USER_FIELDS.values())
