"""Each benchmark's `--help` describes it with the whole first paragraph of its docstring, not a cut first line."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ["cluster", "cold_start", "cpu_split", "docker_start", "listing_isolation", "nginx_overhead",
              "runtime_memory", "sandbox_start", "sequence_overhead", "soak", "throughput", "trigger_fire", "versus",
              "warm_invoke"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help_has_the_whole_description(name: str) -> None:
    doc = importlib.import_module(f"bench.{name}").__doc__
    first_paragraph = " ".join(doc.split("\n\n")[0].split())
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert first_paragraph in " ".join(done.stdout.split())
