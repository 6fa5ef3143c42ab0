"""A Consul HTTP API double for tests: an aiohttp server on loopback, written from spec/CONSUL.md.

It is not Consul: one agent that is also the only server, one node (`consul-double`, datacenter `dc1`), no gossip,
no ACLs. What whisk's discovery uses behaves as CONSUL.md documents it: agent service register/deregister with
TTL checks (pass/warn/fail/update, expiry to critical, DeregisterCriticalServiceAfter reaping with its 1m minimum and
30 s reaper, both knobs), health and catalog reads with `passing` and `tag`, blocking queries (`index`, `wait`, the
10m cap, jitter, `X-Consul-Index` ≥ 1), KV with base64 values, `recurse`/`keys`/`separator`/`raw`, CAS and
flags, and status/leader. Not implemented: sessions (so `acquire`/`release` name an unknown session: 500, as
Consul answers for one), script/HTTP/TCP checks (400), `?filter` (400), other datacenters (500).

In-process use: `async with ConsulDouble() as double: double.url`. As a child process (the session fixture, and
the cluster tests): `python -m tests.support.consul_double --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from aiohttp import web

from tests.support.consul_double_decode import (
    CHECK_UPDATE_FIELDS, ConsulError, ServiceDef, bad_request, decode, go_duration, parse_body, service_definition,
)
from tests.support.consul_double_kv import KVStore

NODE = "consul-double"
NODE_ID = str(uuid.UUID(int=0x5E))
DATACENTER = "dc1"
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
        self._services_table = 1
        self.kv = KVStore(self._next_index)
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None

    # -- life ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> ConsulDouble:
        app = web.Application(middlewares=[_plain_errors])
        _routes(app, self)
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
        self._services_table = index
        return index

    def service_index(self, name: str) -> int:
        if any(s.spec.name == name for s in self.services.values()):
            return self._service_index[name]
        return self._services_table

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
        found = [(_CONSUL, 1, 1, [])] if name == "consul" else []
        for service in sorted(self.services.values(), key=lambda s: s.spec.id):
            if service.spec.name == name:
                checks = [self.check_json(c) for c in self.checks.values() if c.service_id == service.spec.id]
                found.append((service.spec, service.create_index, service.modify_index, checks))
        return [(spec, ci, mi, checks + [_SERF]) for spec, ci, mi, checks in found]


_CONSUL = ServiceDef("consul", "consul", [], "", 8300, {}, {"Passing": 1, "Warning": 1}, False)
_SERF = {"Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing", "Notes": "",
         "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
         "CreateIndex": 1, "ModifyIndex": 1}
_NODE = {"ID": NODE_ID, "Node": NODE, "Address": "127.0.0.1", "Datacenter": DATACENTER,
         "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"}, "Meta": {"consul-network-segment": ""},
         "CreateIndex": 1, "ModifyIndex": 1}


def wait_time(query: Mapping[str, str]) -> float:
    """Seconds a blocking query may wait: `wait`, 5m when absent, at most 10m."""
    text = query.get("wait")
    try:
        return min(go_duration(text), 600.0) if text else 300.0
    except ValueError:
        raise bad_request("Invalid wait time") from None


def _go_bool(text: str) -> bool:
    if text in ("", "1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request("Invalid value for ?passing")


def _read_json(index: int, data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                        headers=_meta(index))


def _meta(index: int) -> dict[str, str]:
    return {"X-Consul-Index": str(max(1, index)), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}


@web.middleware
async def _plain_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    try:
        if request.query.get("dc", DATACENTER) != DATACENTER:
            raise ConsulError(500, "No path to datacenter")
        if "filter" in request.query:
            raise bad_request("?filter is not supported by this Consul double")
        return await handler(request)
    except ConsulError as exc:
        return web.Response(status=exc.status, text=exc.text, headers=getattr(exc, "headers", None))


def _routes(app: web.Application, double: ConsulDouble) -> None:
    async def register(request: web.Request) -> web.Response:
        spec = service_definition(await request.read(), double.deregister_min_s)
        double.register(spec, "replace-existing-checks" in request.query)
        return web.Response()

    async def deregister(request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        if not double.deregister(service_id):
            raise ConsulError(404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
                                   "not the service name.")
        return web.Response()

    async def agent_services(request: web.Request) -> web.Response:
        return web.json_response({s.spec.id: {
            "ID": s.spec.id, "Service": s.spec.name, "Tags": s.spec.tags, "Meta": s.spec.meta, "Port": s.spec.port,
            "Address": s.spec.address, "Weights": s.spec.weights, "EnableTagOverride": s.spec.enable_tag_override,
            "Datacenter": DATACENTER} for s in double.services.values()})

    async def agent_checks(request: web.Request) -> web.Response:
        return web.json_response({c.check_id: double.check_json(c) for c in double.checks.values()})

    async def ttl(request: web.Request) -> web.Response:
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[request.match_info["verb"]]
        double.update_check(request.match_info["check_id"], status, request.query.get("note", ""))
        return web.Response()

    async def check_update(request: web.Request) -> web.Response:
        body = decode(parse_body(await request.read()), CHECK_UPDATE_FIELDS)
        status = body.get("Status") or ""
        if status not in ("passing", "warning", "critical"):
            raise bad_request(f"Invalid check status: '{status}'")
        double.update_check(request.match_info["check_id"], status, body.get("Output") or "")
        return web.Response()

    def tag_filter(request: web.Request) -> Callable[[ServiceDef], bool]:
        tags = [t.lower() for t in request.query.getall("tag", [])]
        return lambda spec: all(t in {x.lower() for x in spec.tags} for t in tags)

    async def health_service(request: web.Request) -> web.Response:
        name = request.match_info["service"]
        passing = _go_bool(request.query["passing"]) if "passing" in request.query else False
        wanted = tag_filter(request)

        def read() -> tuple[int, list[dict[str, Any]]]:
            rows = []
            for spec, ci, mi, checks in double.instances(name):
                if not wanted(spec) or (passing and any(c["Status"] != "passing" for c in checks)):
                    continue
                rows.append({"Node": _NODE, "Service": _service_json(spec, ci, mi), "Checks": checks})
            return double.service_index(name), rows
        return _read_json(*await double.blocking(request, read))

    async def catalog_service(request: web.Request) -> web.Response:
        name = request.match_info["service"]
        wanted = tag_filter(request)

        def read() -> tuple[int, list[dict[str, Any]]]:
            return double.service_index(name), [_catalog_json(spec, ci, mi) for spec, ci, mi, _ in
                                                double.instances(name) if wanted(spec)]
        return _read_json(*await double.blocking(request, read))

    async def catalog_services(request: web.Request) -> web.Response:
        def read() -> tuple[int, dict[str, list[str]]]:
            names: dict[str, set[str]] = {"consul": set()}
            for s in double.services.values():
                names.setdefault(s.spec.name, set()).update(s.spec.tags)
            return double._services_table, {n: sorted(t) for n, t in sorted(names.items())}
        return _read_json(*await double.blocking(request, read))

    async def kv_get(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        index, found = await double.blocking(request, lambda: double.kv.read(key, request.query))
        if found is None:
            return web.Response(status=404, headers=_meta(index))
        if "raw" in request.query and not ("recurse" in request.query or "keys" in request.query):
            value = found[0]["Value"]
            return web.Response(body=base64.b64decode(value) if value else b"", content_type="text/plain",
                                headers=_meta(index))
        return _read_json(index, found)

    async def kv_put(request: web.Request) -> web.Response:
        return web.json_response(double.kv.put(request.match_info["key"], request.query, request.query_string,
                                                await request.read()))

    async def kv_delete(request: web.Request) -> web.Response:
        return web.json_response(double.kv.delete(request.match_info["key"], request.query))

    async def leader(request: web.Request) -> web.Response:
        return web.json_response("127.0.0.1:8300")

    async def peers(request: web.Request) -> web.Response:
        return web.json_response(["127.0.0.1:8300"])

    app.router.add_put("/v1/agent/service/register", register)
    app.router.add_put("/v1/agent/service/deregister/{service_id}", deregister)
    app.router.add_get("/v1/agent/services", agent_services)
    app.router.add_get("/v1/agent/checks", agent_checks)
    app.router.add_put(r"/v1/agent/check/{verb:pass|warn|fail}/{check_id:.+}", ttl)
    app.router.add_put("/v1/agent/check/update/{check_id:.+}", check_update)
    app.router.add_get("/v1/health/service/{service}", health_service)
    app.router.add_get("/v1/catalog/service/{service}", catalog_service)
    app.router.add_get("/v1/catalog/services", catalog_services)
    app.router.add_get("/v1/kv/{key:.*}", kv_get)
    app.router.add_put("/v1/kv/{key:.*}", kv_put)
    app.router.add_delete("/v1/kv/{key:.*}", kv_delete)
    app.router.add_get("/v1/status/leader", leader)
    app.router.add_get("/v1/status/peers", peers)


def _service_json(spec: ServiceDef, create: int, modify: int) -> dict[str, Any]:
    return {"ID": spec.id, "Service": spec.name, "Tags": list(spec.tags), "Address": spec.address,
            "Meta": dict(spec.meta), "Port": spec.port, "Weights": spec.weights,
            "EnableTagOverride": spec.enable_tag_override, "TaggedAddresses": {}, "CreateIndex": create,
            "ModifyIndex": modify}


def _catalog_json(spec: ServiceDef, create: int, modify: int) -> dict[str, Any]:
    return {"ID": NODE_ID, "Node": NODE, "Address": "127.0.0.1", "Datacenter": DATACENTER,
            "TaggedAddresses": _NODE["TaggedAddresses"], "NodeMeta": _NODE["Meta"], "ServiceID": spec.id,
            "ServiceName": spec.name, "ServiceTags": list(spec.tags), "ServiceAddress": spec.address,
            "ServiceTaggedAddresses": {}, "ServiceMeta": dict(spec.meta), "ServicePort": spec.port,
            "ServiceWeights": spec.weights, "ServiceEnableTagOverride": spec.enable_tag_override,
            "ServiceProxy": {}, "ServiceConnect": {}, "CreateIndex": create, "ModifyIndex": modify}


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
