"""Warm /run latency of each runtime proxy: one keep-alive connection on a unix socket, a no-op action.

    python -m tests.runtimes.latency --n 1000            # one JSON line per kind

Each figure is a full round trip seen by a raw-socket client (request out, whole response in), so it bounds the
proxy's own time per activation from above. The proxy's stdout and stderr are pipes read by this process, as the
process:// backend reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from tests.runtimes.harness import keep_alive_latency, percentile, running_proxy

NO_OP = {"python:3.11": "def main(args):\n    return {}\n", "nodejs:20": "function main(args) {\n  return {};\n}\n"}


async def measure(kind: str, n: int) -> dict[str, float | int | str]:
    async with running_proxy(kind) as proxy:
        status, _ = await proxy.init(NO_OP[kind])
        if status != 200:
            raise RuntimeError(f"{kind}: /init answered {status}")
        ms = await asyncio.to_thread(keep_alive_latency, proxy, n)
        await proxy.until_sentinels(n + 100)             # n measured + 100 warm-up activations, all logged
    return {"kind": kind, "n": n, "p50_ms": round(percentile(ms, 50), 4), "p90_ms": round(percentile(ms, 90), 4),
            "p99_ms": round(percentile(ms, 99), 4), "mean_ms": round(sum(ms) / len(ms), 4)}


async def main(args: argparse.Namespace) -> None:
    for kind in args.kinds:
        print(json.dumps(await measure(kind, args.n)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kinds", nargs="+", default=list(NO_OP))
    asyncio.run(main(parser.parse_args()))
