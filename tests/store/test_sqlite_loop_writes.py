"""Small batches of activation records are committed on the event loop (whisk/store/sqlite.py): without the writer
thread; never waiting on the loop for a lock held elsewhere (the writer thread waits instead); large records and
large batches still on the writer thread; and the WAL checkpointed on the writer thread as the loop writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import whisk.store.sqlite as sqlite_store
from whisk.entities.activation import Activation, ActivationResponse, new_activation_id
from whisk.store.sqlite import SqliteStore


def record(log_bytes: int = 0) -> Activation:
    return Activation("guest", "noop", "guest", new_activation_id(), 1000, 1001, ActivationResponse.success({}, 2),
                      tuple(["x" * log_bytes] if log_bytes else ()))


async def writer_thread_held(store: SqliteStore) -> threading.Event:
    """Occupy the writer thread until the returned event is set."""
    release, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(10)

    asyncio.get_running_loop().run_in_executor(store._executor, hold)
    await asyncio.to_thread(busy.wait, 5)
    return release


async def test_a_small_record_is_committed_without_the_writer_thread(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        release = await writer_thread_held(store)
        try:
            small = record()
            await asyncio.wait_for(store.put_activation(small), 2)        # the thread is busy: the loop wrote it
            assert (await store.get_activation("guest", small.activation_id))["name"] == "noop"
            large = record(log_bytes=100_000)                             # large: encoded and written on the thread
            pending = asyncio.create_task(store.put_activation(large))
            await asyncio.sleep(0.1)
            assert not pending.done()
        finally:
            release.set()
        await pending
        assert await store.get_activation("guest", large.activation_id) is not None


async def test_a_batch_of_up_to_128_records_is_committed_on_the_loop_a_larger_one_on_the_writer_thread(
        tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        release = await writer_thread_held(store)
        try:
            await asyncio.wait_for(asyncio.gather(*(store.put_activation(record()) for _ in range(128))), 2)
            larger = asyncio.gather(*(store.put_activation(record()) for _ in range(129)))
            await asyncio.sleep(0.1)
            assert not larger.done()                                      # waits for the thread
        finally:
            release.set()
        await asyncio.wait_for(larger, 10)


async def test_a_lock_held_elsewhere_is_waited_for_on_the_writer_thread_not_on_the_loop(tmp_path: Path) -> None:
    path = str(tmp_path / "whisk.db")
    async with SqliteStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")                                  # another process holds the write lock
        try:
            one = record()
            stuck = asyncio.create_task(store.put_activation(one))
            began = time.monotonic()
            for _ in range(10):                                           # the loop keeps turning meanwhile
                await asyncio.sleep(0.01)
            assert time.monotonic() - began < 0.5 and not stuck.done()
        finally:
            other.execute("COMMIT")
            other.close()
        await asyncio.wait_for(stuck, 10)
        assert await store.get_activation("guest", one.activation_id) is not None


async def test_the_wal_is_checkpointed_on_the_writer_thread_as_the_loop_writes(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_ROWS", 20)
    checkpoints: list[str] = []
    original = SqliteStore._checkpoint_now

    def counted(self: SqliteStore) -> None:
        checkpoints.append(threading.current_thread().name)
        original(self)

    monkeypatch.setattr(SqliteStore, "_checkpoint_now", counted)
    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        for _ in range(50):
            await store.put_activation(record())                          # one at a time: each batch on the loop
    assert len(checkpoints) >= 2 and all(name.startswith("whisk-sqlite") for name in checkpoints)


async def test_a_batch_of_several_statements_is_stored_whole(tmp_path: Path) -> None:
    """Records go in a few multi-row statements (128, 64, ... rows): a batch of 450 (five statements, the same id
    twice among them) is stored whole, the later copy of a repeated id kept, as INSERT OR REPLACE one by one would."""
    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        records = [record() for _ in range(449)]
        again = Activation("guest", "noop", "guest", records[10].activation_id, 2000, 2001,
                           ActivationResponse.success({"again": True}, 2), ())
        await asyncio.gather(*(store.put_activation(r) for r in [*records, again]))
        for r in records:
            assert await store.get_activation("guest", r.activation_id) is not None
        stored = await store.get_activation("guest", again.activation_id)
        assert stored["start"] == 2000 and stored["response"]["result"] == {"again": True}


async def test_records_gathered_for_a_commit_are_committed_as_soon_as_the_loop_is_idle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_GATHER_S", 30.0)                 # the gathering alone would outlast the test
    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        first, second = record(), record()
        puts = [asyncio.create_task(store.put_activation(r)) for r in (first, second)]
        await asyncio.sleep(0.05)
        assert not any(put.done() for put in puts)                      # still gathering
        store.loop_idle()                                               # the pool's spin: nothing else to run
        await asyncio.wait_for(asyncio.gather(*puts), 2)
        for r in (first, second):
            assert await store.get_activation("guest", r.activation_id) is not None
        store.loop_idle()                                               # nothing gathering: nothing to do
        third = asyncio.create_task(store.put_activation(record()))    # a new gathering waits again
        await asyncio.sleep(0.05)
        assert not third.done()
        store.loop_idle()
        await asyncio.wait_for(third, 2)


async def test_the_wal_shrinks_back_after_a_large_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite reuses a WAL file from its start after a checkpoint but keeps its size: without a limit, one large
    transaction (a batch of records with large logs, a namespace purged) would keep that much disk until the server
    stops. The limit truncates it once it has been checkpointed."""
    monkeypatch.setattr(sqlite_store, "_WAL_LIMIT_BYTES", 1 << 20)
    db = tmp_path / "whisk.db"
    async with SqliteStore(str(db)) as store:
        await asyncio.gather(*(store.put_activation(record(log_bytes=200_000)) for _ in range(40)))
        assert (tmp_path / "whisk.db-wal").stat().st_size > 4 << 20          # ~8 MB, more than 1000 pages
        await store.put_activation(record(log_bytes=100_000))                   # after the writer's checkpoint
        assert (tmp_path / "whisk.db-wal").stat().st_size <= 1 << 20
