"""The code's style checks: `ruff check` with the configuration in pyproject.toml (lines of at most 120 characters,
no unused imports or names, imports at the top), over every Python file of the repository."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent


async def test_ruff_finds_nothing() -> None:
    if importlib.util.find_spec("ruff") is None:
        missing("ruff (a dev dependency: pip install -e '.[dev]')")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ruff", "check", "--no-cache",
                                                "--output-format", "concise", cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
