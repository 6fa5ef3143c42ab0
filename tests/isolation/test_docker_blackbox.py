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

An image's `VOLUME` gets the container an anonymous volume on the daemon's disk unless something else is mounted
there: writable past the container's /tmp and memory limits, and kept on the daemon after the container is removed.
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

from tests.docker.conftest import build
from tests.support.docker_daemon import DockerDaemon
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import API_DIR_LABEL, INVOKER_LABEL, RUN_DIR_LABEL, DockerContainerFactory

pytestmark = pytest.mark.docker

PYTHON_IMAGE = "whisk/action-python-v3.11:latest"
KEEPER = "whisk-test/keeps-a-descriptor:latest"
NAMER = "whisk-test/names-a-folder:latest"
HOARDER = "whisk-test/declares-a-volume:latest"
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


@pytest_asyncio.fixture(loop_scope="session")
async def factory(docker_daemon: DockerDaemon, docker_images: str) -> AsyncIterator[DockerContainerFactory]:
    async with aiodocker.Docker(url=docker_daemon.url) as docker:
        dockerfile = f'FROM {PYTHON_IMAGE}\nCOPY keep.py /opt/keep.py\nCMD ["python3", "/opt/keep.py"]\n'
        await build(docker, KEEPER, {"Dockerfile": dockerfile.encode(), "keep.py": KEEP})
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
        await build(docker, NAMER, {"Dockerfile": f"FROM {PYTHON_IMAGE}\n{labels}".encode()})
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


# Writes twice the container's /tmp into the image's volume, a MB a file (a file is bounded by the fsize limit).
HOARD = """
def main(args):
    written = 0
    try:
        for n in range(2 * args["tmp_mb"]):
            with open(f"/hoard/{n}", "wb") as f:
                f.write(b"x" * (1 << 20))
            written += 1 << 20
    except OSError as exc:
        return {"hoarded": "denied: " + str(exc)}
    return {"hoarded": "allowed: " + str(written)}
"""


@pytest.mark.asyncio(loop_scope="session")
async def test_a_blackbox_images_volume_is_no_room_on_the_daemons_disk(docker_daemon, docker_images):
    invoker, tmp_mb = INVOKER + 3, 8
    async with aiodocker.Docker(url=docker_daemon.url) as docker:
        folder = io.BytesIO()                     # a folder any user may write, which the volume copies
        with tarfile.open(fileobj=folder, mode="w") as tar:
            info = tarfile.TarInfo("hoard")
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
        # Its API socket's folder too, where the invoker binds its own (read-only) over the volume.
        dockerfile = f'FROM {PYTHON_IMAGE}\nADD hoard.tar /\nVOLUME ["/hoard", "/run/whisk-api"]\n'
        await build(docker, HOARDER, {"Dockerfile": dockerfile.encode(), "hoard.tar": folder.getvalue()})
        volumes_before = {v["Name"] for v in (await docker.volumes.list())["Volumes"] or []}
        spec = ContainerSpec(name=f"wsk{invoker}_1_mallory_hoarder", kind="blackbox", image=HOARDER, memory_mb=128)
        async with DockerContainerFactory(f"docker://{docker_daemon.socket}", invoker_instance=invoker,
                                          network="unix", tmp_mb=tmp_mb, api_host="http://127.0.0.1:9") as factory:
            container = await factory.create(spec)
            try:
                init = await container.initialize({"name": "hoarder", "main": "main", "code": HOARD,
                                                   "binary": False, "env": {}}, timeout_s=30)
                assert init.status == 200, init
                run = await container.run({"value": {"tmp_mb": tmp_mb}}, timeout_s=30)
                hoarded = json.loads(run.body)["hoarded"]
            finally:
                await container.destroy()
        left = {v["Name"] for v in (await docker.volumes.list())["Volumes"] or []} - volumes_before
        for name in left:
            await (await docker.volumes.get(name)).delete()
    assert hoarded.startswith("denied: ") and "No space left" in hoarded, hoarded
    assert left == set(), "the container's volume stayed on the daemon"
