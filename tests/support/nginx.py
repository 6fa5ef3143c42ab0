"""Debian's nginx with the project's configuration (config/nginx/) in front of whisk, for the ops tests.

`run_nginx(upstreams)` makes a self-signed certificate (config/nginx/make-cert.sh) and the configuration
(config/nginx/render.py) in a temporary folder, starts nginx in the foreground on two free loopback ports (HTTPS and
the HTTP redirect), waits until /ping answers through it, and on exit stops it by its pid and removes the folder.
The session fixture `nginx` fronts the session's whisk server. `.ci/deps.sh` installs nginx; nothing here does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest_asyncio

from tests.conftest import missing
from tests.support.processes import free_port, terminate, until_ready

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True, slots=True)
class Nginx:
    https_url: str          # https://127.0.0.1:PORT
    http_url: str           # http://127.0.0.1:PORT, which redirects to https_url
    cert: Path              # the self-signed certificate (also its own CA)
    prefix: Path            # nginx.conf, whisk.conf, access.log, error.log
    pid: int

    @property
    def https_port(self) -> int:
        return int(self.https_url.rsplit(":", 1)[1])

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")


def available() -> bool:
    return os.access(NGINX, os.X_OK)


async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{text}")
    return text


@asynccontextmanager
async def run_nginx(upstreams: Sequence[str], *, deadline_s: float = 20.0,
                    ready_path: str = "/ping") -> AsyncIterator[Nginx]:
    """nginx over `upstreams` (host:port each); ready when `ready_path` answers 2xx through it (None: no wait)."""
    root = Path(tempfile.mkdtemp(prefix="whisk-nginx-"))
    prefix = root / "run"
    https, http = free_port(), free_port()
    proc = None
    try:
        await _run("sh", str(CONFIG / "make-cert.sh"), str(root / "tls"))
        render = [sys.executable, str(CONFIG / "render.py"), "--out", str(prefix),
                  "--https", f"127.0.0.1:{https}", "--http", f"127.0.0.1:{http}",
                  "--cert", str(root / "tls" / "cert.pem"), "--key", str(root / "tls" / "key.pem")]
        for upstream in upstreams:
            render += ["--upstream", upstream]
        await _run(*render)
        root.chmod(0o755)   # the workers (nobody, when root starts nginx) reach their temp folders through here
        proc = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf"),
            "-g", "daemon off;", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        server = Nginx(f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", root / "tls" / "cert.pem",
                       prefix, proc.pid)
        if ready_path is not None:
            try:
                await until_ready(server.https_url + ready_path, proc, deadline_s=deadline_s, ssl=False)
            except (RuntimeError, TimeoutError) as exc:
                log = (prefix / "error.log").read_text(errors="replace") if (prefix / "error.log").exists() else ""
                raise RuntimeError(f"nginx did not come up: {exc}\n{log[-2000:]}") from exc
        yield server
    finally:
        if proc is not None:
            await terminate(proc)
        shutil.rmtree(root, ignore_errors=True)


def authority(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nginx(whisk_url: str) -> AsyncIterator[Nginx]:
    """Debian's nginx with config/nginx/ in front of the session's whisk server, over HTTPS."""
    if not available():
        missing(f"nginx ({NGINX}; Debian's nginx, which `make test` installs)")
    async with run_nginx([authority(whisk_url)]) as server:
        yield server
