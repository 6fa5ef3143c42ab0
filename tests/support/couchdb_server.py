"""Session fixture: one real CouchDB-API server (pouchdb-server, in memory) on loopback, for the store tests.

`.ci/deps.sh` installs it into .ci/work/pouchdb. It writes config.json and log.txt into its working directory, so
it runs in a temporary one. Its quirks: docs/testing.md, pouchdb-server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.conftest import missing
from tests.support.processes import free_port, terminate, until_ready

POUCHDB_SERVER = Path(__file__).resolve().parents[2] / ".ci" / "work" / "pouchdb" / "node_modules" / ".bin" / \
    "pouchdb-server"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def couchdb_url() -> AsyncIterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a fresh in-memory pouchdb-server, in admin party mode."""
    if not os.access(POUCHDB_SERVER, os.X_OK) or shutil.which("node") is None:
        missing(f"pouchdb-server ({POUCHDB_SERVER}; run .ci/deps.sh)")
    workdir = tempfile.mkdtemp(prefix="whisk-pouchdb-")
    port = free_port()
    with open(os.path.join(workdir, "stdout.log"), "wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(POUCHDB_SERVER), "--in-memory", "--host", "127.0.0.1", "--port", str(port),
            cwd=workdir, stdout=out, stderr=asyncio.subprocess.STDOUT)
    try:
        await until_ready(f"http://127.0.0.1:{port}/", proc, deadline_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        await terminate(proc)
        shutil.rmtree(workdir, ignore_errors=True)
