"""In-process discovery for standalone: the controller and the invoker share one process and one registry.

An invoker registered here is alive until it deregisters (its process is this process), so `ttl_s` is accepted
for the port's sake and not used. Settings are a plain dict, the counterpart of Consul's KV.
"""

from __future__ import annotations

from types import TracebackType

from whisk.discovery.base import InvokerInfo


class LocalDiscovery:
    def __init__(self) -> None:
        self._invokers: dict[int, InvokerInfo] = {}
        self._controllers: dict[int, str] = {}
        self._settings: dict[str, str] = {}

    async def __aenter__(self) -> LocalDiscovery:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._invokers.clear()
        self._controllers.clear()

    async def register_invoker(self, info: InvokerInfo, *, ttl_s: float) -> None:
        self._invokers[info.instance] = info

    async def deregister_invoker(self, instance: int) -> None:
        self._invokers.pop(instance, None)

    async def invokers(self) -> list[InvokerInfo]:
        return [self._invokers[i] for i in sorted(self._invokers)]

    async def register_controller(self, instance: int, address: str) -> None:
        self._controllers[instance] = address

    async def deregister_controller(self, instance: int) -> None:
        self._controllers.pop(instance, None)

    async def controllers(self) -> int:
        configured = self._settings.get("controllers")
        if configured is not None and configured.isdigit() and int(configured) > 0:
            return int(configured)
        return max(1, len(self._controllers))

    async def get_setting(self, name: str) -> str | None:
        return self._settings.get(name)

    async def put_setting(self, name: str, value: str) -> None:
        self._settings[name] = value

    async def ping(self) -> None:
        return None
