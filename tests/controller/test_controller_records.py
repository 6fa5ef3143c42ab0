"""Records the controller writes itself (trigger fires, compositions, the actions it serves): each activation's
journal line stays open until its record is stored, so that a crash, or a store away past its retries, still
leaves it to the restart."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.controller.down_store import DownStore
from tests.controller.support import serve_in_controller
from whisk.config import Settings
from whisk.controller import launcher as launcher_module
from whisk.controller.drain import Drain
from whisk.controller.journal import Journal
from whisk.controller.ledger import RESTARTED, Ledger
from whisk.controller.services import ControllerServices, open_controller
from whisk.entities.errors import BackendUnavailable
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.loadbalancer.base import Released
from whisk.loadbalancer.lean import LeanBalancer
from whisk.messaging.memory import MemoryBus
from whisk.runtimes.manifest import load_manifest
from whisk.store.base import put_activation_retrying
from whisk.store.memory import MemoryStore

CODE = {"exec": {"kind": "python:3", "code": "def main(a): return a"}}


@asynccontextmanager
async def controller(store: MemoryStore, data: str) -> AsyncIterator[ControllerServices]:
    settings = dataclasses.replace(Settings(), data_dir=data, catalog=False, alarms_refresh_s=3600)
    async with MemoryBus() as bus:
        def balancer(on_release: Released) -> LeanBalancer:
            return LeanBalancer(bus, controller=0, on_release=on_release)

        async with open_controller(settings, store, bus, balancer, load_manifest()) as services:
            await services.subjects.bootstrap()
            yield services


async def guest_of(services: ControllerServices) -> tuple[Identity, EntityPath]:
    guest = await services.subjects.identity_of("guest")
    assert guest is not None
    return guest, EntityPath.of("guest")


async def settled(services: ControllerServices) -> None:
    for _ in range(200):
        if not services.launcher._tasks:
            return
        await asyncio.sleep(0.01)


@pytest.fixture
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher_module, "put_activation_retrying",
                        functools.partial(put_activation_retrying, retry_s=0.1))


async def test_a_record_the_controller_cannot_store_is_stored_by_the_restart(short_retries, tmp_path: Path) -> None:
    data = str(tmp_path)
    async with DownStore() as store:
        async with controller(store, data) as services:
            guest, ns = await guest_of(services)
            await services.entities.collections["actions"].put(guest, ns, "x", CODE, False)
            await services.entities.collections["triggers"].put(guest, ns, "t", {}, False)
            await services.entities.collections["rules"].put(guest, ns, "r", {"trigger": "/_/t", "action": "/_/x"},
                                                             False)
            store.down = True
            fire_id = await services.firing.fire(guest, "_", "t", {}, {}, "tid")
            assert fire_id is not None
            await settled(services)
            assert await store.get_activation("guest", fire_id) is None
            # A blocking call of an action the controller serves: its caller gets the result, the store refuses it.
            await services.entities.collections["actions"].put(guest, ns, "served", CODE, False)
            resolved = await services.entities.resolve_action(guest, "_", None, "served")
            serve_in_controller(services, resolved, {"served": True})
            outcome = await services.launcher.start(guest, resolved, {}, blocking=True, wait_ms=60_000, tid="t")
            assert outcome.record is not None and outcome.record.response.result == {"served": True}
            await settled(services)
        store.down = False
        restarted = Ledger(store, Path(data) / "controller0.journal", Drain())
        await restarted.recover()
        # The restart stores the records the controller wrote, not errors saying the fire or the call never ended.
        record = await store.get_activation("guest", fire_id)
        assert record is not None and record["response"]["statusCode"] == 0, record
        assert record["logs"] and RESTARTED not in str(record), record
        record = await store.get_activation("guest", outcome.activation_id)
        assert record is not None and record["response"]["result"] == {"served": True}, record
        await restarted.close()


async def test_an_action_the_controller_serves_is_journaled_before_its_id_is_answered(tmp_path: Path) -> None:
    data = str(tmp_path)
    path = Path(data) / "controller0.journal"
    async with MemoryStore() as store:
        async with controller(store, data) as services:
            guest, ns = await guest_of(services)
            await services.entities.collections["actions"].put(guest, ns, "served", CODE, False)
            resolved = await services.entities.resolve_action(guest, "_", None, "served")
            gate = asyncio.Event()

            async def served(caller: Any, action: Any, params: Any) -> tuple[bool, Any]:
                await gate.wait()
                return True, {"served": True}

            async def failing(caller: Any, action: Any, params: Any) -> tuple[bool, Any]:
                raise BackendUnavailable("The store is not reachable.")

            services.launcher.natives[resolved.path] = served
            outcome = await services.launcher.start(guest, resolved, {}, blocking=False, wait_ms=0, tid="t")
            # A crash now, after the 202: the journal holds the id, so the restart records it.
            assert outcome.activation_id in [e["id"] for e in Journal(path).unfinished()]
            gate.set()
            await settled(services)
            record = await store.get_activation("guest", outcome.activation_id)
            assert record is not None and record["response"]["result"] == {"served": True}
            services.launcher.natives[resolved.path] = failing
            failed = await services.launcher.start(guest, resolved, {}, blocking=False, wait_ms=0, tid="t")
            await settled(services)
            record = await store.get_activation("guest", failed.activation_id)
            assert record is not None and record["response"]["statusCode"] == 3, record
        assert Journal(path).unfinished() == []


async def test_the_log_lines_of_an_activation_the_controller_runs_name_it(tmp_path: Path) -> None:
    """docs/operations.md, Logs: every line of an activation's path carries its `activation_id`, `namespace` and
    `action`, as the activator binds them for a primitive action; also for the actions the controller serves itself
    (the alarms feeds' lines) and, by the same door, its sequences and compositions."""
    from whisk import logs
    async with MemoryStore() as store:
        async with controller(store, str(tmp_path)) as services:
            guest, ns = await guest_of(services)
            await services.entities.collections["actions"].put(guest, ns, "served", CODE, False)
            resolved = await services.entities.resolve_action(guest, "_", None, "served")
            seen: list[dict[str, object]] = []

            async def served(caller: Any, action: Any, params: Any) -> tuple[bool, Any]:
                seen.append(dict(logs._CONTEXT.get()))          # what a line logged here would carry
                return True, {}

            services.launcher.natives[resolved.path] = served
            for blocking in (True, False):
                outcome = await services.launcher.start(guest, resolved, {}, blocking=blocking, wait_ms=60_000,
                                                        tid="t")
                await settled(services)
                fields = seen.pop()
                assert (fields.get("activation_id"), fields.get("namespace"), fields.get("action")) == \
                    (outcome.activation_id, "guest", "guest/served"), fields


async def test_a_served_sequence_step_that_fails_is_recorded_as_the_sequences_component(tmp_path: Path) -> None:
    """An action the controller serves (an alarms feed) run as a sequence's step: when it fails, or a stop or a crash
    cuts it short, the whisk-error record the ledger writes for it names the sequence (`cause`, `causedBy`), as the
    record it writes when the step succeeds does and as any other component's does; the journal line the restart
    reads carries the cause too."""
    data = str(tmp_path)
    async with MemoryStore() as store:
        async with controller(store, data) as services:
            guest, ns = await guest_of(services)
            actions = services.entities.collections["actions"]
            await actions.put(guest, ns, "served", CODE, False)
            await actions.put(guest, ns, "seq", {"exec": {"kind": "sequence", "components": ["/_/served"]}}, False)
            served = await services.entities.resolve_action(guest, "_", None, "served")
            gate = asyncio.Event()

            async def held(caller: Any, action: Any, params: Any) -> tuple[bool, Any]:
                await gate.wait()
                raise BackendUnavailable("The store is not reachable.")

            services.launcher.natives[served.path] = held
            seq = await services.entities.resolve_request(guest, "_", None, "seq")
            outcome = await services.launcher.start(guest, seq, {}, blocking=False, wait_ms=0, tid="t")
            for _ in range(200):
                open_lines = Journal(Path(data) / "controller0.journal").unfinished()
                if len(open_lines) == 2:
                    break
                await asyncio.sleep(0.01)
            gate.set()
            step = next(e for e in open_lines if e["id"] != outcome.activation_id)
            assert step.get("cause") == outcome.activation_id, open_lines
            await settled(services)
            sequence = await store.get_activation("guest", outcome.activation_id)
            assert sequence is not None and sequence["response"]["statusCode"] == 3, sequence
            record = await store.get_activation("guest", step["id"])
            assert record is not None and record["response"]["statusCode"] == 3, record
            assert record.get("cause") == outcome.activation_id, record
            assert {"key": "causedBy", "value": "sequence"} in record["annotations"], record
