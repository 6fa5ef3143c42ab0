"""Where the CPU of a warm invoke goes, by process: whisk's event loop thread and its other threads, the action
containers' processes (by name), and this benchmark's own client, over blocking no-op invokes at one concurrency.
Whisk runs as `make run` starts it (SQLite records, default logging; only the throttles and the pool's memory
raised, as bench.versus does). Read from /proc (each thread's and process's user + system time) and the client's
getrusage, around the measured calls, after a warm-up; Linux only. For whisk, the "all" row also has the event loop
thread's time waiting for a CPU while it could run (`loop_cpu_wait_ms` an invoke, from /proc's schedstat) and the
share of the wall time it was on a CPU or waiting for one (`loop_busy_pct`): near 100 % the loop sets the pace, and
what is left of it is the wait, the time other processes took its CPU. With `--target serverless-offline`, the same
for bench.versus's peer (its no-op behind its HTTP endpoint): the CPU of its process tree, by process name.

    python -m bench.cpu_split --kind nodejs:20 --concurrency 32 --n 6000
    python -m bench.cpu_split --target serverless-offline
"""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path

import aiohttp

from bench._harness import measure, parser, report, summary
from bench._peer import serverless_offline
from bench.soak_memory import descendants
from bench.versus import PEER, cycling, invoke_url, poster, put_action, warm_up, whisk_as_make_run
from tests.support.processes import GUEST_AUTH, basic_auth

TICKS_S = os.sysconf("SC_CLK_TCK")
Times = dict[tuple[str, int], float]        # (part, thread or process id) -> CPU seconds so far


def _stat(path: Path) -> tuple[str, list[str]] | None:
    """A /proc stat file: the command name and the fields after it; None once the thread or process is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS_S        # utime + stime


def whisk_pid() -> int:
    """The whisk server this process started (`python -m whisk`, a child of this process)."""
    for pid in descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"-m", b"whisk"]:
            return pid
    raise RuntimeError("no `python -m whisk` below this process")


def times(whisk: int) -> Times:
    """CPU so far of whisk's threads (its event loop is the main thread) and of every process below it."""
    out: Times = {}
    for task in Path(f"/proc/{whisk}/task").iterdir():
        if (stat := _stat(task / "stat")) is not None:
            part = "whisk event loop" if int(task.name) == whisk else f"whisk thread {stat[0]}"
            out[(part, int(task.name))] = _cpu_s(stat[1])
    return out | _tree(whisk, "containers")


def peer_times() -> Times:
    """CPU so far of every process below this one: the peer's tree (its npx wrapper, node, its workers)."""
    return _tree(os.getpid(), PEER)


def _tree(root: int, part: str) -> Times:
    """CPU so far of each process below `root`, as the part "`part`: its command name"."""
    out: Times = {}
    for pid in descendants(root):
        if (stat := _stat(Path(f"/proc/{pid}/stat"))) is not None:
            out[(f"{part}: {stat[0]}", pid)] = _cpu_s(stat[1])
    return out


def loop_schedstat(whisk: int) -> tuple[int, int]:
    """The event loop thread's ns so far on a CPU and waiting on a run queue for one (/proc schedstat)."""
    on_cpu, waiting, _ = Path(f"/proc/{whisk}/task/{whisk}/schedstat").read_text().split()
    return int(on_cpu), int(waiting)


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def split(before: Times, after: Times, client_s: float, n: int) -> dict[str, float]:
    """CPU ms per invoke by part; a thread or process that began meanwhile counts from zero."""
    parts: dict[str, float] = {}
    for key, seconds in after.items():
        parts[key[0]] = parts.get(key[0], 0.0) + seconds - before.get(key, 0.0)
    parts["bench client"] = client_s
    return {part: round(seconds * 1000 / n, 3) for part, seconds in sorted(parts.items(), key=lambda p: -p[1])}


