"""bench/runtime_memory.py in miniature: one container per runtime, a few hundred runs with pauses, its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_run_reports_each_runtime(tmp_path: Path) -> None:
    out = tmp_path / "rm.jsonl"
    done = subprocess.run([sys.executable, "-m", "bench.runtime_memory", "--runs", "300", "--warmup", "100",
                           "--sample-every", "20", "--pause-every", "25", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    # Exit 1 only says a container grew more than 5 % after warm-up: node still warms up at 300 runs.
    assert done.returncode in (0, 1), done.stderr
    rows = {row["kind"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"nodejs:20", "python:3"}
    for row in rows.values():
        assert row["runs"] == 300 and row["per_s"] > 0
        assert 0 < row["rss_start_mb"] and 0 < row["uss_warm_mb"] <= row["rss_warm_mb"]
    # The python proxy has no warm-up to speak of: flat from its first runs.
    assert abs(rows["python:3"]["uss_growth_pct"]) < 5, rows["python:3"]
    assert "runtime_memory: after 100 warm-up runs every container is" in done.stderr
