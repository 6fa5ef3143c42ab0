"""The package's types check: `mypy` with the configuration in pyproject.toml, every module of the package held to
the same standard."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent


async def test_mypy_finds_no_errors() -> None:
    if importlib.util.find_spec("mypy") is None:
        missing("mypy (a dev dependency: pip install -e '.[dev]')")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mypy", cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 280)
    assert proc.returncode == 0, out.decode()


def test_no_module_is_exempt() -> None:
    """docs/architecture.md says every module is held to mypy: no override may switch its errors off."""
    import tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["whisk"]
    assert not [o["module"] for o in config.get("overrides", []) if o.get("ignore_errors")]
