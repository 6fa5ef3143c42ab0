"""ConsulDiscovery beyond the shared contract: heartbeats, TTL expiry of a killed invoker, reaping and
re-registration, a Consul restart under a watching controller, errors, and what it registers."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from typing import Any

import aiohttp
import pytest

from tests.support.waiting import until
from tests.support.consul_double import ConsulDouble
from tests.conftest import missing
from tests.support.processes import free_port, ipv6_loopback, terminate
from whisk.discovery.base import InvokerInfo
from whisk.discovery.consul import ConsulDiscovery
from whisk.entities.errors import BackendUnavailable

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")

INVOKER = InvokerInfo(7, 2048, "127.0.0.1:8107")


def url(double: ConsulDouble) -> str:
    return f"consul://127.0.0.1:{double.port}"


async def test_registration_shape(double: ConsulDouble) -> None:
    async with ConsulDiscovery(url(double), deregister_after_s=90) as d:
        await d.register_invoker(INVOKER, ttl_s=5)
        await d.register_controller(1, "127.0.0.1:3234")
        invoker = double.services["whisk-invoker-7"].spec
        assert (invoker.name, invoker.address, invoker.port) == ("whisk-invoker", "127.0.0.1", 8107)
        assert invoker.meta == {"instance": "7", "user_memory_mb": "2048"}
        check = double.checks["service:whisk-invoker-7"]
        assert (check.status, check.ttl, check.deregister_after) == ("passing", 5, 90)
        assert double.services["whisk-controller-1"].spec.name == "whisk-controller"
        assert double.checks["service:whisk-controller-1"].ttl == d.controller_ttl_s
    assert double.services == {}                                           # a clean stop deregisters


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]"])
async def test_a_server_listening_on_every_address_registers(double: ConsulDouble, host: str) -> None:
    """Consul refuses a service address that is a wildcard (400 "Invalid service address", agent_endpoint.go), and
    the image, Compose and Kubernetes set WHISK_HOST=0.0.0.0: no invoker or controller of that shape could start
    ("cannot start: consul: 400 Invalid service address"). Such a server is registered with its port and no address,
    which Consul documents as the node's address."""
    async with ConsulDiscovery(url(double)) as d:
        await d.register_invoker(InvokerInfo(7, 2048, f"{host}:8107"), ttl_s=5)
        await d.register_controller(1, f"{host}:3234")
        invoker = double.services["whisk-invoker-7"].spec
        assert (invoker.address, invoker.port) == ("", 8107)
        assert double.services["whisk-controller-1"].spec.port == 3234
        assert await d.invokers() == [InvokerInfo(7, 2048, "127.0.0.1:8107")]     # the node's address
        assert await d.controllers() == 1


async def test_heartbeats_keep_the_check_passing_past_its_ttl(double: ConsulDouble) -> None:
    async with ConsulDiscovery(url(double)) as d:
        await d.register_invoker(INVOKER, ttl_s=0.6)
        check = double.checks["service:whisk-invoker-7"]
        first_index = check.modify_index
        # a beat per TTL/3: two TTLs, still passing
        await until("the check updates", lambda: check.updates, ok=lambda n: n >= 6)
        assert check.status == "passing" and check.modify_index == first_index   # never went critical
        assert await d.invokers() == [INVOKER]


async def test_a_killed_invoker_expires_and_leaves_the_healthy_list(double: ConsulDouble) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys, warnings
        warnings.simplefilter("ignore")
        from whisk.discovery.base import InvokerInfo
        from whisk.discovery.consul import ConsulDiscovery
        async def main():
            async with ConsulDiscovery("{url(double)}") as d:
                await d.register_invoker(InvokerInfo(7, 2048, "127.0.0.1:8107"), ttl_s=0.5)
                print("registered", flush=True)
                await asyncio.Event().wait()
        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 20) == b"registered\n"
        async with ConsulDiscovery(url(double), watch_wait_s=5) as controller:
            await until("the invokers", controller.invokers, ok=lambda found: found == [INVOKER])
            check = double.checks["service:whisk-invoker-7"]
            await until("the check updates", lambda: check.updates, ok=lambda n: n >= 2)   # the child is beating
            proc.kill()                                                        # no clean stop: no deregistration
            await proc.wait()
            await until("the invokers", controller.invokers, ok=lambda found: found == [], deadline_s=5)
            assert "whisk-invoker-7" in double.services                        # still registered, just critical
            assert check.status == "critical" and check.output == "TTL expired"
    finally:
        await terminate(proc)


async def test_an_instance_started_again_is_healthy_at_once(double: ConsulDouble, http: aiohttp.ClientSession) -> None:
    """Consul keeps the status of a check registered again (its `Status` counts for a new check only): an invoker or
    controller killed and started again within a minute found its old check critical and stayed out of the healthy
    list until its first heartbeat, a third of the TTL later (3.3 s; for a controller, both controllers then counted
    one and each placed in every invoker's whole memory)."""
    left = {"Name": "whisk-invoker", "ID": "whisk-invoker-7", "Meta": {"instance": "7", "user_memory_mb": "2048"},
            "Check": {"TTL": "10s", "Status": "critical"}}                  # what a killed predecessor left
    assert (await http.put("/v1/agent/service/register", json=left)).status == 200
    async with ConsulDiscovery(url(double)) as d:
        await d.register_invoker(INVOKER, ttl_s=30)
        assert double.checks["service:whisk-invoker-7"].status == "passing"
        assert await d.invokers() == [INVOKER]


