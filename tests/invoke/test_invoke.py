"""Invoke end to end through the real program on loopback (docs/openwhisk.md §1.6, §3.2, §4): python and node actions,
blocking, non-blocking and result-only, statuses, records, logs, parameters, limits and the faults of
docs/openwhisk.md §4."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.support.waiting import room_in_the_minute

PY_ECHO = ("def main(args):\n    print('hello stdout')\n    import sys; print('hello stderr', file=sys.stderr)\n"
           "    return args\n")
NODE_ECHO = "function main(args) { console.log('node says hi'); return args; }\n"


async def put(session: aiohttp.ClientSession, name: str, exec_: dict[str, Any], **extra: Any) -> dict[str, Any]:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json={"exec": exec_, **extra}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def invoke(session: aiohttp.ClientSession, name: str, payload: Any = None, **query: str) -> tuple[int, Any, Any]:
    async with session.post(f"/api/v1/namespaces/_/actions/{name}", params=query,
                            json=payload if payload is not None else {}) as r:
        return r.status, await r.json(), r.headers


def annotations(record: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in record["annotations"]}


async def test_python_blocking_invoke_returns_the_activation(guest: aiohttp.ClientSession) -> None:
    await put(guest, "py-echo", {"kind": "python:3", "code": PY_ECHO}, parameters=[{"key": "p", "value": 1}])
    status, body, headers = await invoke(guest, "py-echo", {"x": "y"}, blocking="true")
    assert status == 200, (body.get("response"), body.get("annotations"))   # what went wrong, not a cut repr
    assert body["response"]["status"] == "success" and body["response"]["result"] == {"p": 1, "x": "y"}
    assert body["response"]["success"] is True and body["logs"] == []          # blocking answers carry no logs
    assert headers["x-openwhisk-activation-id"] == body["activationId"]
    assert len(body["activationId"]) == 32 and body["namespace"] == "guest" and body["name"] == "py-echo"
    notes = annotations(body)
    assert notes["path"] == "guest/py-echo" and notes["kind"].startswith("python:3")
    assert notes["limits"]["memory"] == 256 and notes["timeout"] is False and "waitTime" in notes
    stored = await record_of(guest, body["activationId"], complete=True)
    assert any(line.endswith("stdout: hello stdout") for line in stored["logs"]), stored["logs"]
    assert any(line.endswith("stderr: hello stderr") for line in stored["logs"]), stored["logs"]
    assert stored["duration"] >= 0 and stored["end"] >= stored["start"]
    async with guest.get(f"/api/v1/namespaces/_/activations/{body['activationId']}/logs") as r:
        assert (await r.json())["logs"] == stored["logs"]
    async with guest.get(f"/api/v1/namespaces/_/activations/{body['activationId']}/result") as r:
        assert (await r.json())["result"] == {"p": 1, "x": "y"}


async def test_wait_time_counts_from_when_the_request_came(guest: aiohttp.ClientSession) -> None:
    """OpenWhisk's `waitTime` runs from the transaction's start, which its HTTP service stamps before it reads the
    body, authenticates the caller or resolves the action (`BasicHttpService.assignId`, then `toStrictEntity`), to
    where init or run starts: the controller's own time is the system's hold time too. A body sent slowly shows it."""
    await put(guest, "py-wait", {"kind": "python:3", "code": "def main(args):\n    return args\n"})
    await put(guest, "seq-wait", {"kind": "sequence", "components": ["/_/py-wait"]})

    async def slow_body():
        yield b'{"a":'
        await asyncio.sleep(0.5)
        yield b' 1}'

    for name in ("py-wait", "seq-wait"):      # a sequence's counts from there too (`SequenceActions`)
        before = int(time.time() * 1000)
        async with guest.post(f"/api/v1/namespaces/_/actions/{name}", params={"blocking": "true"},
                              data=slow_body(), headers={"Content-Type": "application/json"}) as r:
            body = await r.json()
            assert r.status == 200, body
        wait = annotations(body)["waitTime"]
        assert wait >= 400 and body["start"] - wait >= before - 50, (name, wait, body["start"] - before)


async def test_a_quiet_blocking_invoke_stores_the_record_its_caller_got(guest: aiohttp.ClientSession) -> None:
    # The invoker stores the very record it answered with when the run printed nothing (whisk/invoker/service.py).
    await put(guest, "py-quiet", {"kind": "python:3", "code": "def main(args):\n    return {'n': args.get('n')}\n"})
    status, body, _ = await invoke(guest, "py-quiet", {"n": 3}, blocking="true")
    assert status == 200, body
    stored = await record_of(guest, body["activationId"], complete=True)
    assert stored == body


async def test_node_result_only_and_non_blocking(guest: aiohttp.ClientSession) -> None:
    await put(guest, "node-echo", {"kind": "nodejs:20", "code": NODE_ECHO})
    status, body, _ = await invoke(guest, "node-echo", {"n": 5}, blocking="true", result="true")
    assert (status, body) == (200, {"n": 5})
    status, body, headers = await invoke(guest, "node-echo", {"n": 6})
    assert status == 202 and set(body) == {"activationId"}
    record = await record_of(guest, body["activationId"], complete=True)
    assert record["response"]["result"] == {"n": 6}
    assert any("node says hi" in line for line in record["logs"])


async def test_warm_container_is_reused_and_init_time_only_on_cold(guest: aiohttp.ClientSession) -> None:
    code = ("import os\ncount = 0\ndef main(args):\n    global count\n    count += 1\n"
            "    return {'count': count, 'pid': os.getpid()}\n")
    await put(guest, "py-warm", {"kind": "python:3", "code": code})
    _, first, _ = await invoke(guest, "py-warm", blocking="true")
    # The answer comes before the logs are collected; the container is free again once the record is stored.
    await record_of(guest, first["activationId"], complete=True)
    _, second, _ = await invoke(guest, "py-warm", blocking="true")
    assert first["response"]["result"]["count"] == 1 and second["response"]["result"]["count"] == 2
    assert first["response"]["result"]["pid"] == second["response"]["result"]["pid"]
    assert "initTime" in annotations(first) and "initTime" not in annotations(second)


@pytest.mark.parametrize("kind, code", [
    ("python:3", "import sys\ndef main(args):\n    sys.stdout.write('partial')\n    return {'n': args.get('n')}\n"),
    ("nodejs:20", "function main(args) { process.stdout.write('partial'); return {n: args.n}; }\n"),
], ids=["python", "nodejs"])
async def test_output_without_a_final_newline_is_logged_and_the_container_stays_warm(
        guest: aiohttp.ClientSession, kind: str, code: str) -> None:
    """The runtime's sentinel lands on the line the action left open: the logs are collected at once (not after
    the 2 s a missing sentinel waits), hold "partial", and the container is reused."""
    name = f"partial-{kind.split(':')[0]}"
    await put(guest, name, {"kind": kind, "code": code})
    records = []
    for n in (1, 2):
        began = time.monotonic()
        _, body, _ = await invoke(guest, name, {"n": n}, blocking="true")
        records.append(await record_of(guest, body["activationId"], complete=True))
        assert time.monotonic() - began < 1.5
    for record in records:
        assert [line.split(" ", 1)[1].strip() for line in record["logs"]] == ["stdout: partial"], record["logs"]
    assert "initTime" in annotations(records[0]) and "initTime" not in annotations(records[1])


@pytest.mark.parametrize("kind, code", [
    ("python:3", "import sys\nS = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX'\ndef main(args):\n    n = args['n']\n"
                 "    print(f'{n} before')\n    if n == 1:\n        print(S)\n        print(S, file=sys.stderr)\n"
                 "    print(f'{n} after')\n    print(f'{n} err', file=sys.stderr)\n    return {}\n"),
    ("nodejs:20", "const S = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';\nfunction main({n}) {\n"
                  "  console.log(`${n} before`);\n  if (n === 1) { console.log(S); console.error(S); }\n"
                  "  console.log(`${n} after`);\n  console.error(`${n} err`);\n  return {};\n}\n"),
], ids=["python", "nodejs"])
async def test_an_action_that_prints_the_sentinel_keeps_its_own_logs_and_the_next_ones_theirs(
        guest: aiohttp.ClientSession, kind: str, code: str) -> None:
    """The sentinel printed by the action ended its logs there: its later lines were the next activation's, and
    every activation of the container after it had the logs of the one before."""
    name = f"sentinel-{kind.split(':')[0]}"
    await put(guest, name, {"kind": kind, "code": code})
    for n in (1, 2, 3):
        _, body, _ = await invoke(guest, name, {"n": n}, blocking="true")
        record = await record_of(guest, body["activationId"], complete=True)
        assert sorted(line.split(" ", 1)[1].strip() for line in record["logs"]) == [
            f"stderr: {n} err", f"stdout: {n} after", f"stdout: {n} before"], (n, record["logs"])
        assert (n == 1) == ("initTime" in annotations(record))         # one container throughout


@pytest.mark.parametrize("kind, code", [
    ("nodejs:default", "function main() { console.log({a: 1, b: {c: 'x'.repeat(80)}}); console.log('\\tt '); }"),
    ("python:3", "import json\ndef main(a):\n    print(json.dumps({'a': 1}, indent=2))\n    print('\\tt ')\n"
                 "    return {}\n"),
])
async def test_log_lines_keep_their_indentation(guest: aiohttp.ClientSession, kind: str, code: str) -> None:
    """Only a line's end is taken off (OpenWhisk's LogLine, `stripLineEnd`): a logged object or a traceback keeps
    its indentation, a line its tabs and trailing blanks."""
    name = f"indent-{kind.split(':')[0]}"
    await put(guest, name, {"kind": kind, "code": code})
    _, body, _ = await invoke(guest, name, blocking="true")
    record = await record_of(guest, body["activationId"], complete=True)
    texts = [line.split(" stdout: ", 1)[1] for line in record["logs"]]
    assert texts[1].startswith("  ") and texts[1].lstrip().startswith(("a:", '"a":')), texts
    assert texts[-1] == "\tt ", texts


async def test_application_error_is_502_with_the_error(guest: aiohttp.ClientSession) -> None:
    await put(guest, "py-apperr", {"kind": "python:3", "code": "def main(a):\n    return {'error': 'nope'}\n"})
    status, body, _ = await invoke(guest, "py-apperr", blocking="true")
    assert status == 502
    assert body["response"]["status"] == "application error" and body["response"]["result"] == {"error": "nope"}
    status, body, _ = await invoke(guest, "py-apperr", blocking="true", result="true")
    assert (status, body) == (502, {"error": "nope"})


async def test_an_uncaught_exception_is_an_application_error(guest: aiohttp.ClientSession) -> None:
    """As OpenWhisk's Python runtime: the result is {"error": str(exception)}, and the container is kept."""
    await put(guest, "py-raise", {"kind": "python:3", "code": "def main(a):\n    raise ValueError('boom')\n"})
    status, body, _ = await invoke(guest, "py-raise", blocking="true")
    assert status == 502 and body["response"]["status"] == "application error"
    assert body["response"]["result"] == {"error": "boom"}


