"""bench/versus.py in miniature (not timed): the floor, serverless-offline and whisk in one run, and its report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]


def test_a_short_side_by_side_run_reports_every_target(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        missing("npm (for serverless-offline)")
    out, png = tmp_path / "versus.jsonl", tmp_path / "versus.png"
    done = subprocess.run([sys.executable, "-m", "bench.versus", "--n", "40", "--curve-n", "20", "--concurrency",
                           "1,4", "--actions", "1,3", "--records", "10", "--rounds", "2", "--json", str(out),
                           "--png", str(png)],
                          cwd=REPO, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {row["target"]: row for row in result["rows"]}
    assert set(rows) == {"floor", "serverless-offline", "whisk python", "whisk nodejs"}
    for row in rows.values():
        assert row["p50_ms"] > 0 and row["per_s_c32"] > 0
    assert rows["floor"]["overhead_p50_ms"] == 0
    assert rows["whisk python"]["failed"] == rows["whisk nodejs"]["failed"] == rows["floor"]["failed"] == 0
    assert not {"floor", "whisk python", "whisk nodejs"} & set(result["failed_by_concurrency"])
    for figure in ("p50_ms_c1", "per_s_c32"):                   # the table's figures, round by round
        assert {target: len(rounds) for target, rounds in result["by_round"][figure].items()} == dict.fromkeys(rows, 2)
    assert result["records"] == {"checked": 10, "not_readable_at_once": 0}
    assert set(result["by_concurrency"]["whisk python"]) == {"1", "4"}
    assert set(result["by_actions"]) == {"1", "3"}
    assert {count: len(points) for count, points in result["by_actions_round"].items()} == {"1": 2, "3": 2}
    started = result["started_during_measured"]                 # whisk's containers started in measured calls
    assert set(started) == {"table", "by_concurrency", "by_actions"}
    assert set(started["table"]) <= {"whisk python", "whisk nodejs"}
    assert "records readable at once: 10/10" in done.stdout
