"""Side by side in one run, with one client: the floor (a minimal aiohttp /run server), serverless-offline (the local
FaaS a Node.js developer would pick instead, a no-op handler behind its HTTP endpoint) and whisk as `make run` starts
it (SQLite records, default logging; only the throttles and the pool's memory raised, as OpenWhisk's own performance
tests do). Prints a table and JSON: warm no-op p50 overhead over the floor, throughput at concurrency 32 as a share
of the floor's, whether each blocking caller can read its record at once, and the curves of throughput against
concurrency and against distinct actions (drawn as a PNG with --png). The table's figures are taken in rounds, the
targets in turn, each window after a second's rest (--rounds, default 3; throughput is the rounds' median); so is
the actions curve, its counts in turn. Each whisk target is also set against the peer round by round (its p50 at one
caller minus the peer's, its throughput at 32 callers as a share of the peer's, and their medians, which the table
also shows): the windows of a pair run seconds apart, so a machine whose speed drifts moves both alike. Whisk's
warm-up before each point goes on until a round starts no container, and the containers it still started during
measured calls are printed.

    python -m bench.versus --n 2000 --png docs/performance-versus.png
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench._harness import NOOP, machine, measure, parser, summary, until_post_answers
from bench._peer import serverless_offline
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, whisk_server

PAYLOAD = {"name": "bench"}
KINDS = ("python:3", "nodejs:20")
PEER = "serverless-offline"
FLOOR_START_S = 15.0
SETTLE_ROUNDS = 4            # at most this many more warm-up rounds while whisk still adds containers
QUIET_S = 1.0                # rest before each of the table's windows
ROOM_ACTIONS = 100           # the pool has room for every count of the actions curve up to this many actions
Call = Callable[[], Awaitable[Any]]
Count = Callable[[], Awaitable[int]]


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


@asynccontextmanager
async def floor_server() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench._floor", "--port", str(port),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/run"
        await until_post_answers(url, proc, "the floor", FLOOR_START_S)
        yield url
    finally:
        await terminate(proc)


@asynccontextmanager
async def whisk_as_make_run(pool_mb: int) -> AsyncIterator[str]:
    """`make run`'s configuration: the action environments installed (quick when up to date), the SQLite store in
    a data folder, console logs at info (to a file here)."""
    installed = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk.runtimes.environments", "install")
    if await installed.wait() != 0:
        raise RuntimeError("installing the action environments failed (see above)")
    data = tempfile.mkdtemp(prefix="whisk-versus-")
    env = {"WHISK_DATA_DIR": data, "WHISK_STORE": f"sqlite://{data}/whisk.db",
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "10000000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "100000",
           "WHISK_POOL_MEMORY_MB": str(pool_mb)}
    async with whisk_server(env, log_path=os.path.join(data, "whisk.log")) as url:
        yield url


def poster(session: aiohttp.ClientSession, url: str) -> Call:
    async def call() -> None:
        async with session.post(url, json=PAYLOAD) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"{url}: {r.status}")
    return call


async def put_action(session: aiohttp.ClientSession, base: str, name: str, kind: str) -> None:
    body = {"exec": {"kind": kind, "code": NOOP[kind]}, "limits": {"memory": 128}}
    async with session.put(f"{base}/api/v1/namespaces/_/actions/{name}?overwrite=true", json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"PUT {name}: {r.status} {await r.text()}")


def invoke_url(base: str, name: str) -> str:
    return f"{base}/api/v1/namespaces/_/actions/{name}?blocking=true&result=true"


class ContainerStarts:
    """How many containers whisk has obtained other than warm ones (cold, prewarmed, recreated, ...), from the
    `whisk_invoker_container_starts_total` counter of its /metrics."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session = session
        self._url = f"{base}/metrics"

    async def __call__(self) -> int:
        async with self._session.get(self._url) as r:
            text = await r.text()
        return int(sum(sample.value for family in text_string_to_metric_families(text)
                       if family.name == "whisk_invoker_container_starts"
                       for sample in family.samples
                       if sample.name.endswith("_total") and sample.labels.get("start") != "warmed"))


