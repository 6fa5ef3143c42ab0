"""The docker:// factory on a real dockerd: orphans of a killed platform, name reuse, start-up line, daemon
faults, and the image build script's idempotence."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import textwrap
from pathlib import Path

import aiodocker
import pytest

from tests.docker.conftest import _INVOKERS, init_body, labelled, python_spec
from tests.support.docker_daemon import DockerDaemon, build_images
from whisk.containers import cpus
from whisk.containers.base import ContainerError
from whisk.containers.docker.factory import DockerContainerFactory, docker_host
from whisk.containers.docker.security import UIDS_PER_INVOKER, action_uid, user

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]

# A platform that makes one container and then waits to be killed.
PLATFORM = textwrap.dedent("""
    import asyncio, sys
    from whisk.containers.docker.factory import DockerContainerFactory
    from tests.docker.conftest import python_spec
    async def main(url, invoker):
        factory = DockerContainerFactory(url, invoker_instance=invoker)
        container = await factory.create(python_spec(invoker))
        print(container.id, container.endpoint.socket, flush=True)
        await asyncio.Event().wait()
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


async def test_orphans_of_a_killed_platform_are_removed(docker_daemon: DockerDaemon, docker_images: str,
                                                        docker: aiodocker.Docker) -> None:
    invoker, bystander_invoker = next(_INVOKERS), next(_INVOKERS)
    url = f"docker://{docker_daemon.socket}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PLATFORM, url, str(invoker), cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    orphan, socket = line.decode().split()
    assert await labelled(docker, invoker) == [orphan]          # SIGKILL left it running
    assert os.path.exists(os.path.dirname(socket))

    async with DockerContainerFactory(url, invoker_instance=bystander_invoker) as other:
        bystander = await other.create(python_spec(bystander_invoker))
        async with DockerContainerFactory(url, invoker_instance=invoker) as restarted:
            await restarted.cleanup()
        assert await labelled(docker, invoker) == []
        assert not os.path.exists(os.path.dirname(socket))        # its folder went with it
        assert await labelled(docker, bystander_invoker) == [bystander.id]    # another invoker's is untouched
    assert await labelled(docker, bystander_invoker) == []      # close() destroyed what it made


async def test_a_name_left_behind_is_reused(factory: DockerContainerFactory, docker: aiodocker.Docker) -> None:
    first = await factory.create(python_spec(factory.invoker, n=1))
    second = await factory.create(python_spec(factory.invoker, n=1))        # a restarted invoker counts from 1
    assert await labelled(docker, factory.invoker) == [second.id]
    assert (await second.initialize(init_body("def main(a):\n    return a\n"), timeout_s=10)).status == 200
    await first.destroy()                                        # already gone: no error
    await second.destroy()


async def test_a_user_is_never_shared_by_two_live_containers(factory: DockerContainerFactory,
                                                             docker: aiodocker.Docker) -> None:
    """The users come from a counter that wraps after 65,536 containers (days of cold starts): one still running
    then (a warm container in steady use) keeps its user to itself (security.py: per-uid kernel limits)."""
    async def user_of(container) -> str:
        return (await docker.containers.container(container.id).show())["Config"]["User"]

    old = await factory.create(python_spec(factory.invoker, n=1))
    factory._serial = itertools.count(UIDS_PER_INVOKER)         # the counter wraps to old's user next
    new = await factory.create(python_spec(factory.invoker, n=2))
    try:
        assert await user_of(new) != await user_of(old)
        await old.destroy()                                      # its user is free again once it is gone
        factory._serial = itertools.count(UIDS_PER_INVOKER * 2)
        again = await factory.create(python_spec(factory.invoker, n=3))
        assert await user_of(again) == user(action_uid(factory.invoker, 0))
        await again.destroy()
    finally:
        await new.destroy()
        await old.destroy()


async def test_describe_and_url_forms(factory: DockerContainerFactory) -> None:
    line = factory.describe()
    assert "docker" in line and "API 1." in line and "networking unix" in line and "WHISK_CONTAINERS" in line
    assert docker_host("docker://") is None
    assert docker_host("docker:///var/run/docker.sock") == "unix:///var/run/docker.sock"
    assert docker_host("docker://127.0.0.1:2375") == "tcp://127.0.0.1:2375"
    with pytest.raises(ValueError):
        DockerContainerFactory("docker://", network="overlay")


async def test_daemon_that_does_not_answer(tmp_path: Path) -> None:
    factory = DockerContainerFactory(f"docker://{tmp_path}/no-docker.sock", invoker_instance=next(_INVOKERS))
    with pytest.raises(ContainerError, match="does not answer"):
        await factory.start()
    with pytest.raises(ContainerError):
        await factory.create(python_spec(factory.invoker))
    with pytest.raises(ContainerError):
        await factory.cleanup()
    await factory.close()


async def test_image_build_is_skipped_when_nothing_changed(docker_daemon: DockerDaemon, docker_images: str) -> None:
    again = await build_images(docker_daemon)
    assert again.count("is up to date") == 5, again
    assert "built " not in again and "imported " not in again, again


async def test_confine_updates_running_containers_and_starts_new_ones_there(factory: DockerContainerFactory,
                                                                            docker: aiodocker.Docker) -> None:
    """invoker/loop_core.py keeps containers off the event loop's CPU: docker's CpusetCpus of each container, set
    on the running ones and given to those made afterwards."""
    allowed = cpus.allowed()
    narrow = allowed - {min(allowed)} or allowed
    first = await factory.create(python_spec(factory.invoker, n=1))
    await factory.confine(narrow)
    later = await factory.create(python_spec(factory.invoker, n=2))

    async def cpuset(made) -> str:
        return (await (await docker.containers.get(made.id)).show())["HostConfig"]["CpusetCpus"]

    assert [await cpuset(first), await cpuset(later)] == [cpus.text(narrow)] * 2
    await factory.confine(allowed)
    assert [await cpuset(first), await cpuset(later)] == [cpus.text(allowed)] * 2
    await first.destroy()
    await later.destroy()
