"""What modules log, at every level, for a test to read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs


@contextmanager
def every_line(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> Iterator[list[dict[str, Any]]]:
    """The lines `modules` log through their `log`, at every level. capture_logs alone misses those below the level
    an earlier test's logs.configure set (`whisk admin` runs in-process at `warning`): that filters in the bound
    loggers, which the modules' `log` also caches on first use."""
    before = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as lines:
            for module in modules:
                monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
            yield lines
    finally:
        structlog.configure(**before)