class Tolerant:
    """`call` with its failures (RuntimeError, aiohttp.ClientError) counted in `failed` instead of raised."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.failed = 0

    async def __call__(self) -> None:
        try:
            await self._call()
        except (RuntimeError, aiohttp.ClientError):
            self.failed += 1


async def warm_up(call: Call, concurrency: int, n: int, starts: Count | None = None) -> None:
    """Unmeasured calls up to the concurrency about to be measured. With OpenWhisk's default action concurrency of 1,
    whisk needs a container per concurrent caller: without this, a measured point would pay the cold starts of
    every container its concurrency adds (each target gets the same treatment). The concurrency doubles up to the
    target, as load would ramp; a call that fails here (serverless-offline answers 504 when many of its workers
    start at once on a busy machine) is counted, not fatal: only measured calls must succeed. At the target level
    each caller makes 16 calls: the pool adds a container whenever every one is busy as a call arrives (up to its
    memory), and with 4 a point at 64 callers still measured some 40 cold starts. With `starts` (whisk's count of
    containers started), rounds of 16 calls a caller go on, up to SETTLE_ROUNDS, until one starts no container:
    a short burst at 64 or 128 callers still left a few (each ~70 ms of a core) in the measured calls."""
    tolerant = Tolerant(call)
    level = 1
    while True:
        level = min(level * 2, concurrency)
        await measure(tolerant, n=4 * level if level < concurrency else max(n, 16 * level), concurrency=level)
        if level == concurrency:
            break
    if starts is not None:
        for _ in range(SETTLE_ROUNDS):
            before = await starts()
            await measure(tolerant, n=16 * concurrency, concurrency=concurrency)
            if await starts() == before:
                break
    if tolerant.failed:
        print(f"versus: {tolerant.failed} warm-up calls failed (not measured)", file=sys.stderr, flush=True)


async def measured(call: Call, n: int, concurrency: int, starts: Count | None = None,
                   keep: list[float] | None = None) -> tuple[dict[str, float], int]:
    """`measure` that counts failed calls instead of stopping at the first (serverless-offline answers 504 past its
    function timeout when it falls behind): the summary's per_s counts the calls that succeeded; latencies are of
    every call (and added to `keep`, when given); with `starts`, the summary's `started` is how many containers
    whisk started meanwhile. Returns (summary, failed calls)."""
    counted = Tolerant(call)
    before = await starts() if starts is not None else 0
    latencies, wall_s = await measure(counted, n=n, concurrency=concurrency)
    if keep is not None:
        keep += latencies
    result = summary(latencies, wall_s)
    result["per_s"] = round((len(latencies) - counted.failed) / wall_s, 1) if wall_s else float("nan")
    if starts is not None:
        result["started"] = await starts() - before
    return result, counted.failed


Figures = dict[str, dict[str, float]]          # target -> figure -> value
ByRound = dict[str, dict[str, list[float]]]    # figure -> target -> one value a round


async def table(targets: dict[str, Call], n: int, rounds: int,
                counts: Mapping[str, Count | None]) -> tuple[Figures, ByRound]:
    """The table's figures. Every target is warmed up, then measured in `rounds` rounds: in each, every target's
    window at one caller, then every target's window at 32, the targets in turn (starting one further along each
    round), each window after QUIET_S of rest. A slow spell of a shared machine then falls on every target alike
    instead of on whichever was being measured (one window of 2,000 calls at 32 callers lasts under a second, and the
    same target gave 2,230 and 5,080/s within minutes), and no window pays for the work another target left behind
    it (a burst's garbage collection, its records' commit). p50 and p99 are of every call at one caller; per_s_c32
    is the median of the rounds' (each round's p50 and throughput are returned too)."""
    for name, call in targets.items():
        print(f"versus: {name}, warm-up", flush=True)
        await warm_up(call, 32, n // 10, counts[name])
    names = list(targets)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    per_s: dict[str, list[float]] = {name: [] for name in names}
    p50s: dict[str, list[float]] = {name: [] for name in names}
    failed = dict.fromkeys(names, 0)
    started = dict.fromkeys(names, 0)

    async def window(name: str, concurrency: int) -> None:
        await asyncio.sleep(QUIET_S)
        point, failed_calls = await measured(targets[name], n, concurrency, counts[name],
                                             keep=latencies[name] if concurrency == 1 else None)
        if concurrency == 1:
            p50s[name].append(point["p50_ms"])
        else:
            per_s[name].append(point["per_s"])
        failed[name] += failed_calls
        started[name] += int(point.get("started", 0))

    for number in range(rounds):
        print(f"versus: round {number + 1} of {rounds}", flush=True)
        order = names[number % len(names):] + names[:number % len(names)]
        for concurrency in (1, 32):
            for name in order:
                await window(name, concurrency)
    results = {}
    for name in names:
        one = summary(latencies[name], 1.0)
        results[name] = {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"],
                         "per_s_c32": round(statistics.median(per_s[name]), 1), "failed": failed[name]}
        if started[name]:
            results[name]["started"] = started[name]
    return results, {"p50_ms_c1": p50s, "per_s_c32": per_s}


async def records_at_once(session: aiohttp.ClientSession, base: str, name: str, n: int) -> dict[str, int]:
    """Each blocking caller that got its result reads the record at once: how many could not."""
    missing = 0
    for _ in range(n):
        async with session.post(f"{base}/api/v1/namespaces/_/actions/{name}?blocking=true", json=PAYLOAD) as r:
            activation_id = (await r.json())["activationId"]
        async with session.get(f"{base}/api/v1/namespaces/_/activations/{activation_id}") as r:
            body = await r.json()
            if r.status != 200 or "response" not in body:
                missing += 1
    return {"checked": n, "not_readable_at_once": missing}


async def concurrency_curve(call: Call, levels: list[int], n: int, failures: dict[int, int],
                            starts: Count | None = None, started: dict[int, int] | None = None) -> dict[int, float]:
    """Successful calls per second at each level; failed calls by level go into `failures`, and with `starts` the
    containers whisk started during a measured point into `started`."""
    curve = {}
    for c in levels:
        await warm_up(call, c, n // 10, starts)
        point, failed = await measured(call, max(n, 4 * c), c, starts)
        curve[c] = point["per_s"]
        if failed:
            failures[c] = failed
        if started is not None and point.get("started"):
            started[c] = int(point["started"])
    return curve


async def actions_curve(session: aiohttp.ClientSession, base: str, counts: list[int], n: int, rounds: int,
                        starts: Count | None = None, started: dict[int, int] | None = None,
                        by_round: dict[int, list[float]] | None = None) -> dict[int, float]:
    """Throughput at 32 callers spread over `count` distinct python actions, for each count: the median of `rounds`
    points, taken in rounds as the table's (the counts in turn, starting one further along each round, each point
    after QUIET_S of rest and its own warm-up), so that the ratio of two counts does not rest on one window each
    (a single point of one action gave 2,785 to 3,643/s in three runs of the same tree). With `by_round`, each
    count's points go there."""
    calls: dict[int, Call] = {}
    for count in counts:
        names = [f"versus-many-{count}-{i}" for i in range(count)]
        for start in range(0, count, 50):
            await asyncio.gather(*(put_action(session, base, name, "python:3") for name in names[start:start + 50]))
        calls[count] = cycling(session, base, names)
    points: dict[int, list[float]] = {count: [] for count in counts}
    for number in range(rounds):
        for count in counts[number % len(counts):] + counts[:number % len(counts)]:
            # Unmeasured: every action's first (cold) runs, the containers this count lost to another's since, and
            # 16 runs a container at least, as one action's 32 containers get (a young proxy's runs cost more).
            # Past ROOM_ACTIONS every call evicts and starts a container: one call an action, and no settling.
            fits = count <= ROOM_ACTIONS
            await warm_up(calls[count], 32, 16 * count if fits else count, starts if fits else None)
            await asyncio.sleep(QUIET_S)
            point, _ = await measured(calls[count], n, 32, starts)
            points[count].append(point["per_s"])
            if started is not None and point.get("started"):
                started[count] = started.get(count, 0) + int(point["started"])
    if by_round is not None:
        by_round.update(points)
    return {count: round(statistics.median(values), 1) for count, values in points.items()}


