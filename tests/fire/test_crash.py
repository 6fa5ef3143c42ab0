"""A fire's background work that fails on a bug, not a refusal: the accepted fire still ends with its record (every
accepted activation does, docs/openwhisk.md §3.5), and the log line names the failure without quoting the
arguments, which hold the caller's Authorization header."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from whisk.controller.fire import Firing
from whisk.entities.activation import Activation
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath, FullyQualifiedEntityName
from whisk.entities.trigger import RuleLink, Trigger

SECRET = "Basic c2VjcmV0OmtleQ=="


class Launcher:
    draining = False

    def __init__(self) -> None:
        self.stored: list[Activation] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def spawn(self, work: Any, what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.tasks.append(task)
        return task

    async def store_record(self, record: Activation, *, stored: bool) -> bool:
        self.stored.append(record)
        return True


class Entities:
    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger

    async def trigger_to_fire(self, identity: Identity, namespace: str, name: str) -> Trigger:
        return self.trigger


class Ledger:
    """What the journal is told, in order, and what the launcher had stored by then."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.calls: list[tuple[str, str, int]] = []

    def opened(self, accepted: Any) -> None:
        self.calls.append(("opened", accepted.activation_id, len(self.launcher.stored)))

    def closed(self, activation_id: str) -> None:
        self.calls.append(("closed", activation_id, len(self.launcher.stored)))


async def test_a_fire_is_journaled_from_its_answer_until_its_record_is_stored() -> None:
    """A crash between the 202 and the trigger's record must still leave a record after the restart: the fire is
    journaled before its id is answered, and closed only once its record is stored."""
    action = FullyQualifiedEntityName.of("guest", "a")
    trigger = Trigger(EntityPath.of("guest"), "t", rules={"guest/r": RuleLink(action)})
    launcher = Launcher()
    ledger = Ledger(launcher)
    firing = Firing(launcher, Entities(trigger), invocations=None, ledger=ledger)  # type: ignore[arg-type]
    identity = Identity("subject", "guest", "uuid", key="key")
    activation_id = await firing.fire(identity, "_", "t", None, {}, "tid")   # type: ignore[arg-type]
    assert ledger.calls == [("opened", activation_id, 0)]
    await asyncio.gather(*launcher.tasks)
    assert ledger.calls == [("opened", activation_id, 0), ("closed", activation_id, 1)]


async def test_a_crash_before_the_rules_still_stores_the_record_and_logs_no_arguments() -> None:
    action = FullyQualifiedEntityName.of("guest", "a")
    trigger = Trigger(EntityPath.of("guest"), "t", rules={"guest/r": RuleLink(action)})
    launcher = Launcher()
    firing = Firing(launcher, Entities(trigger), invocations=None, ledger=Ledger(launcher))  # type: ignore[arg-type]
    identity = Identity("subject", "guest", "uuid", key="key")
    # A string no encoder takes (a lone surrogate) makes the argument size check raise, quoting the arguments; the
    # caller's headers, which go to the rules' actions too, must not be logged with them.
    headers = {"Authorization": SECRET, "X-Foo": "foo"}
    with capture_logs() as logs:
        activation_id = await firing.fire(identity, "_", "t", {"p": "\udce9"}, headers, "tid")  # type: ignore[arg-type]
        await asyncio.gather(*launcher.tasks)
    (record,) = launcher.stored
    assert record.activation_id == activation_id and record.logs == ()
    assert logs and all(SECRET not in repr(entry) and "c2VjcmV0" not in repr(entry) for entry in logs), logs
