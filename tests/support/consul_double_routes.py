"""HTTP routes and JSON shapes of the Consul double (see consul_double.py and docs/testing.md, Consul)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.consul_double_decode import (
    CHECK_UPDATE_FIELDS, ConsulError, ServiceDef, bad_request, decode, go_bool, parse_body, service_definition,
)

if TYPE_CHECKING:
    from tests.support.consul_double import ConsulDouble

NODE = "consul-double"
NODE_ID = "00000000-0000-0000-0000-00000000005e"
DATACENTER = "dc1"

CONSUL_SERVICE = ServiceDef("consul", "consul", [], "", 8300, {}, {"Passing": 1, "Warning": 1}, False)
SERF = {"Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing", "Notes": "",
         "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
         "CreateIndex": 1, "ModifyIndex": 1}
NODE_JSON = {"ID": NODE_ID, "Node": NODE, "Address": "127.0.0.1", "Datacenter": DATACENTER,
         "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"}, "Meta": {"consul-network-segment": ""},
         "CreateIndex": 1, "ModifyIndex": 1}


def _read_json(index: int, data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                        headers=_meta(index))


def _meta(index: int) -> dict[str, str]:
    return {"X-Consul-Index": str(max(1, index)), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}


@web.middleware
async def plain_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    try:
        if request.query.get("dc", DATACENTER) != DATACENTER:
            raise ConsulError(500, "No path to datacenter")
        if "filter" in request.query:
            raise bad_request("?filter is not supported by this Consul double")
        return await handler(request)
    except ConsulError as exc:
        return web.Response(status=exc.status, text=exc.text, headers=getattr(exc, "headers", None))


def add_routes(app: web.Application, double: ConsulDouble) -> None:
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
        passing = go_bool(request.query["passing"]) if "passing" in request.query else False
        wanted = tag_filter(request)

        def read() -> tuple[int, list[dict[str, Any]]]:
            rows = []
            for spec, ci, mi, checks in double.instances(name):
                if not wanted(spec) or (passing and any(c["Status"] != "passing" for c in checks)):
                    continue
                rows.append({"Node": NODE_JSON, "Service": _service_json(spec, ci, mi), "Checks": checks})
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
            return double.services_table_index, {n: sorted(t) for n, t in sorted(names.items())}
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
            "TaggedAddresses": NODE_JSON["TaggedAddresses"], "NodeMeta": NODE_JSON["Meta"], "ServiceID": spec.id,
            "ServiceName": spec.name, "ServiceTags": list(spec.tags), "ServiceAddress": spec.address,
            "ServiceTaggedAddresses": {}, "ServiceMeta": dict(spec.meta), "ServicePort": spec.port,
            "ServiceWeights": spec.weights, "ServiceEnableTagOverride": spec.enable_tag_override,
            "ServiceProxy": {}, "ServiceConnect": {}, "CreateIndex": create, "ModifyIndex": modify}
