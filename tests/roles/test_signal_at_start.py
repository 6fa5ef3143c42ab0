"""SIGINT or SIGTERM while the server is still starting (a store that does not answer yet): it stops, closing what it
had opened, without a traceback. SIGINT was asyncio's: the start cancelled and a KeyboardInterrupt traceback, or,
when a cancellation was lost on the way, no stop at all (the server went on to serve); SIGTERM ended the process
without closing anything (a `docker://` invoker's prewarmed containers left to the next start)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.processes import free_port


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_while_starting_stops_the_server_cleanly(tmp_path: Path, signum: int) -> None:
    reached = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)            # a CouchDB that takes the connection and never answers
        reached.set()

    couch = await asyncio.start_server(silent, "127.0.0.1", 0)
    couch_port = couch.sockets[0].getsockname()[1]
    env = dict(os.environ) | {"WHISK_PORT": str(free_port()), "WHISK_PLAYGROUND": "false", "WHISK_HOST": "127.0.0.1",
                              "WHISK_DATA_DIR": str(tmp_path), "WHISK_STORE": f"couchdb://u:p@127.0.0.1:{couch_port}",
                              "WHISK_BUS": "memory://"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(reached.wait(), 30)
        proc.send_signal(signum)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        text = err.decode()
        assert proc.returncode == 0, text
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        assert "server.stopped" in text.strip().splitlines()[-1], text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for writer in held:
            writer.close()
        couch.close()
