"""Beyond OpenWhisk: an activation accepted while the store or the data folder fails for a while still ends with a
stored record, and one that cannot be journaled is refused (503), never answered 202 and then lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.invoke.test_restart import fresh, put_with_sequence, start
from tests.support.http import record_of
from tests.support.processes import free_port, terminate, until_ready
from whisk.controller.journal import Journal
from whisk.entities.activation import Activation, ActivationResponse, new_activation_id
from whisk.entities.errors import BackendUnavailable
from whisk.store.base import put_activation_retrying
from whisk.store.memory import MemoryStore

SLEEPY = ("import time\ndef main(a):\n    print('ran', a.get('n'))\n    time.sleep(a.get('s', 0))\n"
          "    return {'n': a.get('n')}\n")


def record(activation_id: str) -> Activation:
    return Activation(namespace="guest", name="x", subject="guest", activation_id=activation_id, start=1, end=2,
                      response=ActivationResponse.success({}))


def test_a_journal_on_a_full_disk_refuses_new_activations_and_never_raises_otherwise(tmp_path) -> None:
    journal = Journal(tmp_path / "controller0.journal")
    journal.open()
    journal.accepted("a" * 32, "guest", "guest", "guest/x", "0.0.1", None)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, journal._fd)                 # every write from now on: ENOSPC
        with pytest.raises(BackendUnavailable, match="journal cannot be written"):
            journal.accepted("b" * 32, "guest", "guest", "guest/x", "0.0.1", None)
        journal.answered(record("a" * 32))         # logged, not raised: the caller is answered anyway
        journal.completed("a" * 32)
        journal._write_done()                       # as the loop's callback would: no exception
    finally:
        os.close(full)
        journal.close()


async def test_a_record_write_is_retried_while_the_store_is_unavailable() -> None:
    class Flaky(MemoryStore):
        failures = 3

        async def put_activation(self, activation: Activation) -> None:
            if self.failures:
                self.failures -= 1
                raise BackendUnavailable("sqlite: database is locked")
            await super().put_activation(activation)

    async with Flaky() as store:
        activation_id = new_activation_id()
        await put_activation_retrying(store, record(activation_id), retry_s=10)
        assert await store.get_activation("guest", activation_id) is not None
        store.failures = 1000
        with pytest.raises(BackendUnavailable):
            await put_activation_retrying(store, record(new_activation_id()), retry_s=0.2)


@contextlib.contextmanager
def locked(db: str, seconds: float, release: threading.Event | None = None) -> Iterator[threading.Event]:
    """Another process's write lock on the SQLite file (here a connection of this one), held `seconds` (longer than
    the store's busy timeout, 5 s), or until `release` is set."""
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        (release or threading.Event()).wait(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait(10)
    try:
        yield held
    finally:
        thread.join()


async def test_records_written_while_the_database_is_locked_are_stored_once_it_is_free() -> None:
    data_dir, port, auth, url = fresh()
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            async with s.put("/api/v1/namespaces/_/actions/sleepy",
                             json={"exec": {"kind": "python:3", "code": SLEEPY}}) as r:
                assert r.status == 200, await r.text()
            async with s.post("/api/v1/namespaces/_/actions/sleepy?blocking=true", json={"n": 0}) as r:
                assert r.status == 200                    # warm, and the action cached
            answered: list[str] = []
            with locked(f"{data_dir}/whisk.db", 8):
                async def invoke(n: int, blocking: bool) -> None:
                    async with s.post(f"/api/v1/namespaces/_/actions/sleepy?blocking={str(blocking).lower()}",
                                      json={"n": n}) as r:
                        body: dict[str, Any] = await r.json()
                        assert r.status in (200, 202), body
                        answered.append(body["activationId"])
                await asyncio.gather(*(invoke(n, n % 2 == 0) for n in range(1, 5)))
            for activation_id in answered:
                body = await record_of(s, activation_id, 60, complete=True)
                assert body["response"]["status"] == "success", body
                assert any("ran" in line for line in body["logs"]), body
    finally:
        await terminate(proc)


async def test_a_request_the_locked_database_refuses_does_not_name_the_file() -> None:
    """A write the SQLite file refuses past its busy timeout is 503 "The database is unavailable.", as on CouchDB:
    neither the data folder's path nor SQLite's words reach the caller (they go to the log)."""
    data_dir, port, auth, url = fresh()
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            with locked(f"{data_dir}/whisk.db", 7):
                async with s.put("/api/v1/namespaces/_/triggers/refused", json={}) as r:
                    body = await r.json()
            assert (r.status, body["error"]) == (503, "The database is unavailable."), body
            assert data_dir not in await r.text()
            async with s.put("/api/v1/namespaces/_/triggers/refused", json={}) as r:
                assert r.status == 200, await r.text()          # and once the lock is gone, all is well again
    finally:
        await terminate(proc)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs as the data folder")
async def test_a_full_data_folder_refuses_activations_instead_of_losing_them() -> None:
    mount = tempfile.mkdtemp(prefix="whisk-full-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]).returncode != 0:
        pytest.skip("cannot mount a tmpfs")
    data_dir = f"{mount}/data"
    _, port, auth, url = fresh()
    env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_DATA_DIR": data_dir, "WHISK_POOL_PREWARM": "false"}
    with open(os.environ.get("WHISK_TEST_LOG", os.devnull), "ab") as log:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env, stdout=log, stderr=log)
    try:
        await until_ready(f"{url}/ping", proc, deadline_s=30)
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            await put_with_sequence(s, SLEEPY, "seq")
            async with s.post("/api/v1/namespaces/_/actions/seq?blocking=true", json={"n": 0}) as r:
                assert r.status == 200
            subprocess.run(["dd", "if=/dev/zero", f"of={mount}/filler", "bs=1M"], capture_output=True)
            accepted: list[str] = []

            async def invoke(name: str, blocking: str) -> None:
                async with s.post(f"/api/v1/namespaces/_/actions/{name}?blocking={blocking}", json={"n": 1}) as r:
                    body = await r.json()
                    assert r.status in (200, 202, 503), body           # refused: 503, never a 500
                    if r.status == 503:
                        assert "journal" in body["error"], body
                    else:
                        accepted.append(body["activationId"])

            async def free_the_disk() -> None:
                await asyncio.sleep(3)
                os.unlink(f"{mount}/filler")

            await asyncio.gather(free_the_disk(), *(invoke(name, blocking) for name in ("seq", "sleepy")
                                                    for blocking in ("false", "true")))
            for activation_id in accepted:                              # whatever was accepted has its record
                await record_of(s, activation_id, 60, complete=True)
            async with s.post("/api/v1/namespaces/_/actions/seq?blocking=true", json={"n": 2}) as r:
                assert r.status == 200, await r.text()
    finally:
        await terminate(proc)
        subprocess.run(["umount", "-l", mount])


async def test_a_fire_while_the_server_drains_is_refused_as_an_invoke_is() -> None:
    """After SIGTERM an invoke is 503; a fire was 202 with every rule's activation refused in its record."""
    data_dir, port, auth, url = fresh()
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            for method, path, body in (
                    ("PUT", "/api/v1/namespaces/_/actions/sleepy", {"exec": {"kind": "python:3", "code": SLEEPY}}),
                    ("PUT", "/api/v1/namespaces/_/triggers/t", {}),
                    ("PUT", "/api/v1/namespaces/_/rules/r", {"trigger": "/_/t", "action": "/_/sleepy"})):
                async with s.request(method, path, json=body) as r:
                    assert r.status == 200, await r.text()
            async with s.post("/api/v1/namespaces/_/actions/sleepy", json={"s": 5}) as r:
                assert r.status == 202                     # work in flight: the stop drains
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            for _ in range(100):                           # until the signal is handled: invokes are then 503
                async with s.post("/api/v1/namespaces/_/actions/sleepy", json={}) as r:
                    if r.status == 503:
                        break
                    assert r.status == 202, await r.text()
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("invokes were still accepted 10 s after SIGTERM")
            async with s.post("/api/v1/namespaces/_/triggers/t", json={}) as r:
                assert r.status == 503, await r.text()
    finally:
        await terminate(proc)


async def test_a_store_locked_at_start_stops_the_server_with_one_line() -> None:
    """As a port in use does: `whisk: cannot start: ...`, exit status 1, no traceback."""
    data_dir, port, _, _ = fresh()
    proc = await start(data_dir, port)                 # makes the database
    await terminate(proc)
    env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_DATA_DIR": data_dir,
                              "WHISK_PLAYGROUND_PORT": str(free_port())}
    # Held until the server has given up (however slow its start on a loaded machine), and the server never left
    # running: a start that got past the lock would otherwise outlive the test.
    release = threading.Event()
    with locked(f"{data_dir}/whisk.db", 90, release):
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            release.set()
            await terminate(proc)
    assert proc.returncode == 1, err
    assert b"whisk: cannot start: " in err and b"locked" in err and b"Traceback" not in err, err
