"""A whisk cluster of real processes on loopback for the distributed tests: one controller and two invokers
(`python -m whisk`), joined by the session's Apache Kafka broker, pouchdb-server and Consul double."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from tests.support import waiting
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready

ADMIN_USER, ADMIN_PASSWORD = "admin", "dist-admin-secret"
T = TypeVar("T")

# Walks up the process tree from the action's own process: the invoker that runs it is one of its ancestors.
ANCESTORS = (
    "import os\n"
    "def main(args):\n"
    "    pids, pid = [], os.getpid()\n"
    "    for _ in range(8):\n"
    "        with open(f'/proc/{pid}/stat') as f:\n"
    "            pid = int(f.read().rsplit(')', 1)[1].split()[1])\n"
    "        pids.append(pid)\n"
    "        if pid <= 1:\n"
    "            break\n"
    "    return {'ancestors': pids, 'echo': args}\n"
)

# Tells the test it has started (a marker file), then outlives the test unless its invoker dies.
SLOW = (
    "import time\n"
    "def main(args):\n"
    "    open(args['marker'], 'w').close()\n"
    "    time.sleep(50)\n"
    "    return {'slept': True}\n"
)


@dataclass
class Member:
    role: str
    instance: int
    port: int
    proc: asyncio.subprocess.Process
    log_path: str
    killed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    env: dict[str, str]
    couch_base: str
    prefix: str
    workdir: str
    members: list[Member] = field(default_factory=list)

    @property
    def controller(self) -> Member:
        return self.controllers[0]

    @property
    def controllers(self) -> list[Member]:
        """The controllers not killed (a restarted one appears once, as its new process)."""
        return sorted((m for m in self.members if m.role == "controller" and not m.killed), key=lambda m: m.instance)

    def invoker(self, instance: int) -> Member:
        return next(m for m in reversed(self.members) if m.role == "invoker" and m.instance == instance)

    def exited(self) -> dict[str, int]:
        """Members that exited without being killed by the test: name -> exit status."""
        return {f"{m.role}{m.instance}": m.proc.returncode for m in self.members
                if not m.killed and m.proc.returncode is not None}

    async def restart(self, member: Member) -> Member:
        """SIGKILL a member and start the same role and instance again on the same port (and data directory)."""
        self.kill(member)
        await member.proc.wait()
        return await self.start(member.role, member.instance, port=member.port)

    async def start(self, role: str, instance: int, *, port: int | None = None) -> Member:
        port = port or free_port()
        log_path = os.path.join(self.workdir, f"{role}{instance}.log")
        env = dict(os.environ) | self.env | {
            "WHISK_ROLE": role, "WHISK_INSTANCE": str(instance), "WHISK_PORT": str(port), "WHISK_HOST": "127.0.0.1",
            "WHISK_DATA_DIR": os.path.join(self.workdir, f"{role}{instance}")}
        with open(log_path, "ab") as out:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env, stdout=out,
                                                        stderr=asyncio.subprocess.STDOUT)
        member = Member(role, instance, port, proc, log_path)
        self.members.append(member)
        await until_ready(f"{member.url}/ping", proc, deadline_s=60)
        return member

    def kill(self, member: Member) -> None:
        member.killed = True
        member.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> dict[str, int | BaseException]:
        """SIGTERM every member; their exit statuses (or the error of stopping them) by name."""
        codes = await asyncio.gather(*(terminate(m.proc) for m in self.members), return_exceptions=True)
        return {f"{m.role}{m.instance}": code for m, code in zip(self.members, codes) if not m.killed}

    def logs(self) -> str:
        parts = []
        for m in self.members:
            with open(m.log_path, errors="replace") as f:
                parts.append(f"--- {m.role}{m.instance} ---\n" + "".join(f.readlines()[-40:]))
        return "\n".join(parts)


@asynccontextmanager
async def owned(c: Cluster) -> AsyncIterator[Cluster]:
    """A fixture's hold on a cluster: if starting it fails, print the logs and stop it; once the tests are done,
    stop it and require a clean exit (SIGTERM: drain, deregister, close the bus → status 0) of every member."""
    try:
        yield c
    except BaseException:
        print(c.logs())
        await c.stop()
        raise
    codes = await c.stop()
    assert all(code == 0 for code in codes.values()), (codes, c.logs())


def cluster_env(bootstrap: str, couchdb_url: str, consul_url: str) -> tuple[dict[str, str], str]:
    prefix = f"dist{secrets.token_hex(4)}_"
    store = couchdb_url.replace("http://", "couchdb://", 1) + f"/{prefix}"
    return {
        "WHISK_BUS": f"kafka://{bootstrap}", "WHISK_STORE": store, "WHISK_DISCOVERY": consul_url,
        "WHISK_ADMIN_USER": ADMIN_USER, "WHISK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000",
        "WHISK_POOL_MEMORY_MB": "1024", "WHISK_SHUTDOWN_GRACE_S": "5", "WHISK_LOG_LEVEL": "info",
        # The tests tell which invoker ran an action from the action's process ancestry (ANCESTORS), which the
        # process sandbox's pid namespace hides: these actions are the tests' own, run unconfined.
        "WHISK_TRUST_ALL_CODE": "true",
        # OpenWhisk's completion-ack timeouts: Kafka keeps an activation's messages across a broker restart, so
        # nothing needs forcing early (tests/distributed/test_balancer.py forces some while the broker is away).
    }, prefix


def new_workdir() -> str:
    return tempfile.mkdtemp(prefix="whisk-dist-")


async def until(what: str, probe: Callable[[], Awaitable[T | None]], deadline_s: float,
                interval_s: float = 0.1) -> T:
    """`tests.support.waiting.until` for a probe over HTTP: its result once truthy, a failed request a miss."""
    found = await waiting.until(what, probe, deadline_s, interval_s=interval_s,
                                retry=(aiohttp.ClientError, asyncio.TimeoutError, OSError))
    assert found is not None
    return found


def guest_session(url: str) -> aiohttp.ClientSession:
    uuid, key = GUEST_AUTH.split(":")
    return aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key),
                                 timeout=aiohttp.ClientTimeout(total=90))
