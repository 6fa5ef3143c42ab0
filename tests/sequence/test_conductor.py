"""Conductor actions over real HTTP (docs/openwhisk.md §3.7): a conductor steers components through `action`, `params`
and `state`; the composition record looks like a sequence's with `conductor: true` and every conductor and component
id in its logs; errors reaching a component go back to the conductor; the invocation limits end runaway loops."""

from __future__ import annotations

import aiohttp

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.web.support import PY_ECHO, PY_INC, annotations, invoke, put_action, put_sequence, record_of, unique

CONDUCTOR = [{"key": "conductor", "value": True}]

# Runs `step` twice on n, carrying a counter in the state, then ends with params = {n, done}.
PY_TWICE = """
def main(args):
    count = args.get('state', 0)
    if count < 2:
        return {'action': args.get('step', STEP), 'params': {'n': args.get('n', 0)}, 'state': count + 1}
    return {'params': {'n': args['n'], 'done': True}}
"""


def twice(step: str) -> str:
    return PY_TWICE.replace("STEP", repr(step))


# Asks for whatever `next` says once, then reports what it was given back.
PY_ONCE = """
def main(args):
    if 'asked' not in args:
        return {'action': args['next'], 'params': args.get('give', {}), 'state': {'asked': True}}
    return {'params': {'got': {k: v for k, v in args.items() if k != 'asked'}}}
"""


async def test_a_conductor_runs_its_components_and_ends_with_params(guest: aiohttp.ClientSession) -> None:
    inc, conductor = unique("inc"), unique("conductor")
    await put_action(guest, inc, PY_INC, limits={"memory": 512})
    await put_action(guest, conductor, twice(inc), annotations=CONDUCTOR)
    status, body, _ = await invoke(guest, conductor, {"n": 1}, blocking="true")
    assert status == 200, body
    assert body["response"]["result"] == {"n": 3, "done": True}
    notes = annotations(body)
    assert notes["conductor"] is True and notes["kind"] == "sequence" and notes["topmost"] is True
    assert notes["path"] == f"guest/{conductor}" and notes["limits"]["memory"] == 512
    assert len(body["logs"]) == 5                                   # conductor, inc, conductor, inc, conductor
    records = [await record_of(guest, i) for i in body["logs"]]
    assert [r["name"] for r in records] == [conductor, inc, conductor, inc, conductor]
    assert all(r["cause"] == body["activationId"] for r in records)
    assert records[1]["response"]["result"] == {"n": 2} and records[3]["response"]["result"] == {"n": 3}
    assert body["duration"] == sum(r["duration"] for r in records)
    status, body, _ = await invoke(guest, conductor, {"n": 10}, blocking="true", result="true")
    assert (status, body) == (200, {"n": 12, "done": True})


async def test_components_may_be_sequences_and_compositions(guest: aiohttp.ClientSession) -> None:
    inc, seq, inner, outer = unique("inc"), unique("seq"), unique("inner"), unique("outer")
    await put_action(guest, inc, PY_INC)
    await guest.put(f"/api/v1/namespaces/_/actions/{seq}", json={
        "exec": {"kind": "sequence", "components": [f"/_/{inc}", f"/_/{inc}"]}})
    await put_action(guest, inner, twice(seq), annotations=CONDUCTOR)
    await put_action(guest, outer, twice(inner), annotations=CONDUCTOR)
    status, body, _ = await invoke(guest, outer, {"n": 0}, blocking="true", result="true")
    # outer runs inner twice; inner runs seq twice; seq adds 2; inner's "done" result feeds outer's next step.
    assert (status, body) == (200, {"n": 8, "done": True})


async def test_a_conductor_given_no_object_gets_only_its_own_parameters(guest: aiohttp.ClientSession) -> None:
    """A composition after a sequence component that returned an array: OpenWhisk's `invokeConductor` passes the
    conductor an object payload (with the saved state) and anything else not at all, so the conductor runs on its
    own parameters, as an invoke without a body does."""
    array, conductor, seq = unique("array"), unique("conductor"), unique("seq")
    await put_action(guest, array, "def main(args):\n    return [1, {'a': 2}]\n")
    await put_action(guest, conductor, "def main(args):\n    return {'params': {'got': args}}\n",
                     annotations=CONDUCTOR, parameters=[{"key": "own", "value": 1}])
    await put_sequence(guest, seq, f"/_/{array}", f"/_/{conductor}")
    status, body, _ = await invoke(guest, seq, {}, blocking="true", result="true")
    assert (status, body) == (200, {"got": {"own": 1}})


