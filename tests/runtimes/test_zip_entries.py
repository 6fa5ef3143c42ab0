"""A zip's entries as `zip -r` on Linux makes them, unpacked as OpenWhisk's runtimes unpack them: each file's Unix
mode kept (a bundled tool or script stays executable; openwhisk-runtime-go `Unzip` opens each file with `f.Mode()`,
the Node.js runtime runs `unzip`), and names taken as the bytes they are (Go's archive/zip), so a UTF-8 name Info-ZIP
did not flag as UTF-8 is not read as code page 437."""

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
READS_A_FILE = {
    "python:3.11": ("__main__.py", b"import os\n"
                    b"def main(args):\n"
                    b"    with open(args['name'], encoding='utf-8') as f:\n"
                    b"        return {'read': f.read(), 'files': sorted(os.listdir('.'))}\n"),
    "nodejs:20": ("index.js", b"const fs = require('fs');\n"
                  b"exports.main = args => ({read: fs.readFileSync(args.name, 'utf8'),\n"
                  b"    files: fs.readdirSync('.').sort()});\n"),
}


async def test_a_files_mode_is_kept(kind: str) -> None:
    name, code = RUNS_A_TOOL[kind]
    archive = infozip_of({name: (code, 0o644), "bin/tool.sh": (b"#!/bin/sh\necho from-the-tool\n", 0o755)})
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run() == (200, {"ran": "from-the-tool\n"}), proxy.err


async def test_a_utf8_name_zip_did_not_flag(kind: str) -> None:
    name, code = READS_A_FILE[kind]
    archive = infozip_of({name: (code, 0o644), "données.txt": ("salut".encode(), 0o644)})
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run({"name": "données.txt"}) == (
            200, {"read": "salut", "files": sorted([name, "données.txt"])}), proxy.err


async def test_a_name_that_is_no_utf8_is_kept_as_its_bytes() -> None:
    """A Latin-1 name (an old Windows zipper's) is the file of those bytes, as Go's archive/zip writes it."""
    code = (b"import os\n"
            b"def main(args):\n"
            b"    with open(os.fsdecode(b'caf\\xe9.txt')) as f:\n"
            b"        return {'read': f.read()}\n")
    archive = infozip_of({"__main__.py": (code, 0o644), "caf\udce9.txt": (b"latin", 0o644)})
    async with running_proxy("python:3.11") as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run() == (200, {"read": "latin"}), proxy.err


STATS_FILES = {
    "python:3.11": ("__main__.py", b"import os\n"
                    b"def main(args):\n"
                    b"    return {n: [oct(os.lstat(n).st_mode), os.path.islink(n)] for n in ('tool', 'link')}\n"),
    "nodejs:20": ("index.js", b"const fs = require('fs');\n"
                  b"exports.main = () => Object.fromEntries(['tool', 'link'].map(n => {\n"
                  b"    const s = fs.lstatSync(n);\n"
                  b"    return [n, ['0o' + s.mode.toString(8), s.isSymbolicLink()]]; }));\n"),
}


async def test_a_mode_gives_no_setuid_setgid_or_sticky_bit_and_a_link_is_no_link(kind: str) -> None:
    """Only a mode's permission bits are applied (a setuid tool in a tenant's zip is a plain executable), and a
    link entry (`zip -ry`) is a file holding its target, never a link that could point out of the folder."""
    name, code = STATS_FILES[kind]
    archive = infozip_of({name: (code, 0o644), "tool": (b"#!/usr/bin/env true\n", 0o7755),
                          "link": (b"/etc/passwd", 0o120777)})
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        status, body = await proxy.run()
        assert status == 200, (body, proxy.err)
        assert body["tool"] == ["0o100755", False], body
        assert body["link"][1] is False and int(body["link"][0], 8) & 0o7000 == 0, body
