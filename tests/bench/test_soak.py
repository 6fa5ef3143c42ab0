"""The soak (bench/soak.py) in miniature: a few seconds of the mixed workload against its own standalone whisk and
against a cluster on the session's backends, the report's shape, and the record check catching an activation id
that has no record and a CouchDB record written twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench._cluster import Backends
from bench.soak import parse, soak, warm_up
from bench.soak_memory import MemorySampler, Sample, children_series, growth, over_target, rss_kb, uss_kb
from bench.soak_plot import _plain
from bench.soak_records import Check, _revisions, check
from bench.soak_report import Outcome, transport_errors, unexpected_5xx
from bench.soak_workload import MIX, Namespace
from tests.support.processes import GUEST_AUTH, whisk_server


async def test_a_short_soak_reports_every_kind_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    status = await soak(parse(["--duration", "4", "--rate", "15", "--namespaces", "2", "--actions", "4",
                               "--warm-runs", "3", "--check-deadline", "20", "--out", str(out)]))
    report = json.loads((out / "report.json").read_text())
    assert status == 0, (out / "report.md").read_text()
    assert report["verdict"] == "passed"
    assert set(report) >= {"config", "throughput", "kinds", "unexpected_5xx", "transport_errors", "records", "memory"}
    tp = report["throughput"]
    assert tp["sent"] == tp["answered"] == sum(k["n"] for k in report["kinds"].values()) > 40
    # Every kind was sent, or its feature is named as skipped with a reason.
    assert set(report["kinds"]) | set(report["skipped"]) == set(MIX)
    for kind, row in report["kinds"].items():
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], kind
    records = report["records"]
    assert records["missing"] == 0 and records["duplicates"] == 0
    assert records["found"] == records["accepted"] + records["derived"] >= tp["answered"]
    assert records["listed"] == records["found"]
    if "invoke_app_error" in report["kinds"]:
        assert set(report["kinds"]["invoke_app_error"]["http"]) == {"502"}
    # The warm-up ran each echo action and each namespace's two failing ones 3 times; their records were checked.
    warm = report["warm_up"]
    assert warm["actions"] == 4 + 2 * 2 and warm["sent"] == 3 * warm["actions"]
    assert warm["kinds"]["invoke_blocking"]["http"] == {"200": 12}
    assert warm["kinds"]["invoke_app_error"]["http"] == {"502": 12}
    assert records["statuses"]["invoke_blocking (warm-up)"] == {"success": 12}
    assert records["statuses"]["invoke_app_error (warm-up)"] == {"application error": 12}
    assert report["memory"]["target_pct"] == 5 and report["memory"]["over_target"] == {}
    (whisk,) = report["memory"]["processes"].values()
    assert whisk["judged"]
    assert whisk["samples"] >= 3 and whisk["table"][0]["process_mb"] > 10
    assert 0 < whisk["table"][-1]["process_uss_mb"] < whisk["table"][-1]["process_mb"]
    assert (out / "memory.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "## Activation records" in (out / "report.md").read_text()


@pytest.mark.kafka
@pytest.mark.couchdb
@pytest.mark.timeout(120)
async def test_a_short_soak_of_the_cluster_loses_nothing_and_samples_every_member(
        tmp_path: Path, kafka_broker: Any, couchdb_url: str, consul_url: str) -> None:
    out = tmp_path / "soak"
    backends = Backends(kafka_broker.bootstrap, couchdb_url, consul_url, {"kafka": kafka_broker.proc.pid})
    status = await soak(parse(["--cluster", "--duration", "4", "--rate", "15", "--namespaces", "2", "--actions", "4",
                               "--warm-runs", "1", "--check-deadline", "30", "--out", str(out)]), backends)
    report = json.loads((out / "report.json").read_text())
    assert status == 0, (out / "report.md").read_text()
    assert report["config"]["target"].startswith("cluster: 1 controller, 2 invokers")
    assert report["exited"] == {}
    assert report["stopped"] == {"controller0": 0, "invoker0": 0, "invoker1": 0}
    tp = report["throughput"]
    assert tp["sent"] == tp["answered"] > 40
    records = report["records"]
    assert records["missing"] == 0 and records["duplicates"] == 0 and records["rewritten"] == 0
    assert records["found"] == records["accepted"] + records["derived"] >= tp["answered"]
    assert records["store_checked"] == records["found"] and records["not_in_store"] == 0
    processes = report["memory"]["processes"]
    roles = {label.split(" ")[0] for label in processes}
    assert roles == {"controller0", "invoker0", "invoker1", "kafka"}
    # The members are judged against the memory target; the backends, which keep everything in memory, are not.
    assert {label.split(" ")[0] for label, p in processes.items() if p["judged"]} == roles - {"kafka"}
    assert report["warm_up"]["sent"] == 8
    # The invokers sample their action containers; the report gives RSS and USS.
    assert sum(p["table"][-1]["children"] for label, p in processes.items() if label.startswith("invoker")) >= 2
    for p in processes.values():
        assert 0 < p["table"][-1]["process_uss_mb"] <= p["table"][-1]["process_mb"]
    assert (out / "memory.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert {"controller0.log", "invoker0.log", "invoker1.log"} <= {f.name for f in out.iterdir()}


@pytest.mark.couchdb
async def test_the_couchdb_check_finds_a_record_written_twice(couchdb_url: str) -> None:
    db = f"{couchdb_url}/soak_check_{secrets.token_hex(4)}"
    json_accept = {"Accept": "application/json"}
    async with aiohttp.ClientSession(headers=json_accept) as s:
        async with s.put(db) as r:
            assert r.status in (201, 202), await r.text()
        async with s.put(f"{db}/ns%2Fonce", json={"n": 1}) as r:
            assert r.status in (201, 202)
        async with s.put(f"{db}/ns%2Ftwice", json={"n": 1}) as r:
            rev = (await r.json(content_type=None))["rev"]
        async with s.put(f"{db}/ns%2Ftwice", json={"n": 2, "_rev": rev}) as r:
            assert r.status in (201, 202)
    result = Check(doc_ids=["ns/once", "ns/twice", "ns/never"])
    await _revisions(db, result)
    assert result.store_checked == 3
    assert result.rewritten == ["ns/twice (2 writes)"]
    assert result.not_in_store == ["ns/never"]


def test_memory_samples_give_rss_and_uss() -> None:
    rss, uss = rss_kb(os.getpid()), uss_kb(os.getpid())
    assert rss is not None and uss is not None and 0 < uss < rss
    assert uss_kb(2 ** 22 + 1) is None      # no such process
    sample = MemorySampler(os.getpid()).sample()
    assert sample is not None and 0 < sample.root_uss_kb <= sample.root_kb
    samples = [Sample(float(t), 60_000 + 100 * t, 0, 0, root_uss_kb=20_000) for t in range(50)]
    g = growth(samples, warmup_s=10)
    assert g["process"]["growth_pct"] > 5 and g["uss"]["process"]["growth_pct"] == 0


async def test_the_record_check_finds_an_id_without_a_record() -> None:
    uuid, key = GUEST_AUTH.split(":")
    async with whisk_server({"WHISK_LOG_LEVEL": "warning"}) as url:
        auth = "Basic " + base64.b64encode(f"{uuid}:{key}".encode()).decode()
        async with aiohttp.ClientSession(base_url=url, headers={"Authorization": auth}) as session:
            ns = Namespace("guest", (uuid, key), session=session)
            body = {"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"}}
            async with session.put("/api/v1/namespaces/_/actions/soak-check?overwrite=true", json=body) as r:
                assert r.status == 200
            async with session.post("/api/v1/namespaces/_/actions/soak-check") as r:
                assert r.status == 202
                real = (await r.json())["activationId"]
            lost = secrets.token_hex(16)
            result = await check([("invoke_nonblocking", ns, real), ("invoke_nonblocking", ns, lost)], [ns],
                                 since_ms=0, deadline_s=3)
    assert result.found == 1
    assert result.missing_ids == [lost]
    assert result.duplicates == 0


def test_only_the_5xx_the_workload_did_not_provoke_count_against_it() -> None:
    outcomes = [Outcome("invoke_app_error", "ns", 502, 5.0, 0.0, "a" * 32),
                Outcome("invoke_timeout", "ns", 502, 210.0, 0.0, "b" * 32),
                Outcome("invoke_blocking", "ns", 502, 5.0, 0.0, "c" * 32),
                Outcome("web_action", "ns", 503, 5.0, 0.0, None),
                Outcome("fire_trigger", "ns", "transport: ServerDisconnectedError", 5.0, 0.0, None)]
    assert unexpected_5xx(outcomes) == {"invoke_blocking 502": 1, "web_action 503": 1}
    assert transport_errors(outcomes) == {"fire_trigger transport: ServerDisconnectedError": 1}


def test_the_plain_png_needs_no_matplotlib(tmp_path: Path) -> None:
    samples = [Sample(float(t), 50_000 + t, 400_000 - t * 10, 10) for t in range(30)]
    path = tmp_path / "m.png"
    _plain({"whisk": samples}, path, width=120, height=60)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (120, 60)
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4:idat])[0]
    raw = zlib.decompress(data[idat + 4:idat + 4 + size])
    assert len(raw) == 60 * (1 + 120 * 3)
    assert bytes((31, 119, 180)) in raw and bytes((214, 39, 40)) in raw    # both lines were drawn


def test_growth_compares_each_long_lived_child_with_itself() -> None:
    # pid 7 grows 20 % over the run, pid 8 stays flat, pid 9 dies halfway: only 7 and 8 count.
    samples = [Sample(float(t), 50_000, 0, 0, {7: 10_000 + 20 * t, 8: 20_000, **({9: 5_000} if t < 50 else {})})
               for t in range(110)]
    lived = growth(samples, warmup_s=10)["long_lived_children"]
    assert lived["count"] == 2 and lived["over_5_pct"] == 1
    assert lived["worst"]["pid"] == 7 and 15 < lived["worst"]["growth_pct"] < 20
    assert "by_program" not in lived


def test_growth_of_long_lived_children_by_program() -> None:
    """The report splits the children by what they run (a node proxy's JIT warm-up is not a python one's)."""
    samples = [Sample(float(t), 50_000, 0, 0, {7: 10_000 + 20 * t, 8: 20_000, 9: 30_000}) for t in range(110)]
    lived = growth(samples, warmup_s=10, programs={7: "node", 8: "node", 9: "python"})["long_lived_children"]
    assert lived["by_program"]["node"]["count"] == 2 and lived["by_program"]["node"]["over_5_pct"] == 1
    assert lived["by_program"]["python"] == {"count": 1, "median_growth_pct": 0.0, "over_5_pct": 0,
                                                 "worst": {"pid": 9, "after_warmup_mb": 29.3, "end_mb": 29.3,
                                                           "growth_pct": 0.0}}


def test_ctrl_c_stops_a_soak_cleanly(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) ends a long soak with a one-line message and status 130, not a traceback."""
    # A test run in the background (`make test &`) inherits SIGINT ignored, and so would the soak: a terminal's
    # Ctrl-C is what is tested, so the soak starts with the default disposition.
    proc = subprocess.Popen([sys.executable, "-m", "bench.soak", "--duration", "120", "--rate", "5",
                             "--namespaces", "1", "--actions", "2", "--out", str(tmp_path / "soak")],
                            cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert err.strip().endswith(f"soak: interrupted; no report written to {tmp_path / 'soak'}"), err
    assert "Traceback" not in err


def test_memory_over_the_target_names_the_process_or_its_children() -> None:
    """The soak fails when the trend after warm-up of a whisk process (RSS or USS), of one of its long-lived
    children (RSS) or of their own pages together (USS) rises past the target."""
    flat = [Sample(float(t), 50_000, 30_000, 2, {7: 10_000, 8: 20_000}, 40_000, 8_000, {7: 3_000, 8: 5_000})
            for t in range(110)]
    assert over_target(growth(flat, warmup_s=10), 5.0) == []

    def changed(root: int = 0, each: dict[int, int] | None = None,
                each_uss: dict[int, int] | None = None) -> list[Sample]:
        return [Sample(s.t, s.root_kb + root * int(s.t), s.children_kb, 2,
                       {pid: kb + (each or {}).get(pid, 0) * int(s.t) for pid, kb in s.each.items()},
                       s.root_uss_kb, s.children_uss_kb,
                       {pid: kb + (each_uss or {}).get(pid, 0) * int(s.t) for pid, kb in s.each_uss.items()})
                for s in flat]

    (found,) = over_target(growth(changed(root=100), warmup_s=10), 5.0)
    assert found.startswith("RSS of the process: trend +")
    (found,) = over_target(growth(changed(each={7: 10}), warmup_s=10), 5.0)      # 10 % in 100 s
    assert found.startswith("RSS of child pid 7, the most of its 2 long-lived children: trend +")
    (found,) = over_target(growth(changed(each_uss={7: 4, 8: 6}), warmup_s=10), 5.0)
    assert found.startswith("USS of its 2 long-lived children together: trend +")
    # One child's own pages moving more than the target while the children's together stay within it is not judged
    # on its own (a node container's young generation is ~12 % of its USS).
    lone = growth(changed(each_uss={7: 3}), warmup_s=10)
    assert lone["uss"]["long_lived_children"]["trend"]["worst"]["trend_pct"] > 5
    assert over_target(lone, 5.0) == []
    assert over_target(growth(changed(each={7: 10}), warmup_s=10), 20.0) == []
    # too short a run to tell says nothing
    assert over_target(growth(flat[:12], warmup_s=10), 5.0) == []
    # A sawtooth that happens to be high in the last window and low in the first is not growth: its trend is flat.
    saw = [Sample(s.t, s.root_kb, s.children_kb, 2, {7: 10_000 + (int(s.t - 10) % 25) * 60, 8: 20_000},
                  s.root_uss_kb, s.children_uss_kb, s.each_uss) for s in flat]
    g = growth(saw, warmup_s=10)
    assert g["long_lived_children"]["worst"]["growth_pct"] > 5          # the windows alone would say so
    assert over_target(g, 5.0) == []


async def test_the_warm_up_runs_each_action_in_turn_never_two_at_once() -> None:
    """Each action keeps the one container that gets all its warm-up runs: never two of its runs at once."""
    inflight: Counter[str] = Counter()
    most: Counter[str] = Counter()
    done: Counter[str] = Counter()

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        inflight[name] += 1
        most[name] = max(most[name], inflight[name])
        await asyncio.sleep(0.002)
        inflight[name] -= 1
        done[name] += 1
        return web.json_response({"activationId": secrets.token_hex(16), "response": {"status": "success"}})

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/_/actions/{name}", handler)
    async with _fake_api(app) as session:
        ns = Namespace("ns0", ("u", "k"), actions=["echo-0", "echo-1", "echo-2"], session=session)
        outcomes, summary = await warm_up([ns], 5, 4, time.monotonic())
    assert summary["actions"] == 5 and summary["sent"] == len(outcomes) == 25
    assert done == {name: 5 for name in ("echo-0", "echo-1", "echo-2", "fail-python", "fail-nodejs")}
    assert set(most.values()) == {1}
    assert {o.status for o in outcomes} == {200} and all(o.activation_id for o in outcomes)


def test_children_series_tells_a_steady_leak_from_a_sawtooth() -> None:
    """Each long-lived child's series after warm-up, and its trend: a steady rise trends; a sawtooth that happens
    to end high does not."""
    samples = [Sample(float(t), 50_000, 0, 0, {7: 10_000 + 10 * t, 8: 10_000 + (800 if t % 40 >= 20 else 0),
                                               **({9: 5_000} if t < 50 else {})},
                      each_uss={7: 5_000 + 5 * t, 8: 5_000, **({9: 2_000} if t < 50 else {})})
               for t in range(121)]
    series = children_series(samples, warmup_s=20, programs={7: "node", 8: "node"}, step_s=25)
    assert set(series) == {"7", "8"}                       # 9 died before the end
    leak, saw = series["7"], series["8"]
    assert leak["program"] == "node" and len(leak["rss_mb"]) == 5 and leak["rss_mb"][0] == round(10_200 / 1024, 2)
    assert 5 < leak["rss_trend_pct"] < 10 and 5 < leak["uss_trend_pct"] < 10    # 1000 kB over ~10,500 kB
    assert abs(saw["rss_trend_pct"]) < 2 and saw["uss_trend_pct"] == 0.0


async def test_the_record_check_waits_out_a_view_build_and_reports_what_it_could_not_do() -> None:
    """The first listing after a long cluster run makes CouchDB build its view, which can outlast the controller's
    request (a 503): the check asks again. What still fails is reported in the result, not raised, so the soak still
    writes its report (with the memory of a 30-minute run)."""
    answers: list[int] = [503, 503, 200]

    async def listing(request: web.Request) -> web.Response:
        status = answers.pop(0) if answers else 404
        if status != 200:
            return web.json_response({"error": "view timeout", "code": "x"}, status=status)
        return web.json_response([{"activationId": "a" * 32}])

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/_/activations", listing)
    async with _fake_api(app) as session:
        ns = Namespace("ns0", ("u", "k"), session=session)
        started = time.monotonic()
        result = await check([], [ns], 0, deadline_s=5)
        assert result.error == "" and result.listed == 1 and time.monotonic() - started >= 4
        result = await check([], [ns], 0, deadline_s=5)              # now a 404: not asked again
        assert result.error.startswith("RuntimeError: listing ns0: 404") and result.listed == 0


@contextlib.asynccontextmanager
async def _fake_api(app: web.Application) -> AsyncIterator[aiohttp.ClientSession]:
    """`app` served on a loopback port, and a client session for it."""
    async with TestServer(app, host="127.0.0.1") as server, \
            aiohttp.ClientSession(base_url=str(server.make_url(""))) as session:
        yield session
