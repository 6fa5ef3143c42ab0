"""The Consul double against Consul's documented behaviour (docs/testing.md) (raw HTTP, and python-consul2 where it
matters)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import consul.base
import pytest

from tests.support.waiting import until
from tests.support.consul_double import ConsulDouble, wait_time
from tests.support.consul_double_decode import go_duration

# python-consul2 warns on every client and every collected HTTP client, even after close (docs/testing.md, Consul).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")

TTL_CHECK = {"TTL": "10s"}


async def put(http: aiohttp.ClientSession, path: str, body: Any = None, **params: str) -> tuple[int, str]:
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    async with http.put(path, data=data, params=params) as resp:
        return resp.status, await resp.text()


async def get(http: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, Any, Any]:
    async with http.get(path, params=params) as resp:
        text = await resp.text()
        body = json.loads(text) if resp.content_type == "application/json" else text
        return resp.status, body, resp.headers


async def register(http: aiohttp.ClientSession, body: dict[str, Any], **params: str) -> None:
    assert await put(http, "/v1/agent/service/register", body, **params) == (200, "")


async def health(http: aiohttp.ClientSession, name: str, **params: str) -> list[dict[str, Any]]:
    status, body, headers = await get(http, f"/v1/health/service/{name}", **params)
    assert status == 200 and int(headers["X-Consul-Index"]) >= 1
    return body


# -- durations and decoding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("10s", 10), ("1m", 60), ("1h30m", 5400), ("500ms", 0.5),
                                           ("1.5s", 1.5), ("0", 0), ("250us", 0.00025), ("-2s", -2)])
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [("10", 'time: missing unit in duration "10"'),
                                           ("ten", 'time: invalid duration "ten"'), ("", 'time: invalid duration ""')])
def test_bad_go_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        go_duration(text)


async def test_keys_are_case_insensitive_with_snake_aliases(http: aiohttp.ClientSession, double: ConsulDouble) -> None:
    await register(http, {"NAME": "web", "iD": "web1", "enable_tag_override": True, "tagged_addresses": {},
                          "check": {"ttl": "10s", "deregister_critical_service_after": "90s", "status": "passing"}})
    _, services, headers = await get(http, "/v1/agent/services")
    assert "X-Consul-Index" not in headers                       # agent endpoints carry no meta headers
    assert services["web1"]["Service"] == "web" and services["web1"]["EnableTagOverride"] is True
    assert double.checks["service:web1"].deregister_after == 90


@pytest.mark.parametrize("body, message", [
    ({"Name": "web", "check_id": "x"}, 'Request decode failed: json: unknown field "check_id"'),
    ({"Name": "web", "Check": {"TTL": "10s", "ID": "x"}}, 'Request decode failed: json: unknown field "ID"'),
    ({"ID": "web"}, "Missing service name"),
    ({"Name": "web", "Address": "0.0.0.0"}, "Invalid service address"),
    ({"Name": "web", "Meta": {"consul-x": "1"}}, "Invalid Service Meta: "),
    ({"Name": "web", "Meta": {"a b": "1"}}, "Invalid Service Meta: "),
    ({"Name": "web", "Check": {"TTL": "10"}}, 'Request decode failed: time: missing unit in duration "10"'),
    ({"Name": "web", "Check": {"TTL": "10s", "Status": "ok"}},
     "Status for checks must 'passing', 'warning', 'critical'"),
    ({"Name": "web", "Check": {"TTL": "10s", "Interval": "5s"}}, "Invalid check: Interval and TTL cannot both"),
    ({"Name": "web", "Check": {"Notes": "n"}}, "Invalid check: TTL must be > 0 for TTL checks"),
    ({"Name": "web", "Port": "80"}, "Request decode failed: json: cannot unmarshal string"),
])
async def test_bad_registrations_are_plain_text_400s(http: aiohttp.ClientSession, body: dict[str, Any],
                                                     message: str) -> None:
    status, text = await put(http, "/v1/agent/service/register", body)
    assert status == 400 and text.startswith(message)


async def test_empty_body_is_a_decode_error(http: aiohttp.ClientSession) -> None:
    assert await put(http, "/v1/agent/service/register", b"") == (400, "Request decode failed: EOF")


async def test_a_bare_number_duration_is_nanoseconds(http: aiohttp.ClientSession, double: ConsulDouble) -> None:
    await register(http, {"Name": "web", "Check": {"TTL": 2_500_000_000}})
    assert double.checks["service:web"].ttl == 2.5


async def test_what_python_consul2_sends_is_accepted(client: Any, double: ConsulDouble) -> None:
    assert await client.agent.service.register("invoker", service_id="invoker0", address="10.0.0.1", port=8080,
                                               tags=["t"], meta={"k": "v"}, check=consul.Check.ttl("10s"))
    services = await client.agent.services()
    assert services["invoker0"] | {"Weights": None} == {
        "ID": "invoker0", "Service": "invoker", "Tags": ["t"], "Meta": {"k": "v"}, "Port": 8080,
        "Address": "10.0.0.1", "Weights": None, "EnableTagOverride": False, "Datacenter": "dc1"}
    assert services["invoker0"]["Weights"] == {"Passing": 1, "Warning": 1}


# -- checks -------------------------------------------------------------------------------------------------

async def test_check_ids_names_and_initial_status(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "ID": "w1", "Check": TTL_CHECK})
    await register(http, {"Name": "api", "ID": "a1", "Check": TTL_CHECK,
                          "Checks": [{"TTL": "5s", "Status": "warning"}]})
    _, checks, _ = await get(http, "/v1/agent/checks")
    assert checks["service:w1"]["Status"] == "critical"                 # critical unless Status is given
    assert checks["service:w1"]["Name"] == "Service 'web' check"
    assert (checks["service:a1:1"]["Status"], checks["service:a1:2"]["Status"]) == ("critical", "warning")


async def test_reregistration_keeps_status_and_output(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "Check": TTL_CHECK})
    assert await put(http, "/v1/agent/check/pass/service:web", note="fine") == (200, "")
    await register(http, {"Name": "web", "Tags": ["v2"], "Check": {"TTL": "10s", "Status": "critical"}})
    _, checks, _ = await get(http, "/v1/agent/checks")
    assert (checks["service:web"]["Status"], checks["service:web"]["Output"]) == ("passing", "fine")
    assert checks["service:web"]["ServiceTags"] == ["v2"]


async def test_ttl_updates_set_status_and_output(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "Check": TTL_CHECK})
    for verb, status in (("warn", "warning"), ("fail", "critical"), ("pass", "passing")):
        assert await put(http, f"/v1/agent/check/{verb}/service:web", note=f"{verb} it") == (200, "")
        _, checks, _ = await get(http, "/v1/agent/checks")
        assert (checks["service:web"]["Status"], checks["service:web"]["Output"]) == (status, f"{verb} it")
    assert await put(http, "/v1/agent/check/pass/service:web") == (200, "")
    _, checks, _ = await get(http, "/v1/agent/checks")
    assert checks["service:web"]["Output"] == "" and checks["service:web"]["Notes"] == ""
    assert await put(http, "/v1/agent/check/update/service:web", {"status": "warning", "output": "o"}) == (200, "")
    answer = await put(http, "/v1/agent/check/update/service:web", {"Status": "bad"})
    assert answer[1] == "Invalid check status: 'bad'"
    assert (await put(http, "/v1/agent/check/update/service:web", {"Foo": 1}))[0] == 400
    assert await put(http, "/v1/agent/check/pass/service:web", note="x" * 5000) == (200, "")
    _, checks, _ = await get(http, "/v1/agent/checks")
    assert checks["service:web"]["Output"] == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"


async def test_ttl_update_errors(http: aiohttp.ClientSession, client: Any) -> None:
    status, text = await put(http, "/v1/agent/check/pass/nope")
    assert (status, text) == (404, 'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.')
    assert await client.agent.check.ttl_pass("nope") is False           # python-consul2: 404 → False
    assert (await put(http, "/v1/agent/check/pass/serfHealth"))[0] == 500
    with pytest.raises(consul.base.ConsulException, match="500 CheckID"):
        await client.agent.check.ttl_pass("serfHealth")
    async with http.get("/v1/agent/check/pass/nope") as resp:
        assert resp.status == 405


async def test_ttl_expiry_turns_critical_with_the_documented_output(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "a", "Check": {"TTL": "150ms", "Status": "passing"}})
    await register(http, {"Name": "b", "Check": {"TTL": "150ms"}})
    assert await put(http, "/v1/agent/check/pass/service:b", note="last words") == (200, "")

    async def checks() -> dict[str, Any]:
        return (await get(http, "/v1/agent/checks"))[1]
    found = await until("the checks", checks, ok=lambda c: all(v["Status"] == "critical" for v in c.values()))
    assert found["service:a"]["Output"] == "TTL expired"
    assert found["service:b"]["Output"] == "TTL expired (last output before timeout follows): last words"
    assert await put(http, "/v1/agent/check/pass/service:a") == (200, "")   # an update re-arms the timer
    assert (await checks())["service:a"]["Status"] == "passing"


async def test_deregistration(http: aiohttp.ClientSession, client: Any) -> None:
    await register(http, {"Name": "web", "Check": TTL_CHECK})
    assert await put(http, "/v1/agent/service/deregister/web") == (200, "")
    assert (await get(http, "/v1/agent/checks"))[1] == {}
    status, text = await put(http, "/v1/agent/service/deregister/web")
    assert (status, text) == (404, 'Unknown service ID "web". Ensure that the service ID is passed, not the service '
                                   "name.")
    assert await client.agent.service.deregister("web") is False


# -- health and catalog reads -------------------------------------------------------------------------------

async def test_health_shape_passing_and_tags(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "ID": "w1", "Tags": ["Blue"], "Check": {"TTL": "10s", "Status": "passing"}})
    await register(http, {"Name": "web", "ID": "w2", "Check": {"TTL": "10s", "Status": "warning"}})
    rows = await health(http, "web")
    assert [r["Service"]["ID"] for r in rows] == ["w1", "w2"]
    assert set(rows[0]) == {"Node", "Service", "Checks"}
    assert [c["CheckID"] for c in rows[0]["Checks"]] == ["service:w1", "serfHealth"]
    assert rows[0]["Node"]["Address"] == "127.0.0.1" and rows[1]["Service"]["Tags"] == []
    assert [r["Service"]["ID"] for r in await health(http, "web", passing="")] == ["w1"]   # warning is not passing
    assert [r["Service"]["ID"] for r in await health(http, "web", passing="true")] == ["w1"]
    assert len(await health(http, "web", passing="false")) == 2
    assert [r["Service"]["ID"] for r in await health(http, "web", tag="blue")] == ["w1"]
    assert await health(http, "nothing") == []
    assert (await get(http, "/v1/health/service/web", passing="maybe"))[:2] == (400, "Invalid value for ?passing")


async def test_catalog_reads(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "ID": "w1", "Tags": ["b"], "Port": 80, "Check": TTL_CHECK})
    await register(http, {"Name": "web", "ID": "w2", "Tags": ["a"]})
    status, names, headers = await get(http, "/v1/catalog/services")
    assert status == 200 and names == {"consul": [], "web": ["a", "b"]} and int(headers["X-Consul-Index"]) >= 1
    _, rows, _ = await get(http, "/v1/catalog/service/web")
    assert [(r["ServiceID"], r["ServicePort"], r["Node"]) for r in rows] == [("w1", 80, "consul-double"),
                                                                          ("w2", 0, "consul-double")]
    assert "ServiceWeights" in rows[0] and "NodeMeta" in rows[0]


async def test_python_consul2_reads_return_index_strings(client: Any) -> None:
    index, rows = await client.health.service("web", passing=True)
    assert isinstance(index, str) and int(index) >= 1 and rows == []
    index, names = await client.catalog.services()
    assert "consul" in names


async def test_indexes_move_on_status_changes_not_on_heartbeats(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "Check": {"TTL": "10s", "Status": "passing"}})

    async def index() -> int:
        return int((await get(http, "/v1/health/service/web"))[2]["X-Consul-Index"])
    first = await index()
    await put(http, "/v1/agent/check/pass/service:web", note="beat")
    assert await index() == first                                          # output only: not synced at once
    await put(http, "/v1/agent/check/fail/service:web")
    second = await index()
    assert second > first
    await register(http, {"Name": "other"})                                # another service: no change here
    assert await index() == second
    await put(http, "/v1/agent/service/deregister/web")
    assert await index() > second                                          # deregistration raises it


# -- blocking queries ---------------------------------------------------------------------------------------

async def test_blocking_query_returns_on_change(http: aiohttp.ClientSession) -> None:
    await register(http, {"Name": "web", "ID": "w1", "Check": {"TTL": "10s", "Status": "passing"}})
    _, _, headers = await get(http, "/v1/health/service/web")
    index = headers["X-Consul-Index"]
    waiter = asyncio.create_task(get(http, "/v1/health/service/web", index=index, wait="30s", passing=""))
    await asyncio.sleep(0)
    assert not waiter.done()
    started = time.monotonic()
    await put(http, "/v1/agent/check/fail/service:w1")
    status, rows, new_headers = await asyncio.wait_for(waiter, 5)
    assert status == 200 and rows == [] and int(new_headers["X-Consul-Index"]) > int(index)
    assert time.monotonic() - started < 5


async def test_blocking_query_times_out_with_the_same_index(http: aiohttp.ClientSession) -> None:
    _, _, headers = await get(http, "/v1/kv/missing")
    started = time.monotonic()
    status, _, again = await get(http, "/v1/kv/missing", index=headers["X-Consul-Index"], wait="200ms")
    elapsed = time.monotonic() - started
    assert status == 404 and again["X-Consul-Index"] == headers["X-Consul-Index"]
    assert 0.19 <= elapsed < 0.2 * 17 / 16 + 2                           # wait plus at most wait/16 of jitter


async def test_blocking_parameter_errors(http: aiohttp.ClientSession) -> None:
    assert (await get(http, "/v1/health/service/web", index="x"))[:2] == (400, "Invalid index")
    assert (await get(http, "/v1/health/service/web", index="1", wait="10"))[:2] == (400, "Invalid wait time")


@pytest.mark.parametrize("query, seconds", [({}, 300.0), ({"wait": "20m"}, 600.0), ({"wait": "10s"}, 10.0)])
def test_default_and_maximum_wait(query: dict[str, str], seconds: float) -> None:
    assert wait_time(query) == seconds


# -- KV -----------------------------------------------------------------------------------------------------

async def test_kv_round_trip_base64_and_404_with_headers(http: aiohttp.ClientSession, client: Any) -> None:
    assert await put(http, "/v1/kv/cfg/a", b"\x00bytes") == (200, "true")
    status, entries, headers = await get(http, "/v1/kv/cfg/a")
    assert status == 200 and base64.b64decode(entries[0]["Value"]) == b"\x00bytes"
    assert entries[0]["CreateIndex"] == entries[0]["ModifyIndex"] == int(headers["X-Consul-Index"])
    assert set(entries[0]) == {"LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"}
    status, body, headers = await get(http, "/v1/kv/cfg/none")
    assert status == 404 and body == "" and int(headers["X-Consul-Index"]) >= 1
    index, entry = await client.kv.get("cfg/a")
    assert entry["Value"] == b"\x00bytes" and int(index) == entries[0]["ModifyIndex"]
    assert await client.kv.get("cfg/none") == (headers["X-Consul-Index"], None)
    async with http.get("/v1/kv/cfg/a", params={"raw": ""}) as resp:
        assert await resp.read() == b"\x00bytes" and resp.content_type == "text/plain"


async def test_kv_empty_values_are_null(client: Any) -> None:
    assert await client.kv.put("e1", "") and await client.kv.put("e2", None)
    assert (await client.kv.get("e1"))[1]["Value"] is None and (await client.kv.get("e2"))[1]["Value"] is None


async def test_kv_recurse_keys_and_separator(http: aiohttp.ClientSession) -> None:
    for key in ("a/b", "a/sub/c", "a/sub/d", "b"):
        await put(http, f"/v1/kv/{key}", key)
    _, entries, headers = await get(http, "/v1/kv/a/", recurse="")
    assert [e["Key"] for e in entries] == ["a/b", "a/sub/c", "a/sub/d"]
    assert int(headers["X-Consul-Index"]) == max(e["ModifyIndex"] for e in entries)
    assert (await get(http, "/v1/kv/a/", keys="", separator="/"))[1] == ["a/b", "a/sub/"]
    assert (await get(http, "/v1/kv/", keys=""))[1] == ["a/b", "a/sub/c", "a/sub/d", "b"]
    assert (await get(http, "/v1/kv/zz", keys=""))[0] == 404
    await put(http, "/v1/kv/other", "x")
    async with http.delete("/v1/kv/", params={"recurse": ""}) as resp:
        assert await resp.text() == "true"
    assert (await get(http, "/v1/kv/", keys=""))[:2] == (200, [])        # an empty prefix answers [] not 404
    assert (await get(http, "/v1/kv/"))[:2] == (400, "Missing key name")


async def test_kv_recurse_index_goes_down_when_the_newest_key_goes(http: aiohttp.ClientSession) -> None:
    await put(http, "/v1/kv/p/1", "x")
    await put(http, "/v1/kv/p/2", "x")
    before = int((await get(http, "/v1/kv/p/", recurse=""))[2]["X-Consul-Index"])
    async with http.delete("/v1/kv/p/2"):
        pass
    assert int((await get(http, "/v1/kv/p/", recurse=""))[2]["X-Consul-Index"]) < before


async def test_kv_cas_and_flags(http: aiohttp.ClientSession, client: Any) -> None:
    assert await put(http, "/v1/kv/k", "v1", cas="0") == (200, "true")      # 0: only if absent
    assert await put(http, "/v1/kv/k", "v2", cas="0") == (200, "false")
    index = (await get(http, "/v1/kv/k"))[1][0]["ModifyIndex"]
    assert await put(http, "/v1/kv/k", "v3", cas=str(index + 100)) == (200, "false")
    assert await put(http, "/v1/kv/k", "v3", cas=str(index), flags="42") == (200, "true")
    entry = (await get(http, "/v1/kv/k"))[1][0]
    assert entry["Flags"] == 42 and entry["CreateIndex"] == index and entry["ModifyIndex"] > index
    assert await client.kv.delete("k", cas=index) is False
    assert await client.kv.delete("k", cas=entry["ModifyIndex"]) is True
    assert await client.kv.put("k", "x", cas=0) is True                     # python-consul2 sends cas=0


async def test_kv_errors(http: aiohttp.ClientSession) -> None:
    status, text = await put(http, "/v1/kv/k", "v", cas="0", acquire="s")
    assert status == 400 and text.startswith("Conflicting flags: ")
    assert (await put(http, "/v1/kv/k", "v", acquire="no-such-session"))[0] == 500
    assert (await put(http, "/v1/kv/k", "v", flags="x"))[0] == 400
    assert (await put(http, "/v1/kv/big", b"x" * (512 * 1024 + 1)))[0] == 413
    assert await put(http, "/v1/kv/", "v") == (400, "Missing key name")
    async with http.delete("/v1/kv/k", params={"recurse": "", "cas": "1"}) as resp:
        assert resp.status == 400


async def test_kv_blocking_get_wakes_on_write(http: aiohttp.ClientSession) -> None:
    await put(http, "/v1/kv/watched", "1")
    index = (await get(http, "/v1/kv/watched"))[2]["X-Consul-Index"]
    waiter = asyncio.create_task(get(http, "/v1/kv/watched", index=index, wait="30s"))
    await asyncio.sleep(0)
    await put(http, "/v1/kv/watched", "2")
    _, entries, _ = await asyncio.wait_for(waiter, 5)
    assert base64.b64decode(entries[0]["Value"]) == b"2"


# -- reaping, other endpoints, the child process ------------------------------------------------------------

def test_reaper_defaults_are_consuls() -> None:
    double = ConsulDouble()
    assert (double.reap_interval_s, double.deregister_min_s) == (30.0, 60.0)


async def test_critical_services_are_reaped_after_the_minimum_timeout() -> None:
    async with ConsulDouble(reap_interval_s=0.05, deregister_min_s=0.3) as double, \
            aiohttp.ClientSession(base_url=double.url) as http:
        await register(http, {"Name": "web", "Check": {"TTL": "10s", "Status": "passing",
                                                        "DeregisterCriticalServiceAfter": "1ms"}})
        await register(http, {"Name": "never", "Check": {"TTL": "10s", "DeregisterCriticalServiceAfter": "1ms"}})
        assert double.checks["service:web"].deregister_after == 0.3            # raised to the minimum
        failed = time.monotonic()
        await put(http, "/v1/agent/check/fail/service:web")

        async def services() -> dict[str, Any]:
            return (await get(http, "/v1/agent/services"))[1]
        await until("the services", services, ok=lambda s: "web" not in s)
        assert time.monotonic() - failed > 0.3
        assert "never" in await services()           # registered critical: its clock starts at its first expiry


async def test_status_and_other_datacenters(http: aiohttp.ClientSession) -> None:
    assert (await get(http, "/v1/status/leader"))[1] == "127.0.0.1:8300"
    assert (await get(http, "/v1/status/peers"))[1] == ["127.0.0.1:8300"]
    assert (await get(http, "/v1/health/service/web", dc="dc9"))[:2] == (500, "No path to datacenter")
    assert (await get(http, "/v1/health/service/web", filter="x"))[0] == 400


async def test_the_session_fixture_serves_a_child_process(consul_url: str) -> None:
    assert consul_url.startswith("consul://127.0.0.1:")
    async with aiohttp.ClientSession() as session:
        async with session.get(consul_url.replace("consul://", "http://") + "/v1/status/leader") as resp:
            assert await resp.json() == "127.0.0.1:8300"
