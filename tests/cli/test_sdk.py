"""`whisk sdk install docker|ios|bashauto` in-process (wsk's sdk.go): the completion script, and the downloads
from a server of the test's own."""

from __future__ import annotations

import http.server
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.cli.support import serving
from whisk.cli.client import Call, Reply
from whisk.cli.context import Context
from whisk.cli.main import main

ARCHIVES: dict[str, bytes] = {}


def _skeleton() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for name, text in (("dockerSkeleton/README.md", b"skeleton"), ("dockerSkeleton/example.c", b"int x;")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
    return data.getvalue()


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ARCHIVES.get(self.path)
        self.send_response(200 if body is not None else 404)
        if body is None:
            body = b'{"error":"The requested resource does not exist.","code":"t1"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WSK_CONFIG_FILE", str(tmp_path / "wskprops"))     # empty: no API host
    for name in ("WHISK_APIHOST", "WHISK_AUTH", "WHISK_APIVERSION", "WSK_CLI_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _complete(script: Path, *words: str) -> list[str]:
    """What the script's completion offers for the last of `words` (bash, as a shell would call it)."""
    line = " ".join(f"'{w}'" for w in words)
    run = subprocess.run(["bash", "-c", f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; '
                                         '__whisk_complete; echo "${COMPREPLY[@]}"'],
                         capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_bashauto_writes_a_completion_script_without_a_server(folder: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """It was "'whisk sdk' is not supported by whisk yet", exit 1; it needs no API host, as in `wsk`."""
    assert main(["sdk", "install", "bashauto"]) == 0
    assert capsys.readouterr().out == (
        "The bash auto-completion script (wsk_cli_bash_completion.sh) is installed in the current directory.\n"
        "To enable command line completion of wsk commands, source the auto completion script into your bash "
        "environment\n")
    script = folder / "wsk_cli_bash_completion.sh"
    assert main(["sdk", "install", "bashauto", "--stdout"]) == 0
    assert capsys.readouterr().out == script.read_text()
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    assert _complete(script, "whisk", "act") == ["action", "activation"]
    assert _complete(script, "whisk", "-v", "action", "in") == ["invoke"]
    assert _complete(script, "whisk", "action", "create", "x", "--ki") == ["--kind"]
    assert _complete(script, "whisk", "activation", "logs", "--st") == ["--strip"]
    assert _complete(script, "whisk", "property", "get", "--au") == ["--auth"]
    assert _complete(script, "whisk", "action", "create", "list", "") == []      # an argument, not a command


def test_docker_and_ios_download_from_the_api_host(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ARCHIVES.update({"/blackbox.tar.gz": _skeleton(), "/OpenWhiskIOSStarterApp.zip": b"PK\x05\x06zip"})
    with serving(_Files) as port:
        host = ["--apihost", f"http://127.0.0.1:{port}"]
        assert main(["sdk", "install", "docker", *host]) == 0
        assert capsys.readouterr().out == "The docker skeleton is now installed at the current directory.\n"
        assert (folder / "dockerSkeleton" / "example.c").read_text() == "int x;"
        assert not (folder / "blackbox.tar.gz").exists()
        assert main(["sdk", "install", "docker", *host]) == 1
        assert capsys.readouterr().err == ("error: The docker SDK installation failed: The directory "
                                           "'dockerSkeleton' already exists.  Delete it and retry.\n")
        assert main(["sdk", "install", "IOS", *host]) == 0
        assert capsys.readouterr().out == ("Downloaded OpenWhisk iOS starter app. Unzip 'OpenWhiskIOSStarterApp.zip'"
                                           " and open the project in Xcode.\n")
        assert (folder / "OpenWhiskIOSStarterApp.zip").read_bytes() == b"PK\x05\x06zip"
        assert main(["sdk", "install", "ios", *host]) == 1
        assert capsys.readouterr().err == ("error: The ios SDK installation failed: The file "
                                           "'OpenWhiskIOSStarterApp.zip' already exists.  Delete it and retry.\n")
        ARCHIVES.clear()                        # a server without them, as whisk: its error, its status
        shutil.rmtree(folder / "dockerSkeleton")
        assert main(["sdk", "install", "docker", *host]) == 148
        assert capsys.readouterr().err == ("error: The docker SDK installation failed: Unable to retrieve "
                                           "'blackbox.tar.gz' SDK: The requested resource does not exist. (code t1)\n")


def test_sdk_usage_errors(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hint = "Run 'whisk --help' for usage.\n"
    assert main(["sdk", "install", "docker"]) == 1            # unlike bashauto, the others need an API host
    assert capsys.readouterr().err.startswith("error: The API host is not valid: An API host must be provided.")
    host = ["--apihost", "http://127.0.0.1:9"]
    assert main(["sdk", "install", *host]) == 1
    assert capsys.readouterr().err == ("error: The SDK component argument is missing. One component (docker, ios, "
                                       "or bashauto) must be specified\n" + hint)
    assert main(["sdk", "install", "Frob", *host]) == 1
    assert capsys.readouterr().err == ("error: The SDK component argument 'frob' is invalid. Valid components are "
                                       "docker, ios and bashauto\n" + hint)


def test_a_download_the_folder_cannot_take_is_an_error_not_a_traceback(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The iOS app downloaded but not writable where it goes (here a folder removed under the shell) ended in
    Python's traceback; `wsk` says "Error creating SDK file" with Go's PathError, exit 1."""
    async def served(ctx: Context, call: Call, *, check: bool = True) -> Reply:
        assert call.root and call.path == "OpenWhiskIOSStarterApp.zip"
        return Reply(200, None, "", b"PK\x05\x06zip")

    monkeypatch.setattr(Context, "send", served)
    gone = folder / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert main(["sdk", "install", "ios", "--apihost", "http://127.0.0.1:39999"]) == 1
    assert capsys.readouterr().err == (
        "error: The ios SDK installation failed: Error creating SDK file 'OpenWhiskIOSStarterApp.zip': open "
        "OpenWhiskIOSStarterApp.zip: no such file or directory\n")
