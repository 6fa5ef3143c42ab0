"""Invoker discovery through Consul (python-consul2's asyncio client; its quirks: docs/testing.md, Consul).

Each invoker is an instance of the service `whisk-invoker` (id `whisk-invoker-<n>`, meta `instance` and
`user_memory_mb`) with a TTL check registered passing (and passed at once, as Consul keeps the status of a check
registered again) and kept passing by a background heartbeat every TTL/3; if
the agent has forgotten the check (it reaped the service, or Consul restarted), the heartbeat registers again. A
crashed invoker stops beating: its check goes critical after the TTL, it leaves the healthy list at once, and
Consul deregisters it after `DeregisterCriticalServiceAfter` (1 minute at least). Controllers are instances of
`whisk-controller` the same way. `invokers()` answers from a cache kept fresh by a blocking query on the healthy
instances, started by the first call; while that watch is failing it reads directly, so errors surface. Cluster-wide
settings live in KV under `whisk/settings/<name>`; `controllers` there, when set, fixes the controller count
(otherwise the number of healthy controllers). Library and connection errors become BackendUnavailable.

URL: `consul://[token@]host[:port]` (port 8500 by default; `http://` and `https://` name the agent's HTTP API
directly). The client reads CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN
and lets them override its arguments; the URL wins here, as WHISK_DISCOVERY is whisk's one setting for this.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
import consul.aio
import consul.base
import structlog

from whisk.config import redact, url_host
from whisk.discovery.base import InvokerInfo
from whisk.entities.errors import BackendUnavailable

log = structlog.get_logger(__name__)

INVOKER_SERVICE = "whisk-invoker"
CONTROLLER_SERVICE = "whisk-controller"
SETTINGS_PREFIX = "whisk/settings/"
T = TypeVar("T")


def _go_duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(slots=True)
class _Registration:
    name: str
    service_id: str
    address: str
    port: int
    meta: dict[str, str]
    ttl_s: float
    heartbeat: asyncio.Task[None] | None = None

    @property
    def check_id(self) -> str:
        return f"service:{self.service_id}"


class ConsulDiscovery:
    def __init__(self, url: str, *, controller_ttl_s: float = 10.0, deregister_after_s: float = 60.0,
                 watch_wait_s: float = 55.0, call_timeout_s: float = 10.0, retry_s: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("consul", "http", "https") or not parts.hostname:
            raise ValueError(f"not a consul:// URL: {redact(url)!r}")      # never its token
        self._scheme = "https" if parts.scheme == "https" else "http"
        # In brackets when IPv6: python-consul2 writes the host into its base URL as given.
        self._host, self._port = url_host(parts.hostname), parts.port or 8500
        self._token = unquote(parts.username) if parts.username else None
        self.controller_ttl_s = controller_ttl_s
        self.deregister_after_s = deregister_after_s
        self.watch_wait_s = watch_wait_s          # well under aiohttp's 300 s total timeout (docs/testing.md)
        self.call_timeout_s = call_timeout_s
        self.retry_s = retry_s
        self._client: Any = None
        self._registrations: dict[str, _Registration] = {}
        self._watch: asyncio.Task[None] | None = None
        self._cache: list[InvokerInfo] | None = None

    async def __aenter__(self) -> ConsulDiscovery:
        with warnings.catch_warnings():          # legacy-ACL and discovery-chain notices on every construction
            warnings.simplefilter("ignore", DeprecationWarning)
            self._client = consul.aio.Consul(host=self._host, port=self._port, token=self._token)
        self._client.http = self._client.http_connect(self._host, self._port, self._scheme)
        self._client.token = self._token
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        tasks = [r.heartbeat for r in self._registrations.values() if r.heartbeat] + ([self._watch] if self._watch
                                                                                     else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watch, self._cache = None, None
        failures = []
        for service_id in list(self._registrations):
            try:
                await self._deregister(service_id)
            except BackendUnavailable as error:
                failures.append(f"{service_id}: {error}")
        if failures and exc is None:
            raise BackendUnavailable(f"consul: could not deregister {'; '.join(failures)}")

    # -- invokers -------------------------------------------------------------------------------------------------

    async def register_invoker(self, info: InvokerInfo, *, ttl_s: float) -> None:
        host, port = _split_address(info.address)
        await self._register(_Registration(
            INVOKER_SERVICE, f"{INVOKER_SERVICE}-{info.instance}", host, port,
            {"instance": str(info.instance), "user_memory_mb": str(info.user_memory_mb)}, ttl_s))

    async def deregister_invoker(self, instance: int) -> None:
        await self._deregister(f"{INVOKER_SERVICE}-{instance}")

    async def invokers(self) -> list[InvokerInfo]:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_invokers(), name="consul-invoker-watch")
        if self._cache is not None:
            return list(self._cache)
        _, rows = await self._call(self._client.health.service(INVOKER_SERVICE, passing=True))
        return _invokers(rows)

    async def _watch_invokers(self) -> None:
        """Blocking queries on the healthy invokers; the index resets after errors and when it goes backwards."""
        index: int | None = None
        while True:
            started = time.monotonic()
            try:
                raw_index, rows = await self._call(
                    self._client.health.service(INVOKER_SERVICE, passing=True, index=index,
                                                wait=_go_duration(self.watch_wait_s)),
                    timeout=self.watch_wait_s * 17 / 16 + self.call_timeout_s)
            except BackendUnavailable as exc:
                if self._cache is not None or index is not None:
                    log.warning("discovery.watch_failed", error=str(exc))
                self._cache, index = None, None
                await asyncio.sleep(self.retry_s)
                continue
            self._cache = _invokers(rows)
            new = max(1, int(raw_index))
            index = None if index is not None and new < index else new
            if time.monotonic() - started < 0.05:          # a storm of immediate answers: at most 20 reads/s
                await asyncio.sleep(0.05)

    # -- controllers and settings ---------------------------------------------------------------------------------

    async def register_controller(self, instance: int, address: str) -> None:
        host, port = _split_address(address)
        await self._register(_Registration(CONTROLLER_SERVICE, f"{CONTROLLER_SERVICE}-{instance}", host, port,
                                           {"instance": str(instance)}, self.controller_ttl_s))

    async def deregister_controller(self, instance: int) -> None:
        await self._deregister(f"{CONTROLLER_SERVICE}-{instance}")

    async def controllers(self) -> int:
        configured = await self.get_setting("controllers")
        if configured is not None and configured.strip().isdigit() and int(configured) > 0:
            return int(configured)
        _, rows = await self._call(self._client.health.service(CONTROLLER_SERVICE, passing=True))
        return max(1, len(rows or []))

    async def get_setting(self, name: str) -> str | None:
        _, entry = await self._call(self._client.kv.get(SETTINGS_PREFIX + name))
        if entry is None or entry.get("Value") is None:
            return None
        return entry["Value"].decode()

    async def put_setting(self, name: str, value: str) -> None:
        if not await self._call(self._client.kv.put(SETTINGS_PREFIX + name, value)):
            raise BackendUnavailable(f"consul: KV write of {name!r} refused")

    async def ping(self) -> None:
        leader = await self._call(self._client.status.leader())
        if not leader:
            raise BackendUnavailable("consul: the cluster has no leader")

    # -- registrations and their heartbeats -----------------------------------------------------------------------

    async def _register(self, reg: _Registration) -> None:
        old = self._registrations.pop(reg.service_id, None)
        if old is not None and old.heartbeat is not None:
            old.heartbeat.cancel()
        await self._put_service(reg)
        reg.heartbeat = asyncio.create_task(self._beat(reg), name=f"consul-heartbeat-{reg.service_id}")
        self._registrations[reg.service_id] = reg

    async def _put_service(self, reg: _Registration) -> None:
        check = {"TTL": _go_duration(reg.ttl_s), "Status": "passing",
                 "DeregisterCriticalServiceAfter": _go_duration(self.deregister_after_s)}
        ok = await self._call(self._client.agent.service.register(
            reg.name, service_id=reg.service_id, address=reg.address or None, port=reg.port or None,
            tags=["whisk"], meta=reg.meta, check=check))
        if not ok:
            raise BackendUnavailable(f"consul: registration of {reg.service_id} refused")
        # Consul keeps the status of a check registered again (`Status` sets a new one's): the critical check a killed
        # predecessor left would keep this instance out of the healthy list until its first heartbeat.
        await self._call(self._client.agent.check.ttl_pass(reg.check_id))

    async def _beat(self, reg: _Registration) -> None:
        failed = 0          # beats failed in a row: an outage is logged at its first and at its end, not per beat
        while True:
            await asyncio.sleep(reg.ttl_s / 3)
            try:
                if not await self._call(self._client.agent.check.ttl_pass(reg.check_id)):
                    log.warning("discovery.reregister", service_id=reg.service_id)   # reaped, or Consul restarted
                    await self._put_service(reg)
            except BackendUnavailable as exc:      # keep beating: the check expires by itself if this lasts
                failed += 1
                if failed == 1:
                    log.warning("discovery.heartbeat_failed", service_id=reg.service_id, error=str(exc))
                continue
            if failed:
                log.info("discovery.heartbeat_recovered", service_id=reg.service_id, failed_beats=failed)
                failed = 0

    async def _deregister(self, service_id: str) -> None:
        reg = self._registrations.pop(service_id, None)
        if reg is not None and reg.heartbeat is not None:
            reg.heartbeat.cancel()
            await asyncio.gather(reg.heartbeat, return_exceptions=True)
        await self._call(self._client.agent.service.deregister(service_id))   # False (404): already gone

    async def _call(self, call: Awaitable[T], *, timeout: float | None = None) -> T:
        try:
            async with asyncio.timeout(timeout or self.call_timeout_s):
                return await call
        except (consul.base.ConsulException, aiohttp.ClientError, OSError, TimeoutError, KeyError,
                ValueError) as exc:
            raise BackendUnavailable(f"consul: {exc or type(exc).__name__}") from exc


def _split_address(address: str) -> tuple[str, int]:
    """(host, port) to register. A wildcard host (WHISK_HOST=0.0.0.0, as in the image) is no address, and Consul
    refuses it (400 "Invalid service address"): none is registered then, which Consul reads as the node's."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return address, 0
    host = host.strip("[]")
    try:
        if ipaddress.ip_address(host).is_unspecified:
            host = ""
    except ValueError:
        pass                                           # a name
    return host, int(port)


def _invokers(rows: list[dict[str, Any]] | None) -> list[InvokerInfo]:
    found = {}
    for row in rows or []:
        service = row["Service"]
        meta = service.get("Meta") or {}
        try:
            instance, memory = int(meta["instance"]), int(meta["user_memory_mb"])
        except (KeyError, ValueError):
            continue                                   # not one of ours
        host = service.get("Address") or (row.get("Node") or {}).get("Address", "")
        port = service.get("Port") or 0
        if port:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            address = service.get("Address") or ""
        found[instance] = InvokerInfo(instance, memory, address)
    return [found[i] for i in sorted(found)]
