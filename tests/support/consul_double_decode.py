"""Request decoding for the Consul double, as Consul's agent decodes (Consul's agent/structs).

Go's encoding/json matches object keys to struct fields case-insensitively and Consul forbids unknown fields, so
`name`, `Name` and `NAME` all land and `check_id` is a 400; a few snake_case aliases are declared by Consul. Durations
are Go duration strings ("10s", "1m30s", "500ms"); a bare JSON number is nanoseconds; "10" is a decode error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConsulError(Exception):
    """An HTTP error answer of the double: plain-text body, as Consul's."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def bad_request(text: str) -> ConsulError:
    return ConsulError(400, text)


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError with Go's message otherwise."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    pos, total = 0, 0.0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None:
            if re.fullmatch(r"[\d.]+", body[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return -total if text.startswith("-") else total


def _duration_field(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad_request(f"Request decode failed: cannot decode {_json_type(value)} as a duration")
    if isinstance(value, str):
        try:
            return go_duration(value)
        except ValueError as exc:
            raise bad_request(f"Request decode failed: {exc}") from None
    return value / 1e9                        # a bare number is nanoseconds


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}.get(
        type(value), "number")


# field name -> kind: str, int, bool, strlist, strmap, duration, object (kept as is), check, checks, weights
SERVICE_FIELDS = {
    "Kind": "str", "ID": "str", "Name": "str", "Tags": "strlist", "Address": "str", "TaggedAddresses": "object",
    "Meta": "strmap", "Port": "int", "SocketPath": "str", "Weights": "weights", "Check": "check", "Checks": "checks",
    "Token": "str", "EnableTagOverride": "bool", "Proxy": "object", "Connect": "object", "Namespace": "str",
    "Partition": "str", "Locality": "object",
}
SERVICE_ALIASES = {"enable_tag_override": "EnableTagOverride", "tagged_addresses": "TaggedAddresses"}
CHECK_FIELDS = {
    "CheckID": "str", "Name": "str", "Status": "str", "Notes": "str", "ScriptArgs": "strlist", "HTTP": "str",
    "Header": "object", "Method": "str", "Body": "str", "DisableRedirects": "bool", "TCP": "str", "TCPUseTLS": "bool",
    "UDP": "str", "Interval": "duration", "AliasNode": "str", "AliasService": "str", "DockerContainerID": "str",
    "Shell": "str", "GRPC": "str", "GRPCUseTLS": "bool", "H2PING": "str", "H2PingUseTLS": "bool", "OSService": "str",
    "TLSServerName": "str", "TLSSkipVerify": "bool", "Timeout": "duration", "TTL": "duration",
    "SuccessBeforePassing": "int", "FailuresBeforeWarning": "int", "FailuresBeforeCritical": "int",
    "ProxyHTTP": "str", "ProxyGRPC": "str", "DeregisterCriticalServiceAfter": "duration", "OutputMaxSize": "int",
    "ServiceID": "str",
}
CHECK_ALIASES = {
    "deregister_critical_service_after": "DeregisterCriticalServiceAfter", "args": "ScriptArgs",
    "script_args": "ScriptArgs", "docker_container_id": "DockerContainerID", "tls_server_name": "TLSServerName",
    "tls_skip_verify": "TLSSkipVerify", "grpc_use_tls": "GRPCUseTLS", "h2ping_use_tls": "H2PingUseTLS",
    "service_id": "ServiceID",
}
WEIGHTS_FIELDS = {"Passing": "int", "Warning": "int"}
CHECK_UPDATE_FIELDS = {"Status": "str", "Output": "str"}
# Checks the double cannot run: it has no prober, so only TTL checks (driven by their owner) are accepted.
_INTERVAL_KINDS = ("ScriptArgs", "HTTP", "TCP", "UDP", "GRPC", "H2PING", "OSService", "AliasService",
                   "DockerContainerID")


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("Request decode failed: EOF" if not raw.strip() else
                          "Request decode failed: invalid character in JSON body") from None


def decode(obj: Any, fields: dict[str, str], aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """Strict, case-insensitive decode of one JSON object into {canonical field: typed value}."""
    if not isinstance(obj, dict):
        raise bad_request(f"Request decode failed: json: cannot unmarshal {_json_type(obj)} into Go value of "
                          "type struct")
    lower = {name.lower(): name for name in fields}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in fields else (aliases or {}).get(key) or lower.get(key.lower())
        if name is None:
            raise bad_request(f'Request decode failed: json: unknown field "{key}"')
        out[name] = _typed(fields[name], name, value)
    return out


def _typed(kind: str, name: str, value: Any) -> Any:
    if value is None:
        return None
    ok = {
        "str": isinstance(value, str), "bool": isinstance(value, bool), "object": True,
        "int": isinstance(value, int) and not isinstance(value, bool),
        "strlist": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "strmap": isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
    }
    if kind == "duration":
        return _duration_field(value)
    if kind == "check":
        return decode(value, CHECK_FIELDS, CHECK_ALIASES)
    if kind == "checks":
        if not isinstance(value, list):
            raise bad_request(f"Request decode failed: json: cannot unmarshal {_json_type(value)} into field {name}")
        return [decode(v, CHECK_FIELDS, CHECK_ALIASES) for v in value]
    if kind == "weights":
        return decode(value, WEIGHTS_FIELDS)
    if not ok[kind]:
        raise bad_request(f"Request decode failed: json: cannot unmarshal {_json_type(value)} into field {name}")
    return value


@dataclass(slots=True)
class CheckDef:
    check_id: str
    name: str
    status: str | None
    notes: str
    ttl: float
    deregister_after: float | None


@dataclass(slots=True)
class ServiceDef:
    id: str
    name: str
    tags: list[str]
    address: str
    port: int
    meta: dict[str, str]
    weights: dict[str, int]
    enable_tag_override: bool
    checks: list[CheckDef] = field(default_factory=list)


_META_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_meta(meta: dict[str, str]) -> None:
    if len(meta) > 64:
        raise bad_request("Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs")
    for key, value in meta.items():
        problem = ("Key cannot be blank" if not key else
                   "Key contains invalid characters" if not _META_KEY.match(key) else
                   "Key is too long (limit: 128 characters)" if len(key) > 128 else
                   "Key prefix 'consul-' is reserved for internal use" if key.startswith("consul-") else
                   "Value is too long (limit: 512 characters)" if len(value) > 512 else None)
        if problem:
            raise bad_request(f"Invalid Service Meta: Couldn't load metadata pair ('{key}', '{value}'): {problem}")


def service_definition(raw: bytes, deregister_min_s: float) -> ServiceDef:
    """Decode and validate PUT /v1/agent/service/register (Consul's agent/agent_endpoint.go)."""
    body = decode(parse_body(raw), SERVICE_FIELDS, SERVICE_ALIASES)
    name = body.get("Name") or ""
    if not name:
        raise bad_request("Missing service name")
    address = body.get("Address") or ""
    if address in ("0.0.0.0", "::", "[::]"):
        raise bad_request("Invalid service address")
    meta = body.get("Meta") or {}
    _check_meta(meta)
    service_id = body.get("ID") or name
    weights = {"Passing": 1, "Warning": 1} | (body.get("Weights") or {})
    raw_checks = [c for c in [body.get("Check")] + list(body.get("Checks") or []) if c and any(
        v not in (None, "", 0, [], {}, False) for v in c.values())]     # an all-empty check object is ignored
    checks = []
    for i, c in enumerate(raw_checks, start=1):
        status = c.get("Status") or None
        if status is not None and status not in ("passing", "warning", "critical"):
            raise bad_request("Status for checks must 'passing', 'warning', 'critical'")
        ttl, interval = c.get("TTL") or 0.0, c.get("Interval") or 0.0
        if ttl > 0 and interval > 0:
            raise bad_request("Invalid check: Interval and TTL cannot both be specified")
        if any(c.get(kind) for kind in _INTERVAL_KINDS) or interval > 0:
            raise bad_request("Invalid check: this Consul double runs TTL checks only")
        if ttl <= 0:
            raise bad_request("Invalid check: TTL must be > 0 for TTL checks")
        deregister = c.get("DeregisterCriticalServiceAfter")
        if deregister is not None and deregister > 0:
            deregister = max(deregister, deregister_min_s)   # Consul raises it to 1m and logs a warning
        else:
            deregister = None
        default_id = f"service:{service_id}" + (f":{i}" if len(raw_checks) > 1 else "")
        checks.append(CheckDef(c.get("CheckID") or default_id, c.get("Name") or f"Service '{name}' check",
                               status, c.get("Notes") or "", ttl, deregister))
    return ServiceDef(service_id, name, list(body.get("Tags") or []), address, body.get("Port") or 0, meta, weights,
                      bool(body.get("EnableTagOverride")), checks)


def wait_time(query: Mapping[str, str]) -> float:
    """Seconds a blocking query may wait: `wait`, 5m when absent, at most 10m."""
    text = query.get("wait")
    try:
        return min(go_duration(text), 600.0) if text else 300.0
    except ValueError:
        raise bad_request("Invalid wait time") from None


def go_bool(text: str) -> bool:
    if text in ("", "1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request("Invalid value for ?passing")
