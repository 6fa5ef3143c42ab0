"""Running a client's own command line, for the tests of this folder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path


async def run(*argv: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
              timeout_s: float = 120) -> str:
    """The command's standard output. It must exit 0; otherwise the test fails with both of its streams."""
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=None if env is None else dict(env),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{err.decode()}{out.decode()}"
    return out.decode()
