"""Trigger fire over real HTTP (docs/openwhisk.md §1.7, §1.8, §3.5): 202 with the trigger's activation, 204 without an
active rule, one log line per rule in the trigger record, rule actions started with the trigger parameters overlaid by
the payload, the fire throttle, and rules that outlive their trigger or action."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.support.http import raw_call
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.support.waiting import room_in_the_minute
from tests.web.support import NODE_PRELUDE, PY_ECHO, annotations, call, put, put_action, record_of, run_node, unique
from whisk.controller.fire import arguments
from whisk.entities.trigger import Trigger


async def rule(session: aiohttp.ClientSession, name: str, trigger: str, action: str) -> dict[str, Any]:
    return await put(session, "rules", name, {"trigger": f"/_/{trigger}", "action": f"/_/{action}"})


async def fire(session: aiohttp.ClientSession, trigger: str, payload: Any = None, **kwargs: Any
               ) -> tuple[int, Any, Any]:
    if payload is not None:
        kwargs["json"] = payload
    async with session.post(f"/api/v1/namespaces/_/triggers/{trigger}", **kwargs) as r:
        text = await r.text()
        return r.status, json.loads(text) if text else text, r.headers


async def test_no_active_rule_is_204_without_a_record(guest: aiohttp.ClientSession) -> None:
    trigger, action = unique("t"), unique("a")
    await put(guest, "triggers", trigger, {})
    status, body, _ = await fire(guest, trigger, {"x": 1})
    assert (status, body) == (204, "")
    await put_action(guest, action)
    await rule(guest, unique("r"), trigger, action)
    status, fired, _ = await fire(guest, trigger)
    assert status == 202
    (name,) = [r for r in (await call(guest, "GET", "/api/v1/namespaces/_/rules?limit=200"))[1]
               if r["trigger"]["name"] == trigger]
    assert (await call(guest, "POST", f"/api/v1/namespaces/_/rules/{name['name']}", {"status": "inactive"}))[0] == 200
    status, body, _ = await fire(guest, trigger)
    assert (status, body) == (204, "")
    await record_of(guest, fired["activationId"])        # a fire's record is stored after its 202, once its rules ran
    status, listed = await call(guest, "GET", "/api/v1/namespaces/_/activations", params={"name": trigger})
    assert status == 200 and len(listed) == 1            # only the fire that had an active rule left a record


async def test_missing_trigger_is_404_and_bad_payloads_are_400(guest: aiohttp.ClientSession) -> None:
    status, body, _ = await fire(guest, unique("nope"))
    assert (status, body["error"]) == (404, "The requested resource does not exist.")
    trigger = unique("t")
    await put(guest, "triggers", trigger, {})
    for data in (b"[1, 2]", b"{not json", b"42"):
        status, body, _ = await fire(guest, trigger, data=data, headers={"Content-Type": "application/json"})
        assert status == 400 and body["error"].startswith("The request content was malformed"), (data, body)
    # A body declared as anything but JSON (curl -d sends a form type) is Pekko's 415, before the trigger is read.
    for target in (trigger, unique("nope")):
        status, body, _ = await fire(guest, target, data=b'{"a": 1}',
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert (status, body["error"]) == (415, ("The request's Content-Type [application/x-www-form-urlencoded] "
                                                 "is not supported. Expected:\napplication/json"))


async def test_fire_runs_each_active_rule_and_logs_every_rule(guest: aiohttp.ClientSession) -> None:
    trigger, echo, other, gone = unique("t"), unique("echo"), unique("other"), unique("gone")
    await put(guest, "triggers", trigger, {"parameters": [{"key": "from", "value": "trigger"},
                                                          {"key": "x", "value": "trigger"}]})
    await put_action(guest, echo)
    await put_action(guest, other)
    await put_action(guest, gone)
    r_active, r_inactive, r_gone = unique("r1"), unique("r2"), unique("r3")
    await rule(guest, r_active, trigger, echo)
    await rule(guest, r_inactive, trigger, other)
    await rule(guest, r_gone, trigger, gone)
    assert (await call(guest, "POST", f"/api/v1/namespaces/_/rules/{r_inactive}", {"status": "inactive"}))[0] == 200
    assert (await call(guest, "DELETE", f"/api/v1/namespaces/_/actions/{gone}"))[0] == 200

    status, body, headers = await fire(guest, trigger, {"x": "payload"}, headers={"X-Custom": "yes"})
    assert status == 202 and set(body) == {"activationId"}
    assert headers["x-openwhisk-activation-id"] == body["activationId"]
    record = await record_of(guest, body["activationId"])     # stored once every rule was posted
    assert record["name"] == trigger and record["namespace"] == "guest" and "end" not in record
    assert record["response"] == {"result": {"x": "payload"}, "success": True, "status": "success"}
    assert record["version"] == "0.0.1" and record["annotations"] == []
    lines = {entry["rule"]: entry for entry in map(json.loads, record["logs"])}
    assert set(lines) == {f"guest/{r_active}", f"guest/{r_inactive}", f"guest/{r_gone}"}
    ok = lines[f"guest/{r_active}"]
    assert ok["statusCode"] == 0 and ok["success"] is True and ok["action"] == f"guest/{echo}"
    assert lines[f"guest/{r_inactive}"] == {
        "statusCode": 1, "success": False, "rule": f"guest/{r_inactive}", "action": f"guest/{other}",
        "error": f"Rule 'guest/{r_inactive}' is inactive, action 'guest/{other}' was not activated."}
    assert lines[f"guest/{r_gone}"]["statusCode"] == 1
    assert lines[f"guest/{r_gone}"]["error"] == "The requested resource does not exist."

    run = await record_of(guest, ok["activationId"])
    result = run["response"]["result"]
    assert result["from"] == "trigger" and result["x"] == "payload"      # payload over trigger parameters
    assert result["__ow_headers"]["x-custom"] == "yes"
    # Pekko keeps content type and length in the entity, so they are no request headers upstream.
    assert not {"content-type", "content-length"} & set(result["__ow_headers"])
    assert annotations(run)["path"] == f"guest/{echo}"


async def test_a_rule_whose_arguments_exceed_the_payload_limit_is_not_run(guest: aiohttp.ClientSession) -> None:
    """OpenWhisk posts the trigger's parameters under the payload to each rule's action: past the payload limit that
    post is a 413, logged on the rule's line, and the action never runs."""
    trigger, echo, r = unique("t"), unique("echo"), unique("r")
    await put(guest, "triggers", trigger, {"parameters": [{"key": "p", "value": "x" * 2000}]})
    await put_action(guest, echo)
    await rule(guest, r, trigger, echo)
    payload = {"a": "a" * (1024 * 1024 - 10)}                 # fits the fire request's own limit, not the rule's
    status, body, _ = await fire(guest, trigger, payload)
    assert status == 202
    (line,) = map(json.loads, (await record_of(guest, body["activationId"]))["logs"])
    assert line["statusCode"] == 1 and "activationId" not in line
    assert line["error"].startswith("Request larger than allowed: ") and line["error"].endswith(" > 1048576 bytes.")


