"""Which namespaces an invoker refuses to run (docs/openwhisk.md §5.4, OpenWhisk's NamespaceBlacklist): a set held in
memory and read again from the subjects on a timer, so that the invoke path reads nothing more.

The controllers stop a blocked namespace's new activations within their 30 s authentication cache; what was already on
an invoker's topic (a backlog the throttles allowed) is refused here. A namespace is blocked when its subject is or its
limits set invocations per minute or concurrent invocations to 0 (`store.base.namespace_states`). The set can be up to
`poll_s` old, and the controllers let a namespace in again as soon as it is unblocked: an activation of a namespace
the set says is blocked, accepted after the set was read, is checked against a read made since (`still_blocked`).

A deleted namespace is refused too, which OpenWhisk's invoker does not do: its actions were purged, but the invoker may
still hold a copy and would run the old owner's code, and a record stored now would sit under a name the purge emptied,
for whoever owns it next to read. An activation is the deleted namespace's when its namespace uuid is not in a read
made after the activation was accepted (so the namespace existed then, and was gone by the read); `ACCEPTED_MARGIN_MS`
covers the controller's clock running behind the invoker's.
"""

from __future__ import annotations

import asyncio
import enum

import structlog

from whisk.entities.document import now_ms
from whisk.entities.errors import WhiskError
from whisk.messages import ActivationMessage
from whisk.store.base import NamespaceStates, SubjectStore

log = structlog.get_logger(__name__)

# OpenWhisk reads its list every 5 minutes (`whisk.blacklist.poll-interval`); whisk applies every other admin change
# within 30 s (the controllers' authentication cache), and a backlog can run out well within 5 minutes.
POLL_S = 30.0
ACCEPTED_MARGIN_MS = 5_000
# A blocked namespace's activation accepted after the last read waits for a read made since, at most one this often.
REREAD_S = 1.0
# The error of a refused activation (OpenWhisk's Messages.namespacesBlacklisted), an application error.
BLOCKED_MESSAGE = "The action was not invoked due to a blacklisted namespace."
DELETED_MESSAGE = "The action was not invoked: its namespace was deleted."


class Refusal(enum.Enum):
    BLOCKED = "blocked"
    DELETED = "deleted"


class Blocklist:
    def __init__(self, store: SubjectStore, *, poll_s: float = POLL_S) -> None:
        self._store = store
        self._poll_s = poll_s
        self._states = NamespaceStates(frozenset(), frozenset())
        self._read_at_ms = 0           # wall clock when the read behind `_states` began; 0: none has succeeded
        self._tried_at_ms = 0          # when the last read, successful or not, began
        self._rereading = asyncio.Lock()

    async def refresh(self) -> bool:
        """Read the states again; on a failure keep the last ones (as OpenWhisk does) and return False."""
        started = self._tried_at_ms = now_ms()
        try:
            states = await self._store.namespace_states()
        except WhiskError as exc:
            log.error("invoker.blocklist.failed", error=str(exc))
            return False
        if states.blocked != self._states.blocked:
            log.info("invoker.blocklist.updated", blocked=len(states.blocked))
        self._states, self._read_at_ms = states, started
        return True

    async def run(self) -> None:
        """Read again every `poll_s` (the first read is the caller's, before it takes work)."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh()
            except Exception as exc:     # a bug must not end the timer: the last set would hold for good
                log.exception("invoker.blocklist.crashed", error=repr(exc))

    async def still_blocked(self, msg: ActivationMessage) -> bool:
        """For an activation `refusal` finds blocked: whether it still is. One accepted after the last read began
        waits for a read begun since (one at a time, shared by all that wait, at most one every `REREAD_S`): the
        controllers let an unblocked namespace in at once, and its new activations must not be refused for up to
        `poll_s` more. Only a blocked namespace's activations come here. A failed read keeps the last set."""
        async with self._rereading:
            if self._tried_at_ms <= msg.received_ms:
                pause = (self._tried_at_ms - now_ms()) / 1000 + REREAD_S
                if pause > 0:
                    await asyncio.sleep(pause)
                await self.refresh()
        return self.refusal(msg) is Refusal.BLOCKED

    def refusal(self, msg: ActivationMessage) -> Refusal | None:
        """Why the activation must not run, or None (one set lookup, two for a namespace not blocked)."""
        namespace = msg.user.get("namespace") or {}
        if namespace.get("name") in self._states.blocked:
            return Refusal.BLOCKED
        uuid = namespace.get("uuid")
        # A message without a uuid (the balancers' health test actions) is never a deleted namespace's.
        if (uuid and self._read_at_ms and uuid not in self._states.uuids
                and msg.received_ms + ACCEPTED_MARGIN_MS < self._read_at_ms):
            return Refusal.DELETED
        return None