def cycling(session: aiohttp.ClientSession, base: str, names: list[str]) -> Call:
    """A call that invokes the next of `names` each time, round and round."""
    cycle = itertools.cycle([poster(session, invoke_url(base, name)) for name in names])

    async def call() -> None:
        await next(cycle)()
    return call


def against_peer(by_round: ByRound) -> dict[str, dict[str, Any]]:
    """Each whisk target against the peer, round by round: its p50 at one caller minus the peer's (ms; the floor's
    cancels out) and its throughput at 32 callers as a share of the peer's, each with the rounds' median. The two
    windows of a pair ran seconds apart, so a machine whose speed drifts over minutes moves both alike, where the
    table's medians may come from different rounds."""
    p50s, per_s = by_round["p50_ms_c1"], by_round["per_s_c32"]
    paired = {}
    for name in p50s:
        if name in ("floor", PEER):
            continue
        behind = [round(mine - theirs, 3) for mine, theirs in zip(p50s[name], p50s[PEER])]
        share = [round(mine / theirs, 3) for mine, theirs in zip(per_s[name], per_s[PEER]) if theirs]
        paired[name] = {"p50_minus_peer_ms": behind, "share_of_peer_c32": share,
                        "median_p50_minus_peer_ms": round(statistics.median(behind), 3) if behind else None,
                        "median_share_of_peer_c32": round(statistics.median(share), 3) if share else None}
    return paired


