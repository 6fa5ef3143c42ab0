"""One tenant's large actions against another tenant's listings: `whisk.system` keeps ten 1.4 MB actions and lists
them from 50 concurrent clients while `guest` lists its one small action; guest's list latency alone and under that
load, per store (issue 12: 0.8 ms alone became 2 s under load before listings stopped reading code).

    python -m bench.listing_isolation --n 200 --stores sqlite,memory
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench._harness import BENCH_ENV, measure, parser, report, summary
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from whisk.entities.identity import SYSTEM_KEY, SYSTEM_UUID

BIG_BYTES = 1_400_000
BIG_ACTIONS = 10
NOISY_CLIENTS = 50
MAX_LOADED_S = 60.0        # the loaded run stops after this long even before --n calls (minutes each before the fix)


async def put(session: aiohttp.ClientSession, name: str, code: str) -> None:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": {"kind": "python:3", "code": code}}) as r:
        if r.status != 200:
            raise RuntimeError(f"PUT {name}: {r.status} {await r.text()}")


async def list_actions(session: aiohttp.ClientSession) -> None:
    async with session.get("/api/v1/namespaces/_/actions?limit=30") as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"list: {r.status}")


async def one_store(store: str, n: int, big_bytes: int = BIG_BYTES) -> dict[str, object]:
    import tempfile
    data = tempfile.mkdtemp(prefix="whisk-bench-")
    env = BENCH_ENV | {"WHISK_DATA_DIR": data,
                       "WHISK_STORE": "memory://" if store == "memory" else f"sqlite://{data}/whisk.db"}
    connector = aiohttp.TCPConnector(limit=0)
    async with whisk_server(env) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":")),
                                  connector=connector) as guest, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(SYSTEM_UUID, SYSTEM_KEY),
                                  connector=aiohttp.TCPConnector(limit=0)) as noisy:
        await put(guest, "small", "def main(args):\n    return args\n")
        big = "def main(args):\n    return args\n#" + "x" * big_bytes + "\n"
        for i in range(BIG_ACTIONS):
            await put(noisy, f"big-{i}", big)
        await measure(lambda: list_actions(guest), n=20, concurrency=1)                  # warm-up
        alone, wall = await measure(lambda: list_actions(guest), n=n, concurrency=1)
        row_alone = {"store": store, "load": "none"} | summary(alone, wall)
        stop = asyncio.Event()

        async def hammer() -> None:
            while not stop.is_set():
                await list_actions(noisy)

        noise = [asyncio.create_task(hammer()) for _ in range(NOISY_CLIENTS)]
        try:
            await asyncio.sleep(1.0)                                                        # the load is on
            t0 = time.perf_counter()
            loaded: list[float] = []
            while len(loaded) < n and time.perf_counter() - t0 < MAX_LOADED_S:           # slow before the fix
                t1 = time.perf_counter()
                await list_actions(guest)
                loaded.append((time.perf_counter() - t1) * 1000)
            wall = time.perf_counter() - t0
        finally:
            stop.set()
            await asyncio.gather(*noise, return_exceptions=True)
        load = f"{NOISY_CLIENTS} lists of {BIG_ACTIONS}x{big_bytes / 1e6:g}MB"
        row_loaded = {"store": store, "load": load} | summary(loaded, wall)
        print(row_alone, row_loaded, flush=True)
        return {"alone": row_alone, "loaded": row_loaded}


async def main() -> None:
    p = parser(__doc__, 200)
    p.add_argument("--stores", default="sqlite,memory", help="comma-separated: sqlite, memory (default both)")
    p.add_argument("--big-bytes", type=int, default=BIG_BYTES,
                   help=f"code size of the noisy tenant's actions (default {BIG_BYTES}; a few bytes is the control)")
    args = p.parse_args()
    rows = []
    for store in args.stores.split(","):
        result = await one_store(store.strip(), args.n, args.big_bytes)
        rows += [result["alone"], result["loaded"]]
    report("listing_isolation", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
