"""The soak (bench/soak.py) in miniature: a few seconds of the mixed workload against its own standalone whisk, the
report's shape, and the record check catching an activation id that has no record."""

from __future__ import annotations

import base64
import json
import secrets
import struct
import zlib
from pathlib import Path

import aiohttp

from bench.soak import parse, soak
from bench.soak_memory import Sample, growth
from bench.soak_plot import _plain
from bench.soak_records import check
from bench.soak_report import Outcome, transport_errors, unexpected_5xx
from bench.soak_workload import MIX, Namespace
from tests.support.processes import GUEST_AUTH, whisk_server


async def test_a_short_soak_reports_every_kind_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    status = await soak(parse(["--duration", "4", "--rate", "15", "--namespaces", "2", "--actions", "4",
                               "--check-deadline", "20", "--out", str(out)]))
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
    (whisk,) = report["memory"]["processes"].values()
    assert whisk["samples"] >= 3 and whisk["table"][0]["process_mb"] > 10
    assert (out / "memory.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "## Activation records" in (out / "report.md").read_text()


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
