"""The SQLite store reads on threads of their own: a write stuck behind another process's lock does not hold up
reads; records read by id are parsed there too; and a database of an older whisk (no summary column) is upgraded
when opened, one document at a time."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import whisk.store.sqlite as sqlite_store
from whisk.entities.activation import Activation, ActivationResponse
from whisk.store.sqlite import SqliteStore


async def test_reads_do_not_wait_for_a_blocked_write(tmp_path: Path) -> None:
    path = str(tmp_path / "whisk.db")
    async with SqliteStore(path) as store:
        await store.put({"_id": "a/x", "entityType": "action", "namespace": "a", "name": "x", "updated": 1})
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")                       # another process holds the write lock
        try:
            stuck = asyncio.create_task(store.put(
                {"_id": "a/y", "entityType": "action", "namespace": "a", "name": "y", "updated": 2}))
            await asyncio.sleep(0)                             # the put reaches the writer thread first, and waits
            assert not stuck.done()
            began = time.monotonic()
            for _ in range(20):
                assert (await store.get("a/x"))["name"] == "x"  # type: ignore[index]
                assert [d["name"] for d in await store.list_entities("action", "a")] == ["x"]
            assert time.monotonic() - began < 2.0, "reads queued behind the blocked write"
        finally:
            other.execute("ROLLBACK")
            other.close()
        await stuck
        assert [d["name"] for d in await store.list_entities("action", "a")] == ["y", "x"]   # and then see it


def older_database(path: str) -> sqlite3.Connection:
    """The entities table as whisk wrote it before the summary column."""
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE entities (id TEXT PRIMARY KEY, rev TEXT NOT NULL, entity_type TEXT NOT NULL,
            ns_root TEXT NOT NULL, namespace TEXT NOT NULL, updated INTEGER NOT NULL, doc TEXT NOT NULL);
        CREATE INDEX entities_by_root ON entities (entity_type, ns_root, updated DESC, id DESC);
        CREATE INDEX entities_by_namespace ON entities (entity_type, namespace, updated DESC, id DESC);""")
    return old


async def test_an_older_database_gets_its_summaries(tmp_path: Path) -> None:
    path = str(tmp_path / "whisk.db")
    old = older_database(path)
    doc = {"_id": "a/x", "_rev": "1-abc", "entityType": "action", "namespace": "a", "name": "x", "updated": 1,
           "exec": {"kind": "python:3", "code": "x" * 100_000, "binary": False}}
    old.execute("INSERT INTO entities VALUES ('a/x', '1-abc', 'action', 'a', 'a', 1, ?)", (json.dumps(doc),))
    old.commit()
    old.close()
    async with SqliteStore(path) as store:
        assert await store.list_entities("action", "a") == [{**doc, "exec": {"kind": "python:3", "binary": False}}]
        assert (await store.get("a/x")) == doc
    check = sqlite3.connect(path)
    columns = [row[1] for row in check.execute("PRAGMA table_info(entities)")]
    indexes = {row[1] for row in check.execute("PRAGMA index_list(entities)")}
    check.close()
    assert columns.index("summary") < columns.index("doc")       # listings never walk past the code
    assert {"entities_by_root", "entities_by_namespace"} <= indexes


async def test_an_older_databases_upgrade_holds_one_action_at_a_time(tmp_path: Path) -> None:
    """40 actions of 1 MB of code each: filling in their summaries holds about one of them, not all 40."""
    path = str(tmp_path / "whisk.db")
    old = older_database(path)
    for i in range(40):
        doc = {"_id": f"a/x{i}", "_rev": "1-abc", "entityType": "action", "namespace": "a", "name": f"x{i}",
               "updated": i, "exec": {"kind": "python:3", "code": "x" * 1_000_000, "binary": False}}
        old.execute("INSERT INTO entities VALUES (?, '1-abc', 'action', 'a', 'a', ?, ?)",
                    (f"a/x{i}", i, json.dumps(doc)))
    old.commit()
    old.close()
    tracemalloc.start()
    try:
        async with SqliteStore(path) as store:
            _, peak = tracemalloc.get_traced_memory()
            assert len(await store.list_entities("action", "a", limit=0)) == 40
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, f"the upgrade held {peak / 1e6:.0f} MB at once"


async def test_records_read_by_id_are_parsed_on_the_reader_thread(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing with docs reads its records by id, a few at a time; each parse of a record with megabytes of logs
    is tens of milliseconds, so it happens on the reader thread, never on the event loop."""
    parsed_on: list[str] = []
    loads = json.loads

    def watched(text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str) and '"activationId"' in text:
            parsed_on.append(threading.current_thread().name)
        return loads(text, *args, **kwargs)

    async with SqliteStore(str(tmp_path / "whisk.db")) as store:
        ids = [f"{n:032x}" for n in range(3)]
        for n, activation_id in enumerate(ids):
            await store.put_activation(Activation("ns", "a", "ns", activation_id, 1000 + n, 1001 + n,
                                                  ActivationResponse.success({"n": n}), logs=("x" * 100,)))
        monkeypatch.setattr(sqlite_store, "json", type("json", (), {"loads": staticmethod(watched),
                                                                    "dumps": staticmethod(json.dumps)}))
        docs = await store.get_activations("ns", list(reversed(ids)))
    assert [d["activationId"] for d in docs] == list(reversed(ids))
    assert len(parsed_on) == 3 and threading.main_thread().name not in parsed_on, parsed_on
