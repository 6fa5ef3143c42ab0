"""Apache Kafka for tests and benchmarks: one KRaft node (broker and controller in one JVM) on two loopback ports.

The jars come from Maven Central (`.ci/kafka/pom.xml`, installed into `.ci/work/kafka/libs` by `.ci/deps.sh`); the
JDK runs `kafka.Kafka server.properties`. `kafka_broker` is one broker per session; `KafkaBroker` also serves a test
or benchmark that needs a broker of its own, to stop and start again: its log directory is formatted once and kept
across restarts (same ports), so, as in production, topics, messages and committed group offsets survive a restart.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.conftest import missing
from tests.support.processes import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
LIBS = ROOT / ".ci" / "work" / "kafka" / "libs"
LOG4J = ROOT / ".ci" / "kafka" / "log4j2.properties"
# A small heap is plenty for the tests' traffic; the serial collector and a small initial heap start faster and
# leave the 2 shared cores to whisk.
JVM_OPTS = ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]
START_DEADLINE_S = 90.0

# Single-node settings. Replication factor 1 for Kafka's own topics (there is one broker); no delay before the first
# rebalance of a new group (Kafka waits 3 s by default for more members to join, which every test would pay);
# topics only when whisk creates them (it does, with the partitions and retention it wants); the bus tests' 3 s
# session timeout, under Kafka's least of 6 s by default.
SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "log.flush.interval.messages": str(2**63 - 1),  # the default: the OS page cache, no fsync per message
}


def java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def installed() -> bool:
    return java() is not None and any(LIBS.glob("kafka_2.13-*.jar"))


def cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage random-uuid` makes one: 16 random bytes, base64url without padding. One
    that starts with "-" (1 in 64) would be read by the storage tool as an option, so that draw is made again, as
    Kafka's own `Uuid.randomUuid` does."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


class KafkaBroker:
    """One Kafka node with a fixed port pair and log directory; `start` and `stop` may repeat (a restart keeps the
    ports and the data). `kill` stops it with SIGKILL instead (no controlled shutdown)."""

    def __init__(self, port: int | None = None, workdir: str | None = None, host: str = "127.0.0.1") -> None:
        self.host = f"[{host}]" if ":" in host else host      # as Kafka's listeners and bootstrap lists name it
        self.port = port or free_port()
        self.controller_port = free_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="whisk-kafka-"))
        self.log_dir = self.workdir / "data"
        self.log_path = self.workdir / "broker.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.start_s: float | None = None  # how long the last start took, until the broker answered

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        exe = java()
        if exe is None:
            raise RuntimeError("no java on PATH (nor JAVA_HOME)")
        return [exe, *JVM_OPTS, f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{LIBS}/*", main, *args]

    def _write_properties(self) -> Path:
        settings = SETTINGS | {
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.log_dir),
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return path

    async def _format(self, properties: Path) -> None:
        """Format the log directory once (KRaft needs a cluster id and the metadata version in it)."""
        if (self.log_dir / "meta.properties").exists():
            return
        proc = await asyncio.create_subprocess_exec(
            *self._java("kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(properties)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"kafka storage format exited with {proc.returncode}: {out.decode(errors='replace')}")

    async def start(self) -> None:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        properties = self._write_properties()
        await self._format(properties)
        with open(self.log_path, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self._java("kafka.Kafka", str(properties)), stdout=out, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL)
        try:
            await self._until_serving()
        except BaseException:
            await self.stop()
            raise
        self.start_s = time.monotonic() - began

    async def _until_serving(self) -> None:
        """Until the broker answers a Kafka request and lists itself (the port opens a little before that)."""
        end = time.monotonic() + START_DEADLINE_S
        last: BaseException | None = None
        while True:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise RuntimeError(f"kafka exited with {self.proc.returncode} before serving on {self.port}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > end:
                raise TimeoutError(f"kafka not serving on {self.port} after {START_DEADLINE_S} s ({last!r}):\n"
                                   f"{self.log_tail()}")
            try:  # a plain connect first: aiokafka logs every connection refused
                _, writer = await asyncio.open_connection(self.host.strip("[]"), self.port)
                writer.close()
            except OSError as exc:
                last = exc
                await asyncio.sleep(0.1)
                continue
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                await admin.start()
                if (await admin.describe_cluster())["brokers"]:
                    return
            except (KafkaError, OSError) as exc:
                last = exc
            finally:
                await admin.close()
            await asyncio.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        """SIGTERM: a controlled shutdown, which writes its logs out cleanly (up to 30 s, then SIGKILL)."""
        if self.proc is not None:
            await terminate(self.proc, grace_s=30.0)
            self.proc = None

    async def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            await self.proc.wait()
            self.proc = None

    async def close(self) -> None:
        await self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> KafkaBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def kafka_or_missing() -> None:
    """Skip (developer machine) or fail (CI) when the JDK or the broker's jars are absent."""
    if not installed():
        missing(f"Apache Kafka (java on PATH and the broker's jars in {LIBS}: bash .ci/deps.sh)")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_broker() -> AsyncIterator[KafkaBroker]:
    """An Apache Kafka broker for the whole session; yields it (`.bootstrap` is `127.0.0.1:PORT`)."""
    kafka_or_missing()
    async with KafkaBroker() as broker:
        print(f"kafka broker started in {broker.start_s:.1f} s on {broker.bootstrap}")
        yield broker
