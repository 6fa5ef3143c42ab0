"""Load and soak test: a mixed workload at a steady rate for a set time, then every accepted activation's record.

    python -m bench.soak --duration 60 --rate 50 [--cluster | --url URL [--pid PID ...]] [--namespaces 5]
                         [--actions 100] [--warm-runs 2000] --out DIR

By default it starts its own standalone whisk (sqlite store in a temporary data dir, throttles raised) and creates
the namespaces with `whisk admin user create` first. With --cluster it starts a cluster instead, as bench.cluster
does (bench/_cluster.py): Apache Kafka, pouchdb-server in memory and the Consul double, then 1 controller and 2 invokers
(each with the pool the standalone one gets, throttles raised); the namespaces are created in the cluster's CouchDB
store, the load goes to the controller, and the memory of the controller, of each invoker (with its action
containers) and of the three backends is sampled; the record check also reads each record's CouchDB document, which
must have been written once. With --url the namespaces are created the same way when WHISK_STORE names the
platform's store, else the workload runs in the guest namespace; each --pid names a process whose memory (and its
children's) is sampled. Requests are scheduled open loop (one every 1/rate s, whatever the answers do), at most
--max-inflight at once: past that a request is counted as shed, not sent.

Before the timed load, each echo and failing action is invoked --warm-runs times (blocking, a few at a time): a
runtime's own warm-up then lies behind its container when memory is measured. V8 compiles a node proxy's hot path over
the container's first ~2,000 runs and keeps a few MB for it (`python -m bench.runtime_memory`), while the timed load
gives each of 100+ containers only a few hundred. Memory is sampled from the start of that warm-up; growth is
measured from --warmup seconds into the timed load.

Writes report.json, report.md and memory.png into --out (with --cluster also each member's log). Exits 1 when an
accepted activation has no record (or two), when a 5xx comes that the workload did not provoke, when a request gets
no answer at all, when a cluster member exits during the run, or when memory grows more than --memory-target %
after warm-up: a whisk process's RSS or USS, one of its long-lived children's (action containers') RSS, or those
children's USS together (the backends a cluster soak starts, which keep everything in memory, are reported but not
judged). Growth is judged by the trend of every sample after warm-up (the least-squares line's rise, in % of the
mean), not by two windows: a node container's young generation fills up and is collected every few minutes at a
soak's rate, a sawtooth of about 1 MB on the 8 MB of pages that are its own, so one container's USS swings more
than the target either way, and a window can land on either end of a tooth. Both are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from bench._cluster import INVOKERS, Backends, backends, members
from bench._harness import BENCH_ENV, machine, percentile
from bench.soak_memory import MemorySampler, children, children_series, growth, over_target
from bench.soak_plot import plot
from bench.soak_records import check
from bench.soak_report import Outcome, memory_table, per_kind, transport_errors, unexpected_5xx, write
from bench.soak_workload import MEMORY_MB, MIX, Namespace, Request, create_entities, pick, warmup_requests
from tests.support.processes import GUEST_AUTH, whisk_server

PROGRESS_S = 30.0
WARM_RUNS = 2000            # past the node proxy's JIT warm-up (bench/runtime_memory.py)
WARM_CONCURRENCY = 16
MEMORY_TARGET_PCT = 5.0     # issue 7: memory flat after warm-up, growth under 5 %

ACTIVATION_HEADER = "x-openwhisk-activation-id"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    p.add_argument("--rate", type=float, default=50, help="requests per second (default 50)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--cluster", action="store_true",
                       help="start a cluster (1 controller, 2 invokers over Apache Kafka, pouchdb-server and the "
                            "Consul double) instead of a standalone whisk")
    where.add_argument("--url", help="an already running platform (default: start a standalone one)")
    p.add_argument("--pid", type=int, action="append", default=[],
                   help="with --url: a process whose memory (and its children's) is sampled; repeatable")
    p.add_argument("--namespaces", type=int, default=5, help="namespaces (default 5)")
    p.add_argument("--actions", type=int, default=100, help="echo actions over all namespaces (default 100)")
    p.add_argument("--max-inflight", type=int, default=200, help="concurrency bound (default 200)")
    p.add_argument("--warm-runs", type=int, default=WARM_RUNS, metavar="N",
                   help=f"blocking runs of each echo and failing action before the timed load (default {WARM_RUNS}; "
                        "0: none), so that every action container is past its runtime's warm-up")
    p.add_argument("--warm-concurrency", type=int, default=WARM_CONCURRENCY, metavar="N",
                   help=f"warm-up runs in flight at once (default {WARM_CONCURRENCY}; at most one per action)")
    p.add_argument("--warmup", type=float, help="seconds into the timed load before memory growth is measured "
                                                "(default 20 %% of --duration, at least 10)")
    p.add_argument("--memory-target", type=float, default=MEMORY_TARGET_PCT, metavar="PCT",
                   help=f"growth after warm-up (the trend of the samples), in %%, past which a whisk process or "
                        f"one of its long-lived children fails the soak (default {MEMORY_TARGET_PCT:g})")
    p.add_argument("--check-deadline", type=float, default=120, help="seconds to wait for records (default 120)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the request mix (default 1)")
    p.add_argument("--out", required=True, help="report folder")
    args = p.parse_args(argv)
    if args.pid and not args.url:
        p.error("--pid goes with --url (standalone and --cluster sample the processes they start)")
    if args.warm_runs < 0:
        p.error("--warm-runs must be 0 or more")
    if args.warm_concurrency < 1:
        p.error("--warm-concurrency must be 1 or more")
    return args


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _admin_create(name: str, store: str) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "whisk", "admin", "user", "create", name,
        env=dict(os.environ) | {"WHISK_STORE": store}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"whisk admin user create {name}: {err.decode().strip()}")
    uuid, _, key = out.decode().strip().partition(":")
    return uuid, key


async def _namespaces(count: int, store: str | None) -> list[Namespace]:
    if store is None:
        uuid, key = GUEST_AUTH.split(":")
        return [Namespace("guest", (uuid, key))]
    run = secrets.token_hex(3)
    names = [f"soak-{run}-ns{i}" for i in range(count)]
    auths = await asyncio.gather(*(_admin_create(n, store) for n in names))
    return [Namespace(n, a) for n, a in zip(names, auths)]


def _label(pid: int) -> str:
    """A sampled process's name in the report: its whisk role and instance, else its command name."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            whisk = b"whisk" in f.read()
        if whisk or b"WHISK_ROLE" in env:
            role = env.get(b"WHISK_ROLE", b"standalone").decode()
            return f"{role}{env.get(b'WHISK_INSTANCE', b'0').decode()} ({pid})"
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f"{f.read().strip()} ({pid})"
    except OSError:
        return f"pid {pid}"


