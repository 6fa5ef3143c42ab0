"""Memory of one warm action container over many runs: each runtime's proxy started by the process backend
(`process://`, as an invoker starts it), the soak's echo action initialized, then /run with the body an invoker
sends (a fresh activation id, transaction id and deadline every time) until --runs, suspended and resumed every
--pause-every runs as an idle container is. RSS and USS of the proxy are sampled every --sample-every runs; the
growth after warm-up (--warmup runs) compares the median of the first and the last tenth of the samples after it.

A 30-minute soak gives each of its 100+ containers a few hundred runs, which is still within a runtime's warm-up
(V8 compiles the proxy's hot path with its optimizing tiers over the first few hundred runs); this runs each
container far past it.

    python -m bench.runtime_memory --runs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from typing import Any

from bench._harness import report
from bench.soak_memory import rss_kb, uss_kb
from bench.soak_workload import ECHO
from whisk.containers.base import ContainerSpec
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.runtimes.manifest import load_manifest

TARGET_PCT = 5.0        # issue 7: memory flat after warm-up, growth under 5 %
RUN_TIMEOUT_S = 60.0


def body(kind: str, n: int) -> dict[str, Any]:
    """What an invoker sends to /run (whisk/invoker/records.py), fresh ids each time."""
    return {"value": {"n": n, "text": "x" * (n % 512)}, "namespace": "guest", "action_name": f"/guest/echo-{kind}",
            "action_version": "0.0.1", "activation_id": secrets.token_hex(16), "transaction_id": secrets.token_hex(16),
            "deadline": str(int(time.time() * 1000) + 60_000)}


def growth_pct(before: float, after: float) -> float:
    return round((after - before) / before * 100, 2) if before else float("nan")


async def drive(factory: ProcessContainerFactory, kind: str, runs: int, warmup: int, sample_every: int,
                pause_every: int) -> tuple[dict[str, Any], list[tuple[int, float, float]]]:
    """One container of `kind` through `runs` runs; returns its summary row and the samples (run, RSS MB, USS MB)."""
    spec = ContainerSpec(name=f"wsk0_1_bench_{kind.replace(':', '')}", kind=kind, image="", memory_mb=256)
    container = await factory.create(spec)
    samples: list[tuple[int, float, float]] = []
    started = time.monotonic()
    try:
        init = await container.initialize({"name": "echo", "main": "main", "code": ECHO[kind], "binary": False,
                                           "env": {"__OW_API_HOST": "http://127.0.0.1:3233"}}, RUN_TIMEOUT_S)
        if init.status != 200:
            raise RuntimeError(f"{kind}: /init answered {init.status}: {init.body[:200]!r}")
        for n in range(runs + 1):
            if n % sample_every == 0:
                rss, uss = rss_kb(container.proxy_pid), uss_kb(container.proxy_pid)
                if rss is None or uss is None:
                    raise RuntimeError(f"{kind}: the container process {container.proxy_pid} is gone")
                samples.append((n, rss / 1024, uss / 1024))
                if n % (sample_every * 10) == 0:
                    print(f"runtime_memory: {kind} run {n}/{runs}, RSS {rss / 1024:.1f} MB, USS {uss / 1024:.1f} MB",
                          file=sys.stderr, flush=True)
            if n == runs:
                break
            result = await container.run(body(kind, n), RUN_TIMEOUT_S)
            if result.status != 200:
                raise RuntimeError(f"{kind}: /run {n} answered {result.status}: {result.body[:200]!r}")
            if pause_every and n % pause_every == pause_every - 1:
                await container.suspend()
                await container.resume()
    finally:
        await container.destroy()
    wall_s = time.monotonic() - started
    after = [s for s in samples if s[0] >= warmup]
    tenth = max(1, len(after) // 10)
    first, last = after[:tenth], after[-tenth:]
    row: dict[str, Any] = {"kind": kind, "runs": runs, "per_s": round(runs / wall_s, 1)}
    for i, name in ((1, "rss"), (2, "uss")):
        at_start = samples[0][i]
        settled = statistics.median(s[i] for s in first)
        end = statistics.median(s[i] for s in last)
        row |= {f"{name}_start_mb": round(at_start, 2), f"{name}_warm_mb": round(settled, 2),
                f"{name}_end_mb": round(end, 2), f"{name}_growth_pct": growth_pct(settled, end)}
    return row, samples


async def main() -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--runs", type=int, default=20000, help="runs per container (default 20000)")
    p.add_argument("--warmup", type=int, default=2000, help="runs before growth is measured (default 2000)")
    p.add_argument("--sample-every", type=int, default=100, help="runs between memory samples (default 100)")
    p.add_argument("--pause-every", type=int, default=50,
                   help="suspend and resume the container after this many runs (default 50; 0: never)")
    p.add_argument("--kinds", nargs="+", default=sorted(ECHO), help=f"runtime kinds (default {' '.join(sorted(ECHO))})")
    p.add_argument("--json", metavar="FILE", help="also append the result as one JSON line to FILE")
    args = p.parse_args()
    if args.warmup >= args.runs:
        p.error("--warmup must be below --runs")
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[int, float, float]]] = {}
    async with ProcessContainerFactory(load_manifest()) as factory:
        for kind in args.kinds:
            row, curves[kind] = await drive(factory, kind, args.runs, args.warmup, args.sample_every, args.pause_every)
            rows.append(row)
    for kind, samples in curves.items():
        step = max(1, len(samples) // 20)
        print(f"# {kind}: run, RSS MB, USS MB every {samples[step][0] - samples[0][0] if len(samples) > step else 0}"
              " runs", file=sys.stderr)
        print("  ".join(f"{n}:{rss:.1f}/{uss:.1f}" for n, rss, uss in samples[::step]), file=sys.stderr)
    report("runtime_memory", rows, args.json)
    flat = all(abs(row["rss_growth_pct"]) < TARGET_PCT and abs(row["uss_growth_pct"]) < TARGET_PCT for row in rows)
    print(f"runtime_memory: after {args.warmup} warm-up runs every container is "
          f"{'flat' if flat else 'NOT flat'} (growth under {TARGET_PCT:g} %: target)", file=sys.stderr)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
