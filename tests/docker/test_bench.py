"""Smoke tests of bench/docker_start.py and bench/api_relay.py against the session's daemon, with a tiny --n."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_daemon import DockerDaemon

pytestmark = pytest.mark.docker


async def bench_result(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m module args`; its JSON line (the last it prints), once it exits with 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=Path(__file__).resolve().parents[2], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_docker_start_benchmark_runs(docker_daemon: DockerDaemon, docker_images: str) -> None:
    result = await bench_result("bench.docker_start", "--n", "1", "--docker", docker_daemon.url)
    starts = {(row["kind"], row["start"]) for row in result["rows"]}
    assert starts == {(kind, start) for kind in ("python:3.11", "nodejs:20")
                      for start in ("raw create+start+answer", "cold", "prewarmed", "resume", "warm")}
    assert all(row["p50_ms"] > 0 for row in result["rows"])


async def test_api_relay_benchmark_runs(docker_daemon: DockerDaemon, docker_images: str) -> None:
    result = await bench_result("bench.api_relay", "--n", "3", "--docker", docker_daemon.url)
    assert [(row["path"], row["n"]) for row in result["rows"]] == [("direct (host)", 3), ("relayed (unix)", 3)]
    assert all(row["p50_ms"] > 0 for row in result["rows"])
