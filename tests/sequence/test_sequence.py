"""Sequences over real HTTP (docs/openwhisk.md §3.6): components one after another with each result feeding the next,
the first error ends it, component records carry `cause`, the sequence record lists them and has OpenWhisk's
annotations, nested sequences, PUT validation, run-time limits and the 202 past the blocking wait."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile

import aiohttp
import pytest

from tests.support.processes import GUEST_AUTH, basic_auth, free_port, until_ready, whisk_server
from tests.web.support import (
    NODE_PRELUDE,
    PY_FAIL,
    PY_INC,
    annotations,
    call,
    invoke,
    put,
    put_action,
    put_sequence,
    record_of,
    run_node,
    unique,
)

PY_SLOW = "import time\ndef main(args):\n    time.sleep(float(args.get('sleep', 2)))\n    return {'slept': True}\n"


async def test_components_run_in_order_and_the_record_lists_them(guest: aiohttp.ClientSession) -> None:
    small, big, seq = unique("small"), unique("big"), unique("seq")
    await put_action(guest, small, PY_INC, limits={"memory": 128})
    await put_action(guest, big, PY_INC, limits={"memory": 512})
    await put_sequence(guest, seq, f"/_/{small}", f"/guest/{big}", f"/_/{small}")
    status, body, headers = await invoke(guest, seq, {"n": 10}, blocking="true")
    assert status == 200, body
    assert headers["x-openwhisk-activation-id"] == body["activationId"]
    assert body["response"]["result"] == {"n": 13} and body["response"]["status"] == "success"
    assert body["name"] == seq and body["namespace"] == "guest" and "cause" not in body
    notes = annotations(body)
    assert notes["topmost"] is True and notes["kind"] == "sequence" and notes["path"] == f"guest/{seq}"
    assert notes["limits"]["memory"] == 512 and "waitTime" in notes and "causedBy" not in notes
    assert len(body["logs"]) == 3
    components = [await record_of(guest, i) for i in body["logs"]]
    assert [c["name"] for c in components] == [small, big, small]
    assert [c["response"]["result"]["n"] for c in components] == [11, 12, 13]
    for component in components:
        assert component["cause"] == body["activationId"]
        assert annotations(component)["causedBy"] == "sequence"
    assert body["duration"] == sum(c["duration"] for c in components)
    assert body["end"] >= body["start"]
    stored = await record_of(guest, body["activationId"])
    assert stored["logs"] == body["logs"] and stored["response"] == body["response"]
    status, body, _ = await invoke(guest, seq, {"n": 0}, blocking="true", result="true")
    assert (status, body) == (200, {"n": 3})


RESERVED = "Request defines parameters that are not allowed (e.g., reserved properties)."


async def test_final_parameters_hold_alike_for_actions_and_sequences(guest: aiohttp.ClientSession) -> None:
    """OpenWhisk's rule, one for every kind of action: `final` freezes the defined parameters (a sequence's come
    from its package) only when it is the boolean true (`getAs[Boolean]`); a truthy "yes" freezes nothing."""
    inc = unique("inc")
    await put_action(guest, inc, PY_INC)
    for final, frozen in ((True, True), ("yes", False)):
        notes = [{"key": "final", "value": final}]
        pkg = unique("final-pkg")
        await put(guest, "packages", pkg, {"parameters": [{"key": "n", "value": 1}]})
        action, seq = f"{pkg}/{unique('final-action')}", f"{pkg}/{unique('final-seq')}"
        await put_action(guest, action, PY_INC, annotations=notes)
        await put(guest, "actions", seq, {"exec": {"kind": "sequence", "components": [f"/_/{inc}"]},
                                          "annotations": notes})
        for name in (action, seq):
            status, body, _ = await invoke(guest, name, {"n": 10}, blocking="true", result="true")
            if frozen:
                assert (status, body.get("error")) == (400, RESERVED), (final, name, body)
            else:
                assert (status, body) == (200, {"n": 11}), (final, name, body)
            status, body, _ = await invoke(guest, name, {"other": 0}, blocking="true", result="true")
            assert status == 200, (final, name, body)


async def test_the_first_error_ends_the_sequence(guest: aiohttp.ClientSession) -> None:
    inc, fail, seq = unique("inc"), unique("fail"), unique("seq")
    await put_action(guest, inc, PY_INC)
    await put_action(guest, fail, PY_FAIL)
    await put_sequence(guest, seq, f"/_/{inc}", f"/_/{fail}", f"/_/{inc}")
    status, body, _ = await invoke(guest, seq, {"n": 1}, blocking="true")
    assert status == 502
    assert body["response"]["status"] == "application error"
    assert body["response"]["result"] == {"error": "failed at 2"}
    assert len(body["logs"]) == 2
    raising = unique("raise")
    await put_action(guest, raising, "def main(args):\n    raise ValueError('boom')\n")
    await put_sequence(guest, seq, f"/_/{inc}", f"/_/{raising}", f"/_/{inc}")
    status, body, _ = await invoke(guest, seq, {"n": 1}, blocking="true")
    assert status == 502 and body["response"]["status"] == "application error" and len(body["logs"]) == 2


async def test_nested_sequences_have_their_own_record(guest: aiohttp.ClientSession) -> None:
    inc, inner, outer = unique("inc"), unique("inner"), unique("outer")
    await put_action(guest, inc, PY_INC)
    await put_sequence(guest, inner, f"/_/{inc}", f"/_/{inc}")
    await put_sequence(guest, outer, f"/_/{inc}", f"/_/{inner}", f"/_/{inc}")
    status, body, _ = await invoke(guest, outer, {"n": 0}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"n": 4}
    assert len(body["logs"]) == 3
    nested = await record_of(guest, body["logs"][1])
    assert nested["name"] == inner and nested["cause"] == body["activationId"]
    notes = annotations(nested)
    assert notes["topmost"] is False and notes["causedBy"] == "sequence" and notes["kind"] == "sequence"
    assert len(nested["logs"]) == 2
    for activation_id in nested["logs"]:
        assert (await record_of(guest, activation_id))["cause"] == nested["activationId"]


@pytest.mark.parametrize("components, message", [
    (["/_/does-not-exist"], "Sequence component does not exist."),
    ([], "No component specified for the sequence."),
])
async def test_put_refuses_bad_components(guest: aiohttp.ClientSession, components: list[str], message: str) -> None:
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{unique('seq')}",
                              {"exec": {"kind": "sequence", "components": components}})
    assert (status, body["error"]) == (400, message)


async def test_put_refuses_cycles_and_oversized_sequences(guest: aiohttp.ClientSession) -> None:
    inc, first, second = unique("inc"), unique("first"), unique("second")
    await put_action(guest, inc, PY_INC)
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{first}",
                              {"exec": {"kind": "sequence", "components": [f"/_/{first}"]}})
    assert status == 400 and body["error"] in ("Sequence may not refer to itself.",
                                               "Sequence component does not exist.")
    await put_sequence(guest, first, f"/_/{inc}")
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{first}?overwrite=true",
                              {"exec": {"kind": "sequence", "components": [f"/_/{first}"]}})
    assert (status, body["error"]) == (400, "Sequence may not refer to itself.")
    await put_sequence(guest, second, f"/_/{first}")
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{first}?overwrite=true",
                              {"exec": {"kind": "sequence", "components": [f"/_/{second}"]}})
    assert (status, body["error"]) == (400, "Sequence may not refer to itself.")
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{unique('long')}",
                              {"exec": {"kind": "sequence", "components": [f"/_/{inc}"] * 51}})
    assert (status, body["error"]) == (400, "Too many actions in the sequence.")
    half = unique("half")
    await put_sequence(guest, half, *[f"/_/{inc}"] * 26)
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{unique('double')}",
                              {"exec": {"kind": "sequence", "components": [f"/_/{half}", f"/_/{half}"]}})
    assert (status, body["error"]) == (400, "Too many actions in the sequence.")
    assert (await call(guest, "GET", f"/api/v1/namespaces/_/actions/{first}"))[1]["exec"]["components"] == \
        [f"/guest/{inc}"]                                              # refused updates left it as it was


async def test_a_component_deleted_later_is_an_application_error(guest: aiohttp.ClientSession) -> None:
    inc, gone, seq = unique("inc"), unique("gone"), unique("seq")
    await put_action(guest, inc, PY_INC)
    await put_action(guest, gone, PY_INC)
    await put_sequence(guest, seq, f"/_/{inc}", f"/_/{gone}")
    assert (await call(guest, "DELETE", f"/api/v1/namespaces/_/actions/{gone}"))[0] == 200
    status, body, _ = await invoke(guest, seq, {"n": 0}, blocking="true")
    assert status == 502
    assert body["response"]["status"] == "application error"
    assert body["response"]["result"] == {"error": "Sequence component does not exist."}
    assert len(body["logs"]) == 1


async def test_non_blocking_and_past_the_blocking_wait_answer_202(guest: aiohttp.ClientSession) -> None:
    slow, seq = unique("slow"), unique("seq")
    await put_action(guest, slow, PY_SLOW)
    await put_sequence(guest, seq, f"/_/{slow}")
    status, body, headers = await invoke(guest, seq, {"sleep": 1.5}, blocking="true", timeout="200")
    assert status == 202 and set(body) == {"activationId"}
    assert headers["x-openwhisk-activation-id"] == body["activationId"]
    status, running = await call(guest, "GET", f"/api/v1/namespaces/_/activations/{body['activationId']}")
    assert status == 404 and running["error"] == "The requested resource does not exist."     # still running
    for part in ("result", "logs"):
        status, _ = await call(guest, "GET", f"/api/v1/namespaces/_/activations/{body['activationId']}/{part}")
        assert status == 404
    record = await record_of(guest, body["activationId"])
    assert record["response"]["result"] == {"slept": True} and len(record["logs"]) == 1
    status, body, _ = await invoke(guest, seq, {"sleep": 0})
    assert status == 202
    assert (await record_of(guest, body["activationId"]))["response"]["status"] == "success"


async def test_the_atomic_action_limit_holds_at_run_time() -> None:
    async with whisk_server({"WHISK_LIMIT_SEQUENCE_LENGTH": "2"}) as url, aiohttp.ClientSession(
            base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
        inc, inner, outer = unique("inc"), unique("inner"), unique("outer")
        await put_action(session, inc, PY_INC)
        await put_sequence(session, inner, f"/_/{inc}")
        await put_sequence(session, outer, f"/_/{inc}", f"/_/{inner}")
        await put_sequence(session, inner, f"/_/{inc}", f"/_/{inc}")    # now outer would run three actions
        status, body, _ = await invoke(session, outer, {"n": 0}, blocking="true")
        assert status == 502
        assert body["response"]["result"] == {"error": "Too many actions in the sequence."}
        nested = await record_of(session, body["logs"][1])
        assert len(nested["logs"]) == 1 and nested["response"]["status"] == "application error"


async def test_npm_client_creates_and_invokes_a_sequence(whisk_url: str) -> None:
    inc, seq = unique("inc"), unique("seq")
    script = NODE_PRELUDE + f"""
    done((async () => {{
      await ow.actions.create({{name: '{inc}', action: {{exec: {{kind: 'python:3', code: {json.dumps(PY_INC)}}}}}}});
      await ow.actions.create({{name: '{seq}', action: {{exec: {{kind: 'sequence',
                                 components: ['/_/{inc}', '/_/{inc}']}}}}}});
      return await ow.actions.invoke({{name: '{seq}', blocking: true, result: true, params: {{n: 40}}}});
    }})());
    """
    assert await run_node(script, WHISK_URL=whisk_url, WHISK_KEY=GUEST_AUTH) == {"n": 42}


async def test_a_graceful_stop_lets_running_sequences_finish() -> None:
    data = tempfile.mkdtemp(prefix="whisk-seq-drain-")
    env = {"WHISK_STORE": f"sqlite://{data}/whisk.db", "WHISK_DATA_DIR": data}
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk",
                                                env=os.environ | env | {"WHISK_PORT": str(port)},
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await until_ready(f"http://127.0.0.1:{port}/ping", proc)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}",
                                         headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
            slow, inc, seq = unique("slow"), unique("inc"), unique("seq")
            await put_action(session, slow, PY_SLOW)
            await put_action(session, inc, "def main(args):\n    return {'n': 1}\n")
            await put_sequence(session, seq, f"/_/{slow}", f"/_/{inc}")
            status, body, _ = await invoke(session, seq, {"sleep": 1})
            assert status == 202
            running = body["activationId"]
            proc.send_signal(signal.SIGTERM)
            for _ in range(200):                          # the signal lands between two requests
                status, refused, _ = await invoke(session, seq, {"sleep": 0})
                if status == 503:
                    break
                assert status == 202
            assert status == 503 and "shutting down" in refused["error"]
        assert await asyncio.wait_for(proc.wait(), 30) == 0        # only once the sequence has finished
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    async with whisk_server(env) as url, aiohttp.ClientSession(
            base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
        record = await record_of(session, running)
        assert record["response"]["result"] == {"n": 1} and len(record["logs"]) == 2


async def test_a_cycle_made_after_the_checks_ends_as_too_long(guest: aiohttp.ClientSession) -> None:
    """PUT refuses a sequence that reaches itself, but a binding moved later can close a cycle the check never saw:
    cyc → bind/x, bind then bound to a package whose x runs cyc. Nested sequences add no atomic action, so the count
    never stops it; it ends at the nesting bound as an application error, with one record a level (it recursed until
    Python's stack ran out: a 500 and hundreds of whisk-error records)."""
    first, second, bind, cyc = unique("p1"), unique("p2"), unique("bind"), unique("cyc")
    inc = unique("inc")
    await put_action(guest, inc, PY_INC)
    await put(guest, "packages", first, {})
    await put(guest, "packages", second, {})
    await put_action(guest, f"{first}/x", PY_INC)
    await put(guest, "packages", bind, {"binding": {"namespace": "guest", "name": first}})
    await put_sequence(guest, cyc, f"/_/{inc}", f"/_/{bind}/x")
    await put_sequence(guest, f"{second}/x", f"/_/{cyc}")
    await put(guest, "packages", bind, {"binding": {"namespace": "guest", "name": second}})
    status, body, _ = await invoke(guest, cyc, {"n": 0}, blocking="true")
    assert status == 502, body
    assert body["response"]["status"] == "application error"
    assert body["response"]["result"] == {"error": "Too many actions in the sequence."}
    depth, record = 0, body
    while record["logs"]:                       # cyc runs inc and then x, x runs cyc: the last id is a level down
        record = await record_of(guest, record["logs"][-1])
        assert annotations(record)["kind"] == "sequence"
        depth += 1
    assert record["response"]["result"] == {"error": "Too many actions in the sequence."}
    assert depth == 51                          # PUT lets sequences nest 50 levels below the topmost one


async def test_a_cycle_through_a_conductor_ends(guest: aiohttp.ClientSession) -> None:
    """A sequence whose conductor names the sequence again: each composition counts its own components and each
    sequence its own atomic actions, so neither limit ends it; the bound on how deep sequences nest does, and each
    conductor hands the error up."""
    seq, conductor = unique("seq"), unique("conductor")
    await put_action(guest, conductor, f"""
def main(args):
    if 'error' in args:
        return {{'params': {{'error': args['error']}}}}
    return {{'action': {seq!r}, 'params': {{}}}}
""", annotations=[{"key": "conductor", "value": True}])
    await put_sequence(guest, seq, f"/_/{conductor}")
    status, body, _ = await invoke(guest, seq, {}, blocking="true", result="true")
    assert (status, body) == (200, {"error": "Too many actions in the sequence."})


async def test_a_nested_sequences_wait_starts_when_its_enclosing_sequence_turns_to_it(
        guest: aiohttp.ClientSession) -> None:
    """OpenWhisk runs each component under a child transaction whose clock starts then (`TransactionId.childOf`), so
    a nested sequence's or composition's `waitTime` is how long it waited to start, as a primitive component's is,
    not the time since the topmost request came (which counted every component before it)."""
    slow, inc, inner, conductor, outer = unique("slow"), unique("inc"), unique("inner"), unique("cond"), unique("out")
    await put_action(guest, slow, PY_SLOW)
    await put_action(guest, inc, PY_INC)
    await put_sequence(guest, inner, f"/_/{inc}")
    await put_action(guest, conductor, "def main(args):\n    return {'params': {'done': True}}\n",
                     annotations=[{"key": "conductor", "value": True}])
    await put_sequence(guest, outer, f"/_/{slow}", f"/_/{inner}", f"/_/{conductor}")
    status, body, _ = await invoke(guest, outer, {"sleep": 1}, blocking="true")
    assert status == 200, body
    waits = {r["name"]: annotations(r)["waitTime"] for r in [await record_of(guest, i) for i in body["logs"]]}
    assert waits[inner] < 500 and waits[conductor] < 500, waits


async def test_sequences_nested_as_deep_as_put_allows_still_run(guest: aiohttp.ClientSession) -> None:
    """The bound that ends cycles is PUT's own: a chain of sequences one inside the other that PUT accepts runs, and
    one level more is refused at PUT."""
    inc = unique("inc")
    await put_action(guest, inc, PY_INC)
    chain = [unique("chain")]
    await put_sequence(guest, chain[0], f"/_/{inc}")
    for _ in range(50):
        chain.append(unique("chain"))
        await put_sequence(guest, chain[-1], f"/_/{chain[-2]}")
    status, body, _ = await invoke(guest, chain[-1], {"n": 0}, blocking="true", result="true")
    assert (status, body) == (200, {"n": 1})
    status, body = await call(guest, "PUT", f"/api/v1/namespaces/_/actions/{unique('chain')}",
                              {"exec": {"kind": "sequence", "components": [f"/_/{chain[-1]}"]}})
    assert (status, body["error"]) == (400, "Too many actions in the sequence.")