async def run(kind: str, concurrency: int, n: int, warmup: int,
              actions: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    pool_mb = 128 * (max(concurrency, 32) + actions + 8)
    uuid, key = GUEST_AUTH.split(":")
    async with whisk_as_make_run(pool_mb) as base, \
            aiohttp.ClientSession(headers=basic_auth(uuid, key), connector=aiohttp.TCPConnector(limit=0)) as session:
        if actions == 1:
            await put_action(session, base, "cpu-split", kind)
            call = poster(session, invoke_url(base, "cpu-split"))
        else:
            names = [f"cpu-split-{i}" for i in range(actions)]
            for start in range(0, actions, 50):
                await asyncio.gather(*(put_action(session, base, name, kind) for name in names[start:start + 50]))
            call = cycling(session, base, names)
        await measure(call, n=warmup, concurrency=concurrency)
        whisk = whisk_pid()
        before, client_before, loop_before = times(whisk), client_cpu_s(), loop_schedstat(whisk)
        latencies, wall_s = await measure(call, n=n, concurrency=concurrency)
        after, client_after, loop_after = times(whisk), client_cpu_s(), loop_schedstat(whisk)
    parts, calls = _result(split(before, after, client_after - client_before, n), latencies, wall_s, n)
    on_cpu_ns, waiting_ns = (a - b for a, b in zip(loop_after, loop_before))
    return parts, {**calls, "loop_cpu_wait_ms": round(waiting_ns / 1e6 / n, 3),
                   "loop_busy_pct": round((on_cpu_ns + waiting_ns) / 1e9 / wall_s * 100, 1)}


async def run_peer(concurrency: int, n: int, warmup: int) -> tuple[dict[str, float], dict[str, float]]:
    """The same for serverless-offline, warmed up as bench.versus warms it up (its workers start on first calls)."""
    async with serverless_offline() as url, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        call = poster(session, url)
        await warm_up(call, concurrency, warmup)
        before, client_before = peer_times(), client_cpu_s()
        latencies, wall_s = await measure(call, n=n, concurrency=concurrency)
        after, client_after = peer_times(), client_cpu_s()
    return _result(split(before, after, client_after - client_before, n), latencies, wall_s, n)


def _result(parts: dict[str, float], latencies: list[float], wall_s: float,
            n: int) -> tuple[dict[str, float], dict[str, float]]:
    busy = sum(parts.values()) * n / 1000 / wall_s / (os.cpu_count() or 1)
    return parts, {**summary(latencies, wall_s), "machine_busy_pct": round(busy * 100, 1)}


async def main() -> None:
    p = parser(__doc__, 6000)
    p.add_argument("--target", choices=("whisk", PEER), default="whisk",
                   help="whisk as `make run` starts it, or bench.versus's peer (default whisk)")
    p.add_argument("--kind", default="python:3", help="whisk's no-op action's kind (default python:3)")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    p.add_argument("--warmup", type=int, default=4000, help="calls before the measured ones (default 4000)")
    p.add_argument("--actions", type=int, default=1,
                   help="whisk: distinct no-op actions the calls go to in turn (default 1)")
    args = p.parse_args()
    if args.actions < 1:
        p.error("--actions must be at least 1")
    what = f"whisk, {args.kind} x {args.actions}" if args.target == "whisk" else args.target
    print(f"cpu_split: {what} at concurrency {args.concurrency}: {args.warmup} calls of warm-up, then {args.n}",
          flush=True)
    if args.target == "whisk":
        parts, calls = await run(args.kind, args.concurrency, args.n, args.warmup, args.actions)
    else:
        parts, calls = await run_peer(args.concurrency, args.n, args.warmup)
    rows = [{"part": part, "cpu_ms_per_invoke": ms} for part, ms in parts.items()]
    rows.append({"part": "all", "cpu_ms_per_invoke": round(sum(parts.values()), 3), **calls,
                 **({"actions": args.actions} if args.target == "whisk" else {})})
    report("cpu_split", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
