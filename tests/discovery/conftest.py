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

from tests.support.consul_double import ConsulDouble
from tests.support.log_lines import every_line
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
    with every_line(monkeypatch, consul_discovery) as captured:
        yield captured
