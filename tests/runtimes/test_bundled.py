"""What an action finds in its runtime, end to end through a standalone whisk (process:// here; tests/docker runs the
same scenarios in the Docker images): the packages OpenWhisk's runtime images bundle, none of whisk's own, and the
`__OW_*` environment variables of OpenWhisk's invoker, `__OW_API_KEY` only where `provide-api-key` allows it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.invoke.test_invoke import invoke, put
from tests.runtimes.harness import zip_base64
from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, whisk_server

PROVIDE_KEY = [{"key": "provide-api-key", "value": True}]

PY_IMPORTS = '''
import importlib, os, sys
def main(args):
    found, refused = {}, {}
    for name in args["bundled"]:
        module = importlib.import_module(name)
        found[name] = getattr(module, "__version__", "?")
    for name in args["foreign"]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            refused[name] = type(exc).__name__
    return {"found": found, "refused": refused, "executable": sys.executable}
'''
PY_BUNDLED = ["requests", "scrapy", "lxml.etree", "bs4", "twisted", "dateutil", "simplejson", "httplib2", "kafka",
              "virtualenv", "netifaces", "setuptools", "six", "wheel"]
# whisk's own dependencies (pyproject.toml), which OpenWhisk's python:3.11 image does not have either
PY_FOREIGN = ["aiohttp", "structlog", "prometheus_client", "aiokafka", "aiosqlite", "multidict", "yarl", "whisk"]

PY_API = '''
import os, requests
def main(args):
    auth = tuple(os.environ["__OW_API_KEY"].split(":", 1))
    answer = requests.get(os.environ["__OW_API_HOST"] + "/api/v1/namespaces/_/actions", auth=auth, timeout=10)
    return {"status": answer.status_code, "names": sorted(a["name"] for a in answer.json())}
'''

NODE_IMPORTS = '''
function main(args) {
    const found = {}, refused = {};
    for (const name of args.bundled) { require(name); found[name] = require(name + '/package.json').version; }
    for (const name of args.foreign) {
        try { require(name); } catch (e) { refused[name] = e.code; }
    }
    return { found, refused };
}
'''
NODE_BUNDLED = {"openwhisk": "3.21.8", "express": "4.20.0", "redis": "4.0.4", "uuid": "8.3.2"}
# modules of whisk's test tooling (tests/node) that OpenWhisk's nodejs runtime does not bundle
NODE_FOREIGN = ["playwright-core", "pouchdb-server", "ws"]

NODE_API = '''
const openwhisk = require('openwhisk');
async function main(args) {
    const ow = openwhisk();            // __OW_API_HOST and __OW_API_KEY from the environment
    const actions = await ow.actions.list();
    return { names: actions.map(a => a.name).sort() };
}
'''

PY_ENV = '''
import os
def main(args):
    return {k: v for k, v in os.environ.items() if k.startswith("__OW_")}
'''
NODE_ENV = '''
function main(args) {
    const out = {};
    for (const k of Object.keys(process.env)) if (k.startsWith('__OW_')) out[k] = process.env[k];
    return out;
}
'''


async def test_python_actions_import_what_openwhisk_bundles_and_not_whisks_own(guest: aiohttp.ClientSession) -> None:
    await put(guest, "bundled-py", {"kind": "python:3.11", "code": PY_IMPORTS})
    status, result, _ = await invoke(guest, "bundled-py", {"bundled": PY_BUNDLED, "foreign": PY_FOREIGN},
                                     blocking="true", result="true")
    assert status == 200, result
    assert set(result["found"]) == set(PY_BUNDLED)
    assert result["found"]["requests"] == "2.32.2" and result["found"]["scrapy"] == "2.11.2"
    assert result["refused"] == dict.fromkeys(PY_FOREIGN, "ModuleNotFoundError")


async def test_node_actions_require_what_openwhisk_bundles_and_not_whisks_own(guest: aiohttp.ClientSession) -> None:
    await put(guest, "bundled-node", {"kind": "nodejs:20", "code": NODE_IMPORTS})
    status, result, _ = await invoke(guest, "bundled-node", {"bundled": list(NODE_BUNDLED), "foreign": NODE_FOREIGN},
                                     blocking="true", result="true")
    assert status == 200, result
    assert result == {"found": NODE_BUNDLED, "refused": dict.fromkeys(NODE_FOREIGN, "MODULE_NOT_FOUND")}


# ES modules resolve bare names without NODE_PATH, through the node_modules folders above the importing file only: in
# OpenWhisk's image the bundled modules are in /node_modules, above every action. An ES module zip, a CommonJS zip's
# import() and a source action's import() (the runner evals it, so the runner's import() serves it) all find them.
NODE_ESM = {
    "esm-zip": {"package.json": '{"type": "module"}',
                "index.js": ("import openwhisk from 'openwhisk';\nimport { v4 } from 'uuid';\n"
                             "export function main() { return {openwhisk: typeof openwhisk, uuid: typeof v4}; }\n")},
    "import-zip": {"index.js": ("exports.main = async () => ({openwhisk: typeof (await import('openwhisk')).default,\n"
                                "    uuid: typeof (await import('uuid')).v4});\n")},
    "import-source": ("async function main() { return {openwhisk: typeof (await import('openwhisk')).default,\n"
                      "    uuid: typeof (await import('uuid')).v4}; }\n"),
}


@pytest.mark.parametrize("name", sorted(NODE_ESM))
async def test_node_es_modules_import_what_openwhisk_bundles(guest: aiohttp.ClientSession, name: str) -> None:
    code = NODE_ESM[name]
    binary = isinstance(code, dict)
    await put(guest, f"bundled-{name}", {"kind": "nodejs:20", "binary": binary,
                                         "code": zip_base64(code) if isinstance(code, dict) else code})
    status, result, _ = await invoke(guest, f"bundled-{name}", blocking="true", result="true")
    assert (status, result) == (200, {"openwhisk": "function", "uuid": "function"})


NODE_GC = '''
function main(args) {
    let garbage = [];
    for (let i = 0; i < 1000; i++) garbage.push(new Array(1000).fill(i));
    garbage = null;
    global.gc();            // OpenWhisk's Node.js runtime runs node with --expose-gc; its test actions call it
    return { gc: typeof global.gc };
}
'''


async def test_node_actions_may_run_the_garbage_collector(guest: aiohttp.ClientSession) -> None:
    await put(guest, "gc-node", {"kind": "nodejs:20", "code": NODE_GC})
    status, result, _ = await invoke(guest, "gc-node", blocking="true", result="true")
    assert (status, result) == (200, {"gc": "function"})


@pytest.mark.parametrize(("kind", "code"), [("python:3.11", PY_API), ("nodejs:20", NODE_API)])
async def test_an_action_calls_the_api_host_with_its_key(guest: aiohttp.ClientSession, kind: str, code: str) -> None:
    """requests from Python and the openwhisk npm client from Node.js, with the key provide-api-key hands over."""
    name = f"lister-{kind.split(':')[0]}"
    await put(guest, name, {"kind": kind, "code": code}, annotations=PROVIDE_KEY)
    status, result, _ = await invoke(guest, name, blocking="true", result="true")
    assert status == 200, result
    assert name in result["names"], result
    assert result.get("status", 200) == 200


@pytest.mark.parametrize(("kind", "code"), [("python:3.11", PY_ENV), ("nodejs:20", NODE_ENV)])
async def test_the_ow_variables_follow_openwhisk(guest: aiohttp.ClientSession, kind: str, code: str) -> None:
    base = f"env-{kind.split(':')[0]}"
    await put(guest, f"{base}-key", {"kind": kind, "code": code}, annotations=PROVIDE_KEY,
              limits={"timeout": 30_000})
    await put(guest, f"{base}-nokey", {"kind": kind, "code": code})       # create adds provide-api-key: false
    before = time.time() * 1000
    status, body, _ = await invoke(guest, f"{base}-key", blocking="true")
    assert status == 200, body
    env: dict[str, Any] = body["response"]["result"]
    expected_host = str(guest._base_url).rstrip("/")    # the server's own URL (no WHISK_API_HOST)
    assert env["__OW_API_HOST"] == expected_host
    assert env["__OW_API_KEY"] == GUEST_AUTH
    assert env["__OW_NAMESPACE"] == "guest"
    assert env["__OW_ACTION_NAME"] == f"/guest/{base}-key"
    assert env["__OW_ACTION_VERSION"] == "0.0.1"
    assert env["__OW_ACTIVATION_ID"] == body["activationId"]
    assert len(env["__OW_TRANSACTION_ID"]) >= 16
    assert before + 29_000 <= int(env["__OW_DEADLINE"]) <= time.time() * 1000 + 30_000
    record = await record_of(guest, body["activationId"], complete=True)
    assert record["activationId"] == env["__OW_ACTIVATION_ID"]

    status, body, _ = await invoke(guest, f"{base}-nokey", blocking="true")
    assert status == 200, body
    env = body["response"]["result"]
    assert "__OW_API_KEY" not in env and env["__OW_API_HOST"] == expected_host
    assert env["__OW_ACTION_NAME"] == f"/guest/{base}-nokey" and env["__OW_ACTIVATION_ID"] == body["activationId"]

    # a second activation of the same warm container sees its own id and deadline, not the first one's
    status, again, _ = await invoke(guest, f"{base}-nokey", blocking="true")
    assert again["response"]["result"]["__OW_ACTIVATION_ID"] == again["activationId"] != body["activationId"]


@pytest_asyncio.fixture(loop_scope="session")
async def bare_whisk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A whisk whose runtimes directory is empty: as after `pip install whisk` without `make runtimes`."""
    folder = tmp_path_factory.mktemp("bare")
    env = {"WHISK_DATA_DIR": str(folder / "data"), "WHISK_RUNTIMES_DIR": str(folder / "runtimes")}
    async with whisk_server(env, log_path=str(folder / "whisk.log")) as url:
        yield url


async def test_a_missing_environment_says_what_to_run(bare_whisk: str) -> None:
    from tests.support.processes import basic_auth
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=bare_whisk, headers=basic_auth(uuid, key)) as session:
        for kind in ("python:3.11", "nodejs:20"):
            await put(session, "needs-env", {"kind": kind, "code": PY_ENV if kind.startswith("py") else NODE_ENV})
            status, body, _ = await invoke(session, "needs-env", blocking="true")
            assert status == 502, body
            error = body["response"]["result"]["error"]
            assert body["response"]["status"] == "action developer error"
            assert f"The {kind} action environment is not installed in" in error and "make runtimes" in error
