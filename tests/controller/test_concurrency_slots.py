"""What the controller tells its balancer of an action's concurrency: the limit for a kind whose containers run
several activations at once (Node.js), 1 for one whose containers run one at a time (Python), since the invoker
gives each of those activations a container and the sharding balancer must take memory for each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.controller.support import guest_controller
from whisk.config import Settings
from whisk.store.memory import MemoryStore


async def test_a_kind_that_runs_one_activation_at_a_time_takes_a_slot_each(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings(), data_dir=str(tmp_path), catalog=False, alarms_refresh_s=3600,
                                   max_action_concurrency=4)
    async with MemoryStore() as store, guest_controller(settings, store) as (services, guest):
        actions = services.entities.collections["actions"]
        for name, kind, code in (("py", "python:3", "def main(a): return a"),
                                 ("js", "nodejs:20", "function main(a) { return a; }")):
            await actions.put(guest, services.entities.namespace(guest, "_"), name,
                              {"exec": {"kind": kind, "code": code}, "limits": {"concurrency": 4}}, False)
        told = {}
        for name in ("py", "js"):
            resolved = await services.entities.resolve_action(guest, "_", None, name)
            outcome = await services.launcher.start(guest, resolved, {}, blocking=False, wait_ms=0, tid="t")
            entry = services.activator.pending("guest", outcome.activation_id)
            assert entry is not None
            told[name] = entry.concurrency
        assert told == {"py": 1, "js": 4}