def _whisk_child(data_dir: str) -> int:
    """The `python -m whisk` this process started with `data_dir` (whisk_server yields its URL, not its pid; a
    test session may run other servers)."""
    mark = f"WHISK_DATA_DIR={data_dir}".encode()
    for pid in children(os.getpid()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    return pid
        except OSError:
            continue
    raise RuntimeError("the whisk process was not found among this process's children")


async def _send(req: Any, t0: float) -> Outcome:
    sent = time.monotonic()
    try:
        async with req.ns.session.request(req.method, req.path, json=req.body) as r:
            body: Any = None
            if r.content_type == "application/json":
                body = await r.json()
            else:
                await r.read()
            aid = r.headers.get(ACTIVATION_HEADER)
            if aid is None and isinstance(body, dict) and isinstance(body.get("activationId"), str):
                aid = body["activationId"]
            status = (body.get("response") or {}).get("status") if isinstance(body, dict) else None
            return Outcome(req.kind, req.ns.name, r.status, (time.monotonic() - sent) * 1000, round(sent - t0, 3),
                           aid, status if isinstance(status, str) else None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return Outcome(req.kind, req.ns.name, f"transport: {type(exc).__name__}", (time.monotonic() - sent) * 1000,
                       round(sent - t0, 3), None)


async def run_load(args: argparse.Namespace, namespaces: list[Namespace], kinds: list[str],
                   t0: float) -> tuple[list[Outcome], dict[str, Any]]:
    rng = random.Random(args.seed)
    weights = [MIX[k][0] for k in kinds]
    outcomes: list[Outcome] = []
    inflight: set[asyncio.Task[Outcome]] = set()
    lags: list[float] = []
    shed = seq = 0
    interval = 1 / args.rate
    end = t0 + args.duration
    next_progress = t0 + PROGRESS_S
    while (due := t0 + seq * interval) < end:
        now = time.monotonic()
        if now >= next_progress:
            next_progress += PROGRESS_S
            _progress(now - t0, args.duration, seq - shed, outcomes, len(inflight), shed)
        if due > now:
            await asyncio.sleep(due - now)
        lags.append((time.monotonic() - due) * 1000)
        req = pick(rng, namespaces, kinds, weights, seq)
        seq += 1
        if len(inflight) >= args.max_inflight:
            shed += 1
            continue
        task = asyncio.create_task(_send(req, t0))
        inflight.add(task)
        task.add_done_callback(lambda t: (inflight.discard(t), outcomes.append(t.result())))
    if inflight:
        await asyncio.wait(set(inflight))
    wall = time.monotonic() - t0
    return outcomes, {"sent": seq - shed, "answered": sum(isinstance(o.status, int) for o in outcomes),
                      "shed": shed, "wall_s": round(wall, 1),
                      "per_s": round(sum(isinstance(o.status, int) for o in outcomes) / wall, 1),
                      "lag_p99_ms": round(percentile(lags, 99), 1)}


async def warm_up(namespaces: list[Namespace], runs: int, concurrency: int,
                  t0: float) -> tuple[list[Outcome], dict[str, Any]]:
    """`runs` blocking runs of each action with a long-lived container, by `concurrency` workers that each own some
    of the actions, so that an action never has two runs at once and keeps the one container that gets them all.
    Their outcomes count like the load's (5xx, records)."""
    targets = warmup_requests(namespaces)
    total = runs * len(targets)
    workers = min(concurrency, len(targets)) if total else 0
    outcomes: list[Outcome] = []

    async def worker(mine: list[Request]) -> None:
        for n in range(runs):
            for req in mine:
                outcomes.append(await _send(Request(req.kind, req.ns, req.method, req.path, {"n": n}), t0))

    async def progress() -> None:
        while True:
            await asyncio.sleep(PROGRESS_S)
            print(f"soak: warm-up {len(outcomes)}/{total} runs ({len(outcomes) / (time.monotonic() - t0):.0f}/s)",
                  file=sys.stderr, flush=True)

    if total:
        print(f"soak: warm-up: {runs} runs of each of {len(targets)} actions ({total} blocking invocations, "
              f"{workers} at once)", file=sys.stderr, flush=True)
    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker(targets[w::workers]) for w in range(workers)))
    finally:
        reporter.cancel()
    wall = time.monotonic() - t0
    return outcomes, {"runs_per_action": runs, "actions": len(targets), "sent": total, "wall_s": round(wall, 1),
                      "per_s": round(total / wall, 1) if total else 0.0}


