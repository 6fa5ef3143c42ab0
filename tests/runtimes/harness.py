"""Run a runtime proxy as a real child process (the manifest's command) on a unix socket or a loopback TCP port.

`running_proxy` yields a `Proxy`: post /init and /run through aiohttp, read what the child printed on each stream,
wait for sentinels or for the process to end. `keep_alive_latency` times /run over one raw keep-alive connection.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import socket
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp

from tests.support.processes import free_port, terminate
from whisk.runtimes.manifest import load_manifest

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
RUN_META = {"namespace": "guest", "action_name": "/guest/echo", "action_version": "0.0.1",
            "activation_id": "0123456789abcdef0123456789abcdef", "transaction_id": "tid-1",
            "deadline": "1700000000000", "api_key": "uuid:key"}


def zip_base64(files: Mapping[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


class Proxy:
    def __init__(self, proc: asyncio.subprocess.Process, session: aiohttp.ClientSession,
                 address: str | tuple[str, int]) -> None:
        self.proc = proc
        self.session = session
        self.address = address                       # a socket path, or (host, port)
        self.base = "http://localhost" if isinstance(address, str) else f"http://{address[0]}:{address[1]}"
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = asyncio.Condition()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(self.base + path, data=data,
                                     headers={"Content-Type": "application/json"}) as resp:
            text = await resp.text()
            assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
            return resp.status, json.loads(text)

    async def init(self, code: str, main: str | None = "main", binary: bool = False,
                   env: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        value: dict[str, Any] = {"name": "action", "code": code, "binary": binary, "env": dict(env or {})}
        if main is not None:
            value["main"] = main
        return await self.post("/init", {"value": value})

    async def run(self, value: Any = None, **meta: Any) -> tuple[int, Any]:
        return await self.post("/run", {"value": {} if value is None else value, **RUN_META, **meta})

    def sentinels(self) -> tuple[int, int]:
        return self.out.count(SENTINEL), self.err.count(SENTINEL)

    async def until(self, predicate: Callable[[], bool], deadline_s: float = 10.0) -> None:
        """Wait until `predicate` (over out/err) holds; it is checked whenever the child prints a line."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), deadline_s)

    async def until_sentinels(self, n: int, deadline_s: float = 10.0) -> None:
        """Wait until each stream carries at least n sentinel lines."""
        await self.until(lambda: min(self.sentinels()) >= n, deadline_s)

    async def exit_status(self, deadline_s: float = 10.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), deadline_s)

    async def _pump(self, stream: asyncio.StreamReader, lines: list[str]) -> None:
        async for raw in stream:
            async with self._changed:
                lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    def connect_raw(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(self.address)
        return sock

    @contextmanager
    def raw_connection(self) -> Iterator[tuple[socket.socket, bytearray]]:
        """A raw connection, and a buffer for what it received and `raw_exchange` has not consumed yet."""
        sock = self.connect_raw()
        try:
            yield sock, bytearray()
        finally:
            sock.close()


async def _until_listening(proc: asyncio.subprocess.Process, address: str | tuple[str, int],
                           deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode} before it listened")
        try:
            if isinstance(address, str):
                _, writer = await asyncio.open_unix_connection(address)
            else:
                _, writer = await asyncio.open_connection(*address)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"the proxy did not listen on {address} within {deadline_s} s")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running_proxy(kind: str, transport: str = "unix", env: Mapping[str, str] | None = None,
                        deadline_s: float = 20.0) -> AsyncIterator[Proxy]:
    from tests.runtimes.conftest import require_environment
    require_environment(kind)
    runtime = load_manifest().resolve(kind)
    folder = tempfile.mkdtemp(prefix="whisk-proxy-")
    child_env = dict(os.environ) | dict(runtime.env) | {"TMPDIR": folder} | dict(env or {})
    if transport == "unix":
        address: str | tuple[str, int] = os.path.join(folder, "proxy.sock")
        child_env["WHISK_PROXY_SOCKET"] = address
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=address)
    else:
        address = ("127.0.0.1", free_port())
        child_env |= {"WHISK_PROXY_HOST": address[0], "WHISK_PROXY_PORT": str(address[1])}
        child_env.pop("WHISK_PROXY_SOCKET", None)
        connector = aiohttp.TCPConnector()
    proc = await asyncio.create_subprocess_exec(*runtime.command, env=child_env, cwd=folder,
                                                stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
    proxy = Proxy(proc, session, address)
    pumps = [asyncio.create_task(proxy._pump(proc.stdout, proxy.out)),
             asyncio.create_task(proxy._pump(proc.stderr, proxy.err))]
    try:
        await _until_listening(proc, address, deadline_s)
        yield proxy
    finally:
        await session.close()
        await terminate(proc, grace_s=5)
        await asyncio.gather(*pumps, return_exceptions=True)
        shutil.rmtree(folder, ignore_errors=True)


async def silenced_and_still_ended(kind: str, code: str) -> None:
    """`code` silences its own output when run with `silence`: the proxy's sentinels still end that activation and
    the next (lost, each activation waited 2 s for its logs, got a log-collection failure and lost its container),
    and what was printed before the silence is read, what after it is not."""
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code))[0] == 200
        assert await proxy.run({"silence": True}) == (200, {})
        await proxy.until_sentinels(1, deadline_s=5)
        assert await proxy.run({}) == (200, {})
        await proxy.until_sentinels(2, deadline_s=5)
        assert "heard" in proxy.out and "unheard" not in proxy.out


def raw_exchange(sock: socket.socket, request: bytes, buffer: bytearray) -> tuple[int, bytes, dict[str, str]]:
    """Send one request on a raw connection and read one Content-Length response: (status, body, headers).
    An empty request sends nothing: the answer to one sent before is read (a send, even of nothing, fails once the
    proxy has closed the connection after answering it)."""
    if request:
        sock.sendall(request)
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the proxy closed the connection")
        buffer += chunk
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    total = end + 4 + int(headers["content-length"])
    while len(buffer) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the proxy closed the connection mid-body")
        buffer += chunk
    body = bytes(buffer[end + 4:total])
    del buffer[:total]
    return int(lines[0].split(" ")[1]), body, headers


def http_request(path: str, body: Any, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{extra}\r\n").encode() + data


def keep_alive_latency(proxy: Proxy, n: int, warmup: int = 100) -> list[float]:
    """Milliseconds per warm no-op /run, each a full round trip on one keep-alive connection (blocking)."""
    request = http_request("/run", {"value": {}, **RUN_META})
    sock = proxy.connect_raw()
    buffer = bytearray()
    timings = []
    try:
        for i in range(warmup + n):
            start = time.perf_counter_ns()
            status, _, _ = raw_exchange(sock, request, buffer)
            elapsed = time.perf_counter_ns() - start
            if status != 200:
                raise AssertionError(f"/run answered {status}")
            if i >= warmup:
                timings.append(elapsed / 1e6)
    finally:
        sock.close()
    return timings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
