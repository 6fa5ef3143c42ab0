"""Debian's Prometheus for the tests: a server on a loopback port with a generated configuration (1 s scrapes and rule
evaluations), stopped when the block ends, and small helpers for its HTTP API."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.processes import free_port, terminate, until_ready

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def available() -> bool:
    return os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK)


@asynccontextmanager
async def prometheus_server(jobs: dict[str, list[str]], rule_files: list[Path]) -> AsyncIterator[str]:
    """Prometheus scraping `jobs` (job name -> host:port targets) and evaluating `rule_files`; yields its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="whisk-prometheus-"))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                           for job, targets in jobs.items()],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(workdir / "prometheus.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        await until_ready(f"http://127.0.0.1:{port}/-/ready", proc, deadline_s=30)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print((workdir / "prometheus.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        await terminate(proc)
        shutil.rmtree(workdir, ignore_errors=True)


async def api(url: str, path: str, **params: Any) -> Any:
    """GET one of Prometheus's /api/v1 endpoints; its `data` (an AssertionError naming the error otherwise)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.get(f"{url}/api/v1/{path}", params=params) as r:
        body = await r.json()
    assert body.get("status") == "success", (path, params, body)
    return body["data"]


async def query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's samples: [{"metric": {...}, "value": [time, "text"]}, ...] (a scalar as one sample)."""
    data = await api(url, "query", query=expr)
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def values(samples: list[dict[str, Any]], *labels: str) -> dict[Any, float]:
    """{label value (or a tuple of them): number} of a query's samples."""
    out = {}
    for sample in samples:
        key = tuple(sample["metric"].get(label, "") for label in labels)
        out[key[0] if len(key) == 1 else key] = float(sample["value"][1])
    return out