async def test_errors_reaching_a_component_go_back_to_the_conductor(guest: aiohttp.ClientSession) -> None:
    conductor, echo = unique("once"), unique("echo")
    await put_action(guest, conductor, PY_ONCE, annotations=CONDUCTOR)
    await put_action(guest, echo, PY_ECHO)
    cases = [
        ("nope", "Failed to resolve action with name 'guest/nope' during composition."),
        (42, "Failed to parse action name from json value 42 during composition."),
        ("/a/b/c/d", 'Failed to parse action name from json value "/a/b/c/d" during composition.'),
        ("/whisk.system/private", "Failed entitlement check for action with name 'whisk.system/private' during "
                                  "composition."),
    ]
    for name, message in cases:
        status, body, _ = await invoke(guest, conductor, {"next": name}, blocking="true", result="true")
        assert (status, body) == (200, {"got": {"error": message}}), name
    status, body, _ = await invoke(guest, conductor, {"next": echo, "give": 5}, blocking="true", result="true")
    assert (status, body["got"]["value"]) == (200, 5)                   # params that are no object are boxed


async def test_a_failing_conductor_ends_the_composition_with_its_status(guest: aiohttp.ClientSession) -> None:
    conductor = unique("broken")
    await put_action(guest, conductor, "def main(args):\n    raise RuntimeError('conductor broke')\n",
                     annotations=CONDUCTOR)
    status, body, _ = await invoke(guest, conductor, {}, blocking="true")
    assert status == 502 and body["response"]["status"] == "application error"
    assert "conductor broke" in body["response"]["result"]["error"] and len(body["logs"]) == 1


async def test_a_runaway_conductor_is_stopped_by_the_limits() -> None:
    async with whisk_server({"WHISK_LIMIT_SEQUENCE_LENGTH": "3"}) as url, aiohttp.ClientSession(
            base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
        echo, loop = unique("echo"), unique("loop")
        await put_action(session, echo, PY_ECHO)
        code = (f"def main(args):\n"
                f"    return {{'action': '{echo}', 'params': {{}}, 'state': {{'was': args.get('error')}}}}\n")
        await put_action(session, loop, code, annotations=CONDUCTOR)
        status, body, _ = await invoke(session, loop, {}, blocking="true")
        assert status == 502
        assert body["response"]["result"] == {"error": "Too many actions in the composition."}
        records = [await record_of(session, i) for i in body["logs"]]
        names = [r["name"] for r in records]
        assert names.count(echo) == 3 and names.count(loop) == 7       # n components, 2n + 1 conductor calls
        # Once the components are used up, the conductor is told so instead of running one.
        assert records[-1]["response"]["result"]["state"] == {"was": "Too many actions in the composition."}
        assert records[1]["response"]["result"] == {}


async def test_a_sequence_stops_at_a_result_with_an_error_even_when_it_succeeded(
        guest: aiohttp.ClientSession) -> None:
    # A composition may end successfully with `params` that hold an `error`; a sequence around it stops there, as
    # OpenWhisk's SequenceAccounting.maybe looks at the result's `error` field, not at the status.
    soft, inc, seq = unique("soft"), unique("inc"), unique("seq")
    await put_action(guest, soft, "def main(args):\n    return {'params': {'error': 'soft'}}\n",
                     annotations=CONDUCTOR)
    await put_action(guest, inc, PY_INC)
    status, body, _ = await invoke(guest, soft, {}, blocking="true")
    assert status == 200 and body["response"]["status"] == "success", body
    assert body["response"]["result"] == {"error": "soft"}
    async with guest.put(f"/api/v1/namespaces/_/actions/{seq}", json={
            "exec": {"kind": "sequence", "components": [f"/_/{soft}", f"/_/{inc}"]}}) as r:
        assert r.status == 200
    status, body, _ = await invoke(guest, seq, {"n": 1}, blocking="true")
    assert body["response"]["result"] == {"error": "soft"} and len(body["logs"]) == 1, body
