"""Fixtures for the container pool tests: real proxy processes under a private folder, and a leak check."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from whisk.containerpool.process import ProcessContainerFactory
from whisk.runtimes.manifest import Manifest, load_manifest


def proxies_under(root: str) -> list[int]:
    """Live processes (not zombies) whose environment names a socket under `root`: proxies and anything they
    started. Any left after the suite is a leak."""
    marker = f"WHISK_PROXY_SOCKET={root}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


def process_state(pid: int) -> str | None:
    """The one-letter state of a process ("T" when stopped), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def gone(pid: int) -> bool:
    return process_state(pid) in (None, "Z")


@pytest.fixture(scope="session")
def proc_root() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="wcpt-")
    yield root
    leaked = proxies_under(root)
    shutil.rmtree(root, ignore_errors=True)
    assert leaked == [], f"processes left behind by the container pool tests: {leaked}"


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return load_manifest()


def cgroups_writable() -> bool:
    from whisk.containerpool.cgroups import MemoryCgroups
    probe = MemoryCgroups(9999)
    ok = probe.open()
    if os.path.isdir(probe.home):
        probe.close()
    return ok


@pytest_asyncio.fixture(loop_scope="session")
async def factory(proc_root: str, manifest: Manifest) -> AsyncIterator[ProcessContainerFactory]:
    """The backend as the platform picks it here (a memory cgroup where one can be made)."""
    async with ProcessContainerFactory(manifest, root_dir=proc_root) as made:
        yield made
        pids = made.pids
    assert [p for p in pids if not gone(p)] == [] and made.pids == []


@pytest_asyncio.fixture(loop_scope="session")
async def rlimit_factory(proc_root: str, manifest: Manifest) -> AsyncIterator[ProcessContainerFactory]:
    """The backend without cgroups, as it runs where the cgroup hierarchy is read-only."""
    async with ProcessContainerFactory(manifest, root_dir=proc_root, use_cgroups=False) as made:
        yield made
        pids = made.pids
    assert [p for p in pids if not gone(p)] == [] and made.pids == []
