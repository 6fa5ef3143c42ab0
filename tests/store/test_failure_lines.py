"""A store that fails (CouchDB away, an SQLite file locked or on a full disk) fails every request that reaches it:
its warning, one a request, is bounded (logs.Bounded), the next line written counting those left out."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from whisk import logs
from whisk.entities.errors import BackendUnavailable
from whisk.store import couchdb, sqlite


@pytest.mark.parametrize("module, event", [(couchdb, "store.couchdb.failed"), (sqlite, "store.sqlite.failed")])
def test_a_failing_store_writes_a_burst_of_lines_then_counts_those_left_out(monkeypatch, module, event) -> None:
    now = [0.0]
    monkeypatch.setattr(module, "_FAILED", logs.Bounded(clock=lambda: now[0]), raising=False)
    store = SimpleNamespace(_path="/data/whisk.db")

    def fail() -> BackendUnavailable:
        if module is couchdb:
            return couchdb._unavailable("couchdb http://127.0.0.1:5984: GET /: ConnectionRefusedError()")
        return sqlite.SqliteStore._unavailable(store, sqlite3.OperationalError("database is locked"))  # type: ignore

    with capture_logs() as lines:
        assert all(isinstance(fail(), BackendUnavailable) for _ in range(1000))
        now[0] += 1.0
        fail()
    written = [line for line in lines if line["event"] == event]
    assert len(written) == 21 and written[-1]["not_logged"] == 980, (len(written), written[-1])
