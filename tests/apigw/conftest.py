"""Fixtures of the API route tests: an anonymous client of the session server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(whisk_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=whisk_url) as session:
        yield session
