"""A server of its own for the clients' tests of limits: one whose blocking wait and in-flight limit are small enough
to be reached in a second, apart from the session's server, whose throttles the other tests raise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support.processes import whisk_server


@pytest_asyncio.fixture
async def limited_whisk_url() -> AsyncIterator[str]:
    """A standalone whisk that answers a blocking invoke 202 after 1 s and allows one activation in flight."""
    env = {"WHISK_LIMIT_MAX_BLOCKING_WAIT": "1000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1"}
    async with whisk_server(env) as url:
        yield url
