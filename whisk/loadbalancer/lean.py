"""LeanBalancer (docs/openwhisk.md §9.3): every activation goes to the one invoker, over the bus, with the same
in-flight bookkeeping and completion-ack timeouts as the sharding balancer but no slots and no health protocol."""

from __future__ import annotations

from whisk.loadbalancer.base import Released
from whisk.loadbalancer.common import CommonBalancer
from whisk.messages import ActivationMessage, invoker_topic
from whisk.messaging.base import Bus


class LeanBalancer(CommonBalancer):
    def __init__(self, bus: Bus, *, controller: int, invoker: int = 0, timeout_factor: float = 2.0,
                 timeout_addon_s: float = 60.0, timeout_std_s: float = 60.0,
                 on_release: Released | None = None) -> None:
        super().__init__(bus, controller=controller, timeout_factor=timeout_factor, timeout_addon_s=timeout_addon_s,
                         timeout_std_s=timeout_std_s, on_release=on_release)
        self._invoker = invoker

    async def _prepare(self) -> None:
        await self._bus.ensure_topic(invoker_topic(self._invoker))

    def _place(self, msg: ActivationMessage, *, memory_mb: int, concurrency: int, blackbox: bool) -> int:
        return self._invoker

    def invokers(self) -> dict[str, str]:
        return {}
