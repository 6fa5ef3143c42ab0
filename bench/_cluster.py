"""Shared by the cluster benchmarks (bench.cluster, bench.soak --cluster): the backends (Apache Kafka, pouchdb-server
in memory, the Consul double) and a whisk cluster of 1 controller and 2 invokers over them, all on loopback, started
with the distributed tests' helpers (tests/distributed/cluster.py) and the benchmarks' raised throttles."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from bench._harness import BENCH_ENV, Api
from tests.distributed.cluster import Cluster, cluster_env, new_workdir, until
from tests.support.couchdb_server import POUCHDB_SERVER
from tests.support.kafka_broker import LIBS, KafkaBroker, installed
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVOKERS = 2


@dataclass
class Backends:
    bootstrap: str                   # Kafka's host:port
    couchdb_url: str                 # http://127.0.0.1:PORT
    consul_url: str                  # consul://127.0.0.1:PORT
    pids: dict[str, int] = field(default_factory=dict)   # name -> pid of the backend processes started here


def backends_missing() -> str | None:
    """What is missing to start the backends, or None."""
    if not installed():
        return f"Apache Kafka (java on PATH and the broker's jars in {LIBS}; run .ci/deps.sh)"
    if not os.access(POUCHDB_SERVER, os.X_OK) or shutil.which("node") is None:
        return f"pouchdb-server ({POUCHDB_SERVER}; run .ci/deps.sh) and node"
    return None


@asynccontextmanager
async def program(*argv: str, ready_url: str, cwd: str | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await until_ready(ready_url, proc, deadline_s=60)
        yield proc
    finally:
        await terminate(proc)


@asynccontextmanager
async def backends() -> AsyncIterator[Backends]:
    """Apache Kafka (a fresh log directory), pouchdb-server (--in-memory) and the Consul double, each a process of
    its own; exits naming what is missing when a program is not installed."""
    if (what := backends_missing()) is not None:
        sys.exit(f"a whisk cluster needs {what}")
    couch_port, consul_port = free_port(), free_port()
    couch_dir = tempfile.mkdtemp(prefix="whisk-bench-pouchdb-")
    try:
        async with KafkaBroker() as broker, \
                program(str(POUCHDB_SERVER), "--in-memory", "--host", "127.0.0.1", "--port", str(couch_port),
                        ready_url=f"http://127.0.0.1:{couch_port}/", cwd=couch_dir) as couch, \
                program(sys.executable, "-m", "tests.support.consul_double", "--port", str(consul_port),
                        ready_url=f"http://127.0.0.1:{consul_port}/v1/status/leader", cwd=ROOT) as consul:
            assert broker.proc is not None
            yield Backends(broker.bootstrap, f"http://127.0.0.1:{couch_port}", f"consul://127.0.0.1:{consul_port}",
                           {"kafka": broker.proc.pid, "pouchdb-server": couch.pid, "consul double": consul.pid})
    finally:
        shutil.rmtree(couch_dir, ignore_errors=True)


@asynccontextmanager
async def members(b: Backends, pool_memory_mb: int, extra_env: dict[str, str] | None = None,
                  stopped: dict[str, int | str] | None = None) -> AsyncIterator[Cluster]:
    """1 controller and INVOKERS invokers on `b` (a fresh CouchDB prefix: `c.env["WHISK_STORE"]`), each invoker with
    `pool_memory_mb` of pool, BENCH_ENV's throttles and `extra_env`; yields once every invoker is up. On the way out
    each member gets SIGTERM; `stopped` (when given) receives their exit statuses by name (0: a clean stop)."""
    env, prefix = cluster_env(b.bootstrap, b.couchdb_url, b.consul_url)
    env.pop("WHISK_TRUST_ALL_CODE")   # the tests' unconfined actions: not here, the benchmarks measure the defaults
    env |= BENCH_ENV | {"WHISK_POOL_MEMORY_MB": str(pool_memory_mb)} | (extra_env or {})
    c = Cluster(env, b.couchdb_url, prefix, new_workdir())
    try:
        await c.start("controller", 0)
        await asyncio.gather(*(c.start("invoker", i) for i in range(INVOKERS)))
        await until(f"all {INVOKERS} invokers up", lambda: invokers_up(c), 90)
        yield c
    finally:
        codes = await c.stop()
        if stopped is not None:
            stopped.update({name: code if isinstance(code, int) else repr(code) for name, code in codes.items()})


async def invokers_up(c: Cluster) -> bool:
    async with aiohttp.ClientSession() as s, s.get(f"{c.controller.url}/invokers") as r:
        return await r.json() == {f"invoker{i}": "up" for i in range(INVOKERS)}


@asynccontextmanager
async def whisk_cluster(pool_memory_mb: int,
                        extra_env: dict[str, str] | None = None) -> AsyncIterator[tuple[Api, Cluster]]:
    """Backends and members together; yields an Api on the controller as guest, and the cluster."""
    async with backends() as b, members(b, pool_memory_mb, extra_env) as c:
        uuid, key = GUEST_AUTH.split(":")
        async with aiohttp.ClientSession(base_url=c.controller.url, headers=basic_auth(uuid, key),
                                         connector=aiohttp.TCPConnector(limit=0)) as session:
            yield Api(c.controller.url, session), c
