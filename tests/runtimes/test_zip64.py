"""A zip action in ZIP64 form unpacks in both runtimes, as OpenWhisk's do (Node.js's runs `unzip`, Python's proxy Go's
archive/zip): Info-ZIP's `zip -fz` writes it for any archive, every zipper past 4 GiB or 65,535 entries."""

from __future__ import annotations

import base64
import io
import zipfile

from tests.runtimes.harness import running_proxy
from tests.support.zips import zip64_of

SOURCES = {"python:3.11": {"__main__.py": b"import helper\ndef main(args):\n    return {'ok': helper.OK}\n",
                           "helper.py": b"OK = 'zip64'\n"},
           "nodejs:20": {"package.json": b'{"main": "lib/app.js"}',
                         "lib/app.js": b"exports.main = () => ({ok: require('./helper').OK});\n",
                         "lib/helper.js": b"exports.OK = 'zip64';\n"}}


def test_the_archive_is_zip64_and_sound() -> None:
    data = base64.b64decode(zip64_of(SOURCES["python:3.11"]))
    assert data.rfind(b"PK\x06\x06") > 0 and data.endswith(b"\xff\xff\xff\xff\x00\x00")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.read("helper.py") == b"OK = 'zip64'\n"


async def test_a_zip64_action_runs(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        status, body = await proxy.post("/init", {"value": {"code": zip64_of(SOURCES[kind]), "binary": True,
                                                            "main": "main"}})
        assert status == 200, body
        assert await proxy.post("/run", {"value": {}}) == (200, {"ok": "zip64"})
