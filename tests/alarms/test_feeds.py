"""The alarms feeds over HTTP, as `wsk` and the npm client drive them (a blocking invoke of the feed action with
`lifecycleEvent`, `triggerName` and `authKey`): the lifecycle, refusals that leave nothing behind, fires through a
rule (cron with seconds, once, interval at its start date), and an alarm that outlives a restart of whisk."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.web.support import NODE_PRELUDE, call, put, put_action, run_node, unique
from whisk.alarms.feeds import iso


async def feed(guest: aiohttp.ClientSession, name: str, event: str, trigger: str, **params: Any
               ) -> tuple[int, dict[str, Any]]:
    """Invoke /whisk.system/alarms/<name> as the CLI does; (HTTP status, the activation record)."""
    body = {"lifecycleEvent": event, "triggerName": f"/_/{trigger}", "authKey": GUEST_AUTH, **params}
    status, record = await call(guest, "POST", f"/api/v1/namespaces/whisk.system/actions/alarms/{name}"
                                "?blocking=true", body)
    return status, record


async def fires(guest: aiohttp.ClientSession, trigger: str) -> list[dict[str, Any]]:
    status, listed = await call(guest, "GET", "/api/v1/namespaces/_/activations",
                                params={"name": trigger, "limit": "200", "docs": "true"})
    assert status == 200
    return listed


async def until(what: str, probe: Any, deadline_s: float = 20) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline_s} s (last {value!r})")
        await asyncio.sleep(0.1)


async def wired(guest: aiohttp.ClientSession, trigger: str) -> str:
    """A trigger with an active rule to an echo action; the action's name."""
    action = f"{trigger}-echo"
    await put(guest, "triggers", trigger, {})
    await put_action(guest, action)
    await put(guest, "rules", f"{trigger}-rule", {"trigger": f"/_/{trigger}", "action": f"/_/{action}"})
    return action


async def test_lifecycle(guest: aiohttp.ClientSession) -> None:
    trigger = unique("t")
    await put(guest, "triggers", trigger, {})
    status, record = await feed(guest, "alarm", "CREATE", trigger, cron="0 0 1 1 *", trigger_payload="hi")
    assert status == 200 and record["response"]["result"] == {"status": "success"}
    assert record["response"]["size"] == len('{"status":"success"}')     # as a runtime's reply would have had it
    assert record["name"] == "alarm" and record["namespace"] == "guest"
    annotations = {a["key"]: a["value"] for a in record["annotations"]}
    assert annotations["path"] == "whisk.system/alarms/alarm" and annotations["timeout"] is False
    status, record = await feed(guest, "alarm", "READ", trigger)
    assert status == 200
    read = record["response"]["result"]
    assert read["config"] == {"name": trigger, "namespace": "guest", "cron": "0 0 1 1 *", "payload": {"payload": "hi"},
                              "strict": False}
    assert read["status"]["active"] is True and read["status"]["dateChangedISO"].endswith("Z")
    assert (await feed(guest, "alarm", "UPDATE", trigger, cron="0 0 2 1 *", timezone="Asia/Tokyo"))[0] == 200
    read = (await feed(guest, "alarm", "READ", trigger))[1]["response"]["result"]
    assert (read["config"]["cron"], read["config"]["timezone"]) == ("0 0 2 1 *", "Asia/Tokyo")
    assert (await feed(guest, "alarm", "PAUSE", trigger))[0] == 200
    read = (await feed(guest, "alarm", "READ", trigger))[1]["response"]["result"]
    assert read["status"]["active"] is False and read["status"]["reason"]["kind"] == "USER"
    assert (await feed(guest, "alarm", "UNPAUSE", trigger))[0] == 200       # OpenWhisk's feed protocol's name
    read = (await feed(guest, "alarm", "READ", trigger))[1]["response"]["result"]
    assert read["status"]["active"] is True and "reason" not in read["status"]
    assert (await feed(guest, "alarm", "DELETE", trigger))[0] == 200
    status, record = await feed(guest, "alarm", "READ", trigger)
    error = {"error": f"could not find trigger /guest/{trigger} in the database"}
    size = len(json.dumps(error, separators=(",", ":")))
    assert status == 502 and record["response"] == {
        "status": "application error", "success": False, "result": error, "size": size}


