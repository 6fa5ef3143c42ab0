"""Smoke tests of the event benchmarks (bench/trigger_fire.py, bench/sequence_overhead.py) with a tiny --n: they run
against a real server and report every row with a positive latency."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module, rows", [
    ("bench.trigger_fire", {"fire answer (202), 10 rules", "fire to 10 records stored", "fire answer, back to back"}),
    ("bench.sequence_overhead", {"5 single blocking invokes in a row", "sequence of 5, blocking",
                                 "sequence: added per component over durations"}),
])
async def test_benchmark_runs(module: str, rows: set[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--n", "5", cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, out.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert {row["what"] for row in result["rows"]} == rows
    assert all(row["p50_ms"] == row["p50_ms"] and row["n"] >= 5 for row in result["rows"])   # no NaN
