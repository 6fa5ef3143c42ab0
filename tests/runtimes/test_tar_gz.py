"""Actions in a tar.gz archive, which OpenWhisk's runtimes take besides zips (openwhisk-runtime-nodejs runner.js
`detectFileType`, openwhisk-runtime-go `IsGz`/`UnTar`): their folders and regular files are unpacked, links are not,
and nothing lands outside the action's folder."""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile

import pytest

from tests.runtimes.harness import running_proxy

COMPILE_FAILED = "The action failed to generate or locate a binary. See logs for details."
GZ_BROKEN = "There was an error uncompressing the action Tar GZ archive."

ACTIONS = {
    "nodejs:20": {
        "./": None,
        "./package.json": '{"name": "t", "main": "lib/app.js"}',
        "./lib/": None,
        "./lib/app.js": ("const pad = require('pad');\n"
                         "exports.main = args => ({padded: pad(args.w || 'x')});\n"
                         "exports.other = () => ({other: true});\n"),
        "./node_modules/pad/index.js": "module.exports = w => '<' + w + '>';\n",
    },
    "python:3.11": {
        "./": None,
        "./__main__.py": ("from helper.pad import pad\n"
                          "def main(args):\n    return {'padded': pad(args.get('w', 'x'))}\n"
                          "def other(args):\n    return {'other': True}\n"),
        "./helper/__init__.py": "",
        "./helper/pad.py": "def pad(w):\n    return '<' + w + '>'\n",
    },
}


def tar_gz(files: dict[str, str | None], links: dict[str, str] | None = None, form: int = tarfile.PAX_FORMAT) -> str:
    """A base64 tar.gz of `files` (None: a folder) and symbolic `links`, gzip'd without a file name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form) as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            if text is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = text.encode()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        for name, to in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, to
            archive.addfile(info)
    return base64.b64encode(gzip.compress(buffer.getvalue(), mtime=0)).decode()


async def test_a_tar_gz_action_runs_as_a_zip_would(kind: str) -> None:
    archive = tar_gz(ACTIONS[kind])
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run({"w": "a"}) == (200, {"padded": "<a>"})
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(archive, main="other", binary=True))[0] == 200
        assert await proxy.run() == (200, {"other": True})


@pytest.mark.parametrize("form", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
async def test_long_names_in_each_tar_format(kind: str, form: int) -> None:
    # A name past the 100 bytes of a tar header: a pax record, a GNU long name, a ustar prefix.
    deep = "./" + "/".join(["d" * 40] * 3) + "/deep.txt"
    probe = (f"exports.main = () => ({{text: require('fs').readFileSync({deep!r}, 'utf8')}});\n"
             if kind.startswith("nodejs") else f"def main(args):\n    return {{'text': open({deep!r}).read()}}\n")
    entry = "./index.js" if kind.startswith("nodejs") else "./__main__.py"
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(tar_gz({entry: probe, deep: "deep"}, form=form), binary=True))[0] == 200
        assert await proxy.run() == (200, {"text": "deep"})


async def test_links_are_not_unpacked(kind: str) -> None:
    probe = ("exports.main = () => ({there: require('fs').existsSync('passwd')});\n" if kind.startswith("nodejs")
             else "import os\ndef main(args):\n    return {'there': os.path.lexists('passwd')}\n")
    entry = "./index.js" if kind.startswith("nodejs") else "./__main__.py"
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(tar_gz({entry: probe}, links={"./passwd": "/etc/passwd"}), binary=True))[0] == 200
        assert await proxy.run() == (200, {"there": False})


@pytest.mark.parametrize("name", ["../escaped.txt", "./a/../../escaped.txt"])
async def test_an_entry_outside_the_folder_fails_init_and_writes_nothing(kind: str, name: str, tmp_path) -> None:
    files = dict(ACTIONS[kind]) | {name: "out"}
    async with running_proxy(kind) as proxy:
        status, body = await proxy.init(tar_gz(files), binary=True)
        assert status == 502
        await proxy.until_sentinels(1)
        if kind.startswith("nodejs"):
            assert "points outside the archive" in body["error"], body
        else:
            assert body == {"error": COMPILE_FAILED}
            assert any("points outside the archive" in line for line in proxy.err), proxy.err
        assert not os.path.exists(os.path.join(os.path.dirname(str(proxy.address)), "escaped.txt"))


async def test_a_tar_gz_past_the_cap_or_broken_fails_init(kind: str) -> None:
    files = dict(ACTIONS[kind]) | {"./big.txt": "x" * 5000}
    async with running_proxy(kind, env={"WHISK_MAX_CODE_UNPACKED_BYTES": "4096"}) as proxy:
        status, body = await proxy.init(tar_gz(files), binary=True)
        assert status == 502
        await proxy.until_sentinels(1)
        logged = body["error"] if kind.startswith("nodejs") else "\n".join(proxy.err)
        assert "more than the limit of 4096 bytes" in logged, logged
    good = base64.b64decode(tar_gz(ACTIONS[kind]))
    for broken in (good[:len(good) // 2], good[:10] + bytes(len(good) - 10)):      # cut short, garbled
        async with running_proxy(kind) as proxy:
            status, body = await proxy.init(base64.b64encode(broken).decode(), binary=True)
            assert status == 502, body
            if kind.startswith("nodejs"):
                assert body["error"] == f"Initialization has failed due to: {GZ_BROKEN}", body
            else:
                assert body == {"error": COMPILE_FAILED}
