"""A Docker daemon that stops and comes back under the platform: clear errors meanwhile, then work as before."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiodocker
import pytest

from tests.docker.conftest import _INVOKERS, init_body, labelled, python_spec
from tests.support.docker_daemon import build_images, start_dockerd, stop_dockerd
from whisk.containers.base import ContainerError, ContainerGone
from whisk.containers.docker.factory import DockerContainerFactory

pytestmark = pytest.mark.docker

CODE = "def main(a):\n    return {'n': a.get('n')}\n"


async def test_daemon_restart_under_the_platform(docker_images: str) -> None:
    # A daemon of its own: stopping the session's would disturb the other tests.
    root = Path(tempfile.mkdtemp(prefix="whisk-dockerd-", dir="/tmp"))
    daemon = await start_dockerd(root)
    invoker = next(_INVOKERS)
    try:
        await build_images(daemon)                      # imports the cached root file systems
        async with DockerContainerFactory(f"docker://{daemon.socket}", invoker_instance=invoker) as factory:
            old = await factory.create(python_spec(invoker, n=1))
            idle = await factory.create(python_spec(invoker, n=3))
            assert (await old.initialize(init_body(CODE), timeout_s=10)).status == 200
            assert (await old.run({"value": {"n": 1}}, timeout_s=10)).status == 200

            await stop_dockerd(daemon, wipe=False)      # containers stop with the daemon (no live-restore)
            with pytest.raises(ContainerError):
                await factory.create(python_spec(invoker, n=2))
            try:
                reply = await old.run({"value": {"n": 2}}, timeout_s=10)
                assert reply.status is None, reply      # no answer: the proxy is gone
            except ContainerError:
                pass                                    # or Docker could not even be asked why
            with pytest.raises(ContainerError):         # the pool removes one while the daemon is away
                await idle.destroy()

            daemon = await start_dockerd(root)
            with pytest.raises(ContainerGone):          # nothing reached it: the pool runs the job elsewhere
                await old.run({"value": {"n": 3}}, timeout_s=10)
            new = await factory.create(python_spec(invoker, n=2))
            async with aiodocker.Docker(url=daemon.url) as docker:  # not left on the daemon until the next start
                assert idle.id not in await labelled(docker, invoker)
            assert (await new.initialize(init_body(CODE), timeout_s=10)).status == 200
            assert (await new.run({"value": {"n": 4}}, timeout_s=10)).status == 200
            await factory.cleanup()                     # the stopped one and the new one
            async with aiodocker.Docker(url=daemon.url) as docker:
                assert await labelled(docker, invoker) == []
            await old.destroy()
            await new.destroy()
    finally:
        await stop_dockerd(daemon)