def _progress(elapsed: float, duration: float, sent: int, outcomes: list[Outcome], inflight: int, shed: int) -> None:
    """One line on stderr every PROGRESS_S: a 30-minute run must show it is alive and how it is going."""
    answered = [o for o in outcomes if isinstance(o.status, int)]
    failed = sum(1 for o in answered if o.status >= 500) + sum(1 for o in outcomes if not isinstance(o.status, int))
    print(f"soak: {elapsed:.0f}/{duration:.0f} s, sent {sent}, answered {len(answered)} "
          f"({len(answered) / elapsed:.1f}/s), 5xx or transport errors {failed} (some provoked), in flight {inflight}, "
          f"shed {shed}", file=sys.stderr, flush=True)


def _pool_mb(args: argparse.Namespace) -> int:
    """Room for a warm container of every action and of each namespace's 8 other actions, and some to spare."""
    return MEMORY_MB * (args.actions + 8 * args.namespaces + 16)


async def soak(args: argparse.Namespace, backends_: Backends | None = None) -> int:
    """`backends_`: with --cluster, backends already running (the tests' fixtures) instead of starting them."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started_on = machine()      # the commit the platform starts from, not the one checked out when the run ends
    warmup = args.warmup if args.warmup is not None else max(10.0, args.duration * 0.2)
    timeout = aiohttp.ClientTimeout(total=120)
    cluster = couch_activations = None
    stopped: dict[str, int | str] = {}
    target = args.url or "standalone (sqlite store, process:// containers)"
    async with AsyncExitStack() as stack:
        if args.cluster:
            b = backends_ or await stack.enter_async_context(backends())
            cluster = await stack.enter_async_context(members(
                b, _pool_mb(args), extra_env={"WHISK_LIMIT_FIRES_PER_MINUTE": "10000000"},
                stopped=stopped))
            namespaces = await _namespaces(args.namespaces, cluster.env["WHISK_STORE"])
            url = cluster.controller.url
            couch_activations = f"{cluster.couch_base}/{cluster.prefix}activations"
            pids = {f"{m.role}{m.instance} ({m.proc.pid})": m.proc.pid for m in cluster.members}
            judged = set(pids)
            pids |= {f"{name} ({pid})": pid for name, pid in b.pids.items()}
            target = (f"cluster: 1 controller, {INVOKERS} invokers ({_pool_mb(args)} MB pool each, process:// "
                      f"containers) over Apache Kafka, pouchdb-server in memory "
                      f"(CouchDB store {cluster.env['WHISK_STORE']}) and the Consul double")
        elif args.url:
            url, pids = args.url, {_label(pid): pid for pid in args.pid}
            judged = set(pids)
            namespaces = await _namespaces(args.namespaces, os.environ.get("WHISK_STORE"))
        else:
            data = tempfile.mkdtemp(prefix="whisk-soak-")
            store = f"sqlite:///{data}/whisk.db"
            namespaces = await _namespaces(args.namespaces, store)
            env = BENCH_ENV | {"WHISK_DATA_DIR": data, "WHISK_STORE": store,
                               "WHISK_LIMIT_FIRES_PER_MINUTE": "10000000",
                               "WHISK_POOL_MEMORY_MB": str(_pool_mb(args))}
            url = await stack.enter_async_context(whisk_server(env, log_path=str(out / "whisk.log")))
            pids = {"whisk": _whisk_child(data)}
            judged = set(pids)
        for ns in namespaces:
            ns.session = await stack.enter_async_context(aiohttp.ClientSession(
                base_url=url, headers={"Authorization": _basic(*ns.auth)}, timeout=timeout,
                connector=aiohttp.TCPConnector(limit=0)))
        features = await create_entities(namespaces, args.actions)
        kinds = [k for k in MIX if not features[k].skipped]
        loadavg_start = os.getloadavg()
        since_ms = int(time.time() * 1000) - 1000
        warm_t0 = time.monotonic()
        samplers = {label: MemorySampler(pid) for label, pid in pids.items()}
        sampling = [asyncio.create_task(sampler.run(warm_t0)) for sampler in samplers.values()]
        warm_outcomes, warm = await warm_up(namespaces, args.warm_runs, args.warm_concurrency, warm_t0)
        t0 = time.monotonic()
        # the samples' clock starts with the warm-up: growth is measured from --warmup s into the timed load
        measured_from = round(t0 - warm_t0, 1) + warmup
        outcomes, throughput = await run_load(args, namespaces, kinds, t0)
        for task in sampling:
            task.cancel()
        loadavg_end = os.getloadavg()
        by_name = {ns.name: ns for ns in namespaces}
        accepted = [(o.kind, by_name[o.namespace], o.activation_id) for o in outcomes if o.activation_id]
        accepted += [(f"{o.kind} (warm-up)", by_name[o.namespace], o.activation_id)
                     for o in warm_outcomes if o.activation_id]
        print(f"soak: load done; checking the records of {len(accepted)} accepted activations "
              f"(up to {args.check_deadline:.0f} s)", file=sys.stderr, flush=True)
        records = await check(accepted, namespaces, since_ms, args.check_deadline,
                              couch_activations=couch_activations)
        exited = cluster.exited() if cluster is not None else {}
    if cluster is not None:
        for m in cluster.members:
            shutil.copy(m.log_path, out / f"{m.role}{m.instance}.log")
    memory: dict[str, Any] = {"skipped": "no process to sample: give --pid with --url"}
    over: dict[str, list[str]] = {}
    if samplers:
        memory = {"processes": {label: {"pid": sampler.pid, "samples": len(sampler.samples), "judged": label in judged,
                                        "growth": growth(sampler.samples, measured_from, sampler.programs),
                                        "table": memory_table(sampler.samples),
                                        "children_series": children_series(sampler.samples, measured_from,
                                                                           sampler.programs)}
                                for label, sampler in samplers.items()}}
        over = {label: found for label, proc in memory["processes"].items()
                if proc["judged"] and (found := over_target(proc["growth"], args.memory_target))}
        memory |= {"target_pct": args.memory_target, "warm_up_s": round(t0 - warm_t0, 1), "over_target": over}
        memory["png"] = plot({label: sampler.samples for label, sampler in samplers.items()}, out / "memory.png",
                             f"whisk soak: {args.duration:.0f} s at {args.rate:g}/s", measured_from)
    bad_5xx = unexpected_5xx(outcomes + warm_outcomes)
    transport = transport_errors(outcomes + warm_outcomes)
    failed = bool(records.missing_ids or records.duplicates or records.rewritten or records.not_in_store
                  or records.error or bad_5xx or transport or exited or over)
    report = {
        "verdict": "FAILED" if failed else "passed",
        "config": {"command": shlex.join(["python", "-m", "bench.soak", *sys.argv[1:]]),
                   "target": target,
                   "duration_s": args.duration, "rate": args.rate, "namespaces": len(namespaces),
                   "actions": args.actions, "max_inflight": args.max_inflight, "seed": args.seed,
                   "loadavg_start": [round(x, 2) for x in loadavg_start],
                   "loadavg_end": [round(x, 2) for x in loadavg_end], "machine": started_on,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "skipped": {k: f.skipped for k, f in features.items() if f.skipped},
        "warm_up": warm | {"kinds": per_kind(warm_outcomes)},
        "throughput": throughput,
        "kinds": per_kind(outcomes),
        "unexpected_5xx": bad_5xx, "transport_errors": transport, "exited": exited, "stopped": stopped,
        "records": {"accepted": records.accepted, "derived": records.derived, "found": records.found,
                    "missing": len(records.missing_ids), "missing_ids": records.missing_ids[:100],
                    "duplicates": records.duplicates, "listed": records.listed, "check_s": records.check_s,
                    "store_checked": records.store_checked, "rewritten": len(records.rewritten),
                    "rewritten_ids": records.rewritten[:100], "not_in_store": len(records.not_in_store),
                    "not_in_store_ids": records.not_in_store[:100],
                    "statuses": {k: dict(v) for k, v in records.statuses.items()}, "error": records.error},
        "memory": memory,
    }
    write(out, report)
    print((out / "report.md").read_text(encoding="utf-8"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(soak(args))
    except KeyboardInterrupt:
        # asyncio.run cancelled the soak, which stopped the platform it started on the way out.
        print(f"soak: interrupted; no report written to {args.out}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