async def test_the_headers_whisk_adds_do_not_count_toward_a_rules_payload_limit(guest: aiohttp.ClientSession) -> None:
    """OpenWhisk's post to a rule's action carries the trigger's parameters and the payload, not `__ow_headers` (a
    whisk addition): arguments that fit the limit without the headers run, as they do on OpenWhisk."""
    trigger, echo, r = unique("t"), unique("echo"), unique("r")
    await put(guest, "triggers", trigger, {"parameters": [{"key": "p", "value": 1}]})
    await put_action(guest, echo, "def main(args):\n    return {'n': len(args['a'])}\n")
    await rule(guest, r, trigger, echo)
    limit = 1024 * 1024
    posted = len(json.dumps({"p": 1, "a": ""}, separators=(",", ":")))
    payload = {"a": "a" * (limit - posted)}                     # the posted body is exactly at the limit
    status, body, _ = await fire(guest, trigger, payload)
    assert status == 202
    (line,) = map(json.loads, (await record_of(guest, body["activationId"]))["logs"])
    assert line["statusCode"] == 0 and "error" not in line, line
    run = await record_of(guest, line["activationId"])
    assert run["response"]["result"] == {"n": limit - posted}


async def test_rules_stay_readable_when_their_trigger_or_action_is_deleted(guest: aiohttp.ClientSession) -> None:
    trigger, action, name = unique("t"), unique("a"), unique("r")
    await put(guest, "triggers", trigger, {})
    await put_action(guest, action)
    await rule(guest, name, trigger, action)
    assert (await call(guest, "DELETE", f"/api/v1/namespaces/_/actions/{action}"))[0] == 200
    status, body = await call(guest, "GET", f"/api/v1/namespaces/_/rules/{name}")
    assert status == 200 and body["status"] == "active"
    assert body["action"] == {"path": "guest", "name": action} and body["trigger"] == {"path": "guest", "name": trigger}
    assert (await call(guest, "DELETE", f"/api/v1/namespaces/_/triggers/{trigger}"))[0] == 200
    status, body = await call(guest, "GET", f"/api/v1/namespaces/_/rules/{name}")
    assert status == 200 and body["status"] == "inactive"
    assert body["trigger"] == {"path": "guest", "name": trigger} and body["action"]["name"] == action
    status, body = await call(guest, "POST", f"/api/v1/namespaces/_/rules/{name}", {"status": "active"})
    assert (status, body["error"]) == (404, "Only rules with existing triggers can be activated")
    # Asking for the status it already reads (inactive) is a no-op, as OpenWhisk's IgnoredRuleActivation: 200 "OK".
    async with guest.post(f"/api/v1/namespaces/_/rules/{name}", json={"status": "inactive"}) as response:
        assert (response.status, await response.text()) == (200, "OK")
    assert (await call(guest, "DELETE", f"/api/v1/namespaces/_/rules/{name}"))[0] == 200


