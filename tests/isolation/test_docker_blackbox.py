"""A tenant's blackbox image under `docker://` gets no host folder it could write to, whatever its labels say.

In `unix` (and `host`) networking an image that its label says honours WHISK_PROXY_SOCKET (`whisk.proxy-env`: ours,
and every image built FROM ours) is given the socket folder itself, writable until its socket exists. The runtime
images make the socket before any action code runs; a blackbox image's own entrypoint is the tenant's code and runs
first: a descriptor it opens there outlives the folder's lock (the invoker removes the file, not the descriptor),
and it writes through it to the invoker's disk, past the container's memory, /tmp and log limits. A tenant's image
must therefore run behind the relay, as any other image that only listens on 8080 does.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator

import aiodocker
import pytest
import pytest_asyncio

from tests.support.docker_daemon import DockerDaemon
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import INVOKER_LABEL, DockerContainerFactory

pytestmark = pytest.mark.docker

PYTHON_IMAGE = "whisk/action-python-v3.11:latest"
KEEPER = "whisk-test/keeps-a-descriptor:latest"
INVOKER = 31

# The image's entrypoint (tenant code, before any /init): a file opened in the socket folder, if it has one, kept
# open across the exec of our proxy.
KEEP = b"""
import os
socket = os.environ.get("WHISK_PROXY_SOCKET")
if socket:
    fd = os.open(os.path.join(os.path.dirname(socket), "kept"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)
    os.environ["KEPT_FD"] = str(fd)
os.execv("/usr/bin/python3", ["python3", "/opt/whisk/proxy.py"])
"""

# The action, after the folder's lock: what it can still write through that descriptor.
WRITE = """
import os
def main(args):
    fd = int(os.environ.get("KEPT_FD", "-1"))
    try:
        written = sum(os.write(fd, b"x" * 65536) for _ in range(16))
    except OSError as exc:
        return {"written": "denied: " + str(exc)}
    return {"written": "allowed: " + str(written)}
"""


async def _build(docker: aiodocker.Docker, tag: str, files: dict[str, bytes]) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    await docker.images.build(fileobj=context, encoding="identity", tag=tag, rm=True, forcerm=True)


@pytest_asyncio.fixture(loop_scope="session")
async def factory(docker_daemon: DockerDaemon, docker_images: str) -> AsyncIterator[DockerContainerFactory]:
    async with aiodocker.Docker(url=docker_daemon.url) as docker:
        dockerfile = f'FROM {PYTHON_IMAGE}\nCOPY keep.py /opt/keep.py\nCMD ["python3", "/opt/keep.py"]\n'
        await _build(docker, KEEPER, {"Dockerfile": dockerfile.encode(), "keep.py": KEEP})
        async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=INVOKER,
                                          network="unix") as made:
            yield made
        left = await docker.containers.list(all=True, filters={"label": [f"{INVOKER_LABEL}={INVOKER}"]})
        assert left == [], "close() left containers behind"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_blackbox_image_built_from_ours_writes_nothing_to_the_invokers_disk(factory):
    spec = ContainerSpec(name=f"wsk{INVOKER}_1_mallory_keeper", kind="blackbox", image=KEEPER, memory_mb=128)
    container = await factory.create(spec)
    try:
        init = await container.initialize({"name": "keeper", "main": "main", "code": WRITE, "binary": False,
                                           "env": {}}, timeout_s=30)
        assert init.status == 200, init
        run = await container.run({"value": {}}, timeout_s=30)
        assert run.status == 200, run
        written = json.loads(run.body)["written"]
        assert written.startswith("denied: "), f"the image wrote to the invoker's disk after the lock: {written}"
    finally:
        await container.destroy()
