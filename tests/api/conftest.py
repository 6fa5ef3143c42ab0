"""Fixtures of the API tests: the session server from tests/conftest.py (`whisk_url`, `guest`), an anonymous client,
and a SQLite-backed server with a second namespace for entitlement tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from tests.api.support import Deployment, sqlite_deployment


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(whisk_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=whisk_url) as session:
        yield session


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def deployment() -> AsyncIterator[Deployment]:
    async with sqlite_deployment() as d:
        yield d
