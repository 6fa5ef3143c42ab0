"""Helpers to run real programs on loopback in tests and benchmarks: free ports, readiness, clean stops."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

GUEST_UUID = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"
GUEST_KEY = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
GUEST_AUTH = f"{GUEST_UUID}:{GUEST_KEY}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ipv6_loopback() -> bool:
    """Whether this machine has IPv6's loopback, ::1 (a container may have IPv6 off)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


async def until_ready(url: str, proc: asyncio.subprocess.Process | None, deadline_s: float = 30.0,
                      ssl: bool = True) -> None:
    """Poll `url` until it answers 2xx; fail at once if `proc` exits, or when the deadline passes."""
    end = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
            try:
                async with session.get(url, ssl=ssl, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status < 300:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"{url} not ready after {deadline_s} s")
            await asyncio.sleep(0.05)


async def terminate(proc: asyncio.subprocess.Process, grace_s: float = 10.0) -> int:
    """SIGTERM, wait up to grace_s, then SIGKILL; returns the exit status."""
    if proc.returncode is None:
        try:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), grace_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        except ProcessLookupError:
            pass
    return proc.returncode if proc.returncode is not None else await proc.wait()


@asynccontextmanager
async def whisk_server(env: Mapping[str, str] | None = None, *, deadline_s: float = 30.0,
                       log_path: str | None = None) -> AsyncIterator[str]:
    """Run `python -m whisk` (standalone unless env says otherwise) on a free loopback port (127.0.0.1's unless env's
    WHISK_HOST names another address); yields its URL. Each server has a data folder of its own unless env names
    one: a controller's journal has one owner at a time."""
    port = free_port()
    full_env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_PLAYGROUND_PORT": str(free_port()),
                                   "WHISK_HOST": "127.0.0.1",
                                   "WHISK_STORE": "memory://", "WHISK_BUS": "memory://",
                                   "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-test-")}
    full_env |= dict(env or {})
    out = open(log_path, "ab") if log_path else None
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=full_env,
                                                stdout=out or asyncio.subprocess.DEVNULL,
                                                stderr=out or asyncio.subprocess.DEVNULL)
    host = full_env["WHISK_HOST"]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    try:
        await until_ready(f"{url}/ping", proc, deadline_s=deadline_s)
        yield url
    finally:
        await terminate(proc)
        if out:
            out.close()


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP Basic (aiohttp deprecates BasicAuth objects)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
