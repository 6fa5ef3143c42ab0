"""A private dockerd for the Docker tests (docs/testing.md, Docker), and the runtime images built into it.

The session fixture installs nothing (`make test` does, through .ci/deps.sh). It starts dockerd on its own socket,
data root and exec root, with no iptables and no bridge, so it neither touches nor competes with any other daemon;
on teardown it removes every container first (a running one would make dockerd's shutdown wait out the stop
timeout), stops the daemon by its pid, unmounts what the daemon left behind and removes the folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiodocker
import aiohttp
import pytest_asyncio

from tests.conftest import missing

DOCKERD = "/usr/sbin/dockerd"
REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "config" / "runtimes" / "build.sh"


@dataclass(frozen=True, slots=True)
class DockerDaemon:
    root: Path
    pid: int
    process: asyncio.subprocess.Process | None = field(default=None, compare=False, repr=False)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"


def _fs_type(path: Path) -> str:
    """The file system type of the mount that holds `path` (longest mount point prefix in /proc/mounts)."""
    best, kind = "", ""
    target = str(path.resolve())
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype, *_ = line.split()
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, fstype
    return kind


async def _ping(socket: Path) -> bool:
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as session:
            async with session.get("http://localhost/_ping", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


async def start_dockerd(root: Path, deadline_s: float = 30.0) -> DockerDaemon:
    root.mkdir(parents=True, exist_ok=True)
    # overlay2 on top of overlayfs does not work (CI inside a container); vfs does, slowly (docs/testing.md, Docker).
    driver = "vfs" if _fs_type(root) == "overlay" else "overlay2"
    log = open(root / "dockerd.log", "ab")
    proc = await asyncio.create_subprocess_exec(
        DOCKERD, "--host", f"unix://{root}/docker.sock", "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
        "--iptables=false", "--ip6tables=false", "--bridge=none", f"--storage-driver={driver}",
        "--log-level=warn", stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
    log.close()
    daemon = DockerDaemon(root, proc.pid, proc)
    end = time.monotonic() + deadline_s
    while not await _ping(daemon.socket):
        if proc.returncode is not None or time.monotonic() > end:
            tail = daemon.log.read_text(errors="replace")[-2000:]
            await _stop(daemon)
            raise RuntimeError(f"dockerd did not start (exit {proc.returncode}):\n{tail}")
        await asyncio.sleep(0.05)
    return daemon


async def _stop(daemon: DockerDaemon, grace_s: float = 30.0) -> None:
    """SIGTERM the daemon we started (by its pid), wait, then SIGKILL."""
    proc = daemon.process
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


async def stop_dockerd(daemon: DockerDaemon, wipe: bool = True) -> None:
    """Remove the containers, stop the daemon; with wipe=False keep its data (images) for another start."""
    if wipe:
        try:
            async with aiodocker.Docker(url=daemon.url) as docker:
                for container in await docker.containers.list(all=True):
                    await container.delete(force=True)
        except aiodocker.DockerError:
            pass        # a daemon that no longer answers has no containers to remove
    await _stop(daemon)
    # dockerd leaves exec/netns/default (nsfs) mounted after every stop (docs/testing.md, Docker).
    prefix = str(daemon.root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = sorted((line.split()[1] for line in mounts if line.split()[1].startswith(prefix)), reverse=True)
    for point in points:
        umount = await asyncio.create_subprocess_exec("umount", "-l", point)
        await umount.wait()
    if wipe:
        shutil.rmtree(daemon.root, ignore_errors=True)


async def build_images(daemon: DockerDaemon) -> str:
    """Run config/runtimes/build.sh against the daemon; returns its output (it says what it built or skipped)."""
    env = dict(os.environ) | {"DOCKER_HOST": daemon.url}
    proc = await asyncio.create_subprocess_exec("bash", str(BUILD_SCRIPT), env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"config/runtimes/build.sh failed ({proc.returncode}):\n{text[-4000:]}")
    return text


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def docker_daemon() -> AsyncIterator[DockerDaemon]:
    """A private dockerd for this test session; skipped (or, under CI=true, failed) when it cannot run here."""
    if not os.path.exists(DOCKERD):
        missing("dockerd (Debian's docker.io; `make test` installs it)")
    if os.geteuid() != 0:
        missing("dockerd needs root to start")
    root = Path(tempfile.mkdtemp(prefix="whisk-dockerd-", dir="/tmp"))
    try:
        daemon = await start_dockerd(root)
    except RuntimeError as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing(f"a private dockerd: {exc}")
    names: list[object] = []
    try:
        yield daemon
        # Issue 5's target: the suite leaves no action container behind (`docker ps -a --filter label=whisk.invoker`).
        async with aiodocker.Docker(url=daemon.url) as docker:
            left = await docker.containers.list(all=True, filters={"label": ["whisk.invoker"]})
            names = [c._container.get("Names") for c in left]
    finally:
        await stop_dockerd(daemon)
    assert not names, f"action containers left behind by the test session: {names}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def docker_images(docker_daemon: DockerDaemon) -> str:
    """The runtime images, built once per session into the private daemon; returns the build script's output."""
    started = time.monotonic()
    output = await build_images(docker_daemon)
    print(f"runtime images ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return output
