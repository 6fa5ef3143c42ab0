"""The invoker discovery port: invokers register themselves, controllers read the healthy ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InvokerInfo:
    instance: int
    user_memory_mb: int
    # host:port of the invoker's HTTP server (ping, health, enable/disable); from Consul, the node's address for one
    # that listens on every address (WHISK_HOST=0.0.0.0)
    address: str = ""


class Discovery(Protocol):
    async def register_invoker(self, info: InvokerInfo, *, ttl_s: float) -> None:
        """Announce this invoker and keep its health check passing until `deregister_invoker`."""

    async def deregister_invoker(self, instance: int) -> None: ...

    async def invokers(self) -> list[InvokerInfo]:
        """The invokers whose health checks pass, by instance id."""

    async def register_controller(self, instance: int, address: str) -> None: ...

    async def deregister_controller(self, instance: int) -> None: ...

    async def controllers(self) -> int:
        """How many controllers are registered (at least 1): invoker memory is split across them
        (docs/openwhisk.md §6.2). The cluster-wide setting `controllers`, when set to a positive integer, fixes the
        count instead."""

    async def get_setting(self, name: str) -> str | None:
        """A cluster-wide setting (Consul KV `whisk/settings/<name>`), None when unset."""

    async def put_setting(self, name: str, value: str) -> None: ...

    async def ping(self) -> None:
        """Raise BackendUnavailable when the discovery backend does not answer."""
