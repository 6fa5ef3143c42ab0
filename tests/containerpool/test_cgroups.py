"""The memory cgroups of `process://` containers across a restart that reuses the platform's pid."""

from __future__ import annotations

import os

import pytest

from tests.containerpool.conftest import cgroups_writable
from whisk.containers.process.cgroups import MemoryCgroups

pytestmark = pytest.mark.skipif(not cgroups_writable(), reason="no writable v1 memory cgroup here")


def test_a_group_left_by_an_earlier_process_with_this_pid_is_emptied_at_open() -> None:
    """A server restarted in a container has its predecessor's pid, so its group's name: the groups of the killed
    one's containers were still there, and a new container of the same number and action could not get its own."""
    earlier = MemoryCgroups(9998)
    assert earlier.open()
    earlier.create("1-guest_hello", 256 << 20)          # killed: never closed
    again = MemoryCgroups(9998)
    again.home = earlier.home                           # the same pid, the same factory count
    try:
        assert again.open()
        assert not any(os.path.isdir(os.path.join(again.home, name)) for name in os.listdir(again.home))
        again.create("1-guest_hello", 256 << 20)
    finally:
        again.close()
    assert not os.path.exists(earlier.home)
