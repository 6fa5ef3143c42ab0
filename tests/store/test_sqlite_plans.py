"""The sqlite store's reads and prunes go through its indexes, never a scan of a table that grows with every
activation: EXPLAIN QUERY PLAN of the statements the store runs."""

from __future__ import annotations

import sqlite3

import pytest

from whisk.store import sqlite as store


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(store._SCHEMA)
    return conn


def plan(conn: sqlite3.Connection, sql: str, args: list[object]) -> list[str]:
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]


def test_prune_finds_namespaces_and_old_records_through_the_index(conn: sqlite3.Connection) -> None:
    steps = plan(conn, store._RECORD_NAMESPACES, []) + plan(conn, store._PRUNE, ["ns", 1, store.PRUNE_BATCH])
    assert not [step for step in steps if step.startswith("SCAN activations")], steps
    assert "SEARCH activations USING COVERING INDEX activations_by_start (namespace=? AND start<?)" in steps


@pytest.mark.parametrize("name, since, upto", [(None, None, None), ("a", None, None), (None, 1, 2), ("a", 1, None)])
def test_activation_listings_and_counts_use_an_index(conn: sqlite3.Connection, name: str | None, since: int | None,
                                                     upto: int | None) -> None:
    where, args = store._activation_where(store.ActivationQuery("ns", name=name, since=since, upto=upto))
    for sql in (f"SELECT doc FROM activations WHERE {where} ORDER BY start DESC, id DESC LIMIT 30 OFFSET 1000",
                f"SELECT count(*) FROM activations WHERE {where}"):
        steps = plan(conn, sql, args)
        assert all(step.startswith("SEARCH activations USING") for step in steps), steps   # no sort, no scan