@pytest.mark.parametrize("code, message", [
    ("def main(a)\n    return {}\n", None),                                  # syntax error: init fails
    ("def other(a):\n    return {}\n", None),                                # no main
    ("def main(a):\n    return 42\n", None),                                  # not a dictionary
    ("import os\ndef main(a):\n    os._exit(3)\n",
     "The action did not produce a valid response and exited unexpectedly."),
])
async def test_developer_errors_and_the_next_invoke_works(guest: aiohttp.ClientSession, code: str,
                                                          message: str | None) -> None:
    name = f"py-dev-{abs(hash(code)) % 10**8}"
    await put(guest, name, {"kind": "python:3", "code": code})
    status, body, _ = await invoke(guest, name, blocking="true")
    assert status == 502, body
    assert body["response"]["status"] == "action developer error"
    assert isinstance(body["response"]["result"]["error"], str) and body["response"]["result"]["error"]
    if message:
        assert message in body["response"]["result"]["error"]
    await put(guest, name, {"kind": "python:3", "code": "def main(a):\n    return {'ok': True}\n"})
    status, body, _ = await invoke(guest, name, blocking="true", result="true")
    assert (status, body) == (200, {"ok": True})


async def test_timeout_is_a_developer_error_with_the_annotation(guest: aiohttp.ClientSession) -> None:
    code = "def main(a):\n    while a.get('loop'):\n        pass\n    return {'warm': True}\n"
    await put(guest, "py-loop", {"kind": "python:3", "code": code}, limits={"timeout": 1000})
    status, body, _ = await invoke(guest, "py-loop", blocking="true", result="true")   # initialized, warm
    assert (status, body) == (200, {"warm": True})
    t0 = time.monotonic()
    status, body, _ = await invoke(guest, "py-loop", {"loop": True}, blocking="true")
    assert status == 502 and time.monotonic() - t0 < 15
    assert body["response"]["result"]["error"] == "The action exceeded its time limits of 1000 milliseconds."
    assert annotations(body)["timeout"] is True
    status, body, _ = await invoke(guest, "py-loop", blocking="true", result="true")   # a new container serves
    assert (status, body) == (200, {"warm": True})


