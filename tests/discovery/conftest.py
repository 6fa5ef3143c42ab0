"""Fixtures for the discovery tests: a fresh in-process Consul double per test, clients for it, and the lines
ConsulDiscovery logs."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import consul.aio
import pytest
import pytest_asyncio
import structlog
from structlog.testing import capture_logs

from tests.support.consul_double import ConsulDouble
from whisk.discovery import consul as consul_discovery


@pytest_asyncio.fixture
async def double() -> AsyncIterator[ConsulDouble]:
    async with ConsulDouble() as d:
        yield d


@pytest_asyncio.fixture
async def http(double: ConsulDouble) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=double.url) as session:
        yield session


@pytest_asyncio.fixture
async def client(double: ConsulDouble) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return consul.aio.Consul(host="127.0.0.1", port=double.port)


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What ConsulDiscovery logs, at every level: an earlier test's configuration (a level of `warning`, loggers
    cached on first use) would otherwise keep them from capture_logs."""
    before = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as captured:
            monkeypatch.setattr(consul_discovery, "log", structlog.get_logger(consul_discovery.__name__))
            yield captured
    finally:
        structlog.configure(**before)
