"""A rolling restart of a whole cluster under load: 2 controllers and 2 invokers over Apache Kafka, pouchdb-server
(on disk, so that it can be restarted) and the Consul double, with nginx (config/nginx/) in front of both controllers.

    python -m bench.rolling_restart [--rate 20] [--pause 8]

A steady load through nginx (blocking and non-blocking invokes, blocking sequence invokes, trigger fires with a rule;
`--rate` requests a second in all) while each component is stopped gracefully (SIGTERM) and started again in turn:
invoker 0, invoker 1, controller 0, controller 1, the broker, pouchdb-server. Every action run appends its activation
id to a file, so the end can check that every accepted activation (a 200 or 202 with an id) has exactly one record
and that nothing ran twice. Prints every refusal, the restart times and the metrics before and after. Every process
listens on 127.0.0.1, on 100 ports from 43100 (`--port-base`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

import tests.distributed.cluster as cluster_mod
import tests.support.kafka_broker as kafka_mod
import tests.support.nginx as nginx_mod
import tests.support.processes as processes
from tests.distributed.load import records, summary
from tests.support.couchdb_server import POUCHDB_SERVER
from tests.support.processes import GUEST_AUTH, basic_auth, terminate, until_ready

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ports: list[int] = []


def port_in_range() -> int:
    """A free loopback port from the range this rig may use."""
    while _ports:
        port = _ports.pop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in the range")


RUN = (
    "import os, time\n"
    "def main(args):\n"
    "    with open(args['runs'], 'a') as f:\n"
    "        f.write(os.environ['__OW_ACTIVATION_ID'] + '\\n')\n"
    "    time.sleep(args.get('sleep', 0.2))\n"
    "    return {'ok': True, 'n': args.get('n', 0) + 1}\n"
)


@dataclass(slots=True)
class Call:
    kind: str
    sent: float
    answered: float
    status: int | None
    activation_id: str | None
    body: Any = None
    error: str | None = None


class Driver:
    def __init__(self, base: str, cafile: str, rate: float) -> None:
        self.base, self.rate = base, rate
        self.calls: list[Call] = []
        self.cafile = cafile
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        uuid, key = GUEST_AUTH.split(":")
        connector = aiohttp.TCPConnector(limit=0, ssl=False)
        async with aiohttp.ClientSession(self.base, headers=basic_auth(uuid, key), connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=120)) as session:
            kinds = ["blocking", "blocking", "nonblocking", "nonblocking", "sequence", "fire"]
            i = 0
            while not self._stop.is_set():
                task = asyncio.create_task(self._one(session, kinds[i % len(kinds)]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                i += 1
                await asyncio.sleep(1 / self.rate)
            await asyncio.gather(*self._tasks)

    async def stop(self) -> None:
        self._stop.set()

    async def _one(self, session: aiohttp.ClientSession, kind: str) -> None:
        sent = time.monotonic()
        match kind:
            case "blocking":
                path, params = "/api/v1/namespaces/_/actions/rr-run", {"blocking": "true"}
            case "nonblocking":
                path, params = "/api/v1/namespaces/_/actions/rr-run", {"blocking": "false"}
            case "sequence":
                path, params = "/api/v1/namespaces/_/actions/rr-seq", {"blocking": "true"}
            case _:
                path, params = "/api/v1/namespaces/_/triggers/rr-trigger", {}
        try:
            async with session.post(path, params=params, json={}) as r:
                body = await r.json(content_type=None)
                aid = body.get("activationId") if isinstance(body, dict) else None
                self.calls.append(Call(kind, sent, time.monotonic(), r.status, aid, body))
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            self.calls.append(Call(kind, sent, time.monotonic(), None, None, error=repr(exc)))


async def scrape(url: str, names: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as r:
            text = await r.text()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return {"unreachable": 1}
    for line in text.splitlines():
        for name in names:
            if line.startswith(name):
                key, value = line.rsplit(" ", 1)
                out[key] = out.get(key, 0) + float(value)
    return out


METRICS = ("whisk_bus_up", "whisk_loadbalancer_completions_total", "whisk_loadbalancer_activations_total",
           "openwhisk_action_activations_total", "whisk_invoker_activations_total")


async def all_up(c: cluster_mod.Cluster, deadline_s: float = 90) -> float:
    began = time.monotonic()
    expected = {"invoker0": "up", "invoker1": "up"}
    for m in c.controllers:
        async def probe(m: Any = m) -> bool:
            async with aiohttp.ClientSession() as s, s.get(f"{m.url}/invokers") as r:
                return await r.json() == expected
        await cluster_mod.until(f"invokers up on {m.url}", probe, deadline_s, interval_s=0.2)
    return time.monotonic() - began


async def start_broker_again(broker: kafka_mod.KafkaBroker) -> None:
    """Start the broker on its port again. The port is in the kernel's ephemeral range (32768-60999 here), and a
    client retrying a connection to it meanwhile can be given it as its own source port and connect to itself (TCP's
    simultaneous open): the broker cannot bind until that client lets go, so try a few times."""
    for attempt in range(10):
        try:
            await broker.start()
            return
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 9:
                raise
            print(f"broker port {broker.port} taken, trying again", flush=True)
            await asyncio.sleep(3)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20.0, help="requests a second, all kinds together (default 20)")
    p.add_argument("--pause", type=float, default=8.0, help="seconds of load between two restarts (default 8)")
    p.add_argument("--port-base", type=int, default=43100,
                   help="the first of 100 ports this rig may use (default 43100)")
    p.add_argument("--grace", default="10", help="WHISK_SHUTDOWN_GRACE_S of every member (default 10)")
    p.add_argument("--only", default="", help="comma-separated steps to run, of invoker0, invoker1, controller0, "
                                              "controller1, broker, couchdb (default: all)")
    args = p.parse_args()
    _ports.extend(random.sample(range(args.port_base, args.port_base + 100), 100))
    for mod in (processes, cluster_mod, kafka_mod, nginx_mod):
        mod.free_port = port_in_range  # type: ignore[attr-defined]

    work = tempfile.mkdtemp(prefix="whisk-rolling-")
    runs = os.path.join(work, "runs.txt")
    couch_dir = os.path.join(work, "pouchdb")
    os.makedirs(couch_dir)
    couch_port, consul_port = port_in_range(), port_in_range()
    couch_proc: asyncio.subprocess.Process | None = None

    async def start_couch() -> asyncio.subprocess.Process:
        with open(os.path.join(work, "pouchdb.log"), "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                str(POUCHDB_SERVER), "--host", "127.0.0.1", "--port", str(couch_port), cwd=couch_dir,
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        await until_ready(f"http://127.0.0.1:{couch_port}/", proc, deadline_s=60)
        return proc

    consul = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.consul_double", "--port", str(consul_port), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    broker = kafka_mod.KafkaBroker()
    steps: list[dict[str, Any]] = []
    cluster: cluster_mod.Cluster | None = None
    try:
        await until_ready(f"http://127.0.0.1:{consul_port}/v1/status/leader", consul, deadline_s=30)
        couch_proc = await start_couch()
        await broker.start()
        couch = f"http://127.0.0.1:{couch_port}"
        env, prefix = cluster_mod.cluster_env(broker.bootstrap, couch, f"consul://127.0.0.1:{consul_port}")
        env["WHISK_SHUTDOWN_GRACE_S"] = args.grace
        env["WHISK_LIMIT_FIRES_PER_MINUTE"] = "100000"
        c = cluster = cluster_mod.Cluster(env, couch, prefix, work)
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        await asyncio.gather(c.start("invoker", 0), c.start("invoker", 1))
        await all_up(c)
        uuid, key = GUEST_AUTH.split(":")
        async with aiohttp.ClientSession(c.controller.url, headers=basic_auth(uuid, key)) as s:
            async def put(path: str, body: Any) -> None:
                async with s.put(f"/api/v1/namespaces/_/{path}?overwrite=true", json=body) as r:
                    assert r.status == 200, (path, await r.text())
            await put("actions/rr-run", {"exec": {"kind": "python:3", "code": RUN},
                                         "parameters": [{"key": "runs", "value": runs}]})
            await put("actions/rr-seq", {"exec": {"kind": "sequence",
                                                  "components": ["/guest/rr-run", "/guest/rr-run"]}})
            await put("triggers/rr-trigger", {})
            await put("rules/rr-rule", {"trigger": "/guest/rr-trigger", "action": "/guest/rr-run"})
        upstreams = [nginx_mod.authority(m.url) for m in c.controllers]
        async with nginx_mod.run_nginx(upstreams) as nginx:
            print(f"nginx upstreams: {upstreams}", flush=True)
            before = {f"{m.role}{m.instance}": await scrape(m.url, METRICS) for m in c.members}
            driver = Driver(nginx.https_url, str(nginx.cert), args.rate)
            load = asyncio.create_task(driver.run())
            await asyncio.sleep(args.pause)
            order = ["invoker0", "invoker1", "controller0", "controller1", "broker", "couchdb"]
            if args.only:
                order = [o for o in order if o in args.only.split(",")]
            for step in order:
                t0 = time.monotonic()
                if step.startswith(("invoker", "controller")):
                    role, instance = step[:-1], int(step[-1])
                    member = next(m for m in reversed(c.members) if m.role == role and m.instance == instance)
                    member.killed = True          # stopped by us: not an unexpected exit
                    code = await terminate(member.proc, grace_s=60)
                    stopped = time.monotonic() - t0
                    await c.start(role, instance, port=member.port)
                else:
                    code = 0
                    if step == "broker":
                        await broker.stop()
                        stopped = time.monotonic() - t0
                        await start_broker_again(broker)
                    else:
                        assert couch_proc is not None
                        code = await terminate(couch_proc)
                        stopped = time.monotonic() - t0
                        couch_proc = await start_couch()
                started = time.monotonic() - t0 - stopped
                up = await all_up(c)
                steps.append({"step": step, "exit": code, "stop_s": round(stopped, 1), "start_s": round(started, 1),
                              "all_up_after_s": round(up, 1), "at": round(t0 - driver.calls[0].sent, 1)
                              if driver.calls else 0})
                print(f"{step}: {steps[-1]}", flush=True)
                await asyncio.sleep(args.pause)
            await driver.stop()
            await load
            after = {f"{m.role}{m.instance}": await scrape(m.url, METRICS) for m in c.members if not m.killed}
            print("nginx errors:", [ln for ln in nginx.error_log().splitlines() if "[error]" in ln][:20])
        calls = driver.calls
        # Accepted: told its id (a sequence whose component could not be scheduled is a 500 with its record).
        accepted = {x.activation_id: x for x in calls if x.activation_id}
        deadline = time.monotonic() + 60
        while True:
            found = await records(couch, prefix, list(accepted))
            if len(found) == len(accepted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        with open(runs) as f:
            ran = [line.strip() for line in f if line.strip()]
        twice = {a for a in ran if ran.count(a) > 1}
        ran_found = await records(couch, prefix, list(set(ran)))
        slow = sorted((round(x.answered - x.sent, 1), x.kind, x.status) for x in calls if x.answered - x.sent > 10)
        print(json.dumps({
            "calls": len(calls), "by_kind": {k: summary([x for x in calls if x.kind == k])
                                            for k in ("blocking", "nonblocking", "sequence", "fire")},
            "accepted": len(accepted), "recorded": len(found),
            "accepted_without_record": sorted(set(accepted) - found.keys())[:20],
            "runs": len(ran), "ran_twice": sorted(twice)[:20], "runs_without_record": len(set(ran) - ran_found.keys()),
            "slowest": slow[-10:], "steps": steps}, indent=1, default=str))
        refused: dict[tuple[str, Any, str], int] = {}
        for x in calls:
            if x.status not in (200, 202):
                what = x.error or (x.body.get("error") if isinstance(x.body, dict) else None) or str(x.body)
                if isinstance(what, dict):
                    what = json.dumps(what)[:120]
                key = (x.kind, x.status, str(what)[:120])
                refused[key] = refused.get(key, 0) + 1
        for (kind, status, what), n in sorted(refused.items(), key=str):
            print(f"refused: {n} x {kind} {status} {what}")
        for x in calls:
            if x.status not in (200, 202) and isinstance(x.body, dict) and not ("error" in x.body and "code" in x.body)\
                    and not x.activation_id:
                print("not OpenWhisk's error shape:", x.kind, x.status, json.dumps(x.body)[:200])
        for x in [x for x in calls if x.status in (200, 202) and not x.activation_id][:10]:
            print("no id:", x.kind, x.status, json.dumps(x.body)[:200])
        for name in sorted(before):
            print("metrics", name, "before", before[name])
            print("metrics", name, "after ", after.get(name))
        codes = await c.stop()
        print("exits:", codes)
    finally:
        if cluster is not None:
            await cluster.stop()      # a failed run's members (those stopped already return their status)
        await broker.close()
        if couch_proc is not None:
            await terminate(couch_proc)
        await terminate(consul)
        if os.environ.get("KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    asyncio.run(main())
