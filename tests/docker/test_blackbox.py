"""Blackbox actions on a real dockerd: an image that only knows port 8080 (behind the relay), an image built FROM
our runtime (told where to listen), zip code for it, and images that are not there."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import aiodocker
import pytest

from tests.docker.conftest import BLACKBOX, DERIVED, init_body
from tests.support.processes import free_port
from whisk.containers.base import LOG_COLLECTION_FAILED, ContainerError, ContainerGone, ContainerSpec, ImageError
from whisk.containers.docker.factory import DockerContainerFactory

pytestmark = pytest.mark.docker

def blackbox(invoker: int, image: str, n: int = 1) -> ContainerSpec:
    return ContainerSpec(name=f"wsk{invoker}_{n}_guest_bb", kind="blackbox", image=image, memory_mb=128)


async def relays_of(docker: aiodocker.Docker, name: str) -> list[dict]:
    found = await docker.containers.list(all=True, filters={"label": [f"whisk.relay-for={name}"]})
    return [await c.show() for c in found]


@pytest.mark.parametrize("mode", ["unix", "host"])
async def test_image_that_only_knows_port_8080(mode: str, factory: DockerContainerFactory,
                                               host_factory: DockerContainerFactory, blackbox_images: None,
                                               docker: aiodocker.Docker) -> None:
    made = factory if mode == "unix" else host_factory
    container = await made.create(blackbox(made.invoker, BLACKBOX))
    info = await docker.containers.container(container.id).show()
    assert info["HostConfig"]["NetworkMode"] == "none"          # never host networking for a foreign image
    assert not any(e.startswith("WHISK_PROXY_") for e in info["Config"]["Env"])
    [relay] = await relays_of(docker, container.name)
    assert relay["HostConfig"]["NetworkMode"] == f"container:{container.id}"
    assert relay["Config"]["Labels"]["whisk.invoker"] == str(made.invoker)

    init = await container.initialize({"name": "bb", "main": "main", "code": "skeleton", "binary": False,
                                       "env": {}}, timeout_s=10)
    assert init.status == 200, init
    run = await container.run({"value": {"n": 1}}, timeout_s=10)
    assert json.loads(run.body) == {"blackbox": True, "value": {"n": 1}, "code": "skeleton", "proxy_socket": None}
    lines = await container.logs(10 << 20, wait_for_sentinel=True)
    assert [line[31:] for line in lines] == ['stdout: blackbox ran with {"n": 1}']

    await container.suspend()
    await container.resume()
    run = await container.run({"value": {"n": 2}}, timeout_s=10)
    assert json.loads(run.body)["value"] == {"n": 2}
    await container.logs(10 << 20, wait_for_sentinel=True)
    await container.destroy()
    assert await relays_of(docker, container.name) == []


async def test_an_image_behind_the_relay_that_died_idle_is_gone(factory: DockerContainerFactory,
                                                               blackbox_images: None,
                                                               docker: aiodocker.Docker) -> None:
    """Its relay lives on and takes the connection, then drops it, having nothing to pass it to: nothing of the job
    reached the action, so the pool gives it another container (ContainerGone), as without a relay."""
    container = await factory.create(blackbox(factory.invoker, BLACKBOX))
    try:
        init = await container.initialize({"name": "bb", "main": "main", "code": "skeleton", "binary": False,
                                           "env": {}}, timeout_s=10)
        assert init.status == 200, init
        await docker.containers.container(container.id).kill()      # an OOM kill or a docker kill, while idle
        await docker.containers.container(container.id).wait(condition="not-running")
        with pytest.raises(ContainerGone):
            await container.run({"value": {"n": 1}}, timeout_s=10)
    finally:
        await container.destroy()


async def test_missing_sentinels(factory: DockerContainerFactory, blackbox_images: None) -> None:
    container = await factory.create(blackbox(factory.invoker, BLACKBOX))
    assert (await container.initialize(init_body("x"), timeout_s=10)).status == 200
    run = await container.run({"value": {"no_sentinels": True}}, timeout_s=10)
    assert run.status == 200
    lines = await container.logs(10 << 20, wait_for_sentinel=True)      # gives up after 2 s without output
    assert lines[0].endswith("stdout: blackbox ran with {\"no_sentinels\": true}")
    assert lines[-1].endswith(f"stderr: {LOG_COLLECTION_FAILED}")
    await container.destroy()


async def test_image_built_from_our_runtime(factory: DockerContainerFactory, blackbox_images: None,
                                            docker: aiodocker.Docker) -> None:
    container = await factory.create(blackbox(factory.invoker, DERIVED))
    # It inherits whisk.proxy-env, but a tenant's image gets no socket folder: our proxy in it listens on 8080,
    # behind the relay (tests/isolation/test_docker_blackbox.py says why).
    assert len(await relays_of(docker, container.name)) == 1
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("__main__.py", "import os\ndef main(a):\n    return {'greeting': os.environ['GREETING']}\n")
    code = base64.b64encode(archive.getvalue()).decode()
    assert (await container.initialize(init_body(code, binary=True), timeout_s=10)).status == 200
    run = await container.run({"value": {}}, timeout_s=10)
    assert json.loads(run.body) == {"greeting": "derived"}
    await container.destroy()


async def test_absent_images(factory: DockerContainerFactory) -> None:
    # A registry on loopback where nothing listens: the pull fails at once and never leaves the machine.
    absent = f"127.0.0.1:{free_port()}/whisk-test/absent:latest"
    with pytest.raises(ImageError, match=r"^Failed to pull container image '127\.0\.0\.1:\d+/whisk-test/absent"):
        await factory.create(blackbox(factory.invoker, absent))
    # A missing runtime image is the platform's fault, not the developer's, and is not pulled.
    spec = ContainerSpec(name=f"wsk{factory.invoker}_2_guest_x", kind="python:3.11", image=absent, memory_mb=128)
    with pytest.raises(ContainerError, match="make images") as caught:
        await factory.create(spec)
    assert not isinstance(caught.value, ImageError)
