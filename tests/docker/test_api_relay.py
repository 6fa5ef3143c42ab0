"""Actions without a network (`WHISK_DOCKER_NETWORK=unix`, the default) reach the API host through the invoker's
relay: from both runtimes and from an image that only listens on 8080 (through the relay container beside it), with
the clients OpenWhisk's runtimes bundle (`requests`, the `openwhisk` npm module), many calls at once.

The factory-level tests relay to a stand-in API host (a real aiohttp server on loopback); the end-to-end ones run a
standalone whisk on the session's private daemon and call it back from its own actions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiodocker
import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from tests.docker.conftest import BLACKBOX, DERIVED, NODEJS_IMAGE, PYTHON_IMAGE, build, init_body, labelled
from tests.invoke.test_invoke import invoke, put
from tests.runtimes.test_bundled import PROVIDE_KEY
from tests.runtimes.test_bundled import test_an_action_calls_the_api_host_with_its_key  # noqa: F401
from tests.support.docker_daemon import DockerDaemon
from tests.conftest import missing
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, ipv6_loopback, whisk_server
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import DockerContainerFactory

pytestmark = pytest.mark.docker

INVOKER = 23         # an instance of its own: the other docker tests' containers are not ours
_FACTORY_INVOKER = 140
ACTIONS_PORT_INVOKER = 24
IPV6_INVOKER = 25

PY_CALL = """
import json, os, urllib.request
def main(args):
    with urllib.request.urlopen(os.environ["__OW_API_HOST"] + "/hello/python", timeout=10) as answer:
        return {"url": os.environ["__OW_API_HOST"], "status": answer.status, "body": json.load(answer)}
