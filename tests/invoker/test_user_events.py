"""User events (docs/openwhisk.md §9.2): with WHISK_USER_EVENTS=true every activation is published on the `events` topic
in OpenWhisk's EventMessage shape, for consumers outside whisk (here: a plain aiokafka consumer)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server


async def _post_when_free(s: aiohttp.ClientSession, path: str, refusals: list[int]) -> tuple[int, Any]:
    """POST once the namespace's one concurrency slot is free: a blocking answer comes with the result ack, and the
    slot is freed by the completion ack just after it (as in OpenWhisk), so the previous activation may hold it for a
    moment longer. Each refusal (a user event of its own) is counted in `refusals`."""
    for _ in range(50):
        async with s.post(path) as r:
            if r.status != 429:
                return r.status, await r.json()
        refusals.append(1)
        await asyncio.sleep(0.1)
    return 429, "still throttled after 5 s"


async def _events(bootstrap: str, wanted: int, match) -> list[dict]:
    """The events on the topic that `match` picks, once `wanted` of them have arrived."""
    consumer = AIOKafkaConsumer("events", bootstrap_servers=bootstrap, group_id=f"events-test-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict] = []
    try:
        async with asyncio.timeout(60):
            while len(found) < wanted:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found.extend(e for e in map(json.loads, (r.value for r in records)) if match(e))
    finally:
        await consumer.stop()
    return found


async def test_activations_are_published_as_user_events(kafka_broker) -> None:
    env = {"WHISK_BUS": f"kafka://{kafka_broker.bootstrap}", "WHISK_USER_EVENTS": "true",
           "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1", "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-events-")}
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
            # The controller reports what only it sees: a sequence's own record, and a refused invocation.
            async with s.put("/api/v1/namespaces/_/actions/evented-seq?overwrite=true",
                             json={"exec": {"kind": "sequence", "components": ["/guest/evented"]}}) as r:
                assert r.status == 200
            refusals: list[int] = []
            status, body = await _post_when_free(s, "/api/v1/namespaces/_/actions/evented-seq?blocking=true",
                                                 refusals)
            assert status == 200, body
            sequence_id = body["activationId"]
            sleepy = "import time\ndef main(a):\n    time.sleep(2)\n    return {}\n"
            async with s.put("/api/v1/namespaces/_/actions/sleepy?overwrite=true",
                             json={"exec": {"kind": "python:3", "code": sleepy}}) as r:
                assert r.status == 200
            status, body = await _post_when_free(s, "/api/v1/namespaces/_/actions/sleepy", refusals)
            assert status == 202, body
            async with s.post("/api/v1/namespaces/_/actions/sleepy") as r:
                assert r.status == 429, await r.text()
    wanted = {activation_id, sequence_id}
    events = await _events(kafka_broker.bootstrap, 3 + len(refusals),
                           lambda e: e["body"].get("activationId") in wanted
                           or e["body"].get("metricName") == "ConcurrentRateLimit")
    # Every invocation the concurrency throttle admitted is reported with the count in flight it makes, as OpenWhisk's
    # entitlement does: here at least the first action's, the sequence's and the sleepy one's, each alone in flight.
    admitted = await _events(kafka_broker.bootstrap, 3,
                             lambda e: e["body"].get("metricName") == "ConcurrentInvocations")
    assert {(e["source"], e["namespace"], e["body"]["metricValue"]) for e in admitted} == {("controller0", "guest", 1)}
    by_id = {e["body"].get("activationId"): e for e in events}
    event = by_id[activation_id]
    assert event["eventType"] == "Activation" and event["source"] == "invoker0"
    assert event["namespace"] == "guest" and event["userId"] == GUEST_AUTH.split(":")[0]
    body = event["body"]
    assert body["name"] == "guest/evented" and body["statusCode"] == 0 and body["kind"].startswith("python:3")
    assert body["memory"] == 256 and body["userDefinedStatusCode"] == 201 and body["conductor"] is False
    assert body["duration"] >= 0 and body["initTime"] > 0 and body["size"] > 0
    sequence = by_id[sequence_id]
    assert sequence["source"] == "controller0" and sequence["body"]["kind"] == "sequence"
    assert sequence["body"]["name"] == "guest/evented-seq" and sequence["body"]["statusCode"] == 0
    refused = [e for e in events if e["eventType"] == "Metric"]
    assert len(refused) == len(refusals) + 1                # the waits for a free slot, and the refusal provoked
    for metric in refused:
        assert metric["source"] == "controller0" and metric["namespace"] == "guest"
        assert metric["body"] == {"metricName": "ConcurrentRateLimit", "metricValue": 1}
