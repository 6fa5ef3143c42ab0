"""Warm blocking no-op invoke through nginx with TLS against the same call straight to whisk (issue 7 target: p50
within 1.5 ms). Needs Debian's nginx and openssl (`bash .ci/deps.sh`).

    python -m bench.nginx_overhead --n 1000
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from bench._harness import measure, parser, report, standalone_whisk, summary
from tests.support.nginx import authority, run_nginx
from tests.support.processes import GUEST_AUTH, basic_auth


async def main() -> None:
    args = parser(__doc__, 1000).parse_args()
    async with standalone_whisk() as api:
        await api.put_action("bench-noop", "python:3")
        await measure(lambda: api.invoke("bench-noop"), n=50, concurrency=1)
        direct = summary(*await measure(lambda: api.invoke("bench-noop"), n=args.n, concurrency=1))
        async with run_nginx([authority(api.url)]) as front:
            tls = ssl.create_default_context(cafile=str(front.cert))
            url = f"{front.https_url}/api/v1/namespaces/_/actions/bench-noop?blocking=true&result=true"
            async with aiohttp.ClientSession(headers=basic_auth(*GUEST_AUTH.split(":"))) as session:
                async def call() -> None:
                    async with session.post(url, json={}, ssl=tls) as r:
                        assert r.status == 200, await r.text()
                        await r.read()

                await measure(call, n=50, concurrency=1)
                proxied = summary(*await measure(call, n=args.n, concurrency=1))
    rows = [{"path": "whisk, plain HTTP", **direct}, {"path": "nginx (TLS, keep-alive) -> whisk", **proxied},
            {"path": "nginx overhead p50", "p50_ms": round(proxied["p50_ms"] - direct["p50_ms"], 3)}]
    report("nginx_overhead", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
