"""A tenant's blackbox image under `docker://` gets nothing of the host's by its labels: no socket folder it could
write to, and no say in which host folders the invoker removes.

In `unix` (and `host`) networking an image that its label says honours WHISK_PROXY_SOCKET (`whisk.proxy-env`: ours,
and every image built FROM ours) is given the socket folder itself, writable until its socket exists. The runtime
images make the socket before any action code runs; a blackbox image's own entrypoint is the tenant's code and runs
first: a descriptor it opens there outlives the folder's lock (the invoker removes the file, not the descriptor),
and it writes through it to the invoker's disk, past the container's memory, /tmp and log limits. A tenant's image
must therefore run behind the relay, as any other image that only listens on 8080 does.

A container carries its image's labels unless created with others under the same names, and a restarted invoker
removes, as its user (root on a host), the folders its containers' `whisk.run-dir` and `whisk.api-dir` labels name.
A container made without a socket folder (`bridge` networking) or without an API socket (none to relay) got those
labels from the image: a tenant's image naming the data folder had it removed at the invoker's next start.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import AsyncIterator

import aiodocker
import pytest
import pytest_asyncio

from tests.support.docker_daemon import DockerDaemon
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import API_DIR_LABEL, INVOKER_LABEL, RUN_DIR_LABEL, DockerContainerFactory

pytestmark = pytest.mark.docker

PYTHON_IMAGE = "whisk/action-python-v3.11:latest"
KEEPER = "whisk-test/keeps-a-descriptor:latest"
NAMER = "whisk-test/names-a-folder:latest"
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


@pytest.mark.asyncio(loop_scope="session")
async def test_a_blackbox_images_labels_name_no_folder_the_invoker_removes(docker_daemon, docker_images, tmp_path):
    platform = tmp_path / "platform-data"                     # what the platform keeps: its store, say
    platform.mkdir()
    (platform / "whisk.db").write_bytes(b"every tenant's entities")
    async with aiodocker.Docker(url=docker_daemon.url) as docker:
        labels = f'LABEL {RUN_DIR_LABEL}="{platform}" {API_DIR_LABEL}="{platform}"\n'
        await _build(docker, NAMER, {"Dockerfile": f"FROM {PYTHON_IMAGE}\n{labels}".encode()})
        invoker = INVOKER + 1
        spec = ContainerSpec(name=f"wsk{invoker}_1_mallory_namer", kind="blackbox", image=NAMER, memory_mb=128)
        # No API host to relay: the container gets no API socket, as one in `bridge` networking gets no folder.
        async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=invoker,
                                          network="unix") as first:
            container = await first.create(spec)
            shown = await docker.containers.container(container.id).show()
            assert shown["Config"]["Labels"][API_DIR_LABEL] == ""        # the image's says nothing
            # The invoker dies with the container running; the next one of its instance cleans up at start.
            async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=invoker,
                                              network="unix") as restarted:
                await restarted.cleanup()
            await container.destroy()
    assert os.path.exists(platform / "whisk.db"), "the invoker removed a folder a tenant's image named"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_start_removes_no_folder_outside_its_run_folder(docker_daemon, docker_images, tmp_path):
    """A container an older whisk made from such an image, still on the daemon at the upgrade."""
    platform = tmp_path / "platform-data"
    platform.mkdir()
    (platform / "whisk.db").write_bytes(b"every tenant's entities")
    invoker = INVOKER + 2
    async with aiodocker.Docker(url=docker_daemon.url) as docker:
        await docker.containers.create({"Image": PYTHON_IMAGE, "Labels": {
            INVOKER_LABEL: str(invoker), RUN_DIR_LABEL: str(platform), API_DIR_LABEL: str(platform)}})
        async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=invoker,
                                          network="unix") as restarted:
            await restarted.cleanup()
            made_here = os.path.join(restarted.run_dir, "0123abcd")
            os.makedirs(made_here)
            await docker.containers.create({"Image": PYTHON_IMAGE, "Labels": {
                INVOKER_LABEL: str(invoker), RUN_DIR_LABEL: made_here, API_DIR_LABEL: ""}})
            await restarted.cleanup()
            assert not os.path.exists(made_here)                # its own folders it still removes
        assert await docker.containers.list(all=True, filters={"label": [f"{INVOKER_LABEL}={invoker}"]}) == []
    assert os.path.exists(platform / "whisk.db"), "the invoker removed a folder outside its run folder"
