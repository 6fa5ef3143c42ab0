"""The peer of the side-by-side benchmark: serverless-offline (on osls, the open-source Serverless Framework),
the local FaaS a Node.js developer would run instead, with a no-op handler behind its HTTP endpoint.

It is installed from npm into `.bench/peer/` of the checkout on first use (about 25 s; kept for later runs) and
started on a free loopback port for the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench._harness import until_post_answers
from tests.support.processes import free_port, terminate

FOLDER = Path(__file__).resolve().parents[1] / ".bench" / "peer"
PACKAGES = ("osls@4", "serverless-offline@14")
SERVICE = """\
service: peer
frameworkVersion: "4"
provider:
  name: aws
  runtime: nodejs20.x
  region: us-east-1
plugins:
  - serverless-offline
functions:
  noop:
    handler: handler.noop
    events:
      - http:
          path: noop
          method: post
"""
# The same no-op as whisk's: the caller's JSON body back.
HANDLER = 'module.exports.noop = async (event) => ({ statusCode: 200, body: event.body || "{}" });\n'
# The framework's telemetry and update notices would try the (closed) network on every start.
QUIET = {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*"}


def install(folder: Path = FOLDER) -> Path:
    """Install the peer into `folder` unless it is there; returns its command."""
    command = folder / "node_modules" / ".bin" / "osls"
    if not command.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the peer needs npm (apt-get install npm)")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "whisk-bench-peer", "private": true, "version": "0.0.0"}\n')
        print(f"versus: installing {' and '.join(PACKAGES)} into {folder} (npm, about 25 s)", flush=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
                              cwd=folder, check=False)
        if done.returncode != 0 or not command.exists():
            raise RuntimeError(f"npm install of the peer failed ({done.returncode})")
    (folder / "serverless.yml").write_text(SERVICE)
    (folder / "handler.js").write_text(HANDLER)
    return command


@asynccontextmanager
async def serverless_offline(folder: Path = FOLDER, deadline_s: float = 60.0) -> AsyncIterator[str]:
    """Start the peer on free loopback ports; yields the no-op's URL."""
    command = install(folder)
    port, lambda_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        str(command), "offline", "start", "--host", "127.0.0.1", "--httpPort", str(port),
        "--lambdaPort", str(lambda_port), "--noPrependStageInUrl",
        cwd=folder, env=os.environ | QUIET, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/noop"
    try:
        await until_post_answers(url, proc, "serverless-offline", deadline_s)
        yield url
    finally:
        await terminate(proc)
