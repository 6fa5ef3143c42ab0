"""Fixtures for the discovery tests: a fresh in-process Consul double per test, and clients for it."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import consul.aio
import pytest_asyncio

from tests.support.consul_double import ConsulDouble


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
