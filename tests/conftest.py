"""Session fixtures: one real whisk server on loopback, shared by the API, CLI and client tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.support.processes import GUEST_AUTH, basic_auth, free_port, whisk_server

# Fixture modules for the real backends (dockerd, the Kafka-protocol broker, pouchdb-server, nginx) register here.
pytest_plugins: list[str] = ["tests.support.couchdb_server", "tests.support.kafka_broker",
                             "tests.support.docker_daemon", "tests.support.consul_double"]
pytest_plugins += ["tests.support.nginx"]

# Servers the tests start with a copy of this environment keep off the playground's default port (3232), which a
# developer's own `make run` may hold; `whisk_server` gives each server a port of its own besides.
os.environ.setdefault("WHISK_PLAYGROUND_PORT", str(free_port()))


def pytest_configure(config: pytest.Config) -> None:
    """Every temporary folder and file this run makes (tempfile's, in this process) goes under one folder, removed
    when the run ends: the test servers' data folders, databases, journals and logs stayed in /tmp, about a
    thousand folders a run. Set here, before any test module is imported, so that module-level ones go there too."""
    tempfile.tempdir = tempfile.mkdtemp(prefix="whisk-tests-")
    # Others may pass through, as through /tmp: nginx's workers (nobody, when root starts nginx) reach their temp
    # folders, and action containers' users their own folders, through here.
    os.chmod(tempfile.tempdir, 0o755)
    config.stash[TEMP_ROOT] = tempfile.tempdir


def pytest_unconfigure(config: pytest.Config) -> None:
    root = config.stash.get(TEMP_ROOT, None)
    if root is not None:
        tempfile.tempdir = None
        shutil.rmtree(root, ignore_errors=True)


TEMP_ROOT = pytest.StashKey[str]()

# Under CI=true a missing backend is a failure, never a skip.
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Skip (on a developer machine) or fail (in CI) a test whose backend is not available."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI=true makes that a failure")
    pytest.skip(f"{what} is not available")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def whisk_url() -> AsyncIterator[str]:
    """A standalone whisk with an in-memory store, raised throttles and the guest subject."""
    log = os.path.join(tempfile.gettempdir(), f"whisk-test-{os.getpid()}.log")
    env = {
        "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-test-"),
        "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000",
        "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000",
        "WHISK_LIMIT_FIRES_PER_MINUTE": "100000",
        "WHISK_AUTH_FAILURES_PER_MINUTE": "100000",   # the suite tries many bad keys from one address
    }
    async with whisk_server(env, log_path=log) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def guest(whisk_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session authenticated as guest, with the server's URL as base."""
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=whisk_url, headers=basic_auth(uuid, key)) as session:
        yield session
