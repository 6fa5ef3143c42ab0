"""The scenarios of tests/runtimes/test_bundled.py with every action in a container of the session's private daemon:
the images carry the packages OpenWhisk's runtime images bundle, and none of whisk's own. Host networking, so that
the actions reach the API host on loopback (`unix`, the default, gives containers no network at all)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiodocker
import aiohttp
import pytest
import pytest_asyncio

from tests.docker.conftest import labelled
from tests.runtimes.test_bundled import (  # noqa: F401
    test_an_action_calls_the_api_host_with_its_key,
    test_node_actions_may_run_the_garbage_collector,
    test_node_actions_require_what_openwhisk_bundles_and_not_whisks_own,
    test_node_es_modules_import_what_openwhisk_bundles,
    test_python_actions_import_what_openwhisk_bundles_and_not_whisks_own,
    test_the_ow_variables_follow_openwhisk,
)
from tests.support.docker_daemon import DockerDaemon
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server

pytestmark = pytest.mark.docker

INVOKER = 7          # an instance of its own: the other docker tests' containers are not ours


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bundled_whisk(docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker,
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    data_dir = tmp_path_factory.mktemp("whisk-docker-bundled")
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": "host",
           "WHISK_INSTANCE": str(INVOKER), "WHISK_DATA_DIR": str(data_dir),
           # no process:// environments here: the images must carry everything themselves
           "WHISK_RUNTIMES_DIR": str(data_dir / "no-runtimes"),
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000"}
    async with whisk_server(env, log_path=str(data_dir / "whisk.log"), deadline_s=60) as url:
        yield url
    assert await labelled(docker, INVOKER) == [], "the stopped platform left containers behind"


@pytest_asyncio.fixture(loop_scope="session")
async def guest(bundled_whisk: str) -> AsyncIterator[aiohttp.ClientSession]:
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=bundled_whisk, headers=basic_auth(uuid, key)) as session:
        yield session
