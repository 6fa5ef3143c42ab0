"""Fixtures the cluster tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support.kafka_broker import KafkaBroker, kafka_or_missing


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def broker() -> AsyncIterator[KafkaBroker]:
    """An Apache Kafka broker of the test module's own, which its tests may stop and restart (the session's
    `kafka_broker` serves the modules that leave it running)."""
    kafka_or_missing()
    async with KafkaBroker() as b:
        yield b
