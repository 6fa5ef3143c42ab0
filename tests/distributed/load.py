"""A background stream of blocking invocations for the fault tests, bounded in count and time, and the checks that
every activation a controller accepted ends with exactly one record in CouchDB."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.distributed.cluster import guest_session


@dataclass(slots=True)
class Call:
    via: str                      # the controller URL it went to
    action: str
    sent: float                   # monotonic seconds
    answered: float
    status: int | None            # None: no HTTP answer (connection refused or reset)
    activation_id: str | None     # set when the controller accepted the activation (it told us its id)
    body: Any = None
    error: str | None = None


@dataclass
class Load:
    """`workers` callers, each invoking `actions[i % len(actions)]` through `urls[i % len(urls)]` back to back, until
    `stop()`, `max_calls` calls in all, or `max_s` seconds; blocking invocations, or non-blocking ones (202 and an
    activation id) when `blocking` is False. A non-blocking caller does not wait for the work it starts, so give it
    a `pause_s` between calls: back to back, a few of them queue more than the invokers can run and every invoker
    falls behind."""

    urls: list[str]
    actions: list[str]
    workers: int = 4
    max_calls: int = 5000
    max_s: float = 90.0
    blocking: bool = True
    pause_s: float = 0.0
    calls: list[Call] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> Load:
        self._deadline = time.monotonic() + self.max_s
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def since(self, t: float) -> list[Call]:
        return [c for c in self.calls if c.sent >= t]

    async def until_calls(self, n: int, deadline_s: float = 30.0, *, ok: bool = False, after: float = 0.0) -> None:
        """Wait until `n` calls sent after `after` have been answered (with 200 if `ok`)."""
        end = time.monotonic() + deadline_s
        while len([c for c in self.since(after) if not ok or c.status == 200]) < n:
            if time.monotonic() > end:
                raise AssertionError(f"{n} {'successful ' if ok else ''}calls not seen after {deadline_s} s: "
                                     f"{summary(self.since(after))}")
            await asyncio.sleep(0.05)

    def accepted(self) -> dict[str, Call]:
        return {c.activation_id: c for c in self.calls if c.activation_id}

    async def _worker(self, i: int) -> None:
        url, action = self.urls[i % len(self.urls)], self.actions[i % len(self.actions)]
        async with guest_session(url) as session:
            while not self._stop.is_set() and len(self.calls) < self.max_calls and time.monotonic() < self._deadline:
                call = await _invoke(session, url, action, self.blocking)
                self.calls.append(call)
                if call.status is None or call.status >= 503:
                    await asyncio.sleep(0.1)      # the controller is away or refusing: do not spin
                elif self.pause_s:
                    await asyncio.sleep(self.pause_s)


async def _invoke(session: aiohttp.ClientSession, url: str, action: str, blocking: bool = True) -> Call:
    sent = time.monotonic()
    try:
        async with session.post(f"/api/v1/namespaces/_/actions/{action}",
                                params={"blocking": "true" if blocking else "false"},
                                json={}) as r:
            body = await r.json(content_type=None)
            aid = body.get("activationId") if isinstance(body, dict) else None
            return Call(url, action, sent, time.monotonic(), r.status, aid, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return Call(url, action, sent, time.monotonic(), None, None, error=repr(exc))


def summary(calls: list[Call]) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for c in calls:
        counts[c.status] = counts.get(c.status, 0) + 1
    return counts


async def records(couch_base: str, prefix: str, activation_ids: list[str],
                  namespace: str = "guest") -> dict[str, dict[str, Any]]:
    """The stored activation records among `activation_ids`, read straight from CouchDB (one `_all_docs` call)."""
    if not activation_ids:
        return {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        async with s.post(f"{couch_base}/{prefix}activations/_all_docs", params={"include_docs": "true"},
                          json={"keys": [f"{namespace}/{a}" for a in activation_ids]},
                          headers={"Accept": "application/json"}) as r:
            assert r.status == 200, await r.text()
            rows = (await r.json(content_type=None))["rows"]
    return {row["doc"]["activationId"]: row["doc"] for row in rows if row.get("doc")}


async def until_recorded(couch_base: str, prefix: str, activation_ids: list[str],
                         deadline_s: float) -> dict[str, dict[str, Any]]:
    """Wait until every activation has its record; fail listing the missing ones."""
    end = time.monotonic() + deadline_s
    while True:
        found = await records(couch_base, prefix, activation_ids)
        if len(found) == len(set(activation_ids)):
            return found
        if time.monotonic() > end:
            missing = sorted(set(activation_ids) - found.keys())
            raise AssertionError(f"{len(missing)} of {len(set(activation_ids))} activations have no record after "
                                 f"{deadline_s} s: {missing[:10]}")
        await asyncio.sleep(0.25)


def couch_doc_url(couch_base: str, prefix: str, db: str, doc_id: str) -> str:
    return f"{couch_base}/{prefix}{db}/{quote(doc_id, safe='')}"
