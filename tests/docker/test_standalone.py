"""Standalone whisk with WHISK_CONTAINERS=docker://: the invoke scenarios of tests/invoke, unchanged, with every
action in a Docker container of the session's private daemon; then blackbox actions through the API, and a server
that stops with no container left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiodocker
import aiohttp
import pytest
import pytest_asyncio

from tests.docker.conftest import BLACKBOX, labelled

# The Python and Node.js scenarios of the invoke tests, collected here again with the docker-backed `guest` below.
# Not the warm-reuse one: its second invoke may arrive while the first container still collects its logs (the
# blocking answer goes out first, as in OpenWhisk), which through Docker's logs API takes a few ms; the pool then
# rightly starts another container. test_warm_reuse below waits for the first record instead.
from tests.invoke.test_invoke import (  # noqa: F401
    invoke,
    put,
    test_application_error_is_502_with_the_error,
    test_blocking_wait_runs_out_with_202_and_the_record_arrives,
    test_developer_errors_and_the_next_invoke_works,
    test_final_parameters_and_bad_requests,
    test_node_result_only_and_non_blocking,
    test_python_blocking_invoke_returns_the_activation,
    test_timeout_is_a_developer_error_with_the_annotation,
    test_wait_time_counts_from_when_the_request_came,
)
from tests.support.docker_daemon import DockerDaemon
from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, whisk_server

pytestmark = pytest.mark.docker

INVOKER = 0          # the standalone invoker's instance; the other docker tests use 100 and up


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def docker_whisk(docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    data_dir = tmp_path_factory.mktemp("whisk-docker")
    log = str(data_dir / "whisk.log")             # kept with pytest's temporary folders, for a failed run
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": "unix",
           "WHISK_INSTANCE": str(INVOKER), "WHISK_DATA_DIR": str(data_dir),
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000",
           "WHISK_POOL_MEMORY_MB": "2048"}
    async with whisk_server(env, log_path=log, deadline_s=60) as url:
        yield url
    assert await labelled(docker, INVOKER) == [], "the stopped platform left containers behind"


@pytest_asyncio.fixture(loop_scope="session")
async def guest(docker_whisk: str) -> AsyncIterator[aiohttp.ClientSession]:
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=docker_whisk, headers=basic_auth(uuid, key)) as session:
        yield session


async def test_actions_run_in_labelled_containers(guest: aiohttp.ClientSession, docker: aiodocker.Docker) -> None:
    await put(guest, "py-where", {"kind": "python:3", "code": "import os\ndef main(a):\n    return dict(os.environ)\n"})
    status, env, _ = await invoke(guest, "py-where", blocking="true", result="true")
    assert status == 200, env
    assert env["WHISK_PROXY_SOCKET"] == "/run/whisk/proxy.sock" and env["HOSTNAME"]      # inside a container
    found = await docker.containers.list(filters={"label": [f"whisk.invoker={INVOKER}"]})
    names = [c["Names"][0] for c in found]
    assert any(name.startswith(f"/wsk{INVOKER}_") and name.endswith("_guest_pywhere") for name in names), names


async def test_warm_reuse(guest: aiohttp.ClientSession) -> None:
    code = "count = 0\ndef main(args):\n    global count\n    count += 1\n    return {'count': count}\n"
    await put(guest, "py-count", {"kind": "python:3", "code": code})
    _, first, _ = await invoke(guest, "py-count", blocking="true")
    await record_of(guest, first["activationId"], complete=True)  # stored after its logs: the container is free
    _, second, _ = await invoke(guest, "py-count", blocking="true")
    assert first["response"]["result"] == {"count": 1} and second["response"]["result"] == {"count": 2}
    notes = [{a["key"] for a in body["annotations"]} for body in (first, second)]
    assert "initTime" in notes[0] and "initTime" not in notes[1]


async def test_blackbox_actions(guest: aiohttp.ClientSession, blackbox_images: None) -> None:
    await put(guest, "bb", {"kind": "blackbox", "image": BLACKBOX})
    status, body, _ = await invoke(guest, "bb", {"x": 1}, blocking="true", result="true")
    assert status == 200, body
    assert body["blackbox"] is True and body["value"] == {"x": 1}
    absent = f"127.0.0.1:{free_port()}/whisk-test/absent:latest"        # a pull that fails on loopback
    await put(guest, "bb-absent", {"kind": "blackbox", "image": absent})
    status, body, _ = await invoke(guest, "bb-absent", blocking="true")
    assert status == 502, body
    assert body["response"]["status"] == "action developer error"
    assert body["response"]["result"] == {"error": f"Failed to pull container image '{absent}'."}