async def test_fire_throttle_and_throttled_rule_invocations() -> None:
    env = {"WHISK_LIMIT_FIRES_PER_MINUTE": "2", "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "1"}
    async with whisk_server(env) as url, aiohttp.ClientSession(base_url=url, headers=basic_auth(
            *GUEST_AUTH.split(":"))) as session:
        trigger, first, second = unique("t"), unique("a"), unique("b")
        await put(session, "triggers", trigger, {})
        for action in (first, second):
            await put_action(session, action, PY_ECHO)
            await rule(session, unique("r"), trigger, action)
        await room_in_the_minute(15)        # the fires and the rules' invokes below are counted in one calendar minute
        status, body, _ = await fire(session, trigger)
        assert status == 202
        lines = sorted((json.loads(line) for line in (await record_of(session, body["activationId"]))["logs"]),
                       key=lambda e: e["statusCode"])
        assert [e["statusCode"] for e in lines] == [0, 1]         # each rule's invoke is charged like a POST
        assert lines[1]["error"] == "Too many requests in the last minute (count: 2, allowed: 1)."
        status, body, _ = await fire(session, trigger)
        assert status == 202
        await record_of(session, body["activationId"])          # stored once both rules' invokes were refused
        throttled = await timed_limits(session)
        status, body, _ = await fire(session, trigger)
        assert (status, body["error"]) == (429, "Too many requests in the last minute (count: 3, allowed: 2).")
        # A refused fire is counted with the refused invokes, as OpenWhisk's entitlement reports both as
        # TimedRateLimit: an operator sees a fire storm's throttling too.
        assert await timed_limits(session) == throttled + 1


async def timed_limits(session: aiohttp.ClientSession) -> float:
    """The guest namespace's `openwhisk_action_limit_timed_total` on the server's /metrics."""
    async with session.get("/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('openwhisk_action_limit_timed_total{namespace="guest"}'))


async def test_npm_client_creates_triggers_and_rules_and_fires(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    trigger, action, name = unique("t"), unique("a"), unique("r")
    script = NODE_PRELUDE + f"""
    done((async () => {{
      await ow.actions.create({{name: '{action}',
                               action: {{exec: {{kind: 'python:3', code: {json.dumps(PY_ECHO)}}}}}}});
      await ow.triggers.create({{name: '{trigger}', trigger: {{parameters: [{{key: 'p', value: 'param'}}]}}}});
      const rule = await ow.rules.create({{name: '{name}', action: '{action}', trigger: '{trigger}'}});
      const fired = await ow.triggers.invoke({{name: '{trigger}', params: {{q: 'fired'}}}});
      return {{rule, fired}};
    }})());
    """
    out = await run_node(script, WHISK_URL=whisk_url, WHISK_KEY=GUEST_AUTH)
    assert out["rule"]["status"] == "active"
    record = await record_of(guest, out["fired"]["activationId"])
    (line,) = map(json.loads, record["logs"])
    run = await record_of(guest, line["activationId"])
    assert run["response"]["result"]["p"] == "param" and run["response"]["result"]["q"] == "fired"


async def test_fire_answer_is_compact_json(guest: aiohttp.ClientSession) -> None:
    """REST answers are compact JSON (docs/openwhisk.md §1.1), the fire's 202 too."""
    trigger, action = unique("t"), unique("a")
    await put(guest, "triggers", trigger, {})
    await put_action(guest, action)
    await rule(guest, unique("r"), trigger, action)
    async with guest.post(f"/api/v1/namespaces/_/triggers/{trigger}") as r:
        text = await r.text()
        assert r.status == 202 and text == f'{{"activationId":"{r.headers["x-openwhisk-activation-id"]}"}}'


async def test_a_header_byte_that_is_not_utf8_reaches_the_rule_as_latin1(whisk_url: str,
                                                                         guest: aiohttp.ClientSession) -> None:
    """A header value with a byte that is not UTF-8 (here 0xE9) is read as ISO-8859-1, as Pekko reads it: the fire
    is accepted, its record is stored and the rule's action sees `é`. (It used to be a lone surrogate: the 202 was
    followed by no record, and a log line that quoted the arguments, the caller's key among them.)"""
    trigger, action = unique("t"), unique("a")
    await put(guest, "triggers", trigger, {})
    await put_action(guest, action)
    await rule(guest, unique("r"), trigger, action)
    status, _, body = await raw_call(whisk_url, "POST", f"/api/v1/namespaces/_/triggers/{trigger}",
                                     [("X-Foo", b"\xe9"), ("Content-Type", b"application/json")], b"{}")
    assert status == 202, body
    record = await record_of(guest, json.loads(body)["activationId"])
    (line,) = map(json.loads, record["logs"])
    assert line["statusCode"] == 0, line
    run = await record_of(guest, line["activationId"])
    assert run["response"]["result"]["__ow_headers"]["x-foo"] == "é"


def test_the_firing_callers_key_is_not_among_the_rule_actions_headers() -> None:
    """A rule's action may be another namespace's published action, which never gets the caller's API key
    (docs/runtimes.md): the fire's `Authorization` header is not in `__ow_headers`."""
    trigger = Trigger.from_doc({"namespace": "guest", "name": "t", "parameters": [], "annotations": []})
    args = arguments(trigger, {"Authorization": "Basic " + "x" * 20, "X-Custom": "yes"}, {"p": 1})
    assert args["__ow_headers"] == {"x-custom": "yes"} and args["p"] == 1
