"""The three stores seen through the REST API: one scenario run against a whisk on each (memory, SQLite, CouchDB)
must get the same answers, so that a user cannot tell from the API which store runs (docs/testing.md, "The three
stores").

Each answer is recorded as (request, status, body), with what differs by nature masked: times, activation ids (named
in order of appearance), transaction ids. Records that started in the same millisecond (a sequence and its first
component) are ordered by their random ids in every store alike; their order within the millisecond is masked too.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.store.test_contract import drop_databases

pytestmark = pytest.mark.couchdb

PY = {"kind": "python:3", "code": "def main(a):\n    print('got', a.get('x'))\n    return {'x': a.get('x')}"}
_TIMES = {"start", "end", "duration", "updated"}
_TIMED_ANNOTATIONS = {"waitTime", "initTime"}
_ENV = {"WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000",
        "WHISK_LIMIT_FIRES_PER_MINUTE": "100000"}
Step = tuple[str, int, Any]


@asynccontextmanager
async def servers(couchdb_url: str, data: Path) -> AsyncIterator[dict[str, str]]:
    """A whisk on each store, the CouchDB one on databases of its own, each with a data folder under `data`."""
    prefix = f"p{uuid.uuid4().hex[:10]}_"
    couch = couchdb_url.replace("http://", "couchdb://") + f"/{prefix}"
    stores = {"memory": "memory://", "sqlite": f"sqlite://{data}/whisk.db", "couchdb": couch}
    try:
        async with whisk_server(_ENV | {"WHISK_STORE": stores["memory"], "WHISK_DATA_DIR": f"{data}/memory"},
                                log_path=f"{data}/memory.log") as memory, \
                whisk_server(_ENV | {"WHISK_STORE": stores["sqlite"], "WHISK_DATA_DIR": str(data)},
                             log_path=f"{data}/sqlite.log") as sqlite, \
                whisk_server(_ENV | {"WHISK_STORE": stores["couchdb"], "WHISK_DATA_DIR": f"{data}/couchdb"},
                             log_path=f"{data}/couchdb.log") as couchdb:
            yield {"memory": memory, "sqlite": sqlite, "couchdb": couchdb}
    finally:
        await drop_databases(couchdb_url, prefix)


def _mask(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if value.get("key") in _TIMED_ANNOTATIONS:
            return {"key": value["key"], "value": "T"}
        return {k: "T" if k in _TIMES else _mask(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "activationId" in v and "start" in v for v in value):
            # Records of one millisecond are ordered by their (random) ids: mask that order, keep every other.
            value = sorted(value, key=lambda v: (-v["start"], v.get("name", "")))
        return [_mask(v, ids) for v in value]
    if isinstance(value, str):
        value = re.sub(r"[0-9a-f]{32}", lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), value)
        return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", value)
    return value


class Client:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.steps: list[Step] = []
        self._ids: dict[str, str] = {}

    async def __call__(self, method: str, path: str, body: Any = None, **query: Any) -> tuple[int, Any]:
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()}
        url = path if path.startswith("/") else f"/api/v1/namespaces/_/{path}"
        async with self.session.request(method, url, json=body, params=params) as resp:
            text = await resp.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
        shown = {**answer, "code": "<tid>"} if isinstance(answer, dict) and "error" in answer else answer
        label = re.sub(r"\d{13}", "<ms>", _mask(f"{method} {path} {params}", self._ids))   # ids, then times
        self.steps.append((label, resp.status, _mask(shown, self._ids)))
        return resp.status, answer


NAMES = ["a", "B", "c d", "e@f.g-h", "ü名", "x" * 256]     # "ü名" is refused: a name's \w is ASCII, as Java's
LONG_PACKAGE = "p" * 256


async def scenario(c: Client) -> None:
    """Entities of every kind, their listings, updates, invokes, fires and the activation listings."""
    for name in NAMES:
        await c("PUT", f"actions/{name}", {"exec": PY})
        await asyncio.sleep(0.005)                         # distinct `updated` times: one order in every store
    await c("PUT", "packages/pkg", {"parameters": [{"key": "x", "value": 1}]})
    await c("PUT", f"packages/{LONG_PACKAGE}", {"publish": True})
    await c("PUT", "actions/pkg/inner", {"exec": PY})
    await c("PUT", f"actions/{LONG_PACKAGE}/{'y' * 256}", {"exec": PY})
    await c("PUT", "packages/bnd", {"binding": {"namespace": "guest", "name": "pkg"}})
    await c("PUT", "triggers/t1", {})
    await c("PUT", "rules/r1", {"trigger": "/_/t1", "action": "/_/a"})
    await c("PUT", "rules/r2", {"trigger": "/_/t1", "action": "/_/pkg/inner"})
    await c("POST", "rules/r2", {"status": "inactive"})
    await c("PUT", "actions/seq", {"exec": {"kind": "sequence", "components": ["/_/a", "/_/pkg/inner"]}})
    for collection in ("actions", "packages", "triggers", "rules"):
        for query in ({}, {"limit": 0}, {"limit": 200}, {"limit": 201}, {"limit": 2, "skip": 1}, {"skip": 50},
                      {"count": True}, {"count": True, "skip": 3}, {"limit": -1}, {"skip": -1}):
            await c("GET", collection, **query)
    for path, query in (("actions/pkg/", {}), ("actions/pkg/", {"count": True}), ("actions/pkg/", {"skip": 1}),
                        ("actions/bnd/", {}), (f"actions/{LONG_PACKAGE}/", {"limit": 0}), ("actions/nopkg/", {}),
                        ("/api/v1/namespaces/whisk.system/packages", {"count": True}),   # installed in any order
                        ("/api/v1/namespaces/whisk.system/actions", {}), ("/api/v1/namespaces/guest/triggers", {})):
        await c("GET", path, **query)
    for path in ("actions/pkg", f"actions/{LONG_PACKAGE}", "packages/pkg", "packages/bnd", "rules/r1", "rules/r2",
                 "triggers/t1", "actions/bnd/inner", "actions/ü名", "actions/nope"):
        await c("GET", path)
    # Updates: a second create, an explicit overwrite=false, an overwrite, an overwrite that creates.
    await c("PUT", "actions/a", {"exec": PY})
    await c("PUT", "actions/a", {"exec": PY}, overwrite=False)
    await c("PUT", "actions/a", {"exec": PY, "parameters": [{"key": "y", "value": 2}]}, overwrite=True)
    await c("PUT", "actions/fresh", {"exec": PY}, overwrite=True)
    await c("PUT", "triggers/t1", {"parameters": [{"key": "z", "value": 3}]}, overwrite=True)
    await c("GET", "actions/a")
    await c("GET", "triggers/t1")
    await c("GET", "rules/r1")
    # Invokes, one at a time (each record its own millisecond), a fire, a deleted action's records.
    await c("POST", "actions/seq", {"x": 5}, blocking=True)
    for path, body in (("actions/a", {"x": 1}), ("actions/bnd/inner", {}), ("actions/pkg/inner", {"x": 2}),
                       (f"actions/{'x' * 256}", {"x": "ünï ☃ 名 \U0001f600"}), ("actions/ü名", {}),
                       (f"actions/{LONG_PACKAGE}/{'y' * 256}", {}), ("actions/c d", {}), ("actions/e@f.g-h", {})):
        await asyncio.sleep(0.005)
        await c("POST", path, body, blocking=True, result=path.endswith("inner"))
    await asyncio.sleep(0.005)
    await c("POST", "triggers/t1", {"x": 7})
    await settle(c, expected=12)                           # 10 invokes' records, the fire's and its rule's action's
    await c("PUT", "actions/gone", {"exec": PY})
    await c("POST", "actions/gone", {"x": 9}, blocking=True)
    await c("DELETE", "actions/gone")
    await c("POST", "actions/gone", {}, blocking=True)
    status, everything = await c("GET", "activations", docs=True, limit=0)
    assert status == 200 and len(everything) == 13, everything
    middle = everything[5]["start"]
    for query in ({}, {"limit": 0}, {"limit": 200}, {"limit": 201}, {"limit": 2, "skip": 1}, {"skip": 11},
                  {"count": True}, {"count": True, "skip": 2}, {"count": True, "skip": 99}, {"docs": True, "limit": 3},
                  {"docs": True, "count": True}, {"name": "a"}, {"name": "inner"}, {"name": "pkg/inner"},
                  {"name": "bnd/inner"}, {"name": "/guest/pkg/inner"}, {"name": "guest/pkg/inner"},
                  {"name": "seq"}, {"name": "t1"}, {"name": "gone"}, {"name": "gone", "count": True},
                  {"name": "ü名"}, {"name": "x" * 256}, {"name": f"{LONG_PACKAGE}/{'y' * 256}"}, {"name": "A"},
                  {"name": "c d"}, {"name": "e@f.g-h"}, {"name": "pkg/x/y"}, {"name": "a", "docs": True},
                  {"since": middle}, {"upto": middle},
                  {"since": middle, "upto": middle}, {"since": middle + 1, "upto": middle - 1},
                  {"since": middle, "count": True}, {"since": 0}, {"upto": 0}, {"since": "x"},
                  {"since": -2 ** 63, "limit": 1}, {"upto": 2 ** 63 - 1, "limit": 1}, {"since": 2 ** 63 - 1},
                  {"skip": 2 ** 31 - 1}, {"skip": 2 ** 31 - 1, "count": True}):
        await c("GET", "activations", **query)
    for record in sorted(everything, key=lambda r: (-r["start"], r["name"])):   # ties as _mask orders them
        await c("GET", f"activations/{record['activationId']}")
    await c("GET", "activations/" + "0" * 32)


async def settle(c: Client, expected: int) -> None:
    """Until the namespace has `expected` records (a fire's are stored once its rules ran)."""
    for _ in range(200):
        async with c.session.get("/api/v1/namespaces/_/activations", params={"count": "true"}) as resp:
            if (await resp.json())["activations"] >= expected:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {expected} records: {[s for s in c.steps if s[1] >= 400]}")


async def concurrent(c: Client) -> None:
    """Several clients updating one entity at once, and a delete racing updates: every answer is one OpenWhisk
    gives (200, or 409 for a lost race, never a 5xx), and what is stored is what the winners wrote."""
    for collection, body in (("actions", {"exec": PY}), ("triggers", {}), ("packages", {})):
        name = f"{collection}/race"
        await c("PUT", name, body)
        answers = await asyncio.gather(*(c.session.put(f"/api/v1/namespaces/_/{name}", params={"overwrite": "true"},
                                                       json={**body, "parameters": [{"key": "i", "value": i}]})
                                         for i in range(12)))
        statuses = Counter(resp.status for resp in answers)
        for resp in answers:
            body_ = await resp.json()
            assert resp.status == 200 or (resp.status, body_["error"]) == (
                409, "Concurrent modification to resource detected."), body_
        assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
        # How many win differs by nature (the memory store has no pause between a read and its write), so this
        # is checked in each store rather than compared across them.
        async with c.session.get(f"/api/v1/namespaces/_/{name}") as resp:
            stored = await resp.json()
        assert resp.status == 200 and stored["version"] == f"0.0.{1 + statuses[200]}", (statuses, stored)
        victim = f"/api/v1/namespaces/_/{collection}/victim"
        for _ in range(3):                                 # who wins differs by nature: answers are not compared
            async with c.session.put(victim, params={"overwrite": "true"}, json=body) as resp:
                assert resp.status == 200, await resp.text()
            racing = await asyncio.gather(
                c.session.put(victim, params={"overwrite": "true"}, json=body), c.session.delete(victim),
                c.session.put(victim, params={"overwrite": "true"}, json=body))
            for resp in racing:
                assert resp.status in (200, 404, 409), (resp.status, await resp.text())
        async with c.session.delete(victim) as resp:      # whichever won: gone now, or already
            assert resp.status in (200, 404)
        await c("GET", f"{collection}/victim")
        async with c.session.delete(f"/api/v1/namespaces/_/{name}") as resp:
            assert resp.status == 200
        await c("GET", name)


# Keys and values a store could treat specially (CouchDB's `_` fields, MongoDB-style `$` and `.`), every kind of
# Unicode, numbers at a float's ends. Not numbers that pouchdb-server, JavaScript itself, rewrites (docs/testing.md,
# "The three stores": `1.0`, `-0.0`, integers past 2^53, integer-like keys first), which CouchDB 3 keeps.
ODD_VALUES = {"astral": "\U0001f600\U0010ffff", "rtl": "\u202eabc\u200f", "combining": "e\u0301\u0308",
              "nul": "a\u0000b", "bom": "\ufeffx", "separators": "a\u2028b\u2029c", "controls": "\u0001\u001f\u007f",
              "\U0001f600": 1, "_id": "x", "_rev": "1-abc", "_attachments": {"f": {"data": "eA=="}},
              "a.b": {"$set": 1, "_id": 2, "_deleted": True, "_x": None}, "": None, "\u0000": "nul key",
              "numbers": [0, -1, 1.5, 1e300, 5e-324, 2 ** 53, -(2 ** 53), 0.1, 1.7976931348623157e308]}
ECHO = {"kind": "python:3", "code": "def main(a):\n    return a"}


async def odd_values(c: Client) -> None:
    """What was stored reads back the same through GET, listings, records and results, in every store."""
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    params = [{"key": k, "value": v} for k, v in ODD_VALUES.items()] + [{"key": "deep", "value": deep}]
    for path, extra in (("triggers/odd-t", {}), ("packages/odd-p", {}), ("actions/odd-a", {"exec": ECHO})):
        await c("PUT", path, {**extra, "parameters": params, "annotations": params[:-1]})
        await c("GET", path)
    for collection in ("triggers", "packages", "actions"):
        await c("GET", collection, limit=1)
    status, record = await c("POST", "actions/odd-a", {"_id": "mine", "$where": "\U0001f600\u0000"}, blocking=True)
    assert status == 200, record
    await c("GET", f"activations/{record['activationId']}")
    await c("GET", f"activations/{record['activationId']}/result")


def first_difference(a: list[Step], b: list[Step]) -> str:
    for left, right in zip(a, b):
        if left != right:
            return f"{left[0]}:\n  {json.dumps(left[1:])[:2000]}\n  {json.dumps(right[1:])[:2000]}"
    return f"{len(a)} steps against {len(b)}"


async def test_every_store_answers_alike(couchdb_url: str, tmp_path: Path) -> None:
    transcripts: dict[str, list[Step]] = {}
    async with servers(couchdb_url, tmp_path) as urls:
        for kind, url in urls.items():
            async with aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
                client = Client(session)
                await scenario(client)
                await concurrent(client)
                await odd_values(client)
                async with session.get("/api/v1/namespaces") as resp:
                    client.steps.append(("GET /namespaces", resp.status, await resp.json()))
                transcripts[kind] = client.steps
    memory = transcripts["memory"]
    for kind in ("sqlite", "couchdb"):
        assert transcripts[kind] == memory, f"{kind} differs from memory at " + first_difference(memory,
                                                                                                transcripts[kind])
    answers = {step[0]: step[1:] for step in memory}
    # OpenWhisk's answers where they are easy to get wrong (docs/openwhisk.md §1.4, §1.10).
    assert answers["GET actions {'limit': '201'}"][0] == 400
    assert answers["GET actions {'count': 'true'}"] == (200, {"actions": 8})
    assert answers["GET activations {'count': 'true'}"] == (200, {"activations": 13})
    assert answers["GET activations {'upto': '0'}"] == (200, [])
    for name, count in (("pkg/inner", 2), ("bnd/inner", 1), ("inner", 0), ("c d", 1), ("e@f.g-h", 1), ("gone", 1),
                        (f"{LONG_PACKAGE}/{'y' * 256}", 1), ("t1", 1)):
        status, listed = answers[f"GET activations {{'name': '{name}'}}"]
        assert status == 200 and len(listed) == count, (name, listed)
    assert answers["GET /namespaces"] == (200, ["guest"])
