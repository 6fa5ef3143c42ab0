"""Each benchmark's `--help` describes it with the whole first paragraph of its docstring, not a cut first line."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Every runnable benchmark (a module of bench/ with a `__main__` block, `_`-prefixed helpers aside), so that a new one
# is checked without being listed here.
BENCHMARKS = sorted(path.stem for path in (REPO / "bench").glob("*.py")
                    if not path.stem.startswith("_") and 'if __name__ == "__main__"' in path.read_text())


def test_the_benchmarks_are_found() -> None:
    assert {"api_relay", "soak", "versus", "warm_invoke"} <= set(BENCHMARKS)
    assert not {"soak_memory", "soak_report"} & set(BENCHMARKS)           # the soak's parts, not benchmarks


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help_has_the_whole_description(name: str) -> None:
    doc = importlib.import_module(f"bench.{name}").__doc__
    first_paragraph = " ".join(doc.split("\n\n")[0].split())
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert first_paragraph in " ".join(done.stdout.split())
