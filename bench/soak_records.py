"""After the run: every accepted activation must have exactly one stored record. Each id is read back with its own
namespace's key until the record has an `end` (or a deadline passes); the ids a record names (a trigger's rule
activations, a sequence's components) are checked the same way; then each namespace's listing since the start is
scanned for an id stored twice.

Against CouchDB (a cluster's store) an id cannot be listed twice: a record is the document `<namespace>/<id>`, and
a second write of it replaces the first (the store's writer retries a conflict with the current revision). So there
the documents are also read from the database itself (`_all_docs`): a record written more than once has a revision
past `1-`, and counts as rewritten."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.soak_workload import Namespace


@dataclass
class Check:
    accepted: int = 0
    derived: int = 0
    found: int = 0
    missing_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    listed: int = 0
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    check_s: float = 0.0
    store_checked: int = 0                                      # CouchDB documents read (0: no CouchDB given)
    rewritten: list[str] = field(default_factory=list)          # documents with a revision past 1-
    not_in_store: list[str] = field(default_factory=list)       # found through the API, no document in CouchDB
    error: str = ""                                             # a part of the check that could not be done
    doc_ids: list[str] = field(default_factory=list, repr=False)


def _named_ids(kind: str, record: dict[str, Any]) -> list[str]:
    """The activations a trigger or sequence record says it started."""
    out = []
    for line in record.get("logs") or []:
        if kind == "sequence" and isinstance(line, str) and len(line) == 32:
            out.append(line)
        elif kind == "fire_trigger":
            try:
                rule = json.loads(line) if isinstance(line, str) else line
            except ValueError:
                continue
            if isinstance(rule, dict) and rule.get("activationId"):
                out.append(rule["activationId"])
    return out


async def _fetch(ns: Namespace, activation_id: str, trigger: bool, deadline: float) -> dict[str, Any] | None:
    assert ns.session is not None
    while True:
        try:
            async with ns.session.get(f"/api/v1/namespaces/_/activations/{activation_id}") as r:
                if r.status == 200:
                    record = await r.json()
                    # A trigger's record has no end (OpenWhisk's is Instant.EPOCH); it is stored once, when every
                    # rule's line is in.
                    if record.get("end") or (trigger and record.get("logs")):
                        return record
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.5)


async def check(accepted: list[tuple[str, Namespace, str]], namespaces: list[Namespace], since_ms: int,
                deadline_s: float, parallel: int = 16, couch_activations: str | None = None) -> Check:
    """`accepted`: (request kind, namespace, activation id) for every id an answer carried; `couch_activations`: the
    URL of the CouchDB activations database the platform writes to, when it has one."""
    result = Check(accepted=len(accepted))
    t0 = time.monotonic()
    deadline = t0 + deadline_s
    queue: asyncio.Queue[tuple[str, Namespace, str]] = asyncio.Queue()
    for item in accepted:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            kind, ns, aid = queue.get_nowait()
            record = await _fetch(ns, aid, kind == "fire_trigger", deadline)
            if record is None:
                result.missing_ids.append(aid)
                continue
            result.found += 1
            result.doc_ids.append(f"{record.get('namespace') or ns.name}/{aid}")
            status = (record.get("response") or {}).get("status") or "?"
            result.statuses.setdefault(kind, Counter())[status] += 1
            for child in _named_ids(kind, record):
                result.derived += 1
                queue.put_nowait((f"{kind} (started by)", ns, child))

    # Workers leave when the queue is empty; a record read later may refill it, so run until nothing is left.
    while not queue.empty():
        await asyncio.gather(*(worker() for _ in range(parallel)))
    # A failure here fails the run but still gives a report (the memory samples of a long run are kept).
    try:
        for ns in namespaces:
            ids = await _listing(ns, since_ms)
            result.listed += len(ids)
            result.duplicates += sum(n - 1 for n in Counter(ids).values() if n > 1)
        if couch_activations:
            await _revisions(couch_activations, result)
    except (RuntimeError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.check_s = round(time.monotonic() - t0, 1)
    return result


async def _listing(ns: Namespace, since_ms: int, page: int = 200, patience_s: float = 300.0) -> list[str]:
    """Every activation id the namespace lists since `since_ms`. A 5xx is asked again for up to `patience_s`: the
    first listing after a long run makes CouchDB build its view over every record, which can outlast the
    controller's request to it."""
    assert ns.session is not None
    ids: list[str] = []
    skip = 0
    while True:
        give_up = time.monotonic() + patience_s
        while True:
            async with ns.session.get("/api/v1/namespaces/_/activations",
                                      params={"limit": str(page), "skip": str(skip), "since": str(since_ms)}) as r:
                if r.status == 200:
                    rows = await r.json()
                    break
                text = (await r.text())[:200]
            if r.status < 500 or time.monotonic() > give_up:
                raise RuntimeError(f"listing {ns.name}: {r.status} {text}")
            await asyncio.sleep(2.0)
        ids += [row.get("activationId") for row in rows]
        if len(rows) < page:
            return ids
        skip += page


async def _revisions(db_url: str, result: Check, batch: int = 500) -> None:
    """Each found record's document in CouchDB: rewritten when its revision is past 1-, or not there at all."""
    # pouchdb-server answers text/plain unless asked for JSON.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                     headers={"Accept": "application/json"}) as s:
        for i in range(0, len(result.doc_ids), batch):
            keys = result.doc_ids[i:i + batch]
            async with s.post(f"{db_url}/_all_docs", json={"keys": keys}) as r:
                if r.status != 200:
                    raise RuntimeError(f"CouchDB _all_docs: {r.status} {(await r.text())[:200]}")
                rows = (await r.json(content_type=None))["rows"]
            for key, row in zip(keys, rows):
                rev = (row.get("value") or {}).get("rev") if not row.get("error") else None
                if rev is None or (row.get("value") or {}).get("deleted"):
                    result.not_in_store.append(key)
                elif not rev.startswith("1-"):
                    result.rewritten.append(f"{key} ({rev.split('-')[0]} writes)")
                result.store_checked += 1
