"""The controller's book of activations in flight (docs/openwhisk.md §5.5), kept by `CommonBalancer`.

Every published activation gets an entry: the waiting future of a blocking caller, per-namespace counts for the
concurrency throttle, and a completion-ack timer. A result ack resolves the future; a completion ack (or the
timer: a forced completion) closes the entry and frees the invoker's slot through `on_release`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog

from whisk.loadbalancer.base import Entry, Forced, Released
from whisk.messages import Acknowledgement

log = structlog.get_logger(__name__)


class ActivationBook:
    def __init__(self, *, timeout_factor: float, timeout_addon_s: float, timeout_std_s: float = 60.0,
                 on_release: Released | None = None) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_namespace: defaultdict[str, int] = defaultdict(int)
        self._timeout_factor = timeout_factor
        self._timeout_addon_s = timeout_addon_s
        self._timeout_std_s = timeout_std_s
        self._on_release = on_release
        self.forced_total = 0

    def in_flight(self, namespace_uuid: str) -> int:
        return self._by_namespace.get(namespace_uuid, 0)

    def get(self, activation_id: str) -> Entry | None:
        return self._entries.get(activation_id)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def add(self, entry: Entry, timeout_ms: int) -> Entry:
        loop = asyncio.get_running_loop()
        if entry.blocking:
            entry.result = loop.create_future()
            entry.closed = loop.create_future()
        # OpenWhisk's floor is the standard action timeout (TimeLimit.STD_DURATION, configured), not a fixed minute.
        wait_s = max(timeout_ms / 1000.0, self._timeout_std_s) * self._timeout_factor + self._timeout_addon_s
        entry.timer = loop.call_later(wait_s, self._force, entry.activation_id)
        self._entries[entry.activation_id] = entry
        self._by_namespace[entry.namespace_uuid] += 1
        return entry

    def acknowledge(self, ack: Acknowledgement) -> Entry | None:
        """Apply a result, completion or combined ack; returns the entry it closed, if any."""
        entry = self._entries.get(ack.activation_id)
        if entry is None:
            if ack.is_completion:
                log.debug("loadbalancer.ack.unknown", activation_id=ack.activation_id)
            return None
        if ack.is_result and entry.result is not None and not entry.result.done():
            entry.result.set_result(ack.record if ack.record is not None else ack.response)
        if ack.is_completion:
            self._close(entry, "system_error" if ack.is_system_error else "success")
            return entry
        return None

    def _force(self, activation_id: str, outcome: str = "timeout") -> None:
        entry = self._entries.get(activation_id)
        if entry is None:
            return
        self.forced_total += 1
        log.warning("loadbalancer.completion.forced", activation_id=activation_id, invoker=entry.invoker)
        _fail(entry, "no completion or active ack received yet")
        self._close(entry, outcome)

    def _close(self, entry: Entry, outcome: str) -> None:
        self._entries.pop(entry.activation_id, None)
        left = self._by_namespace[entry.namespace_uuid] - 1
        if left > 0:
            self._by_namespace[entry.namespace_uuid] = left
        else:
            self._by_namespace.pop(entry.namespace_uuid, None)
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.closed is not None and not entry.closed.done():
            entry.closed.set_result(None)
        if entry.result is not None and not entry.result.done():
            # A completion without a result (non-blocking, or the result ack was lost): wake the waiter so it
            # reads the stored record instead of waiting out its deadline.
            entry.result.set_result(entry.activation_id)
        if self._on_release is not None:
            self._on_release(entry, outcome)

    def force_invoker(self, invoker: int) -> list[Entry]:
        """Force-complete every activation on an invoker that has gone silent (beyond OpenWhisk, which waits for
        each ack timeout): waiters stop waiting, slots are freed, and the controller records what is lost. Their
        outcome is "lost", not "timeout": the invoker is already judged (Offline), and this is no new evidence."""
        lost = [e for e in self._entries.values() if e.invoker == invoker]
        for entry in lost:
            self._force(entry.activation_id, "lost")
        return lost

    def discard(self, activation_id: str) -> None:
        """Drop an entry whose message was never sent."""
        entry = self._entries.get(activation_id)
        if entry is not None:
            if entry.result is not None:
                entry.result.cancel()
            self._close(entry, "discarded")

    def fail_all(self, reason: str) -> list[Entry]:
        """Close every entry (shutdown: outcome "stopped"); waiters get Forced."""
        closed = list(self._entries.values())
        for entry in closed:
            _fail(entry, reason)
            self._close(entry, "stopped")
        return closed


def _fail(entry: Entry, reason: str) -> None:
    if entry.result is not None and not entry.result.done():
        entry.result.set_exception(Forced(reason))
        # Marked as retrieved: a blocking caller that has already had its 202 no longer awaits this, and asyncio
        # would log "Future exception was never retrieved"; one that still awaits gets Forced all the same.
        entry.result.exception()
