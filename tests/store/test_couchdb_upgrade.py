"""A CouchDB written by an older whisk: its documents and its design documents, as the first CouchDB store (52a4ab9)
wrote them, read by this one; and an older whisk started again beside it (a rolling upgrade) changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.store.test_contract import drop_databases
from whisk.store.base import ActivationQuery
from whisk.store.couchdb import CouchStore
from whisk.store.couchdb_views import DESIGN_DOCS

pytestmark = pytest.mark.couchdb

# The views of whisks before listings read view values: every row's value null, read with include_docs.
_OLD_ENTITIES = """function (doc) {
  if (typeof doc.entityType !== "string" || typeof doc.namespace !== "string") return;
  var updated = typeof doc.updated === "number" ? doc.updated : 0;
  var root = doc.namespace.split("/")[0];
  emit([doc.entityType, doc.namespace, updated], null);
  if (root !== doc.namespace) emit([doc.entityType, root, updated], null);
}"""
_OLD_BY_START = """function (doc) {
  if (doc.activationId === undefined || typeof doc.namespace !== "string") return;
  emit([doc.namespace, typeof doc.start === "number" ? doc.start : 0], null);
}"""
OLD_DESIGNS = {
    "whisks": {"_id": "_design/whisks", "language": "javascript",
               "views": {"entities": {"map": _OLD_ENTITIES, "reduce": "_count"}}},
    "activations": {"_id": "_design/activations", "language": "javascript",
                    "views": {"byStart": {"map": _OLD_BY_START, "reduce": "_count"}}},
}
# Documents as that whisk wrote them (an action with its code, a binary one, a record, a subject).
OLD_DOCS = {
    "whisks": [
        {"_id": "guest/hello", "namespace": "guest", "name": "hello", "version": "0.0.1", "publish": False,
         "annotations": [{"key": "exec", "value": "python:3.11"}], "updated": 1796632076000,
         "exec": {"kind": "python:3.11", "code": "def main(args):\n    return {}\n", "binary": False},
         "parameters": [], "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
         "entityType": "action"},
        {"_id": "guest/pkg/zipped", "namespace": "guest/pkg", "name": "zipped", "version": "0.0.2", "publish": False,
         "annotations": [], "updated": 1796632077000, "exec": {"kind": "python:3.11", "code": "UEsDBBQAAAAA"},
         "parameters": [], "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
         "entityType": "action"}],
    "activations": [
        {"_id": "guest/" + "a" * 32, "entityType": "activation", "namespace": "guest", "name": "hello",
         "subject": "guest", "activationId": "a" * 32, "version": "0.0.1", "start": 1796632078000,
         "end": 1796632078002, "duration": 2, "statusCode": 0,
         "response": {"status": "success", "statusCode": 0, "success": True, "result": {"big": "x" * 100}},
         "logs": ["2026-12-04T08:20:25.000000000Z stdout: hi"],
         "annotations": [{"key": "path", "value": "guest/hello"}], "publish": False}],
    "subjects": [
        {"_id": "guest", "subject": "guest", "namespaces": [
            {"name": "guest", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502", "key_hash": "0" * 64,
             "key_salt": "1" * 32}]}],
}


@pytest.fixture
async def old_database(couchdb_url: str) -> AsyncIterator[tuple[str, str]]:
    """(server URL, prefix) of databases an older whisk made, with its design documents and documents."""
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
        for db in ("whisks", "activations", "subjects"):
            async with http.put(f"{couchdb_url}/{prefix}{db}") as resp:
                assert resp.status == 201, await resp.text()
        await put_old_designs(http, couchdb_url, prefix)
        for db, docs in OLD_DOCS.items():
            async with http.post(f"{couchdb_url}/{prefix}{db}/_bulk_docs", json={"docs": docs}) as resp:
                assert resp.status == 201, await resp.text()
    try:
        yield couchdb_url, prefix
    finally:
        await drop_databases(couchdb_url, prefix)


async def put_old_designs(http: aiohttp.ClientSession, url: str, prefix: str) -> None:
    """What an older whisk does on start: its design documents, replacing whatever is at their ids."""
    for db, design in OLD_DESIGNS.items():
        path = f"{url}/{prefix}{db}/{design['_id']}"
        async with http.get(path) as resp:
            current = await resp.json()
        body = {**design, **({"_rev": current["_rev"]} if resp.status == 200 else {})}
        async with http.put(path, json=body) as resp:
            assert resp.status == 201, await resp.text()


async def read_all(store: CouchStore) -> None:
    actions = await store.list_entities("action", "guest")
    assert [a["name"] for a in actions] == ["zipped", "hello"]
    assert all("code" not in a["exec"] for a in actions)           # listings leave the code out
    assert actions[0]["exec"]["binary"] is True                    # and say what it was
    assert await store.count("action", "guest") == 2
    assert (await store.get("guest/hello"))["exec"]["code"].startswith("def main")  # type: ignore[index]
    listed = await store.list_activations(ActivationQuery(namespace="guest", docs=False))
    assert [r["activationId"] for r in listed] == ["a" * 32]
    assert "logs" not in listed[0] and "result" not in listed[0]["response"]
    assert (await store.get_activation("guest", "a" * 32))["logs"]  # type: ignore[index]
    assert (await store.find_namespace("23bc46b1-71f6-4ed5-8c54-816aa4f8c502"))[1]["name"] == "guest"  # type: ignore[index]


async def test_an_older_whisks_documents_and_views_are_read(old_database: tuple[str, str]) -> None:
    url, prefix = old_database
    async with CouchStore(url, prefix=prefix) as store:
        await read_all(store)
        # Left in place, and named at start (the store logs them; the log's capture depends on the suite's order).
        assert store.stale_designs == {f"{prefix}whisks": ["_design/whisks"],
                                       f"{prefix}activations": ["_design/activations"]}


async def test_an_older_whisk_started_again_beside_this_one_changes_nothing(old_database: tuple[str, str]) -> None:
    """A rolling upgrade: an old whisk (re)starts on the database after this one did and installs its own views.
    This one's listings keep their rows (they were empty: the old views' values are null)."""
    url, prefix = old_database
    async with CouchStore(url, prefix=prefix) as store:
        await read_all(store)
        async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
            await put_old_designs(http, url, prefix)
        await read_all(store)
    async with CouchStore(url, prefix=prefix) as again:            # and this one started again after it
        await read_all(again)
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
        for db, design in OLD_DESIGNS.items():                     # the old whisk's views are left as it made them
            async with http.get(f"{url}/{prefix}{db}/{design['_id']}") as resp:
                assert (await resp.json())["views"] == design["views"]
            async with http.get(f"{url}/{prefix}{db}/{DESIGN_DOCS[db]['_id']}") as resp:
                assert resp.status == 200
