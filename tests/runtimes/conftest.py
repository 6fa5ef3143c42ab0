"""Fixtures for the runtime proxy tests: the kinds to test, skipped (or failed under CI=true) without node."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import missing

KINDS = ["python:3.11", "nodejs:20"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param.startswith("nodejs") and shutil.which("node") is None:
        missing("node (Node.js 20)")
    return request.param


@pytest.fixture
def node() -> None:
    if shutil.which("node") is None:
        missing("node (Node.js 20)")