@pytest.mark.parametrize(("name", "params", "error"), [
    ("alarm", {"cron": "every minute"}, "cron pattern 'every minute' is not valid"),
    ("alarm", {"cron": "* * * * *", "timezone": "Atlantis/Capital"}, "Invalid timezone."),
    ("alarm", {"cron": "* * * * *", "startDate": "2020-01-01T00:00:00Z"},
     "startDate parameter '2020-01-01T00:00:00Z' must be in the future"),
    ("alarm", {"cron": "* * * * *", "startDate": "2100-01-02T00:00:00Z", "stopDate": "2100-01-01T00:00:00Z"},
     "stopDate parameter '2100-01-01T00:00:00Z' must be greater than the startDate parameter '2100-01-02T00:00:00Z'"),
    ("once", {"date": "2020-01-01T00:00:00Z"}, "date parameter '2020-01-01T00:00:00Z' must be in the future"),
    ("interval", {"minutes": "soon"}, "the minutes parameter must be an integer"),
    ("alarm", {"cron": "* * * * *", "lifecycleEvent": "EXPLODE"}, "unsupported lifecycleEvent"),
])
async def test_bad_parameters_are_refused_and_leave_nothing(guest: aiohttp.ClientSession, name: str,
                                                            params: dict[str, Any], error: str) -> None:
    trigger = unique("t")
    await put(guest, "triggers", trigger, {})
    event = params.pop("lifecycleEvent", "CREATE")
    status, record = await feed(guest, name, event, trigger, **params)
    assert status == 502 and record["response"]["result"] == {"error": error}
    status, record = await feed(guest, name, "READ", trigger)
    assert record["response"]["result"] == {"error": f"could not find trigger /guest/{trigger} in the database"}


async def test_a_trigger_the_key_cannot_reach_is_refused(guest: aiohttp.ClientSession) -> None:
    status, record = await feed(guest, "alarm", "CREATE", unique("absent"), cron="* * * * *")
    assert status == 502 and record["response"]["result"] == {"error": "Trigger authentication request failed."}
    trigger = unique("t")
    await put(guest, "triggers", trigger, {})
    status, record = await feed(guest, "alarm", "CREATE", trigger, cron="* * * * *", authKey="not:a-key")
    assert record["response"]["result"] == {"error": "Trigger authentication request failed."}


async def test_a_feed_is_served_as_a_sequence_component_too(guest: aiohttp.ClientSession) -> None:
    """A feed action is an action like any other on OpenWhisk, so a sequence (or a conductor) may run it: the
    controller serves it there as for an invoke (a component went to a container, whose stub answered "This copy of
    an alarms feed is not served ..."), and its record is the sequence's component's."""
    trigger, prepare, seq = unique("t"), unique("prepare"), unique("seq")
    await put(guest, "triggers", trigger, {})
    await put_action(guest, prepare, f"def main(args):\n    return {{'lifecycleEvent': 'CREATE', "
                                     f"'triggerName': '/_/{trigger}', 'authKey': {GUEST_AUTH!r}, **args}}\n")
    await put(guest, "actions", seq, {"exec": {"kind": "sequence",
                                               "components": [f"/_/{prepare}", "/whisk.system/alarms/alarm"]}})
    status, record = await call(guest, "POST", f"/api/v1/namespaces/_/actions/{seq}?blocking=true",
                                {"cron": "0 0 1 1 *"})
    assert status == 200 and record["response"]["result"] == {"status": "success"}, record
    status, component = await call(guest, "GET", f"/api/v1/namespaces/_/activations/{record['logs'][1]}")
    assert status == 200 and component["cause"] == record["activationId"]
    annotations = {a["key"]: a["value"] for a in component["annotations"]}
    assert annotations["path"] == "whisk.system/alarms/alarm" and annotations["causedBy"] == "sequence"
    read = (await feed(guest, "alarm", "READ", trigger))[1]["response"]["result"]
    assert read["config"]["cron"] == "0 0 1 1 *"
    assert (await feed(guest, "alarm", "DELETE", trigger))[0] == 200


