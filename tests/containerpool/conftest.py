"""Fixtures for the container pool tests: real proxy processes under a private folder, and a leak check."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.containerpool.support import gone, proxies_under
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.runtimes.manifest import Manifest, load_manifest


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
    from whisk.containers.process.cgroups import MemoryCgroups
    probe = MemoryCgroups(9999)
    ok = probe.open()
    if os.path.isdir(probe.home):
        probe.close()
    return ok


@pytest_asyncio.fixture(loop_scope="session")
async def factory(proc_root: str, manifest: Manifest) -> AsyncIterator[ProcessContainerFactory]:
    """The backend as the platform picks it here: sandboxed, with a memory cgroup where one can be made (with
    WHISK_TEST_NO_CGROUPS=1, rlimits only, as where the cgroup hierarchy is read-only)."""
    use_cgroups = False if os.environ.get("WHISK_TEST_NO_CGROUPS") == "1" else None
    async with ProcessContainerFactory(manifest, root_dir=proc_root, use_cgroups=use_cgroups) as made:
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


@pytest_asyncio.fixture(loop_scope="session")
async def open_factory(proc_root: str, manifest: Manifest) -> AsyncIterator[ProcessContainerFactory]:
    """The backend unconfined (WHISK_TRUST_ALL_CODE), for tests whose actions share files or pids with the test."""
    async with ProcessContainerFactory(manifest, root_dir=proc_root, sandbox=False) as made:
        yield made
        pids = made.pids
    assert [p for p in pids if not gone(p)] == [] and made.pids == []
