"""openwhisk-composer (npm, installed by .ci/deps.sh into .ci/work/composer) against the real server: its `compose`
and `deploy` commands, unchanged, turn the compositions in compositions/ into conductor actions, which are invoked
through the API. The conductor code `require`s the `openwhisk` module the Node.js runtime bundles (docs/runtimes.md);
`async` and `dynamic` also call back into the API host with the key `provide-api-key` hands over."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.clients.command import run
from tests.conftest import missing
from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, basic_auth

HERE = Path(__file__).resolve().parent
COMPOSITIONS = HERE / "compositions"
COMPOSER = HERE.parents[1] / ".ci" / "work" / "composer" / "node_modules"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deployed(whisk_url: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every composition compiled with `compose` and deployed with `deploy` (as conductor action comp-NAME)."""
    if shutil.which("node") is None or not (COMPOSER / ".bin" / "compose").exists():
        missing("node and openwhisk-composer (bash .ci/deps.sh)")
    folder = tmp_path_factory.mktemp("compositions")
    env = dict(os.environ) | {"NODE_PATH": str(COMPOSER)}     # the compositions `require` openwhisk-composer
    names = []
    for source in sorted(COMPOSITIONS.glob("*.js")):
        compiled = folder / f"{source.stem}.json"
        compiled.write_text(await run(str(COMPOSER / ".bin" / "compose"), str(source), cwd=folder, env=env))
        said = await run(str(COMPOSER / ".bin" / "deploy"), f"comp-{source.stem}", str(compiled), "--apihost",
                         whisk_url, "-u", GUEST_AUTH, "-w", cwd=folder, env=env)
        assert f"/_/comp-{source.stem}" in said, said
        names.append(source.stem)
    return names


@pytest_asyncio.fixture(loop_scope="session")
async def client(whisk_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=whisk_url, headers=basic_auth(uuid, key)) as session:
        yield session


async def result_of(client: aiohttp.ClientSession, name: str, params: dict[str, Any]) -> Any:
    async with client.post(f"/api/v1/namespaces/_/actions/comp-{name}", params={"blocking": "true", "result": "true"},
                           json=params) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("if", {"password": "abc123"}, {"message": "success"}),
    ("if", {"password": "nope"}, {"message": "failure"}),
    ("sequence", {"n": 3}, {"n": 8}),
    ("while", {}, {"total": 6, "i": 4}),
    ("try", {}, {"caught": "boom", "cleaned": True}),
    ("dynamic", {"n": 1}, {"n": 160, "before": 4}),
    ("nested", {}, {"log": ["even 0", "odd 1", "even 2"]}),
])
async def test_compositions_run_as_on_openwhisk(deployed: list[str], client: aiohttp.ClientSession, name: str,
                                                params: dict[str, Any], expected: dict[str, Any]) -> None:
    assert name in deployed
    assert await result_of(client, name, params) == expected


async def test_async_spawns_a_composition_through_the_npm_client(deployed: list[str],
                                                                 client: aiohttp.ClientSession) -> None:
    answer = await result_of(client, "async", {"n": 5})
    assert answer["parent"] is True and len(answer["spawnedId"]) == 32
    child = await record_of(client, answer["spawnedId"], complete=True)
    assert child["name"] == "comp-async" and child["response"]["result"] == {"child": "spawned", "n": 5}
    assert child["response"]["success"] is True