async def test_fires_through_a_rule(guest: aiohttp.ClientSession) -> None:
    every, once, interval = unique("every"), unique("once"), unique("interval")
    actions = {t: await wired(guest, t) for t in (every, once, interval)}
    soon = iso(int(time.time() * 1000) + 2000)
    assert (await feed(guest, "alarm", "CREATE", every, cron="* * * * * *", trigger_payload={"k": "v"}))[0] == 200
    assert (await feed(guest, "once", "CREATE", once, date=soon, trigger_payload={"once": True}))[0] == 200
    assert (await feed(guest, "interval", "CREATE", interval, minutes=1, startDate=soon))[0] == 200
    fired = await until("three cron fires", lambda: _at_least(guest, every, 3))
    assert all(r["response"]["result"] == {"k": "v"} for r in fired)
    record = fired[0]
    (line,) = record["logs"]
    assert json.loads(line)["rule"] == f"guest/{every}-rule" and json.loads(line)["success"] is True
    ran = await until("the rule's action ran", lambda: _at_least(guest, actions[every], 1))
    assert ran[0]["response"]["result"]["k"] == "v"
    (once_fire,) = await until("the once fire", lambda: _at_least(guest, once, 1))
    assert once_fire["response"]["result"] == {"once": True}
    assert await until("the interval's first fire", lambda: _at_least(guest, interval, 1))
    read = (await feed(guest, "once", "READ", once))[1]["response"]["result"]
    assert read["status"]["active"] is False
    assert read["status"]["reason"]["message"] == "Automatically disabled after firing once"
    assert len(await fires(guest, once)) == 1
    starts = sorted(r["start"] for r in await fires(guest, every))
    assert len(starts) <= (starts[-1] - starts[0] + 500) // 1000 + 1, starts      # one fire a second, not two
    await feed(guest, "alarm", "DELETE", every)
    await feed(guest, "interval", "DELETE", interval)


async def _at_least(guest: aiohttp.ClientSession, name: str, n: int) -> list[dict[str, Any]] | None:
    listed = await fires(guest, name)
    return listed if len(listed) >= n else None


@pytest.fixture
async def persistent() -> AsyncIterator[dict[str, str]]:
    folder = tempfile.mkdtemp(prefix="whisk-alarms-")
    yield {"WHISK_STORE": f"sqlite://{os.path.join(folder, 'whisk.db')}", "WHISK_DATA_DIR": folder,
           "WHISK_POOL_PREWARM": "false", "WHISK_LIMIT_FIRES_PER_MINUTE": "1000"}


async def test_an_alarm_outlives_a_restart_and_missed_ticks_are_not_replayed(persistent: dict[str, str]) -> None:
    uuid, key = GUEST_AUTH.split(":")
    trigger = unique("t")
    async with whisk_server(persistent) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as guest:
        await wired(guest, trigger)
        assert (await feed(guest, "alarm", "CREATE", trigger, cron="* * * * * *"))[0] == 200
        await until("a fire", lambda: _at_least(guest, trigger, 1))
    stopped = int(time.time() * 1000)
    await asyncio.sleep(4)                                    # four ticks pass with whisk down
    restarting = int(time.time() * 1000)
    async with whisk_server(persistent) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as guest:
        await until("fires after the restart", lambda: _at_least(guest, trigger, 1 + 2), deadline_s=30)
        starts = sorted(r["start"] for r in await fires(guest, trigger))
        now = int(time.time() * 1000)
        assert not [s for s in starts if stopped + 500 < s < restarting]     # nothing fired while down
        after = [s for s in starts if s >= restarting]
        # No catching up: at most the tick of the last moment before the start (less than 5 s late) comes extra.
        assert len(after) <= (now - restarting) // 1000 + 2, (after, restarting, now)
        read = (await feed(guest, "alarm", "READ", trigger))[1]["response"]["result"]
        assert read["status"]["active"] is True
        await feed(guest, "alarm", "DELETE", trigger)


async def test_the_npm_clients_feeds_api(whisk_url: str) -> None:
    """`ow.feeds.create/get/update/delete` of the openwhisk npm client, unchanged, as openwhisk-client-js's own
    integration test drives them (a trigger in the default namespace `_`, a six-field cron)."""
    trigger = unique("npm")
    script = NODE_PRELUDE + f"""
    done((async () => {{
      await ow.triggers.create({{name: '{trigger}'}});
      const opts = {{feedName: '/whisk.system/alarms/alarm', trigger: '{trigger}',
                    params: {{cron: '*/8 * * * * *', trigger_payload: {{name: 'test'}}}}}};
      const created = await ow.feeds.create(opts);
      const read = await ow.feeds.get(opts);
      const updated = await ow.feeds.update({{...opts, params: {{cron: '0 0 1 1 *'}}}});
      const reread = await ow.feeds.get(opts);
      const deleted = await ow.feeds.delete(opts);
      await ow.triggers.delete({{name: '{trigger}'}});
      return [created, read, updated, reread, deleted].map(a => a.response);
    }})());
    """
    created, read, updated, reread, deleted = await run_node(script, WHISK_URL=whisk_url, WHISK_KEY=GUEST_AUTH)
    assert created["success"] and created["result"] == {"status": "success"}
    assert read["result"]["config"]["cron"] == "*/8 * * * * *"
    assert read["result"]["config"]["payload"] == {"name": "test"}
    assert updated["success"] and reread["result"]["config"]["cron"] == "0 0 1 1 *"
    assert deleted["result"] == {"status": "success"}
