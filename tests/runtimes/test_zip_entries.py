"""A zip's entries as `zip -r` on Linux makes them, unpacked as OpenWhisk's runtimes unpack them: each file's Unix
mode kept (a bundled tool or script stays executable; openwhisk-runtime-go `Unzip` opens each file with `f.Mode()`,
the Node.js runtime runs `unzip`)."""

from __future__ import annotations

from tests.runtimes.harness import running_proxy
from tests.support.zips import infozip_of

RUNS_A_TOOL = {
    "python:3.11": ("__main__.py", b"import subprocess\n"
                    b"def main(args):\n"
                    b"    return {'ran': subprocess.run(['./bin/tool.sh'], capture_output=True, text=True).stdout}\n"),
    "nodejs:20": ("index.js", b"const { execFileSync } = require('child_process');\n"
                  b"exports.main = () => ({ran: execFileSync('./bin/tool.sh').toString()});\n"),
}


async def test_a_files_mode_is_kept(kind: str) -> None:
    name, code = RUNS_A_TOOL[kind]
    archive = infozip_of({name: (code, 0o644), "bin/tool.sh": (b"#!/bin/sh\necho from-the-tool\n", 0o755)})
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run() == (200, {"ran": "from-the-tool\n"}), proxy.err
