"""User events (spec §9.2): with WHISK_USER_EVENTS=true every activation is published on the `events` topic in
OpenWhisk's EventMessage shape, for consumers outside whisk (here: a plain aiokafka consumer)."""

from __future__ import annotations

import asyncio
import json
import tempfile

import aiohttp
from aiokafka import AIOKafkaConsumer

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server


async def test_activations_are_published_as_user_events(kafka_broker) -> None:
    env = {"WHISK_BUS": f"kafka://{kafka_broker.bootstrap}", "WHISK_USER_EVENTS": "true",
           "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-events-")}
    async with whisk_server(env, deadline_s=60) as url:
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as s:
            code = "def main(a):\n    return {'statusCode': 201, 'echo': a}\n"
            async with s.put("/api/v1/namespaces/_/actions/evented?overwrite=true",
                             json={"exec": {"kind": "python:3", "code": code}}) as r:
                assert r.status == 200
            for _ in range(600):                       # the sharding balancer needs its invoker healthy first
                async with s.post("/api/v1/namespaces/_/actions/evented?blocking=true") as r:
                    if r.status == 200:
                        activation_id = (await r.json())["activationId"]
                        break
                    assert r.status == 503, await r.text()
                await asyncio.sleep(0.1)
        consumer = AIOKafkaConsumer("events", bootstrap_servers=kafka_broker.bootstrap, group_id="events-test",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            event = None
            async with asyncio.timeout(60):
                while event is None:
                    for records in (await consumer.getmany(timeout_ms=1000)).values():
                        for record in records:
                            candidate = json.loads(record.value)
                            if candidate["body"]["activationId"] == activation_id:
                                event = candidate
        finally:
            await consumer.stop()
    assert event["eventType"] == "Activation" and event["source"] == "invoker0"
    assert event["namespace"] == "guest" and event["userId"] == GUEST_AUTH.split(":")[0]
    body = event["body"]
    assert body["name"] == "guest/evented" and body["statusCode"] == 0 and body["kind"].startswith("python:3")
    assert body["memory"] == 256 and body["userDefinedStatusCode"] == 201 and body["conductor"] is False
    assert body["duration"] >= 0 and body["initTime"] > 0 and body["size"] > 0