"""
NODE_CALL = """
const http = require('http');
function main(args) {
    return new Promise((resolve, reject) => {
        http.get(process.env.__OW_API_HOST + '/hello/nodejs', answer => {
            let text = '';
            answer.on('data', chunk => { text += chunk; });
            answer.on('end', () => resolve({ url: process.env.__OW_API_HOST, status: answer.statusCode,
                                             body: JSON.parse(text) }));
        }).on('error', reject);
    });
}
"""
# More calls at once than the relay takes per container (16): the others wait their turn, none fails.
NODE_MANY = """
const openwhisk = require('openwhisk');
async function main(args) {
    const ow = openwhisk();
    const lists = await Promise.all(Array.from({ length: args.n }, () => ow.actions.list()));
    return { answered: lists.filter(list => Array.isArray(list)).length };
}
"""


@pytest_asyncio.fixture(loop_scope="session")
async def stand_in() -> AsyncIterator[str]:
    """A stand-in API host on loopback that says what it was asked."""
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def relaying(docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
                   stand_in: str) -> AsyncIterator[DockerContainerFactory]:
    async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=_FACTORY_INVOKER,
                                      network="unix", api_host=stand_in) as factory:
        yield factory
    assert await labelled(docker, _FACTORY_INVOKER) == [], "close() left containers behind"


@pytest.mark.parametrize(("kind", "image", "code"), [("python:3.11", PYTHON_IMAGE, PY_CALL),
                                                     ("nodejs:20", NODEJS_IMAGE, NODE_CALL)])
async def test_both_runtimes_call_the_api_host_on_their_own_loopback(
        relaying: DockerContainerFactory, docker: aiodocker.Docker, kind: str, image: str, code: str) -> None:
    spec = ContainerSpec(name=f"wsk{relaying.invoker}_1_guest_{kind[:4]}", kind=kind, image=image, memory_mb=256)
    container = await relaying.create(spec)
    try:
        info = await docker.containers.container(container.id).show()
        assert info["HostConfig"]["NetworkMode"] == "none"
        assert any(b.endswith(":/run/whisk-api:ro") for b in info["HostConfig"]["Binds"]), info["HostConfig"]
        # /init names the API host as the platform knows it; the container is told where its relay serves it, on
        # its own loopback: the API host's own URL, plain HTTP on 127.0.0.1 here.
        body = init_body(code) | {"env": {"__OW_API_HOST": "http://whisk.example.org:3233"}}
        assert (await container.initialize(body, timeout_s=10)).status == 200
        run = await container.run({"value": {}}, timeout_s=20)
        assert run.status == 200, run.body
        assert json.loads(run.body) == {"url": relaying.api_host, "status": 200,
                                        "body": {"path": f"/hello/{kind.split(':')[0]}"}}
    finally:
        await container.destroy()


async def test_an_image_that_only_knows_8080_reaches_it_through_the_relay_container(
        relaying: DockerContainerFactory, blackbox_images: None) -> None:
    spec = ContainerSpec(name=f"wsk{relaying.invoker}_2_guest_bb", kind="blackbox", image=BLACKBOX, memory_mb=128)
    container = await relaying.create(spec)
    try:
        assert (await container.initialize(init_body("x"), timeout_s=10)).status == 200
        run = await container.run({"value": {"call": "/hello/blackbox"}}, timeout_s=20)
        assert json.loads(run.body)["called"] == {"url": relaying.api_host, "status": 200,
                                                  "body": {"path": "/hello/blackbox"}}
    finally:
        await container.destroy()


async def test_an_image_built_from_ours_reaches_it_beside_the_relay_container(
        relaying: DockerContainerFactory, blackbox_images: None) -> None:
    """It runs behind the relay as any blackbox image (its labels are the tenant's word); the relay and our proxy in
    it both serve the API host's port in the namespace they share, whichever binds it first
    (tests/runtimes/test_socket_mode.py has the proxy that comes second)."""
    spec = ContainerSpec(name=f"wsk{relaying.invoker}_3_guest_derived", kind="blackbox", image=DERIVED, memory_mb=128)
    container = await relaying.create(spec)
    try:
        assert (await container.initialize(init_body(PY_CALL), timeout_s=20)).status == 200
        run = await container.run({"value": {}}, timeout_s=20)
        assert run.status == 200, run.body
        assert json.loads(run.body)["body"] == {"path": "/hello/python"}
    finally:
        await container.destroy()


# An image built FROM ours whose proxy starts late: the relay container beside it is up first.
LATE = {"python": ("late.py", "python3", "import os, time\ntime.sleep(1.5)\n"
                                         "os.execv('/usr/bin/python3', ['python3', '/opt/whisk/proxy.py'])\n"),
        "nodejs": ("late.js", "node", "setTimeout(() => require('/opt/whisk/proxy.js'), 1500);\n")}


@pytest.mark.parametrize(("kind", "image", "code"), [("python", PYTHON_IMAGE, PY_CALL),
                                                     ("nodejs", NODEJS_IMAGE, NODE_CALL)])
async def test_an_image_that_listens_late_behind_the_relay_container(
        relaying: DockerContainerFactory, docker: aiodocker.Docker, kind: str, image: str, code: str) -> None:
    """The relay, up first, serves the API host's port (our proxy in the image leaves it to it) and takes the
    invoker's /init before the image listens: refused there, it closes the connection, and the invoker tries again."""
    name, interpreter, late = LATE[kind]
    tag = f"whisk-test/late-{kind}:latest"
    dockerfile = f'FROM {image}\nCOPY {name} /opt/{name}\nCMD ["{interpreter}", "/opt/{name}"]\n'
    await build(docker, tag, {"Dockerfile": dockerfile.encode(), name: late.encode()})
    spec = ContainerSpec(name=f"wsk{relaying.invoker}_4_guest_late{kind}", kind="blackbox", image=tag, memory_mb=128)
    container = await relaying.create(spec)
    try:
        init = await container.initialize(init_body(code), timeout_s=20)
        assert init.status == 200, init
        run = await container.run({"value": {}}, timeout_s=20)
        assert run.status == 200, run.body
        assert json.loads(run.body)["body"] == {"path": f"/hello/{kind}"}
    finally:
        await container.destroy()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def unix_whisk(docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    data_dir = tmp_path_factory.mktemp("whisk-docker-api-relay")
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": "unix",
           "WHISK_INSTANCE": str(INVOKER), "WHISK_DATA_DIR": str(data_dir), "WHISK_POOL_PREWARM": "false",
           "WHISK_RUNTIMES_DIR": str(data_dir / "no-runtimes"),   # the images carry the clients themselves
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000"}
    async with whisk_server(env, log_path=str(data_dir / "whisk.log"), deadline_s=60) as url:
        yield url
    assert await labelled(docker, INVOKER) == [], "the stopped platform left containers behind"


@pytest_asyncio.fixture(loop_scope="session")
async def guest(unix_whisk: str) -> AsyncIterator[aiohttp.ClientSession]:
    """What tests/runtimes/test_bundled.py's API host test calls through: requests and the openwhisk npm client."""
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=unix_whisk, headers=basic_auth(uuid, key)) as session:
        yield session


async def test_many_calls_at_once_all_answered(guest: aiohttp.ClientSession) -> None:
    await put(guest, "many", {"kind": "nodejs:20", "code": NODE_MANY}, annotations=PROVIDE_KEY,
              limits={"timeout": 60_000})
    status, result, _ = await invoke(guest, "many", {"n": 40}, blocking="true", result="true")
    assert (status, result) == (200, {"answered": 40})


PY_OPERATOR_ROUTES = """
import base64, os, urllib.error, urllib.request
def main(args):
    key = base64.b64encode(os.environ["__OW_API_KEY"].encode()).decode()
    statuses = {}
    for path in ("/api/v1/namespaces", "/metrics", "/activation"):
        request = urllib.request.Request(os.environ["__OW_API_HOST"] + path, headers={"Authorization": "Basic " + key})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                statuses[path] = answer.status
        except urllib.error.HTTPError as error:
            statuses[path] = error.code
    return {"url": os.environ["__OW_API_HOST"], "statuses": statuses}
"""


async def test_relayed_to_an_actions_port_the_calls_are_an_actions(
        docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """As deploy/ relays from an invoker on another host: to the controller's actions port, each connection naming
    its container first. The action's own routes answer, the operators' refuse it (api/actions_port.py)."""
    data_dir = tmp_path_factory.mktemp("whisk-docker-actions-port")
    actions_port = free_port()
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": "unix",
           "WHISK_INSTANCE": str(ACTIONS_PORT_INVOKER), "WHISK_DATA_DIR": str(data_dir), "WHISK_POOL_PREWARM": "false",
           "WHISK_RUNTIMES_DIR": str(data_dir / "no-runtimes"), "WHISK_ACTIONS_PORT": str(actions_port),
           "WHISK_DOCKER_API_UPSTREAM": f"http://127.0.0.1:{actions_port}", "WHISK_DOCKER_API_PROXY_PROTOCOL": "true"}
    uuid, key = GUEST_AUTH.split(":")
    async with whisk_server(env, log_path=str(data_dir / "whisk.log"), deadline_s=60) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as guest:
        await put(guest, "operator-routes", {"kind": "python:3.11", "code": PY_OPERATOR_ROUTES},
                  annotations=PROVIDE_KEY)
        status, result, _ = await invoke(guest, "operator-routes", {}, blocking="true", result="true")
        assert status == 200, result
        assert result == {"url": f"http://127.0.0.1:{actions_port}",
                          "statuses": {"/api/v1/namespaces": 200, "/metrics": 403, "/activation": 403}}
        async with guest.get("/metrics") as answer:          # the API's own port: an operator on the loopback
            assert answer.status == 200
    assert await labelled(docker, ACTIONS_PORT_INVOKER) == [], "the stopped platform left containers behind"


async def test_on_ipv6s_loopback_the_calls_are_still_an_actions(
        docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A standalone server on ::1: relayed to ::1, every container's call came from ::1, a local client's, and read
    /metrics; the relay now reaches it on the IPv4 loopback, from the container's own address."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    data_dir = tmp_path_factory.mktemp("whisk-docker-ipv6")
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": "unix", "WHISK_HOST": "::1",
           "WHISK_INSTANCE": str(IPV6_INVOKER), "WHISK_DATA_DIR": str(data_dir), "WHISK_POOL_PREWARM": "false",
           "WHISK_RUNTIMES_DIR": str(data_dir / "no-runtimes")}
    uuid, key = GUEST_AUTH.split(":")
    async with whisk_server(env, log_path=str(data_dir / "whisk.log"), deadline_s=60) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as guest:
        assert url.startswith("http://[::1]:")
        await put(guest, "operator-routes", {"kind": "python:3.11", "code": PY_OPERATOR_ROUTES},
                  annotations=PROVIDE_KEY)
        status, result, _ = await invoke(guest, "operator-routes", {}, blocking="true", result="true")
        assert status == 200, result
        assert result == {"url": "http://127.0.0.1:3233",
                          "statuses": {"/api/v1/namespaces": 200, "/metrics": 403, "/activation": 403}}
    assert await labelled(docker, IPV6_INVOKER) == [], "the stopped platform left containers behind"