async def test_final_parameters_and_bad_requests(guest: aiohttp.ClientSession) -> None:
    await put(guest, "py-final", {"kind": "python:3", "code": "def main(a):\n    return a\n"},
              parameters=[{"key": "fixed", "value": "v"}], annotations=[{"key": "final", "value": True}])
    status, body, _ = await invoke(guest, "py-final", {"fixed": "x"}, blocking="true")
    assert status == 400
    assert body["error"] == "Request defines parameters that are not allowed (e.g., reserved properties)."
    status, body, _ = await invoke(guest, "py-final", {"other": 1}, blocking="true", result="true")
    assert (status, body) == (200, {"fixed": "v", "other": 1})
    status, body, _ = await invoke(guest, "py-final", blocking="true", timeout="0")
    assert status == 400 and "Timeout must be number of milliseconds" in body["error"]
    status, body, _ = await invoke(guest, "no-such-action", blocking="true")
    assert status == 404 and "code" in body
    async with guest.post("/api/v1/namespaces/_/actions/py-final", data=b"x" * (1_048_576 + 10),
                          headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413 and "Request larger than allowed" in (await r.json())["error"]


async def test_blocking_wait_runs_out_with_202_and_the_record_arrives(guest: aiohttp.ClientSession) -> None:
    await put(guest, "py-slow",
              {"kind": "python:3", "code": "import time\ndef main(a):\n    time.sleep(1.5)\n    return {'done': 1}\n"})
    status, body, _ = await invoke(guest, "py-slow", blocking="true", timeout="200")
    assert status == 202 and "activationId" in body
    async with guest.get(f"/api/v1/namespaces/_/activations/{body['activationId']}") as r:
        pending = await r.json()
        # As on OpenWhisk, a running activation is a 404 (clients poll until it is not), unless it already ended.
        assert (r.status, pending.get("error")) == (404, "The requested resource does not exist.") or (
            r.status == 200 and pending["activationId"] == body["activationId"]), pending
    record = await record_of(guest, body["activationId"], complete=True)
    assert record["response"]["result"] == {"done": 1}


async def test_throttles_answer_429() -> None:
    env = {"WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "3", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "100"}
    async with whisk_server(env) as url:
        uuid, key = GUEST_AUTH.split(":")
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as s:
            await put(s, "t", {"kind": "python:3", "code": "def main(a):\n    return a\n"})
            await room_in_the_minute(15)           # the five invokes are counted in one calendar minute
            statuses = [(await invoke(s, "t", blocking="true"))[0] for _ in range(4)]
            assert statuses[:3] == [200, 200, 200]
            status, body, _ = await invoke(s, "t", blocking="true")
            assert status == 429 and body["error"].startswith("Too many requests in the last minute")
