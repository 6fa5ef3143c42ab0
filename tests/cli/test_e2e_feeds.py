"""A user-written feed through the client, as OpenWhisk's feed providers are written (openwhisk/docs/feeds.md): an
action of another namespace's published package, annotated `feed`, reached through the caller's binding, that fires
the caller's trigger through `__OW_API_HOST` with the `authKey` the client hands it, from inside its sandbox,
without an API key of its own. `trigger create --feed`, `update`, `get` and `delete` drive its lifecycle; the trigger
is deleted even when its feed no longer exists. And a feed that sets an alarm up for its caller's trigger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.support import GUEST_AUTH, Deployment, basic, call, ns, sqlite_deployment
from tests.cli.conftest import Ran, Wsk, make_wsk, unique
from tests.support.waiting import until

pytestmark = pytest.mark.invoke

FEED_PY = """import base64, json, os, urllib.error, urllib.request

def fire(trigger, key, payload):
    namespace, name = trigger.lstrip("/").split("/", 1)
    request = urllib.request.Request(
        f"{os.environ['__OW_API_HOST']}/api/v1/namespaces/{namespace}/triggers/{name}", method="POST",
        data=json.dumps(payload).encode(), headers={"Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(key.encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code

def main(args):
    event = args["lifecycleEvent"]
    seen = {"event": event, "trigger": args["triggerName"], "params": sorted(args),
            "api_key": bool(os.environ.get("__OW_API_KEY")), "namespace": os.environ["__OW_NAMESPACE"]}
    if event in ("CREATE", "UPDATE"):
        seen["fired"] = fire(args["triggerName"], args["authKey"], {"from": "feed", "event": event})
    return seen
"""

ECHO_PY = "def main(args):\n    return args\n"


def guest_and_provider(deployment: Deployment, tmp_path: Path) -> tuple[Wsk, Wsk]:
    """`wsk` as the guest, and as the other namespace that provides the feed (its own wskprops)."""
    (tmp_path / "provider").mkdir()
    provider_props = tmp_path / "provider" / "wskprops"
    provider_props.write_text(f"APIHOST={deployment.url}\nAUTH={deployment.other_auth}\n")
    return make_wsk(deployment.url, tmp_path), Wsk(provider_props, tmp_path / "provider")


def feed_result(ran: Ran) -> dict[str, Any]:
    """The feed activation's result, from the output `[ok: invoked ...]`, the record, `ok: <verb> trigger T`."""
    assert ran.code == 0, ran.err
    lines = ran.out.rstrip("\n").split("\n")
    record = lines[1:-1] if lines[0].startswith("ok: invoked ") else lines[:-1]
    result: dict[str, Any] = json.loads("\n".join(record))["response"]["result"]
    return result


async def test_a_feed_of_another_namespace_fires_the_callers_trigger_with_the_auth_key(tmp_path: Path) -> None:
    async with sqlite_deployment() as deployment:
        guest, provider = guest_and_provider(deployment, tmp_path)
        (tmp_path / "feed.py").write_text(FEED_PY)
        (tmp_path / "echo.py").write_text(ECHO_PY)
        owner = deployment.other_namespace

        assert (await provider("package", "create", "hooks", "--shared", "yes", "-p", "pkgparam", "P")).code == 0
        assert (await provider("action", "create", "hooks/hook", str(tmp_path / "feed.py"), "-a", "feed",
                               "true")).code == 0
        assert (await guest("package", "bind", f"/{owner}/hooks", "myhooks", "-p", "bindparam", "B")).code == 0
        summary = await guest("package", "get", "myhooks", "--summary")
        assert " feed   /guest/myhooks/hook" in summary.out.splitlines(), summary.out
        echo, trigger, rule = unique("echo"), unique("hooked"), unique("rule")
        assert (await guest("action", "create", echo, str(tmp_path / "echo.py"))).code == 0

        created = await guest("trigger", "create", trigger, "--feed", "myhooks/hook", "-p", "level", "1")
        assert created.out.startswith("ok: invoked /_/myhooks/hook with id "), created.out
        assert created.out.endswith(f"ok: created trigger {trigger}\n")
        # The feed runs as the caller (its namespace), gets no key of its own, and fires with the one it was given
        # (no rule yet: 204); package and binding parameters reach it as any action's do.
        assert feed_result(created) == {
            "event": "CREATE", "trigger": f"/_/{trigger}", "api_key": False, "namespace": "guest", "fired": 204,
            "params": ["authKey", "bindparam", "level", "lifecycleEvent", "pkgparam", "triggerName"]}
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(GUEST_AUTH)) as api:
            status, stored = await call(api, "GET", ns("triggers", trigger))
            assert status == 200
            assert stored["annotations"] == [{"key": "feed", "value": "/_/myhooks/hook"}]
            assert stored["parameters"] == []          # with a feed, -p goes to the feed, not the trigger

            assert (await guest("rule", "create", rule, trigger, echo)).code == 0
            updated = await guest("trigger", "update", trigger, "-p", "level", "2")
            assert updated.out.endswith(f"ok: updated trigger {trigger}\n")
            assert feed_result(updated)["fired"] == 202
            assert feed_result(updated)["event"] == "UPDATE"

            async def echoed() -> list[dict[str, Any]]:
                _, found = await call(api, "GET", ns("activations") + f"?name={echo}&docs=true")
                return found if isinstance(found, list) else []
            runs = await until("the rule's run of the feed's fire", echoed, 30, interval_s=0.2)
            fired = runs[0]["response"]["result"]
            assert {k: v for k, v in fired.items() if k != "__ow_headers"} == {"from": "feed", "event": "UPDATE"}
            assert "authorization" not in fired["__ow_headers"]        # the key the feed fired with stays there

            read = await guest("trigger", "get", trigger)
            assert read.code == 0 and not read.out.startswith("ok:")
            assert json.loads(read.out)["response"]["result"]["event"] == "READ"

            # The provider withdraws its feed: the DELETE fails (not found), and the trigger is deleted anyway.
            assert (await provider("action", "delete", "hooks/hook")).code == 0
            deleted = await guest("trigger", "delete", trigger)
            assert (deleted.code, deleted.out) == (0, f"ok: deleted trigger {trigger}\n"), deleted.err
            status, _ = await call(api, "GET", ns("triggers", trigger))
            assert status == 404



# openwhisk/docs/feeds.md's polling pattern: the provider's feed sets an alarm up for the caller's trigger. It calls
# the alarms feed with a key of its own (here a parameter of its published package, which its callers can read: a
# real provider keeps its key where they cannot), handing on the caller's `authKey`.
WRAPPER_PY = """import base64, json, os, urllib.error, urllib.request

def main(args):
    body = {"lifecycleEvent": args["lifecycleEvent"], "triggerName": args["triggerName"], "authKey": args["authKey"]}
    if args["lifecycleEvent"] in ("CREATE", "UPDATE"):
        body.update(minutes=args.get("every", 10), trigger_payload={"polled": True})
    url = os.environ["__OW_API_HOST"] + "/api/v1/namespaces/whisk.system/actions/alarms/interval"
    key = base64.b64encode(args["providerKey"].encode()).decode()
    request = urllib.request.Request(url + "?blocking=true&result=true", method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": "Basic " + key})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return {"error": json.loads(exc.read())}
"""


async def test_a_feed_that_sets_an_alarm_up_for_the_callers_trigger(tmp_path: Path) -> None:
    async with sqlite_deployment() as deployment:
        guest, provider = guest_and_provider(deployment, tmp_path)
        (tmp_path / "wrapper.py").write_text(WRAPPER_PY)
        owner = deployment.other_namespace
        assert (await provider("package", "create", "polling", "--shared", "yes", "-p", "providerKey",
                               deployment.other_auth)).code == 0
        assert (await provider("action", "create", "polling/every", str(tmp_path / "wrapper.py"), "-a", "feed",
                               "true")).code == 0
        trigger = unique("polled")

        created = await guest("trigger", "create", trigger, "--feed", f"/{owner}/polling/every", "-p", "every", "5")
        assert feed_result(created) == {"status": "success"}
        # `/_/T` is the trigger of the authKey's namespace, not of the feed's caller (the provider's key).
        read = await guest("trigger", "get", trigger)
        config = json.loads(read.out)["response"]["result"]["config"]
        assert (config["namespace"], config["name"], config["minutes"], config["payload"]) == (
            "guest", trigger, 5, {"polled": True})
        updated = await guest("trigger", "update", trigger, "-p", "every", "7")
        assert feed_result(updated) == {"status": "success"}
        read = await guest("trigger", "get", trigger)
        assert json.loads(read.out)["response"]["result"]["config"]["minutes"] == 7

        deleted = await guest("trigger", "delete", trigger)
        assert deleted.out.endswith(f"ok: deleted trigger {trigger}\n")
        assert json.loads(deleted.out.rpartition("\nok: ")[0])["response"]["result"] == {"status": "success"}
        # The alarm went with it: the provider's READ finds none.
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as api:
            status, answer = await call(api, "POST", "/api/v1/namespaces/whisk.system/actions/alarms/interval"
                                        "?blocking=true&result=true",
                                        {"lifecycleEvent": "READ", "triggerName": f"/guest/{trigger}",
                                         "authKey": GUEST_AUTH})
            assert (status, answer) == (502, {"error": f"could not find trigger /guest/{trigger} in the database"})
