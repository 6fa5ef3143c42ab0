"""The order of a controller's stop: what its balancer closes at the end (the activations still in flight when the
grace ran out) is recorded as stopped, and their journal lines are closed, before the ledger and its journal close."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.controller.support import guest_controller
from whisk.config import Settings
from whisk.controller.drain import Drain
from whisk.controller.ledger import STOPPED, Ledger
from whisk.store.memory import MemoryStore


async def test_activations_closed_by_the_stop_are_recorded_before_the_journal_closes(tmp_path: Path) -> None:
    data = str(tmp_path)
    settings = dataclasses.replace(Settings(), data_dir=data, catalog=False, alarms_refresh_s=3600)
    async with MemoryStore() as store:
        async with guest_controller(settings, store) as (services, guest):
            await services.entities.collections["actions"].put(
                guest, services.entities.namespace(guest, "_"), "x",
                {"exec": {"kind": "python:3", "code": "def main(a): return a"}}, False)
            resolved = await services.entities.resolve_action(guest, "_", None, "x")
            # Nothing consumes the invoker's topic: the activation is still in flight when the controller stops.
            outcome = await services.launcher.start(guest, resolved, {}, blocking=False, wait_ms=0, tid="t")
        # The controller has closed: the record its stop wrote is there at once, not left to a task nobody awaits.
        record = await store.get_activation("guest", outcome.activation_id)
        assert record is not None and record["response"]["result"] == {"error": STOPPED}, record
        # And its journal line was closed: a restart finds nothing left open.
        again = Ledger(store, Path(data) / "controller0.journal", Drain())
        assert await again.recover() == 0
        await again.close()
