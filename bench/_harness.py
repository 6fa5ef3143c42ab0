"""Shared by the benchmarks: start a standalone whisk with the test helpers, create actions, measure, report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server

NOOP = {"python:3": "def main(args):\n    return args\n",
        "nodejs:20": "function main(args) { return args; }\n"}

# Like OpenWhisk's own performance tests, the benchmarks raise the throttles.
BENCH_ENV = {
    "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "10000000",
    "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "100000",
    "WHISK_LIMIT_MAX_ACTION_CONCURRENCY": "500",
    "WHISK_LOG_LEVEL": "warning",
}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Api:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def put_action(self, name: str, kind: str = "python:3", code: str | None = None,
                         memory: int = 128, concurrency: int = 1) -> None:
        body = {"exec": {"kind": kind, "code": code or NOOP[kind]},
                "limits": {"memory": memory, "concurrency": concurrency}}
        async with self.session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json=body) as r:
            if r.status != 200:
                raise RuntimeError(f"PUT {name}: {r.status} {await r.text()}")

    async def invoke(self, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.session.post(f"/api/v1/namespaces/_/actions/{name}?blocking=true&result=true",
                                     json=payload or {}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"invoke {name}: {r.status} {body}")
            return body


@asynccontextmanager
async def standalone_whisk(extra_env: dict[str, str] | None = None) -> AsyncIterator[Api]:
    env = BENCH_ENV | {"WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-bench-")} | (extra_env or {})
    url_from_env = os.environ.get("WHISK_BENCH_URL")
    uuid, key = GUEST_AUTH.split(":")
    connector = aiohttp.TCPConnector(limit=0)
    if url_from_env:
        async with aiohttp.ClientSession(base_url=url_from_env, headers=basic_auth(uuid, key),
                                         connector=connector) as session:
            yield Api(url_from_env, session)
        return
    async with whisk_server(env) as url:
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key),
                                         connector=connector) as session:
            yield Api(url, session)


async def measure(call: Callable[[], Awaitable[Any]], *, n: int, concurrency: int) -> tuple[list[float], float]:
    """Run `call` n times with `concurrency` workers; returns (latencies in ms, wall seconds)."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for _ in counter:
            t0 = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0


async def until_post_answers(url: str, proc: asyncio.subprocess.Process, name: str, deadline_s: float) -> None:
    """POST `{}` to `url` until it answers 200: RuntimeError when `proc` exits first, TimeoutError past
    `deadline_s`."""
    end = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} before answering")
            try:
                async with session.post(url, json={}) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"{name} did not answer {url} within {deadline_s} s")
            await asyncio.sleep(0.05)


def summary(latencies: list[float], wall_s: float) -> dict[str, float]:
    return {"n": len(latencies), "p50_ms": round(percentile(latencies, 50), 3),
            "p99_ms": round(percentile(latencies, 99), 3),
            "mean_ms": round(statistics.fmean(latencies), 3) if latencies else float("nan"),
            "per_s": round(len(latencies) / wall_s, 1) if wall_s else float("nan")}


def parser(doc: str, n: int) -> argparse.ArgumentParser:
    """The common options; `doc` is the benchmark's module docstring, whose first paragraph describes it."""
    p = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    p.add_argument("--n", type=int, default=n, help=f"measured calls (default {n})")
    p.add_argument("--json", metavar="FILE", help="also append the result as one JSON line to FILE")
    return p


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "commit": commit}


def report(name: str, rows: list[dict[str, Any]], json_path: str | None) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    print(f"# {name}")
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row.get(k, "")).ljust(widths[k]) for k in keys))
    result = {"benchmark": name, "rows": rows, "machine": machine(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(result))
    if json_path:
        with open(json_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