def rows_of(results: dict[str, dict[str, float]], paired: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The table: each target's figures, and for a whisk target the paired verdict against the peer as well (the
    medians of `against_peer`; "-" for the floor and the peer). The two can disagree: the per-target medians may come
    from different rounds, the paired ones never do."""
    floor = results["floor"]
    rows = []
    for name, r in results.items():
        pair = paired.get(name, {})
        rows.append({"target": name, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                     "overhead_p50_ms": round(r["p50_ms"] - floor["p50_ms"], 3),
                     "per_s_c32": r["per_s_c32"], "share_of_floor_c32": round(r["per_s_c32"] / floor["per_s_c32"], 3),
                     "p50_minus_peer_ms": pair.get("median_p50_minus_peer_ms", "-"),
                     "share_of_peer_c32": pair.get("median_share_of_peer_c32", "-"),
                     "failed": r["failed"]})
    return rows


def draw(path: str, by_concurrency: dict[str, dict[int, float]], by_actions: dict[int, float],
         floor_c32: float) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("versus: no PNG (pip install -e '.[bench]' brings matplotlib)", file=sys.stderr)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, curve in by_concurrency.items():
        left.plot(list(curve), list(curve.values()), marker="o", label=name)
    left.set(xscale="log", xlabel="concurrent callers", ylabel="calls per second", title="Throughput by concurrency")
    levels = list(next(iter(by_concurrency.values())))
    left.set_xticks(levels, labels=[str(c) for c in levels])
    left.legend()
    right.plot(list(by_actions), list(by_actions.values()), marker="o", label="whisk, python no-op")
    right.axhline(floor_c32, linestyle="--", color="grey", label="floor")
    right.set(xscale="log", xlabel="distinct actions", ylabel="calls per second", title="Throughput by actions (c=32)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"versus: drew {path}")


async def main() -> None:
    p = parser(__doc__, 2000)
    p.add_argument("--concurrency", type=integers, default=[1, 2, 4, 8, 16, 32, 64, 128],
                   help="levels of the concurrency curve (default 1,2,4,8,16,32,64,128)")
    p.add_argument("--actions", type=integers, default=[1, 10, 100, 1000],
                   help="distinct actions of the actions curve (default 1,10,100,1000)")
    p.add_argument("--curve-n", type=int, default=1000, help="calls per point of the curves (default 1000)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of the table's measurements, the targets in turn in each, and of the actions "
                        "curve's, its counts in turn (default 3)")
    p.add_argument("--records", type=int, default=200, help="invokes whose record is read at once (default 200)")
    p.add_argument("--png", metavar="FILE", help="draw both curves into FILE")
    args = p.parse_args()
    uuid, key = GUEST_AUTH.split(":")
    # Room for the 128 MB containers of every count of the actions curve up to 100 actions at once (its counts take
    # turns): at 32 callers a count keeps at least 32 busy, and one an action; so that the curve measures the
    # platform rather than evictions. Past ROOM_ACTIONS the pool churns, as it would.
    pool_mb = 128 * (sum(max(count, 32) for count in args.actions if count <= ROOM_ACTIONS) + 8)
    curves: dict[str, dict[int, float]] = {}
    failures: dict[str, dict[int, int]] = {}
    started: dict[str, Any] = {"table": {}, "by_concurrency": {}, "by_actions": {}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as plain, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=basic_auth(uuid, key)) as authed, \
            floor_server() as floor, serverless_offline() as peer, whisk_as_make_run(pool_mb) as base:
        for kind in KINDS:
            await put_action(authed, base, f"versus-{kind.split(':')[0]}", kind)
        targets = {"floor": poster(plain, floor), PEER: poster(plain, peer),
                   **{f"whisk {kind.split(':')[0]}": poster(authed, invoke_url(base, f"versus-{kind.split(':')[0]}"))
                      for kind in KINDS}}
        starts = ContainerStarts(authed, base)      # whisk's: a measured point should start none
        counts = {name: starts if name.startswith("whisk") else None for name in targets}
        results, rounds = await table(targets, args.n, args.rounds, counts)
        for name, row in results.items():
            if row.get("started"):
                started["table"][name] = row.pop("started")
        records = await records_at_once(authed, base, "versus-python", args.records)
        for name, call in targets.items():
            print(f"versus: {name}, concurrency curve", flush=True)
            failures[name] = {}
            started["by_concurrency"][name] = {}
            curves[name] = await concurrency_curve(call, args.concurrency, args.curve_n, failures[name], counts[name],
                                                   started["by_concurrency"][name])
        print("versus: whisk, actions curve", flush=True)
        by_actions_round: dict[int, list[float]] = {}
        by_actions = await actions_curve(authed, base, args.actions, args.curve_n, args.rounds, starts,
                                         started["by_actions"], by_actions_round)
    paired = against_peer(rounds)
    rows = rows_of(results, paired)
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("# versus")
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))
    print("p50 ms at c=1, round by round: " + json.dumps(rounds["p50_ms_c1"]))
    print("per s at c=32, round by round: " + json.dumps(rounds["per_s_c32"]))
    for name, pair in paired.items():
        behind, share = pair["median_p50_minus_peer_ms"], pair["median_share_of_peer_c32"]
        print(f"{name} against {PEER}, round by round: p50 at c=1 "
              + " / ".join(f"{d:+.3f}" for d in pair["p50_minus_peer_ms"])
              + (f" ms (median {behind:+.3f})" if behind is not None else " ms")
              + ", throughput at c=32 " + " / ".join(f"{r:.0%}" for r in pair["share_of_peer_c32"])
              + (f" (median {share:.0%})" if share is not None else ""))
    print(f"records readable at once: {records['checked'] - records['not_readable_at_once']}/{records['checked']}")
    print("throughput by concurrency: " + json.dumps(curves))
    one = by_actions.get(1) or next(iter(by_actions.values()))
    print("throughput by actions (c=32, the rounds' median): "
          + ", ".join(f"{c}: {v} ({v / one:.0%})" for c, v in by_actions.items()))
    print("throughput by actions, round by round: " + json.dumps(by_actions_round))
    failed_curve = {name: levels for name, levels in failures.items() if levels}
    if failed_curve:
        print("failed calls in the concurrency curve (not counted in its throughput): " + json.dumps(failed_curve))
    started["by_concurrency"] = {name: levels for name, levels in started["by_concurrency"].items() if levels}
    if any(started.values()):
        print("containers whisk started during measured calls (each costs a few ms to ~70 ms of a core): "
              + json.dumps(started))
    result = {"benchmark": "versus", "rows": rows, "by_round": rounds, "against_peer": paired, "records": records,
              "by_concurrency": curves, "failed_by_concurrency": failed_curve, "started_during_measured": started,
              "by_actions": by_actions, "by_actions_round": by_actions_round, "machine": machine(), "n": args.n,
              "rounds": args.rounds}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    if args.png:
        draw(args.png, curves, by_actions, results["floor"]["per_s_c32"])


if __name__ == "__main__":
    asyncio.run(main())
