"""A single server serves HTTPS itself with WHISK_TLS_CERT / WHISK_TLS_KEY (issue 7: the single-machine TLS path)."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from tests.conftest import missing
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate

MAKE_CERT = Path(__file__).resolve().parents[2] / "config" / "nginx" / "make-cert.sh"


async def test_standalone_serves_https_with_its_own_certificate() -> None:
    if shutil.which("openssl") is None:
        missing("openssl (bash .ci/deps.sh)")
    folder = tempfile.mkdtemp(prefix="whisk-tls-")
    subprocess.run(["sh", str(MAKE_CERT), folder], check=True, capture_output=True)
    port = free_port()
    env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_STORE": "memory://", "WHISK_DATA_DIR": folder,
                              "WHISK_TLS_CERT": f"{folder}/cert.pem", "WHISK_TLS_KEY": f"{folder}/key.pem"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    trusted = ssl.create_default_context(cafile=f"{folder}/cert.pem")
    uuid, key = GUEST_AUTH.split(":")
    try:
        async with aiohttp.ClientSession(headers=basic_auth(uuid, key)) as s:
            for _ in range(600):
                assert proc.returncode is None, "whisk exited"
                try:
                    async with s.get(f"https://127.0.0.1:{port}/ping", ssl=trusted) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with s.get(f"https://127.0.0.1:{port}/api/v1/namespaces", ssl=trusted) as r:
                assert r.status == 200 and await r.json() == ["guest"]
            try:                                               # plain HTTP is not served on the TLS port
                async with s.get(f"http://127.0.0.1:{port}/ping") as r:
                    assert r.status >= 400
            except aiohttp.ClientError:
                pass
    finally:
        await terminate(proc)


def test_a_certificate_without_its_key_is_a_configuration_error() -> None:
    env = dict(os.environ) | {"WHISK_TLS_CERT": "/nonexistent/cert.pem", "WHISK_STORE": "memory://"}
    env.pop("WHISK_TLS_KEY", None)
    done = subprocess.run([sys.executable, "-m", "whisk"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "WHISK_TLS_CERT" in done.stderr


def test_a_certificate_that_cannot_be_loaded_is_one_line_naming_it(tmp_path: Path) -> None:
    """Loaded before any service opens: a missing PEM was a traceback from the half-started server's cleanup."""
    env = dict(os.environ) | {"WHISK_TLS_CERT": str(tmp_path / "cert.pem"), "WHISK_TLS_KEY": str(tmp_path / "key.pem"),
                              "WHISK_STORE": "memory://", "WHISK_DATA_DIR": str(tmp_path / "data"),
                              "WHISK_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "whisk"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"whisk: configuration error: WHISK_TLS_CERT, WHISK_TLS_KEY: cannot load '{tmp_path}/cert.pem' with "
        f"'{tmp_path}/key.pem': No such file or directory"]
