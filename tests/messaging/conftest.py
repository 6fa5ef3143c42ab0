"""Fixtures the bus tests share: each runs on the in-process bus and on a real Kafka broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from whisk.messaging.base import Bus
from whisk.messaging.kafka import KafkaBus
from whisk.messaging.memory import MemoryBus


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def backend(request: pytest.FixtureRequest) -> str:
    """`memory`, or the Kafka bootstrap address (the broker starts only when a kafka case runs)."""
    if request.param == "kafka":
        return request.getfixturevalue("kafka_broker").bootstrap
    return "memory"


@pytest_asyncio.fixture
async def bus(backend: str) -> AsyncIterator[Bus]:
    if backend == "memory":
        async with MemoryBus() as memory:
            yield memory
    else:
        async with KafkaBus([backend], client_id="whisk-test", session_timeout_s=3) as kafka:
            yield kafka
