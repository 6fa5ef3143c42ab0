"""`/health` (ready when the backends answer, 503 naming the one that does not), `/ping` and `/metrics` on every
role, against real servers; the failing backend is a real Kafka-protocol broker stopped under a running whisk."""

from __future__ import annotations

import asyncio
import tempfile
import time

import aiohttp
import pytest

from tests.support.consul_double import ConsulDouble
from tests.support.kafka_broker import KafkaBroker, kafka_or_missing
from tests.support.processes import whisk_server


async def test_standalone_is_ready(whisk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{whisk_url}/health") as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["status"] == "ok" and body["role"] == "standalone"
    assert body["backends"]["store"] == "ok" and body["backends"]["bus"] == "ok"


@pytest.mark.parametrize("role", ["invoker", "controller"])
async def test_every_role_serves_ping_health_and_metrics(role: str) -> None:
    env = {"WHISK_ROLE": role, "WHISK_DATA_DIR": tempfile.mkdtemp(prefix=f"whisk-ops-{role}-")}
    async with whisk_server(env) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/ping") as resp:
            assert resp.status == 200 and await resp.text() == "pong"
        async with session.get(f"{url}/health") as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            assert body["role"] == role and set(body["backends"]) >= {"store", "bus"}
        async with session.get(f"{url}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        assert 'whisk_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text


@pytest.mark.kafka
async def test_health_names_the_failing_backend() -> None:
    kafka_or_missing()
    broker = KafkaBroker()
    await broker.start()
    try:
        env = {"WHISK_BUS": f"kafka://{broker.bootstrap}", "WHISK_SHUTDOWN_GRACE_S": "2",
               "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-ops-health-")}
        async with whisk_server(env, deadline_s=60) as url, aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health") as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["backends"]["bus"] == "ok"
            await broker.stop()
            deadline = time.monotonic() + 60
            while True:
                async with session.get(f"{url}/health", headers={"X-Request-ID": "health-check-1"}) as resp:
                    if resp.status == 503:
                        body = await resp.json()
                        break
                    assert resp.status == 200
                assert time.monotonic() < deadline, "/health never noticed the broker had stopped"
                await asyncio.sleep(0.2)
            assert body["error"].startswith("Backend not ready: bus ("), body
            assert body["code"] == "health-check-1"
            assert body["backends"]["store"] == "ok" and body["backends"]["bus"] != "ok"
            async with session.get(f"{url}/ping") as resp:      # alive, though not ready
                assert resp.status == 200
    finally:
        await broker.close()


async def test_consul_away_leaves_a_running_member_ready_and_says_so() -> None:
    """Every member shares one Consul, and none needs it to serve once started: with Consul away (restarted, upgraded)
    `/health` was 503 on every controller at once, so a Kubernetes readiness probe left the controllers' Service
    with no endpoint, a whole-API outage for as long as Consul's. It is 200 "degraded" now, naming discovery."""
    async with ConsulDouble() as consul:
        env = {"WHISK_DISCOVERY": f"consul://127.0.0.1:{consul.port}", "WHISK_SHUTDOWN_GRACE_S": "2"}
        async with whisk_server(env) as url, aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health") as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["backends"]["discovery"] == "ok"
            await consul.__aexit__(None, None, None)                     # Consul goes away
            async with session.get(f"{url}/health") as resp:
                body = await resp.json()
                assert resp.status == 200, body
            assert body["status"] == "degraded" and body["backends"]["discovery"].startswith("consul: ")
            assert body["backends"]["store"] == "ok" and body["backends"]["bus"] == "ok"
