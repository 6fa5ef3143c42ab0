"""The proxies' unix socket is connectable by any user from the moment it exists: made so at bind (the umask), never
by a chmod afterwards. The Docker invoker takes the socket folder back from the container's user as soon as the socket
is there (whisk/containers/docker/security.py), so a chmod after bind raced that lock; when it lost, the proxy died
with PermissionError and the action's first /init failed ("exited unexpectedly", about one cold start in 100 under
load). Each program here runs with chmod made to fail, as it would in that race."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtimes.conftest import require_environment
from tests.runtimes.harness import running_proxy
from tests.support.processes import terminate
from whisk.runtimes.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
RELAY = REPO / "config" / "runtimes" / "relay" / "relay.py"

# Runs a Python script as __main__ with every chmod refused.
PY_NO_CHMOD = """
import os, runpy, sys
def refuse(*args, **kwargs):
    raise PermissionError(13, "Permission denied (chmod refused by the test)")
os.chmod = os.lchmod = os.fchmod = refuse
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""
NODE_NO_CHMOD = """
const fs = require('fs');
const refuse = () => { const e = new Error('EACCES: chmod refused by the test'); e.code = 'EACCES'; throw e; };
fs.chmodSync = fs.lchmodSync = fs.fchmodSync = refuse;
fs.chmod = fs.lchmod = fs.fchmod = (...args) =>
    args[args.length - 1](Object.assign(new Error('EACCES'), { code: 'EACCES' }));
fs.promises.chmod = async () => refuse();
"""


async def _socket_of(command: list[str], env: dict[str, str], path: str, folder: str) -> int:
    """Start `command`, wait for a connectable socket at `path`; its permission bits (the process must still run)."""
    proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=folder, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        for _ in range(2000):
            if proc.returncode is not None:
                output = (await proc.stdout.read()).decode(errors="replace") if proc.stdout else ""
                raise AssertionError(f"exited with {proc.returncode}: {output}")
            try:
                _, writer = await asyncio.open_unix_connection(path)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            await asyncio.sleep(0.2)                 # a chmod after listening would have failed by now
            assert proc.returncode is None, "the process ended after it listened"
            return mode
        raise AssertionError(f"nothing listened on {path}")
    finally:
        await terminate(proc, grace_s=5)


@pytest.fixture
def folder() -> Iterator[str]:
    made = tempfile.mkdtemp(prefix="whisk-socket-mode-")
    yield made
    shutil.rmtree(made, ignore_errors=True)


async def test_the_runtime_proxies_never_chmod_their_socket(kind: str, folder: str) -> None:
    require_environment(kind)
    runtime = load_manifest().resolve(kind)
    path = os.path.join(folder, "proxy.sock")
    env = dict(os.environ) | dict(runtime.env) | {"TMPDIR": folder, "WHISK_PROXY_SOCKET": path}
    interpreter, *rest = runtime.command
    script = rest[-1]
    if kind.startswith("python"):
        command = [interpreter, "-u", "-c", PY_NO_CHMOD, script]
    else:
        preload = os.path.join(folder, "no-chmod.js")
        Path(preload).write_text(NODE_NO_CHMOD)
        command = [interpreter, "--require", preload, script]
    assert await _socket_of(command, env, path, folder) == 0o666


async def test_the_relay_never_chmods_its_socket(folder: str) -> None:
    path = os.path.join(folder, "proxy.sock")
    action = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)   # what it fronts
    env = dict(os.environ) | {"WHISK_RELAY_SOCKET": path, "WHISK_RELAY_PORT": str(action.sockets[0].getsockname()[1])}
    env.pop("WHISK_API_RELAY_SOCKET", None)
    try:
        assert await _socket_of(["python3", "-u", "-c", PY_NO_CHMOD, str(RELAY)], env, path, folder) == 0o666
    finally:
        action.close()


CALL_PY = """
import os, urllib.request
def main(args):
    with urllib.request.urlopen("http://127.0.0.1:" + os.environ["WHISK_API_RELAY_PORT"] + "/", timeout=10) as r:
        return {"answer": r.read().decode()}
"""
CALL_NODE = """
const http = require('http');
function main(args) {
    return new Promise((resolve, reject) => {
        http.get('http://127.0.0.1:' + process.env.WHISK_API_RELAY_PORT + '/', (res) => {
            let text = '';
            res.on('data', (chunk) => { text += chunk; });
            res.on('end', () => resolve({ answer: text }));
        }).on('error', reject);
    });
}
"""


@pytest.mark.parametrize(("kind", "code"), [("python:3", CALL_PY), ("nodejs:20", CALL_NODE)])
async def test_the_api_hosts_port_served_already_is_left_to_what_serves_it(kind: str, code: str) -> None:
    """Under docker://, an image built FROM ours runs as a blackbox image does, behind the relay container, which
    shares its network namespace and serves the API host's port there too, and may have bound it first: the proxy
    goes on, the action reaching the API host through the relay's listener (the proxy died: every cold start of such
    an image whose relay came first failed)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nrelay")
        await writer.drain()
        writer.close()

    relay = await asyncio.start_server(answer, "127.0.0.1", 0)           # the relay container's listener
    port = relay.sockets[0].getsockname()[1]
    try:
        env = {"WHISK_API_RELAY_SOCKET": "/nonexistent/api.sock", "WHISK_API_RELAY_PORT": str(port)}
        async with running_proxy(kind, env=env, deadline_s=10) as proxy:
            assert (await proxy.init(code))[0] == 200
            assert await proxy.run({}) == (200, {"answer": "relay"})
    finally:
        relay.close()
        await relay.wait_closed()
