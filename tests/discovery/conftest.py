"""Fixtures for the discovery tests: a fresh in-process Consul double per test, and clients for it."""

from __future__ import annotations

import asyncio
import inspect
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import consul.aio
import pytest_asyncio

from tests.support.consul_double import ConsulDouble

T = TypeVar("T")

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


async def eventually(probe: Callable[[], Awaitable[T] | T], ok: Callable[[T], bool], deadline_s: float = 10.0) -> T:
    """Poll `probe` (a coroutine function or a plain one) until `ok(result)`; fail with the last result at the
    deadline."""
    end = time.monotonic() + deadline_s
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if ok(result):
            return result
        if time.monotonic() > end:
            raise AssertionError(f"condition not met after {deadline_s} s; last: {result!r}")
        await asyncio.sleep(0.02)
