"""bench/cpu_split.py in miniature (not timed): every part of a warm invoke's CPU is read, and the parts add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_run_splits_the_cpu_by_process(tmp_path: Path) -> None:
    out = tmp_path / "split.jsonl"
    # Three distinct actions in turn (--actions): each call that failed, one to an action never created among them,
    # would end the run.
    done = subprocess.run([sys.executable, "-m", "bench.cpu_split", "--n", "600", "--warmup", "50", "--concurrency",
                           "2", "--actions", "3", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {row["part"]: row for row in json.loads(out.read_text())["rows"]}
    # The loop, the client and the action's own container each took some CPU in 600 calls (tens of ms each; the
    # kernel counts it in ticks of 10 ms).
    assert rows["whisk event loop"]["cpu_ms_per_invoke"] > 0
    assert rows["bench client"]["cpu_ms_per_invoke"] > 0
    assert sum(row["cpu_ms_per_invoke"] for part, row in rows.items() if part.startswith("containers: python")) > 0
    total = rows.pop("all")
    assert abs(sum(row["cpu_ms_per_invoke"] for row in rows.values()) - total["cpu_ms_per_invoke"]) < 0.01
    assert total["n"] == 600 and total["per_s"] > 0 and total["actions"] == 3
    assert 0 < total["machine_busy_pct"] < 120           # of both cores; ticks make it rough, not double
    # The loop's own share of the wall time, on a CPU or waiting for one: in nanoseconds, so never past the whole
    assert total["loop_cpu_wait_ms"] >= 0 and 0 < total["loop_busy_pct"] <= 100.5


def test_the_peer_is_split_the_same_way(tmp_path: Path) -> None:
    out = tmp_path / "peer.jsonl"
    done = subprocess.run([sys.executable, "-m", "bench.cpu_split", "--target", "serverless-offline", "--n", "400",
                           "--warmup", "50", "--concurrency", "2", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {row["part"]: row for row in json.loads(out.read_text())["rows"]}
    # the peer's node process served the calls; nothing of whisk ran
    assert sum(row["cpu_ms_per_invoke"] for part, row in rows.items() if part.startswith("serverless-offline: ")) > 0
    assert rows["bench client"]["cpu_ms_per_invoke"] > 0
    assert not any(part.startswith(("whisk", "containers")) for part in rows)
    assert rows["all"]["n"] == 400
