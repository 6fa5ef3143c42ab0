"""Action results whisk cannot carry (nested past the limit, lone surrogates) end promptly as developer errors with
a complete stored record, logs kept, over real HTTP; results within the limit are carried whole."""

from __future__ import annotations

import time

import aiohttp

from tests.api.support import call, ns, unique
from tests.support.http import record_of
from whisk.entities.json_value import MAX_DEPTH

NESTED = """function main(args) {
  console.log('building ' + args.levels);
  let v = [];
  for (let i = 1; i < args.levels; i++) v = [v];
  return {deep: v};
}
"""
SURROGATE = "function main(args) { console.log('lonely'); return {s: String.fromCharCode(0xd800)}; }\n"


async def put_node(session: aiohttp.ClientSession, code: str) -> str:
    name = unique("res")
    status, body = await call(session, "PUT", ns("actions", name), {"exec": {"kind": "nodejs:default", "code": code}})
    assert status == 200, body
    return name


async def test_a_result_nested_too_deeply_is_a_prompt_developer_error(guest: aiohttp.ClientSession) -> None:
    name = await put_node(guest, NESTED)
    for levels in (1_000, 3_000):            # node itself cannot encode much deeper
        began = time.monotonic()
        status, body = await call(guest, "POST", ns("actions", name), {"levels": levels},
                                  params={"blocking": "true"})
        assert time.monotonic() - began < 20, "the caller must not wait out the blocking limit"
        assert status == 502, (status, str(body)[:300])
        assert body["response"]["status"] == "action developer error"
        assert body["response"]["result"] == {
            "error": f"The action produced a result nested too deeply (more than {MAX_DEPTH} levels)."}
        stored = await record_of(guest, body["activationId"], complete=True)
        assert stored["response"] == body["response"] and stored["end"] >= stored["start"]
        assert any(line.endswith(f"stdout: building {levels}") for line in stored["logs"]), stored["logs"]
    # The namespace's activation list stays readable.
    status, listed = await call(guest, "GET", ns("activations"), params={"name": name, "docs": "true"})
    assert status == 200 and len(listed) >= 2


async def test_a_result_within_the_limit_is_carried(guest: aiohttp.ClientSession) -> None:
    name = await put_node(guest, NESTED)
    status, body = await call(guest, "POST", ns("actions", name), {"levels": MAX_DEPTH - 1},
                              params={"blocking": "true", "result": "true"})
    assert status == 200, str(body)[:300]
    value, levels = body["deep"], 1
    while value:
        value, levels = value[0], levels + 1
    assert levels == MAX_DEPTH - 1


async def test_a_result_with_a_lone_surrogate_is_a_developer_error(guest: aiohttp.ClientSession) -> None:
    name = await put_node(guest, SURROGATE)
    status, body = await call(guest, "POST", ns("actions", name), params={"blocking": "true"})
    assert status == 502, (status, body)
    error = body["response"]["result"]["error"]
    assert error.startswith("The action did not produce a valid JSON or JSON Array response"), error
    stored = await record_of(guest, body["activationId"], complete=True)
    assert stored["response"]["status"] == "action developer error"
    assert any(line.endswith("stdout: lonely") for line in stored["logs"]), stored["logs"]
