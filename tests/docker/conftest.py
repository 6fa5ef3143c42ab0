"""Fixtures for the docker:// backend's tests: a factory per test, on the session's private dockerd, with an
invoker instance of its own, checked to leave no container behind."""

from __future__ import annotations

import io
import itertools
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiodocker
import pytest_asyncio

from tests.support.docker_daemon import DockerDaemon
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import INVOKER_LABEL, DockerContainerFactory

PYTHON_IMAGE = "whisk/action-python-v3.11:latest"
NODEJS_IMAGE = "whisk/action-nodejs-v20:latest"
BLACKBOX = "whisk-test/blackbox:latest"              # knows nothing of whisk: listens on 8080 (blackbox/)
DERIVED = "whisk-test/derived-python:latest"         # FROM our Python runtime, so it honours WHISK_PROXY_*
_INVOKERS = itertools.count(100)


def python_spec(invoker: int, n: int = 1, memory_mb: int = 256, name: str = "guest_hello") -> ContainerSpec:
    return ContainerSpec(name=f"wsk{invoker}_{n}_{name}", kind="python:3.11", image=PYTHON_IMAGE,
                         memory_mb=memory_mb, env={"__OW_API_HOST": "http://127.0.0.1:3233"})


def init_body(code: str, main: str = "main", binary: bool = False) -> dict:
    return {"name": "hello", "main": main, "code": code, "binary": binary, "env": {}}


async def labelled(docker: aiodocker.Docker, invoker: int) -> list[str]:
    found = await docker.containers.list(all=True, filters={"label": [f"{INVOKER_LABEL}={invoker}"]})
    return [c.id for c in found]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def docker(docker_daemon: DockerDaemon) -> AsyncIterator[aiodocker.Docker]:
    """A plain client of the private daemon, to look at what the adapter did."""
    async with aiodocker.Docker(url=docker_daemon.url) as client:
        yield client


async def _factory(docker_daemon: DockerDaemon, docker: aiodocker.Docker,
                   network: str) -> AsyncIterator[DockerContainerFactory]:
    invoker = next(_INVOKERS)
    async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=invoker,
                                      network=network, user_memory_mb=2048) as factory:
        yield factory
    assert await labelled(docker, invoker) == [], "close() left containers behind"


@pytest_asyncio.fixture(loop_scope="session")
async def factory(docker_daemon: DockerDaemon, docker_images: str,
                  docker: aiodocker.Docker) -> AsyncIterator[DockerContainerFactory]:
    """A unix-socket factory (the default networking here)."""
    async for made in _factory(docker_daemon, docker, "unix"):
        yield made


@pytest_asyncio.fixture(loop_scope="session")
async def host_factory(docker_daemon: DockerDaemon, docker_images: str,
                       docker: aiodocker.Docker) -> AsyncIterator[DockerContainerFactory]:
    """A host-networking factory: each proxy on its own 127.0.0.1 port."""
    async for made in _factory(docker_daemon, docker, "host"):
        yield made


async def build(docker: aiodocker.Docker, tag: str, files: dict[str, bytes]) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    await docker.images.build(fileobj=context, encoding="identity", tag=tag, rm=True, forcerm=True)
    await docker.images.inspect(tag)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def blackbox_images(docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker) -> None:
    here = Path(__file__).parent / "blackbox"
    await build(docker, BLACKBOX, {name: (here / name).read_bytes() for name in ("Dockerfile", "server.py")})
    await build(docker, DERIVED, {"Dockerfile": f"FROM {PYTHON_IMAGE}\nENV GREETING=derived\n".encode()})
