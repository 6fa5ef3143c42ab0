"""Fixtures for the runtime proxy tests: the kinds to test, skipped (or failed under CI=true) without node or without
the kind's action environment (`make runtimes`), whose interpreter runs the proxy."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import missing
from whisk.runtimes.environments import is_installed
from whisk.runtimes.manifest import load_manifest

KINDS = ["python:3.11", "nodejs:20"]


def require_environment(kind: str) -> None:
    environment = load_manifest().resolve(kind).environment
    if environment is not None and not is_installed(environment):
        missing(f"the {kind} action environment (make runtimes)")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param.startswith("nodejs") and shutil.which("node") is None:
        missing("node (Node.js 20)")
    require_environment(request.param)
    return request.param


@pytest.fixture
def node() -> None:
    if shutil.which("node") is None:
        missing("node (Node.js 20)")
