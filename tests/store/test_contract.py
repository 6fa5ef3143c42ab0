"""One contract for every Store adapter (whisk/store/base.py), run against each real backend."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.store.link import Link
from tests.support.processes import free_port
from whisk.entities.activation import Activation, ActivationResponse
from whisk.entities.errors import BackendUnavailable, Conflict, NotFound
from whisk.store.base import ActivationQuery, Doc, NamespaceStates, Store
from whisk.store import couchdb
from whisk.store.couchdb import CouchStore, server_url
from whisk.store.couchdb_views import DESIGN_DOCS
from whisk.store.memory import MemoryStore
from whisk.store.sqlite import SqliteStore

ADAPTERS = ["memory", "sqlite", pytest.param("couchdb", marks=pytest.mark.couchdb)]


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, server URL or ""); synchronous, so that it can start the server's session fixture on demand."""
    return request.param, request.getfixturevalue("couchdb_url") if request.param == "couchdb" else ""


@pytest.fixture
async def store(adapter: tuple[str, str], tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind."""
    kind, url = adapter
    match kind:
        case "memory":
            async with MemoryStore() as opened:
                yield opened
        case "sqlite":
            async with SqliteStore(str(tmp_path / "whisk.db")) as opened:
                yield opened
        case "couchdb":
            prefix = f"t{uuid.uuid4().hex[:12]}_"
            async with CouchStore(url, prefix=prefix) as opened:
                yield opened
            await drop_databases(url, prefix)


async def drop_databases(url: str, prefix: str) -> None:
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
        for name in ("whisks", "activations", "subjects"):
            async with http.delete(f"{url}/{prefix}{name}") as resp:
                assert resp.status == 200, await resp.text()


def action(namespace: str, name: str, updated: int, **extra: object) -> Doc:
    return {"_id": f"{namespace}/{name}", "entityType": "action", "namespace": namespace, "name": name,
            "updated": updated, "version": "0.0.1", "publish": False, "annotations": [], **extra}


def activation(namespace: str, activation_id: str, name: str, start: int, path: str | None = None,
               binding: str | None = None) -> Activation:
    annotations = [{"key": "path", "value": path or f"{namespace}/{name}"}]
    if binding:
        annotations.append({"key": "binding", "value": binding})
    return Activation(namespace, name, "guest", activation_id, start, start + 5,
                      ActivationResponse.success({"n": start}), annotations=annotations, duration=5)


# --- entities ---------------------------------------------------------------------------------------------------

async def test_create_get_update_delete(store: Store) -> None:
    assert await store.get("crud/a") is None
    rev1 = await store.put(action("crud", "a", 1, exec={"kind": "python:3", "code": "def main(a): return a"}))
    assert rev1.startswith("1-")
    got = await store.get("crud/a")
    assert got is not None and got["_rev"] == rev1 and got["exec"]["code"] == "def main(a): return a"

    got["version"] = "0.0.2"
    rev2 = await store.put(got)
    assert rev2.startswith("2-") and rev2 != rev1
    again = await store.get("crud/a")
    assert again is not None and again["version"] == "0.0.2" and again["_rev"] == rev2

    await store.delete("crud/a", rev2)
    assert await store.get("crud/a") is None


async def test_create_twice_conflicts(store: Store) -> None:
    await store.put(action("dup", "a", 1))
    with pytest.raises(Conflict):
        await store.put(action("dup", "a", 2))


async def test_update_with_stale_or_unknown_revision_conflicts(store: Store) -> None:
    rev1 = await store.put(action("stale", "a", 1))
    await store.put(action("stale", "a", 2, _rev=rev1))
    with pytest.raises(Conflict):
        await store.put(action("stale", "a", 3, _rev=rev1))
    with pytest.raises(Conflict):
        await store.put(action("stale", "missing", 3, _rev=rev1))


async def test_delete_semantics(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.delete("del/none", "1-abc")
    rev1 = await store.put(action("del", "a", 1))
    rev2 = await store.put(action("del", "a", 2, _rev=rev1))
    with pytest.raises(Conflict):
        await store.delete("del/a", rev1)
    await store.delete("del/a", rev2)
    with pytest.raises(NotFound):
        await store.delete("del/a", rev2)
    rev3 = await store.put(action("del", "a", 3))    # the id is free again (CouchDB continues the generations)
    assert rev3 not in (rev1, rev2) and (await store.get("del/a"))["_rev"] == rev3  # type: ignore[index]


async def test_returned_documents_are_copies(store: Store) -> None:
    await store.put(action("copy", "a", 1))
    got = await store.get("copy/a")
    assert got is not None
    got["name"] = "changed"
    assert (await store.get("copy/a"))["name"] == "a"  # type: ignore[index]


async def test_list_newest_first_with_skip_limit_count(store: Store) -> None:
    for i, name in enumerate(["a", "b", "c", "d", "e"]):
        await store.put(action("lst", name, 100 + i * (1 if name != "c" else 10)))
    await store.put({**action("lst", "t", 500), "entityType": "trigger"})
    names = [d["name"] for d in await store.list_entities("action", "lst")]
    assert names == ["c", "e", "d", "b", "a"]
    assert [d["name"] for d in await store.list_entities("action", "lst", skip=1, limit=2)] == ["e", "d"]
    assert [d["name"] for d in await store.list_entities("action", "lst", skip=3, limit=0)] == ["b", "a"]
    assert await store.list_entities("action", "lst", skip=9) == []
    assert await store.count("action", "lst") == 5
    assert [d["name"] for d in await store.list_entities("trigger", "lst")] == ["t"]
    assert await store.count("rule", "lst") == 0


async def test_list_leaves_out_code_but_keeps_the_rest(store: Store) -> None:
    big = "x" * 200_000
    await store.put(action("code", "plain", 1, exec={"kind": "python:3", "code": big, "binary": False},
                           parameters=[{"key": "p", "value": 1}]))
    await store.put(action("code", "legacy-zip", 2, exec={"kind": "python:3", "code": "UEsDBA=="}))   # no `binary`
    await store.put(action("code", "seq", 3, exec={"kind": "sequence", "components": ["/code/plain"]}))
    await store.put({**action("code", "t", 4), "entityType": "trigger", "parameters": [{"key": "q", "value": 2}]})
    listed = {d["name"]: d for d in await store.list_entities("action", "code")}
    assert listed["plain"]["exec"] == {"kind": "python:3", "binary": False}
    assert listed["plain"]["parameters"] == [{"key": "p", "value": 1}] and listed["plain"]["_rev"].startswith("1-")
    assert listed["legacy-zip"]["exec"] == {"kind": "python:3", "binary": True}
    assert listed["seq"]["exec"] == {"kind": "sequence", "components": ["/code/plain"]}
    assert (await store.list_entities("trigger", "code"))[0]["parameters"] == [{"key": "q", "value": 2}]
    assert (await store.get("code/plain"))["exec"]["code"] == big  # type: ignore[index]   # a get has it all


async def test_purge_namespace_removes_all_it_holds_and_nothing_else(store: Store) -> None:
    for namespace in ("gone", "gone2", "kept"):
        await store.put(action(namespace, "a", 1))
        await store.put(action(f"{namespace}/pkg", "b", 2))
        await store.put({**action(namespace, "t", 3), "entityType": "trigger"})
        await store.put_activation(activation(namespace, f"{namespace}0001", "a", 10))
        await store.put_limits(namespace, {"invocationsPerMinute": 7})
    assert await store.purge_namespace("gone") == {"entities": 3, "activations": 1}
    assert await store.get("gone/a") is None and await store.get("gone/pkg/b") is None
    assert await store.list_entities("action", "gone") == [] and await store.count("trigger", "gone") == 0
    assert await store.get_activation("gone", "gone0001") is None
    assert await store.count_activations(ActivationQuery("gone")) == 0
    assert await store.get_limits("gone") is None
    for namespace in ("gone2", "kept"):                        # a longer name sharing the prefix is another one
        assert await store.count("action", namespace) == 2 and await store.get_limits(namespace) is not None
        assert await store.get_activation(namespace, f"{namespace}0001") is not None
    assert await store.purge_namespace("gone") == {"entities": 0, "activations": 0}


async def test_prune_activations_removes_old_records_of_every_namespace(store: Store,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`whisk admin activations prune`: records that started before the bound go, in every namespace, in batches;
    the rest stay, entities too; `progress` hears how many went so far."""
    monkeypatch.setattr(sys.modules[type(store).__module__], "PRUNE_BATCH", 3, raising=False)
    await store.put(action("old", "a", 1))
    for namespace in ("old", "old2", "new"):
        for i in range(7):
            start = 100 + i if namespace != "new" else 1000 + i
            await store.put_activation(activation(namespace, f"{namespace}{i:04d}", "a", start))
        await store.put_activation(activation(namespace, f"{namespace}late", "a", 500))
    said: list[int] = []
    assert await store.prune_activations(500, said.append) == 14          # 500 itself is kept: "started before"
    assert said == sorted(said) and said[-1] == 14                       # how many went so far, after each batch
    for namespace in ("old", "old2"):
        assert await store.activation_ids(ActivationQuery(namespace, limit=0)) == [f"{namespace}late"]
    assert await store.count_activations(ActivationQuery("new")) == 8
    assert await store.get("old/a") is not None
    assert await store.prune_activations(500) == 0


async def test_list_follows_updates(store: Store) -> None:
    rev = await store.put(action("upd", "old", 1))
    await store.put(action("upd", "new", 2))
    await store.put(action("upd", "old", 3, _rev=rev))
    assert [d["name"] for d in await store.list_entities("action", "upd")] == ["old", "new"]


async def test_root_namespace_covers_packages_but_a_package_path_is_exact(store: Store) -> None:
    await store.put(action("ns1", "top", 1))
    await store.put(action("ns1/pkg", "inner", 2))
    await store.put(action("ns1/other", "more", 3))
    await store.put(action("ns10", "stranger", 4))          # a prefix of the name is another namespace
    await store.put(action("ns10/pkg", "stranger2", 5))
    assert [d["name"] for d in await store.list_entities("action", "ns1")] == ["more", "inner", "top"]
    assert await store.count("action", "ns1") == 3
    assert [d["name"] for d in await store.list_entities("action", "ns1/pkg")] == ["inner"]
    assert await store.count("action", "ns1/pkg") == 1
    assert await store.list_entities("action", "ns1/nope") == []


async def test_public_packages_are_listed_as_list_entities_orders_them(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another namespace's listing: published packages that are no binding, in `list_entities`' order, with skip,
    limit and count; CouchDB reads them three view rows at a time here, across runs of one `updated` value."""
    monkeypatch.setattr(couchdb, "PUBLIC_SCAN", 3)
    for n in range(14):
        publish = n % 3 != 0
        binding = {"namespace": "x", "name": "y"} if n % 5 == 0 else {}
        await store.put({"_id": f"pub/p{n:02}", "entityType": "package", "namespace": "pub", "name": f"p{n:02}",
                         "updated": n // 4, "publish": publish, "binding": binding, "version": "0.0.1"})
    await store.put(action("pub/p01", "inner", 9, publish=True))        # an action is no package
    every = [d["name"] for d in await store.list_entities("package", "pub", limit=0)]
    public = [n for n in every if int(n[1:]) % 3 != 0 and int(n[1:]) % 5 != 0]
    assert public == ["p13", "p11", "p08", "p07", "p04", "p02", "p01"]
    assert await store.count_public_packages("pub") == len(public)
    for skip, limit in ((0, 30), (0, 0), (0, 2), (2, 3), (3, 0), (6, 5), (7, 1), (20, 0)):
        got = [d["name"] for d in await store.public_packages("pub", skip=skip, limit=limit)]
        assert got == (public[skip:skip + limit] if limit else public[skip:]), (skip, limit)
    assert await store.public_packages("nobody") == [] and await store.count_public_packages("nobody") == 0


# --- activations ------------------------------------------------------------------------------------------------

async def test_activation_put_get_overwrite(store: Store) -> None:
    assert await store.get_activation("act", "0" * 32) is None
    record = activation("act", "a" * 32, "hello", 1000)
    await store.put_activation(record)
    got = await store.get_activation("act", "a" * 32)
    assert got is not None and got["response"]["result"] == {"n": 1000} and got["name"] == "hello"
    assert "_rev" not in got
    assert got == record.to_doc()                                    # stored as written, in the stored form
    assert await store.get_activation("other", "a" * 32) is None     # looked up in the caller's namespace only
    assert await store.count_activations(ActivationQuery("act")) == 1  # written by now, in every adapter
    await store.put_activation(dataclasses.replace(record, logs=("done",)))
    assert await store.count_activations(ActivationQuery("act")) == 1
    again = await store.get_activation("act", "a" * 32)
    assert again is not None and again["logs"] == ["done"] and "_rev" not in again
    listed = await store.list_activations(ActivationQuery("act"))
    assert [d["logs"] for d in listed] == [["done"]]


async def test_a_listing_without_docs_leaves_out_the_logs_and_the_result(store: Store) -> None:
    """What a list entry shows, and only that: a page of records with megabytes of logs is not read whole."""
    ns = "summaries"
    record = dataclasses.replace(activation(ns, "s1", "a", 700, path=f"{ns}/pkg/a"), logs=("x" * 4096,) * 8,
                                 cause="c" * 32)
    await store.put_activation(record)
    await store.put_activation(activation(ns, "s2", "b", 800))
    for query in (ActivationQuery(ns, docs=False), ActivationQuery(ns, name="pkg/a", docs=False)):
        listed = [d for d in await store.list_activations(query) if d["activationId"] == "s1"]
        assert len(listed) == 1
        got = listed[0]
        assert "logs" not in got and "result" not in got["response"]
        assert got["response"]["statusCode"] == 0 and got["cause"] == "c" * 32 and got["start"] == 700
        assert Activation.from_doc(got).summary_json() == record.summary_json()
    full = await store.list_activations(ActivationQuery(ns, name="pkg/a"))
    assert [d["logs"] for d in full] == [list(record.logs)] and full[0]["response"]["result"] == {"n": 700}


async def test_records_read_together_come_in_the_order_asked_for(store: Store) -> None:
    ns = "bulk"
    for n in range(5):
        await store.put_activation(activation(ns, f"b{n}", "a", 100 + n))
    await store.put_activation(activation("bulk2", "b9", "a", 900))
    got = await store.get_activations(ns, ["b3", "missing", "b0", "b4", "b9"])     # b9 is another namespace's
    assert [d["activationId"] for d in got] == ["b3", "b0", "b4"]
    assert got[0] == activation(ns, "b3", "a", 103).to_doc() and "_rev" not in got[0]
    assert await store.get_activations(ns, []) == []


async def test_activation_listing(store: Store) -> None:
    ns = "acts"
    await store.put_activation(activation(ns, "01", "a", 100))
    await store.put_activation(activation(ns, "02", "b", 200))
    await store.put_activation(activation(ns, "03", "a", 300))
    await store.put_activation(activation(ns, "04", "a", 400, path=f"{ns}/pkg/a"))
    await store.put_activation(activation(ns, "05", "a", 500, path="other/real/a", binding=f"{ns}/bound"))
    await store.put_activation(activation("acts2", "06", "a", 600))

    def ids(docs: list[Doc]) -> list[str]:
        return [d["activationId"] for d in docs]

    assert ids(await store.list_activations(ActivationQuery(ns))) == ["05", "04", "03", "02", "01"]
    assert await store.count_activations(ActivationQuery(ns)) == 5
    assert ids(await store.list_activations(ActivationQuery(ns, skip=1, limit=2))) == ["04", "03"]
    assert ids(await store.list_activations(ActivationQuery(ns, skip=4, limit=0))) == ["01"]
    assert ids(await store.list_activations(ActivationQuery(ns, name="a"))) == ["03", "01"]
    assert await store.count_activations(ActivationQuery(ns, name="a")) == 2
    assert ids(await store.list_activations(ActivationQuery(ns, name="pkg/a"))) == ["04"]
    assert ids(await store.list_activations(ActivationQuery(ns, name="bound/a"))) == ["05"]
    assert ids(await store.list_activations(ActivationQuery(ns, since=200, upto=400))) == ["04", "03", "02"]
    assert ids(await store.list_activations(ActivationQuery(ns, since=301))) == ["05", "04"]
    assert ids(await store.list_activations(ActivationQuery(ns, upto=199))) == ["01"]
    assert ids(await store.list_activations(ActivationQuery(ns, name="a", since=100, upto=300, limit=1))) == ["03"]
    assert await store.count_activations(ActivationQuery(ns, name="a", since=101)) == 1
    # An empty range (since after upto) is an empty answer, not the database's complaint about reversed keys.
    assert await store.list_activations(ActivationQuery(ns, since=400, upto=200)) == []
    assert await store.list_activations(ActivationQuery(ns, name="a", since=301, upto=300)) == []
    assert await store.count_activations(ActivationQuery(ns, since=400, upto=200)) == 0
    # The ids alone, as listed (a listing with docs reads them first, then the records a batch at a time).
    for query in (ActivationQuery(ns), ActivationQuery(ns, skip=1, limit=2), ActivationQuery(ns, skip=4, limit=0),
                  ActivationQuery(ns, name="a"), ActivationQuery(ns, name="bound/a"),
                  ActivationQuery(ns, since=200, upto=400), ActivationQuery(ns, since=400, upto=200)):
        assert await store.activation_ids(query) == ids(await store.list_activations(query)), query
    assert await store.list_activations(ActivationQuery(ns, name="zzz")) == []
    assert await store.count_activations(ActivationQuery("nobody")) == 0


# --- subjects and limits ----------------------------------------------------------------------------------------

def subject(name: str, *namespaces: tuple[str, str]) -> Doc:
    return {"_id": name, "subject": name,
            "namespaces": [{"name": ns, "uuid": uuid, "key_hash": "h" + uuid, "key_salt": "s"}
                           for ns, uuid in namespaces]}


async def test_subjects(store: Store) -> None:
    assert await store.get_subject("alice") is None
    await store.put_subject(subject("alice", ("alice-ns", "u-alice"), ("shared-ns", "u-shared")))
    await store.put_subject(subject("bobby", ("bob-ns", "u-bob")))
    got = await store.get_subject("alice")
    assert got is not None and [n["name"] for n in got["namespaces"]] == ["alice-ns", "shared-ns"]

    found = await store.find_namespace("u-shared")
    assert found is not None and found[0]["_id"] == "alice" and found[1]["name"] == "shared-ns"
    by_name = await store.find_namespace_by_name("bob-ns")
    assert by_name is not None and by_name[0]["_id"] == "bobby" and by_name[1]["uuid"] == "u-bob"
    assert await store.find_namespace("u-none") is None
    assert await store.find_namespace_by_name("none-ns") is None

    await store.put_subject(subject("alice", ("alice-ns", "u-alice2")))        # last write wins
    assert await store.find_namespace("u-shared") is None
    found = await store.find_namespace("u-alice2")
    assert found is not None and found[0]["_id"] == "alice"
    assert {s["_id"] for s in await store.list_subjects()} >= {"alice", "bobby"}

    assert await store.delete_subject("alice") is True
    assert await store.delete_subject("alice") is False
    assert await store.get_subject("alice") is None
    assert await store.find_namespace("u-alice2") is None


async def test_limits(store: Store) -> None:
    assert await store.get_limits("lim-ns") is None
    await store.put_limits("lim-ns", {"invocationsPerMinute": 7})
    assert await store.get_limits("lim-ns") == {"invocationsPerMinute": 7}
    await store.put_limits("lim-ns", {"concurrentInvocations": 2, "firesPerMinute": 0})
    assert await store.get_limits("lim-ns") == {"concurrentInvocations": 2, "firesPerMinute": 0}
    assert await store.get_limits("other-ns") is None
    assert all(s["_id"] != "lim-ns/limits" for s in await store.list_subjects())   # limits are not subjects
    assert await store.delete_limits("lim-ns") is True
    assert await store.get_limits("lim-ns") is None
    assert await store.delete_limits("lim-ns") is False
    await store.put_limits("lim-ns", {"storeActivations": False})          # put again after a delete
    assert await store.get_limits("lim-ns") == {"storeActivations": False}


async def test_namespace_states(store: Store) -> None:
    """What an invoker refuses by (OpenWhisk's blockedNamespaces view, with every namespace's uuid): a blocked
    subject's namespaces, and a namespace whose limits set invocations per minute or concurrent invocations to 0."""
    assert await store.namespace_states() == NamespaceStates(frozenset(), frozenset())
    await store.put_subject(subject("alice", ("alice-ns", "u-alice"), ("shared-ns", "u-shared")))
    await store.put_subject({**subject("carol", ("carol-ns", "u-carol"), ("c2-ns", "u-c2")), "blocked": True})
    await store.put_subject({**subject("dave", ("dave-ns", "u-dave")), "blocked": "yes"})    # only true blocks
    await store.put_limits("alice-ns", {"invocationsPerMinute": 0})
    await store.put_limits("dave-ns", {"concurrentInvocations": False, "firesPerMinute": 0})  # neither blocks
    await store.put_limits("gone-ns", {"concurrentInvocations": 0})          # limits of no subject's namespace
    states = await store.namespace_states()
    assert states.uuids == {"u-alice", "u-shared", "u-carol", "u-c2", "u-dave"}
    assert states.blocked == {"alice-ns", "carol-ns", "c2-ns", "gone-ns"}
    await store.put_subject(subject("carol", ("carol-ns", "u-carol")))          # unblocked, c2-ns deleted
    await store.put_limits("alice-ns", {"invocationsPerMinute": 5, "concurrentInvocations": 0})
    await store.delete_limits("gone-ns")
    states = await store.namespace_states()
    assert states.uuids == {"u-alice", "u-shared", "u-carol", "u-dave"}
    assert states.blocked == {"alice-ns"}


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_concurrent_activation_writes_are_all_kept(store: Store) -> None:
    records = [activation("many", f"{i:032x}", "a", 10_000 + i) for i in range(200)]
    await asyncio.gather(*(store.put_activation(r) for r in records))
    assert await store.count_activations(ActivationQuery("many")) == 200
    got = await store.list_activations(ActivationQuery("many", limit=3))
    assert [d["start"] for d in got] == [10_199, 10_198, 10_197]


async def test_concurrent_creates_of_one_id_admit_exactly_one(store: Store) -> None:
    results = await asyncio.gather(*(store.put(action("race", "a", i)) for i in range(10)), return_exceptions=True)
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 9


# --- sqlite only ------------------------------------------------------------------------------------------------

async def test_sqlite_keeps_everything_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "nested" / "whisk.db")
    async with SqliteStore(path) as first:
        rev = await first.put(action("keep", "a", 1))
        await first.put_activation(activation("keep", "1" * 32, "a", 42))
        await first.put_subject(subject("keeper", ("keep", "u-keep")))
        await first.put_limits("keep", {"firesPerMinute": 3})
    async with SqliteStore(path) as second:
        got = await second.get("keep/a")
        assert got is not None and got["_rev"] == rev
        assert [d["name"] for d in await second.list_entities("action", "keep")] == ["a"]
        assert (await second.get_activation("keep", "1" * 32))["start"] == 42  # type: ignore[index]
        found = await second.find_namespace("u-keep")
        assert found is not None and found[0]["_id"] == "keeper"
        assert await second.get_limits("keep") == {"firesPerMinute": 3}
        with pytest.raises(Conflict):
            await second.put(action("keep", "a", 2))


_OPEN_AND_WRITE = """
import asyncio, sys
from whisk.store.sqlite import SqliteStore
async def main():
    async with SqliteStore(sys.argv[1]) as store:
        await store.put_limits(sys.argv[2], {"firesPerMinute": 1})
asyncio.run(main())
"""


async def test_sqlite_fresh_file_opened_by_several_processes_at_once(tmp_path: Path) -> None:
    """`whisk admin user create` run side by side on a new data dir: each opening may race the WAL switch."""
    for round_ in range(3):
        path = str(tmp_path / f"round{round_}.db")
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", _OPEN_AND_WRITE, path, f"ns{i}",
                                                      stderr=asyncio.subprocess.PIPE) for i in range(8)]
        errors = [(await p.communicate())[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, errors
        async with SqliteStore(path) as store:
            assert [await store.get_limits(f"ns{i}") for i in range(8)] == [{"firesPerMinute": 1}] * 8


async def test_sqlite_unwritable_path_is_backend_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BackendUnavailable):
        async with SqliteStore(str(blocker / "whisk.db")):
            pass


# --- couchdb only -----------------------------------------------------------------------------------------------

@pytest.mark.couchdb
async def test_couchdb_keeps_activations_while_the_database_is_down(couchdb_url: str) -> None:
    """Records put while CouchDB does not answer are served from the queue, then written once it is back."""
    host, port = couchdb_url.removeprefix("http://").split(":")
    link = Link(host, int(port))
    await link.up()
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    try:
        async with CouchStore(link.url, prefix=prefix) as store:
            await store.put_activation(activation("down", "0" * 32, "a", 1))
            assert await store.count_activations(ActivationQuery("down")) == 1
            await link.down()
            with pytest.raises(BackendUnavailable) as failed:
                await store.get("down/anything")
            # The caller is told the database is away, not where it is nor what its databases are called.
            assert str(failed.value) == "The database is unavailable." and prefix not in str(failed.value)
            for i in range(1, 21):
                await asyncio.wait_for(store.put_activation(activation("down", f"{i:032x}", "a", 1 + i)), 1)
            got = await store.get_activation("down", f"{7:032x}")
            assert got is not None and got["start"] == 8
            await link.up()
            async with CouchStore(couchdb_url, prefix=prefix) as direct:   # reads the database, not the queue
                deadline = asyncio.get_running_loop().time() + 30
                while await direct.count_activations(ActivationQuery("down")) < 21:
                    assert asyncio.get_running_loop().time() < deadline, "queued activations were not written"
                    await asyncio.sleep(0.05)
                listed = await direct.list_activations(ActivationQuery("down", limit=2))
                assert [d["start"] for d in listed] == [21, 20]
    finally:
        await link.down()
        await drop_databases(couchdb_url, prefix)


_QUEUE_THEN_WAIT = """
import asyncio, sys
from tests.store.test_contract import activation
from whisk.store.couchdb import CouchStore
async def main():
    async with CouchStore(sys.argv[1], prefix=sys.argv[2], spool=sys.argv[3]) as store:
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for i in range(3):
            await store.put_activation(activation("spooled", f"{i:032x}", "a", 1 + i))
        print("queued", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.mark.couchdb
async def test_couchdb_records_queued_while_the_database_is_away_outlive_a_kill(couchdb_url: str,
                                                                             tmp_path: Path) -> None:
    """A record is acknowledged once queued for CouchDB; while CouchDB is away a process killed then (or stopped
    past its grace) kept it only in memory, so it never got stored, not even after a restart. The queue is spooled to
    a file of the data folder, and the next start writes what it holds."""
    host, port = couchdb_url.removeprefix("http://").split(":")
    link = Link(host, int(port))
    await link.up()
    prefix, spool = f"t{uuid.uuid4().hex[:12]}_", str(tmp_path / "records.spool")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _QUEUE_THEN_WAIT, link.url, prefix, spool, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))
    assert child.stdin is not None and child.stdout is not None
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"open\n"
        await link.down()
        child.stdin.write(b"go\n")
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"queued\n"
        child.kill()
        await child.wait()
        await link.up()
        async with CouchStore(couchdb_url, prefix=prefix, spool=spool):
            async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
                for i in range(3):
                    deadline = asyncio.get_running_loop().time() + 30
                    while (await http.get(f"{couchdb_url}/{prefix}activations/spooled%2F{i:032x}")).status != 200:
                        assert asyncio.get_running_loop().time() < deadline, "a queued record was lost"
                        await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
        assert os.path.getsize(spool) == 0                    # written: nothing left to hold
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await link.down()
        await drop_databases(couchdb_url, prefix)


@pytest.mark.couchdb
async def test_couchdb_reopen_keeps_data_and_repairs_design_documents(couchdb_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    try:
        async with CouchStore(couchdb_url, prefix=prefix) as first:
            rev = await first.put(action("keep", "a", 1))
            await first.put_activation(activation("keep", "1" * 32, "a", 42))
            await first.put_limits("keep", {"firesPerMinute": 3})
        async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
            ddoc = f"{couchdb_url}/{prefix}whisks/{DESIGN_DOCS['whisks']['_id']}"
            async with http.get(ddoc) as resp:
                current = await resp.json()
            stale = {"_rev": current["_rev"], "views": {"entities": {"map": "function (doc) {}"}}}
            async with http.put(ddoc, json=stale) as resp:
                assert resp.status == 201, await resp.text()
        async with CouchStore(couchdb_url, prefix=prefix) as second:
            assert (await second.get("keep/a"))["_rev"] == rev  # type: ignore[index]
            assert [d["name"] for d in await second.list_entities("action", "keep")] == ["a"]
            assert await second.count("action", "keep") == 1
            assert (await second.get_activation("keep", "1" * 32))["start"] == 42  # type: ignore[index]
            assert await second.get_limits("keep") == {"firesPerMinute": 3}
    finally:
        await drop_databases(couchdb_url, prefix)


@pytest.mark.couchdb
async def test_couchdb_databases_gone_while_running_are_made_again(couchdb_url: str) -> None:
    """A database that goes while whisk runs (deleted by hand; a CouchDB-API server without storage, such as the
    tests' pouchdb-server, restarted): the request that finds it missing is refused as the database being away,
    never a 500, and the store makes its databases again, so what is accepted from then on, records held for
    writing among them, is stored."""
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    try:
        async with CouchStore(couchdb_url, prefix=prefix) as store:
            await store.put(action("gone", "before", 1))
            await drop_databases(couchdb_url, prefix)
            with pytest.raises(BackendUnavailable) as failed:
                await store.put(action("gone", "first", 2))
            assert str(failed.value) == "The database is unavailable."
            rev = await store.put(action("gone", "after", 3))
            assert (await store.get("gone/after"))["_rev"] == rev  # type: ignore[index]
            assert [d["name"] for d in await store.list_entities("action", "gone")] == ["after"]
            await drop_databases(couchdb_url, prefix)
            await store.put_activation(activation("gone", "2" * 32, "a", 7))     # held, then written
            record = f"{couchdb_url}/{prefix}activations/gone%2F{'2' * 32}"    # the database, not the queue
            async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
                deadline = asyncio.get_running_loop().time() + 30
                while (await http.get(record)).status != 200:
                    assert asyncio.get_running_loop().time() < deadline, "the record was not written"
                    await asyncio.sleep(0.05)
            for missing in (store.get("gone/after"), store.delete("gone/after", rev)):
                await drop_databases(couchdb_url, prefix)
                with pytest.raises(BackendUnavailable):
                    await missing
            assert await store.get("gone/after") is None
    finally:
        await drop_databases(couchdb_url, prefix)


async def test_couchdb_unreachable_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        async with CouchStore(f"couchdb://127.0.0.1:{free_port()}"):
            pass


def test_couchdb_url_forms() -> None:
    assert server_url("couchdb://whisk:p%40ss@db.local:6984/ow_") == ("http://db.local:6984", "whisk", "p@ss", "ow_")
    assert server_url("couchdbs://10.0.0.1") == ("https://10.0.0.1:5984", None, None, None)
    assert server_url("http://[::1]:5984/") == ("http://[::1]:5984", None, None, None)
