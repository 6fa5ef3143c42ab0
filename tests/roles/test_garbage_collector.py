"""The server tunes Python's collector once started (whisk/roles.py; figures in docs/performance.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from whisk.roles import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_startup_objects_are_frozen_and_young_objects_collected_less_often(collector: None) -> None:
    older = gc.get_threshold()[1:]
    tune_garbage_collector()
    assert gc.get_freeze_count() > 0                 # what existed at startup is out of every collection
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *older)


def test_garbage_made_after_tuning_is_still_collected(collector: None) -> None:
    tune_garbage_collector()

    class Node:
        def __init__(self) -> None:
            self.me = self                           # a cycle: only the collector frees it

    Node()
    assert gc.collect() >= 1
