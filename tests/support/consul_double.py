"""A Consul HTTP API double for tests: an aiohttp server on loopback, written from Consul's API docs.

It is not Consul: one agent that is also the only server, one node (`consul-double`, datacenter `dc1`), no gossip,
no ACLs. What whisk's discovery uses behaves as Consul documents it: agent service register/deregister with
TTL checks (pass/warn/fail/update, expiry to critical, DeregisterCriticalServiceAfter reaping with its 1m minimum and
30 s reaper, both knobs), health and catalog reads with `passing` and `tag`, blocking queries (`index`, `wait`, the
10m cap, jitter, `X-Consul-Index` ≥ 1), KV with base64 values, `recurse`/`keys`/`separator`/`raw`, CAS and
flags, and status/leader. Not implemented: sessions (so `acquire`/`release` name an unknown session: 500, as
Consul answers for one), script/HTTP/TCP checks (400), `?filter` (400), other datacenters (500).

In-process use: `async with ConsulDouble() as double: double.url`. As a child process (the session fixture
`consul_url`, and the cluster tests): `python -m tests.support.consul_double --port N`. This module holds the
state; `consul_double_routes.py` the HTTP side, `consul_double_decode.py` Consul's request decoding,
`consul_double_kv.py` the KV store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from aiohttp import web

from tests.support.consul_double_decode import ConsulError, ServiceDef, bad_request, wait_time
from tests.support.consul_double_kv import KVStore
from tests.support.consul_double_routes import CONSUL_SERVICE, NODE, SERF, add_routes, plain_errors

OUTPUT_MAX = 4096


@dataclass(slots=True)
class Check:
    check_id: str
    name: str
    status: str
    notes: str
    output: str
    service_id: str
    ttl: float
    deregister_after: float | None
    create_index: int
    modify_index: int
    critical_since: float | None = None
    timer: asyncio.TimerHandle | None = None
    updates: int = 0                  # pass/warn/fail/update calls received (lets tests wait for heartbeats)


@dataclass(slots=True)
class Service:
    spec: ServiceDef
    create_index: int
    modify_index: int


class ConsulDouble:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, reap_interval_s: float = 30.0,
                 deregister_min_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.port = host, port
        self.reap_interval_s = reap_interval_s
        self.deregister_min_s = deregister_min_s
        self._clock = clock
        self._index = 1
        self._changed = asyncio.Event()
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        self._service_index: dict[str, int] = {}
        self.services_table_index = 1
        self.kv = KVStore(self._next_index)
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None

    # -- life ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> ConsulDouble:
        app = web.Application(middlewares=[plain_errors])
        add_routes(app, self)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._reaper = asyncio.create_task(self._reap_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for check in self.checks.values():
            if check.timer is not None:
                check.timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()     # cuts the connections of pending blocking queries

    # -- indexes and blocking -----------------------------------------------------------------------------------

    def _next_index(self) -> int:
        self._index += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self._index

    def _touch_service(self, name: str) -> int:
        index = self._next_index()
        self._service_index[name] = index
        self.services_table_index = index
        return index

    def service_index(self, name: str) -> int:
        if any(s.spec.name == name for s in self.services.values()):
            return self._service_index[name]
        return self.services_table_index

    async def blocking(self, request: web.Request, read: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        """Answer `read()` at once, or once its index passes `?index`, or at `?wait` (default 5m, cap 10m)."""
        wait = wait_time(request.query)
        try:
            wanted = int(request.query.get("index") or 0)
            if wanted < 0:
                raise ValueError
        except ValueError:
            raise bad_request("Invalid index") from None
        index, data = read()
        if wanted == 0:
            return index, data
        deadline = self._clock() + wait + random.uniform(0, wait / 16)
        while index <= wanted and (left := deadline - self._clock()) > 0:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                pass
            index, data = read()
        return index, data

    # -- agent: services and TTL checks -------------------------------------------------------------------------

    def register(self, spec: ServiceDef, replace_checks: bool) -> None:
        old = self.services.get(spec.id)
        index = self._touch_service(spec.name)
        if old is not None and old.spec.name != spec.name:
            self._service_index[old.spec.name] = index
        self.services[spec.id] = Service(spec, old.create_index if old else index, index)
        wanted = {c.check_id for c in spec.checks}
        for check_id in [c.check_id for c in self.checks.values() if c.service_id == spec.id]:
            if replace_checks and check_id not in wanted:
                self._drop_check(check_id)
        for c in spec.checks:
            existing = self.checks.get(c.check_id)
            if existing is not None:                     # keeps its status and output; the TTL clock restarts
                existing.name, existing.notes, existing.ttl = c.name, c.notes, c.ttl
                existing.deregister_after, existing.service_id = c.deregister_after, spec.id
                existing.modify_index = index
                check = existing
            else:
                check = self.checks[c.check_id] = Check(c.check_id, c.name, c.status or "critical", c.notes, "",
                                                         spec.id, c.ttl, c.deregister_after, index, index)
            self._arm(check)

    def deregister(self, service_id: str) -> bool:
        service = self.services.pop(service_id, None)
        if service is None:
            return False
        for check_id in [c.check_id for c in self.checks.values() if c.service_id == service_id]:
            self._drop_check(check_id)
        self._touch_service(service.spec.name)
        return True

    def update_check(self, check_id: str, status: str, output: str) -> None:
        check = self.checks.get(check_id)
        if check is None:
            if check_id == "serfHealth":
                raise ConsulError(500, f'CheckID "{check_id}" does not have associated TTL')
            raise ConsulError(404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, '
                                   "not the check name.")
        if len(output.encode()) > OUTPUT_MAX:
            size = len(output.encode())
            output = output.encode()[:OUTPUT_MAX].decode(errors="ignore") + \
                f" ... (captured {OUTPUT_MAX} of {size} bytes)"
        check.updates += 1
        self._set_status(check, status, output)
        self._arm(check)

    def _set_status(self, check: Check, status: str, output: str) -> None:
        changed = status != check.status
        check.status, check.output = status, output
        if status == "critical":
            if check.critical_since is None:
                check.critical_since = self._clock()
        else:
            check.critical_since = None
        if changed:        # output-only updates reach the catalog minutes later: they do not raise the index
            check.modify_index = self._touch_service(self.services[check.service_id].spec.name)

    def _arm(self, check: Check) -> None:
        if check.timer is not None:
            check.timer.cancel()
        check.timer = asyncio.get_running_loop().call_later(check.ttl, self._expire, check.check_id)

    def _expire(self, check_id: str) -> None:
        check = self.checks.get(check_id)
        if check is None:
            return
        check.timer = None
        last = check.output
        self._set_status(check, "critical",
                         f"TTL expired (last output before timeout follows): {last}" if last else "TTL expired")

    def _drop_check(self, check_id: str) -> None:
        check = self.checks.pop(check_id)
        if check.timer is not None:
            check.timer.cancel()

    def reap(self) -> list[str]:
        """Deregister services with a check critical for longer than its DeregisterCriticalServiceAfter."""
        now = self._clock()
        doomed = {c.service_id for c in self.checks.values() if c.deregister_after is not None
                  and c.critical_since is not None and now - c.critical_since > c.deregister_after}
        for service_id in doomed:
            self.deregister(service_id)
        return sorted(doomed)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval_s)
            self.reap()

    # -- JSON shapes --------------------------------------------------------------------------------------------

    def check_json(self, check: Check) -> dict[str, Any]:
        spec = self.services[check.service_id].spec
        return {"Node": NODE, "CheckID": check.check_id, "Name": check.name, "Status": check.status,
                "Notes": check.notes, "Output": check.output, "ServiceID": spec.id, "ServiceName": spec.name,
                "ServiceTags": list(spec.tags), "Type": "ttl", "CreateIndex": check.create_index,
                "ModifyIndex": check.modify_index}

    def instances(self, name: str) -> list[tuple[ServiceDef, int, int, list[dict[str, Any]]]]:
        """(service, create index, modify index, checks incl. the node's serfHealth) of every instance of `name`."""
        found = [(CONSUL_SERVICE, 1, 1, [])] if name == "consul" else []
        for service in sorted(self.services.values(), key=lambda s: s.spec.id):
            if service.spec.name == name:
                checks = [self.check_json(c) for c in self.checks.values() if c.service_id == service.spec.id]
                found.append((service.spec, service.create_index, service.modify_index, checks))
        return [(spec, ci, mi, checks + [SERF]) for spec, ci, mi, checks in found]


# -- as a child process, and the session fixture --------------------------------------------------------------

async def _serve(args: argparse.Namespace) -> None:
    async with ConsulDouble(host=args.host, port=args.port, reap_interval_s=args.reap_interval,
                            deregister_min_s=args.deregister_min) as double:
        print(double.url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Consul HTTP API double (tests only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--reap-interval", type=float, default=30.0, help="seconds between reaper runs")
    parser.add_argument("--deregister-min", type=float, default=60.0, help="DeregisterCriticalServiceAfter floor")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def consul_url() -> AsyncIterator[str]:
    """A Consul double in its own process on a free loopback port, for the whole session: its WHISK_DISCOVERY URL,
    `consul://127.0.0.1:<port>` (HTTP on that port)."""
    from tests.support.processes import free_port, terminate, until_ready

    port = free_port()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.support.consul_double",
                                                "--port", str(port), cwd=root, stdout=asyncio.subprocess.DEVNULL)
    try:
        await until_ready(f"http://127.0.0.1:{port}/v1/status/leader", proc, deadline_s=20)
        yield f"consul://127.0.0.1:{port}"
    finally:
        await terminate(proc)


if __name__ == "__main__":
    main()