async def test_a_reaped_invoker_registers_again() -> None:
    async with ConsulDouble(reap_interval_s=0.05, deregister_min_s=0.2) as double, \
            ConsulDiscovery(url(double), deregister_after_s=0.2) as d:
        await d.register_invoker(INVOKER, ttl_s=0.3)
        assert double.deregister("whisk-invoker-7")                  # the agent forgets it (as after a reap)
        await until("the registered services", lambda: set(double.services), ok=lambda s: s == {"whisk-invoker-7"})
        assert double.checks["service:whisk-invoker-7"].status == "passing"


async def test_a_consul_restart_is_survived_by_invoker_and_controller() -> None:
    port = free_port()
    invoker = ConsulDiscovery(f"consul://127.0.0.1:{port}", retry_s=0.05)
    controller = ConsulDiscovery(f"consul://127.0.0.1:{port}", watch_wait_s=30, retry_s=0.05)
    async with invoker, controller:
        async with ConsulDouble(port=port):
            await invoker.register_invoker(INVOKER, ttl_s=0.3)
            await until("the invokers", controller.invokers, ok=lambda found: found == [INVOKER])
        with pytest.raises(BackendUnavailable):                            # while Consul is gone, errors surface
            await until("the invokers", controller.invokers, ok=lambda _: False, deadline_s=5)
        async with ConsulDouble(port=port) as fresh:                       # empty, and its index starts over
            await until("the registered services", lambda: set(fresh.services), ok=lambda s: s == {"whisk-invoker-7"})
            await until("the invokers", controller.invokers, ok=lambda found: found == [INVOKER])
            await invoker.deregister_invoker(7)
            await until("the invokers", controller.invokers, ok=lambda found: found == [])


async def test_an_outage_is_logged_at_its_start_and_its_end_not_per_beat(lines: list[dict[str, Any]]) -> None:
    port = free_port()
    async with ConsulDiscovery(f"consul://127.0.0.1:{port}", call_timeout_s=1) as invoker:
        async with ConsulDouble(port=port):
            await invoker.register_invoker(INVOKER, ttl_s=0.3)
        await asyncio.sleep(1.5)                                  # about 15 beats while Consul is away
        async with ConsulDouble(port=port) as fresh:
            await until("the registered services", lambda: set(fresh.services), ok=lambda s: s == {"whisk-invoker-7"})
            check = fresh.checks["service:whisk-invoker-7"]
            await until("the check updates", lambda: check.updates, ok=lambda n: n >= 2)
            await invoker.deregister_invoker(7)
    events = [line["event"] for line in lines if line["event"].startswith("discovery.heartbeat")]
    assert events == ["discovery.heartbeat_failed", "discovery.heartbeat_recovered"]
    recovered = next(line for line in lines if line["event"] == "discovery.heartbeat_recovered")
    assert recovered["failed_beats"] >= 5 and recovered["service_id"] == "whisk-invoker-7"


async def test_an_unreachable_consul_is_backend_unavailable() -> None:
    async with ConsulDiscovery(f"consul://127.0.0.1:{free_port()}", call_timeout_s=2) as d:
        for call in (d.ping(), d.invokers(), d.controllers(), d.get_setting("x"),
                     d.register_invoker(INVOKER, ttl_s=1)):
            with pytest.raises(BackendUnavailable, match="^consul: "):
                await call


async def test_the_url_wins_over_consul_http_addr(double: ConsulDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "not-ours")
    async with ConsulDiscovery(url(double)) as d:
        await d.ping()
        await d.put_setting("k", "v")
        assert await d.get_setting("k") == "v"


async def test_the_session_double_in_its_own_process(consul_url: str) -> None:
    async with ConsulDiscovery(consul_url) as invoker, ConsulDiscovery(consul_url) as controller:
        info = InvokerInfo(90_001, 512, "127.0.0.1:1")                       # an id no other test uses
        await invoker.register_invoker(info, ttl_s=5)
        await until("the invokers", controller.invokers, ok=lambda found: info in found)
        await invoker.deregister_invoker(info.instance)
        await until("the invokers", controller.invokers, ok=lambda found: info not in found)


def test_urls() -> None:
    with pytest.raises(ValueError):
        ConsulDiscovery("kafka://127.0.0.1:9092")
    assert ConsulDiscovery("http://127.0.0.1:8500")._host == "127.0.0.1"
    assert ConsulDiscovery("consul://secret@127.0.0.1")._token == "secret"
    assert ConsulDiscovery("consul://127.0.0.1")._port == 8500



async def test_consul_on_ipv6s_loopback_is_reached_and_registers_ipv6_addresses() -> None:
    """WHISK_DISCOVERY=consul://[::1]:8500 passed its check, and the client then asked for http://::1:8500/..., no
    URL (python-consul2 puts the host in its base URL as given): the server did not start."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    async with ConsulDouble(host="::1") as double:
        async with ConsulDiscovery(f"consul://[::1]:{double.port}") as d:
            await d.register_invoker(InvokerInfo(7, 2048, "[::1]:8107"), ttl_s=5)
            await d.register_controller(1, "[::1]:3234")
            spec = double.services["whisk-invoker-7"].spec
            assert (spec.address, spec.port) == ("::1", 8107)
            assert await d.invokers() == [InvokerInfo(7, 2048, "[::1]:8107")]
            assert await d.controllers() == 1
