"""Both runtime proxies stop unzipping an action at WHISK_MAX_CODE_UNPACKED_BYTES (the platform sets it from
WHISK_LIMIT_MAX_CODE_UNPACKED_MB), whether the zip admits its size or lies about it, and leave nothing on disk."""

from __future__ import annotations

import os

import pytest

from tests.runtimes.harness import running_proxy
from tests.support.zips import zip_of

SOURCES = {"python:3.11": {"__main__.py": b"def main(args):\n    return {'ok': True}\n"},
           "nodejs:20": {"index.js": b"exports.main = () => ({ok: true});\n"}}
CAP = 1 << 20
BOMB = b"\0" * (64 << 20)


def left_behind(proxy_folder: str) -> list[str]:
    """What the proxy's TMPDIR holds besides its socket."""
    found = []
    for root, dirs, files in os.walk(proxy_folder):
        found += [os.path.join(root, name) for name in dirs + files if name != "proxy.sock"]
    return found


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "lying"])
async def test_unzip_stops_at_the_cap_and_leaves_nothing(kind: str, lie: bool) -> None:
    code = zip_of(SOURCES[kind] | {"pad": BOMB}, lie_to=100 if lie else None)
    async with running_proxy(kind, env={"WHISK_MAX_CODE_UNPACKED_BYTES": str(CAP)}) as proxy:
        status, body = await proxy.post("/init", {"value": {"code": code, "binary": True, "main": "main"}})
        assert status == 502, body
        # Python's runtime answers that it cannot start and logs why, as OpenWhisk's does.
        await proxy.until_sentinels(1)
        reason = body["error"] if kind.startswith("nodejs") else "\n".join(proxy.err)
        if kind.startswith("nodejs") or not lie:
            assert f"more than the limit of {CAP} bytes" in reason, reason
        else:           # zipfile inflates no entry past its declared size, then finds its CRC wrong
            assert "Bad CRC-32" in reason, reason
        assert left_behind(os.path.dirname(proxy.address)) == []


async def test_a_zip_under_the_cap_unpacks(kind: str) -> None:
    code = zip_of(SOURCES[kind] | {"pad": b"\0" * (CAP // 2)})
    async with running_proxy(kind, env={"WHISK_MAX_CODE_UNPACKED_BYTES": str(CAP)}) as proxy:
        status, body = await proxy.post("/init", {"value": {"code": code, "binary": True, "main": "main"}})
        assert status == 200, body
        assert await proxy.post("/run", {"value": {}}) == (200, {"ok": True})
