"""The sharding load balancer over the bus (docs/openwhisk.md §5.5, §6; OpenWhisk's ShardingContainerPoolBalancer and
its InvokerSupervision): places each activation with `ShardingScheduler`; what every balancer shares (`CommonBalancer`:
the book of activations in flight, the send to `invoker{N}`, the acks) sends it. It supervises the invokers
(`InvokerPool`) from their pings on `health` (group `health{C}`, so every controller sees every ping) and from the
outcomes of their completions.

Health test actions (docs/openwhisk.md §6.4): `whisk.system/invokerHealthTestAction{C}` is written to the store when the
balancer starts; while an invoker is Unhealthy or Unresponsive it is sent straight to that invoker, non-blocking, with
the transaction id `sid_invokerHealth`; its completion goes to supervision only (it has no book entry and no slot).

An invoker's silence is evidence against it only while the bus itself answers: the balancer asks the bus every second
(`_watch_bus`), and the work in flight on a silent invoker is forced as lost only once the bus has answered
throughout the last ping timeout. With the broker away every invoker falls silent at once, and its activations are in
Kafka (or done, their acks waiting): forcing them would answer their callers 500 for work that then runs and is
recorded as a success. They wait for their acks, or their ack timeout, as in OpenWhisk; a timeout then does not
count against the invoker (OpenWhisk counts it), as its silence does not.

Discovery sizes the cluster: the invokers it lists are known (Offline until they ping), the highest ones it no longer
lists are forgotten once silent for `depart_after_s` (`_forget_departed`), and the controller count splits each
invoker's memory (docs/openwhisk.md §6.2). Pings, not discovery, make an invoker usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any
from uuid import uuid4

import structlog

from whisk import logs, metrics
from whisk.discovery.base import Discovery
from whisk.entities.errors import BackendUnavailable, Conflict, WhiskError
from whisk.entities.identity import SYSTEM_NAMESPACE
from whisk.loadbalancer.base import Entry, Released
from whisk.loadbalancer.common import CommonBalancer
from whisk.loadbalancer.invoker_pool import InvokerHealth, InvokerPool, InvokerState, Outcome
from whisk.loadbalancer.sharding import InvokerView, ShardingScheduler
from whisk.messages import (HEALTH_TOPIC, Acknowledgement, ActivationMessage, PingMessage, controller_instance,
                            invoker_topic)
from whisk.messaging.base import Bus, BusAnswers, encoded
from whisk.store.base import EntityStore

log = structlog.get_logger(__name__)
_OVERLOADS = logs.Bounded()

HEALTH_TID = "sid_invokerHealth"
TEST_ACTION_CODE = "function main(params) { return params; }"
# How often the balancer asks the bus whether it answers (one metadata request on Kafka).
BUS_CHECK_S = 1.0
# How long the highest invoker must be silent, and gone from discovery, before it is forgotten (`_forget_departed`):
# well past a restart, so that one that crashed and comes back does not move every action's home twice, and past
# the alert on an invoker down (WhiskInvokerDown, 1 minute), which then resolves as the invoker has left (Consul
# deregisters an invoker whose check has been critical for a minute).
DEPART_AFTER_S = 300.0


def test_action_name(controller: int) -> str:
    return f"invokerHealthTestAction{controller}"


def test_action_doc(controller: int) -> dict[str, Any]:
    """The health test action (docs/openwhisk.md §6.4): nodejs, returns its parameters, 128 MB."""
    return {"_id": f"{SYSTEM_NAMESPACE}/{test_action_name(controller)}", "entityType": "action",
            "namespace": SYSTEM_NAMESPACE, "name": test_action_name(controller), "version": "0.0.1",
            "publish": False, "annotations": [{"key": "exec", "value": "nodejs"}], "parameters": [],
            "exec": {"kind": "nodejs:default", "code": TEST_ACTION_CODE, "binary": False},
            "limits": {"timeout": 60_000, "memory": 128, "logs": 10, "concurrency": 1},
            "updated": time.time_ns() // 1_000_000}


def _system_identity() -> dict[str, Any]:
    """The synthetic whisk.system user of test activations (no key: the test action needs none)."""
    return {"subject": SYSTEM_NAMESPACE, "namespace": {"name": SYSTEM_NAMESPACE, "uuid": ""},
            "authkey": {"api_key": ""}, "rights": [], "limits": {}}


def _memory_mb(instance: dict[str, Any]) -> int:
    """`userMemory` of an InvokerInstanceId ("2048 MB")."""
    try:
        return max(0, int(float(str(instance.get("userMemory", "0")).split()[0])))
    except (ValueError, IndexError, OverflowError):     # not a number, empty, infinite: a foreign ping's
        return 0


class ShardingBalancer(CommonBalancer):
    def __init__(self, bus: Bus, store: EntityStore, discovery: Discovery, *, controller: int,
                 timeout_factor: float = 2.0, timeout_addon_s: float = 60.0, timeout_std_s: float = 60.0,
                 on_release: Released | None = None,
                 managed_fraction: float = 0.9, blackbox_fraction: float = 0.1, ping_timeout_s: float = 10.0,
                 test_interval_s: float = 60.0, stall_after_s: float = 15.0,
                 discovery_interval_s: float = 2.0, depart_after_s: float = DEPART_AFTER_S) -> None:
        super().__init__(bus, controller=controller, timeout_factor=timeout_factor, timeout_addon_s=timeout_addon_s,
                         timeout_std_s=timeout_std_s, on_release=on_release)
        self._store = store
        self._discovery = discovery
        self._discovery_interval_s = discovery_interval_s
        self._depart_after_s = depart_after_s
        self.scheduler = ShardingScheduler(managed_fraction=managed_fraction, blackbox_fraction=blackbox_fraction)
        self.pool = InvokerPool(on_test_action=self._test_action, on_change=self._changed,
                                ping_timeout_s=ping_timeout_s, test_interval_s=test_interval_s,
                                stall_after_s=stall_after_s)
        self._wake = asyncio.Event()
        self._ping_timeout_s = ping_timeout_s
        self._bus_check_s = min(BUS_CHECK_S, ping_timeout_s / 4)   # well within a ping timeout
        # The bus's answers to `_watch_bus`; a check that hangs (a broker stopped, not gone) is no answer once late.
        self._bus_answers = BusAnswers(late_s=self._bus_check_s + ping_timeout_s / 2)

    async def _prepare(self) -> None:
        await self._bus.ensure_topic(HEALTH_TOPIC)
        await self._ensure_test_action()

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._consume_pings(), self._supervise(), self._watch_discovery(), self._watch_bus()]

    def invokers(self) -> dict[str, str]:
        return self.pool.status_map()

    def controllers(self) -> int:
        return self.scheduler.controllers

    # -- placement and completions --------------------------------------------------------------------------------

    def _place(self, msg: ActivationMessage, *, memory_mb: int, concurrency: int, blackbox: bool) -> int:
        key = _slot_key(msg.action_path, str(msg.action.get("version", "")), concurrency, memory_mb)
        invoker, forced = self.scheduler.schedule(msg.user["namespace"]["name"], msg.action_path, memory_mb,
                                                  max_concurrent=concurrency, blackbox=blackbox, slot_key=key)
        if forced:
            metrics.observe_overload("blackbox" if blackbox else "managed")
            bound = _OVERLOADS.fields()      # a cluster too small under load is every activation's: bounded
            if bound is not None:
                log.warning("loadbalancer.overload", invoker=invoker, action=msg.action_path, **bound)
        return invoker

    def _dispatched(self, invoker: int, activation_id: str) -> None:
        self.pool.dispatched(invoker, activation_id)

    def _released(self, entry: Entry, outcome: str) -> None:
        self.scheduler.release(entry.invoker, entry.action_path, entry.memory_mb, max_concurrent=entry.concurrency,
                               slot_key=_slot_key(entry.action_path, entry.action_version, entry.concurrency,
                                                  entry.memory_mb))
        if outcome in ("lost", "stopped") or (outcome == "timeout" and not self._bus_answered_lately()):
            # Forced because the invoker went silent: that is its Offline state already, not one more outcome. Were
            # they counted as timeouts, an invoker cut off for seconds (a broker restart) would come back
            # Unresponsive with its last ten outcomes forced, and take up to seven test actions, a minute apart, to
            # be used again. The same holds for an ack timeout while the bus was away (a broker away for longer
            # than the ack timeout): the ack is waiting with the bus. Nor does a stop of this controller say
            # anything of the invoker.
            self.pool.forget(entry.invoker, entry.activation_id)
        elif outcome != "discarded":                # a message never sent says nothing about the invoker
            self.pool.completion(entry.invoker, Outcome(outcome), entry.activation_id)
        super()._released(entry, outcome)

    def _intercepted(self, ack: Acknowledgement) -> bool:
        """A health test action's ack goes to supervision only: it has no book entry and no slot."""
        if not (ack.transid and ack.transid[0] == HEALTH_TID):
            return False
        if ack.is_completion and isinstance(ack.instance, dict):
            self.pool.completion(int(ack.instance.get("instance", -1)),
                                 Outcome.SYSTEM_ERROR if ack.is_system_error else Outcome.SUCCESS)
        return True

    # -- supervision ----------------------------------------------------------------------------------------------

    async def _consume_pings(self) -> None:
        async for data in self._bus.consume(HEALTH_TOPIC, f"health{self._controller}"):
            try:
                ping = PingMessage.from_bytes(encoded(data))
                instance = int(ping.instance["instance"])
            except (ValueError, KeyError, TypeError) as exc:
                log.error("loadbalancer.ping.malformed", error=str(exc))
                continue
            self.pool.ping(instance, _memory_mb(ping.instance), enabled=ping.is_enabled, taken=ping.taken,
                           has_room=ping.has_room)
            self._wake.set()

    async def _supervise(self) -> None:
        """Apply the pool's timers (ping timeouts, periodic test actions, stalls) as they fall due."""
        while True:
            deadline = self.pool.next_deadline()
            wait = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self.pool.tick()
            self._force_silent()

    async def _watch_bus(self) -> None:
        """Ask the bus every BUS_CHECK_S (or a quarter ping timeout) whether it answers, waiting half a ping
        timeout at most (a broker that is stopped, not gone, holds a request until the bus's own timeout); log when
        it goes away and comes back."""
        while True:
            try:
                async with asyncio.timeout(self._ping_timeout_s / 2):
                    await self._bus.ping()
            except (BackendUnavailable, TimeoutError) as exc:
                if self._bus_answers.failed():
                    log.warning("loadbalancer.bus.unavailable", error=str(exc) or "no answer")
            else:
                if (away_s := self._bus_answers.answered()) is not None:
                    log.info("loadbalancer.bus.available", away_s=round(away_s, 1))
            await asyncio.sleep(self._bus_check_s)

    def bus_answers(self) -> bool:
        """The bus answered the last check, and lately (`whisk_bus_up`)."""
        return self._bus_answers.answers()

    def _bus_answered_lately(self) -> bool:
        """The bus answered every check during the last ping timeout: an invoker silent that long, or whose ack is
        missing, is the one at fault."""
        return self._bus_answers.answered_throughout(self._ping_timeout_s)

    def _force_silent(self) -> None:
        """Force as lost the work in flight on every invoker gone silent, unless the bus may be why."""
        silent = [h.instance for h in self.pool.snapshot() if self.pool.silent(h.instance)]
        if not silent or not self._bus_answered_lately():
            return
        for invoker in silent:
            self._force_lost(invoker)

    def _changed(self, health: InvokerHealth) -> None:
        silent = health.state is InvokerState.OFFLINE and self.pool.silent(health.instance)
        # An invoker whose pings stopped is lost to this controller (dead, or cut off): an error, which a log read at
        # `warning` or `error` must show even when it had no work in flight (`loadbalancer.invoker.lost`). Every
        # other change is the ordinary course: one seen, tested, disabled by its operator, back.
        if silent:
            log.error("loadbalancer.invoker.state", invoker=health.instance, state=health.state.as_string)
        else:
            log.info("loadbalancer.invoker.state", invoker=health.instance, state=health.state.as_string)
        if silent:
            # Outside the supervision callback: forcing reports completions back into supervision.
            asyncio.get_running_loop().call_soon(self._force_silent)
        self.scheduler.update_invokers(InvokerView(h.instance, h.user_memory_mb, h.state.usable)
                                       for h in self.pool.snapshot())

    def _force_lost(self, invoker: int) -> None:
        lost = self._book.force_invoker(invoker)
        if lost:
            log.warning("loadbalancer.invoker.lost", invoker=invoker, activations=len(lost))

    async def _watch_discovery(self) -> None:
        """While discovery is away the invokers and the controller count stay as last read; the outage is logged at
        its first failure and at its end, not every `discovery_interval_s`."""
        failed = 0
        while True:
            try:
                listed = await self._discovery.invokers()
                for info in listed:
                    self.pool.known(info.instance, info.user_memory_mb)
                self._forget_departed({info.instance for info in listed})
                self.scheduler.update_controllers(await self._discovery.controllers())
            except WhiskError as exc:
                failed += 1
                if failed == 1:
                    log.warning("loadbalancer.discovery.failed", error=str(exc))
            else:
                if failed:
                    log.info("loadbalancer.discovery.recovered", failed_reads=failed)
                    failed = 0
            await asyncio.sleep(self._discovery_interval_s)

    def _forget_departed(self, listed: set[int]) -> None:
        """Forget the highest invokers once they have left: silent for `depart_after_s` while the bus answers, gone
        from discovery, and with nothing of this controller in flight on them. Kept `down` (as OpenWhisk keeps every
        invoker it has seen), invokers scaled away (a StatefulSet removes the highest ordinals) stayed the blackbox
        partition, the last invokers by index: every blackbox action was "No invokers available." until each
        controller restarted. Only from the top, so that no invoker that stays changes position; one below an
        invoker that stays remains a `down` placeholder."""
        if not self._bus_answered_lately():
            return
        busy = {entry.invoker for entry in self._book.entries()}
        departed = []
        for health in reversed(self.pool.snapshot()):
            instance = health.instance
            if instance in listed or instance in busy or self.pool.silent_s(instance) < self._depart_after_s:
                break
            self.pool.depart(instance)
            departed.append(instance)
        if departed:
            self.scheduler.forget_from(len(self.pool.snapshot()))
            log.info("loadbalancer.invoker.departed", invokers=departed)

    # -- health test actions --------------------------------------------------------------------------------------

    async def _ensure_test_action(self) -> None:
        doc = test_action_doc(self._controller)
        for _ in range(3):                          # another start of this controller may race us
            old = await self._store.get(doc["_id"])
            if old is not None:
                doc["_rev"] = old["_rev"]
            try:
                await self._store.put(dict(doc))
                return
            except Conflict:
                doc.pop("_rev", None)
        log.warning("loadbalancer.test_action.not_stored")

    def _test_action(self, instance: int) -> None:
        self._spawn(self._send_test_action(instance))

    async def _send_test_action(self, instance: int) -> None:
        msg = ActivationMessage(
            transid=[HEALTH_TID, time.time_ns() // 1_000_000],
            action={"path": SYSTEM_NAMESPACE, "name": test_action_name(self._controller), "version": "0.0.1"},
            revision=None, user=_system_identity(), activation_id=uuid4().hex,
            root_controller=controller_instance(self._controller), blocking=False, content={})
        try:
            await self._bus.send(invoker_topic(instance), msg)
            log.info("loadbalancer.test_action.sent", invoker=instance)
        except WhiskError as exc:
            log.warning("loadbalancer.test_action.failed", invoker=instance, error=str(exc))


def _slot_key(action_path: str, version: str, concurrency: int, memory_mb: int) -> str:
    """The concurrency slots one action definition's activations share: OpenWhisk keys them by the name with its
    version, so an update (which may change the limits) opens new ones, as the invoker starts new containers for it.
    The limits are in the key too, since an action deleted and created again (or a namespace made again) is back at
    its first version with whatever limits it now has: a release counted with a concurrency other than its
    acquisition's kept a container's memory for ever, or found no slots, and the last release of a container
    equivalent gives back its own memory, so one of another size lost (or made up) the difference for good."""
    return f"{action_path}@{version}/{concurrency}/{memory_mb}"
