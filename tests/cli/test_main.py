"""`main()` in-process: the properties file, precedence, and the failures that need no server."""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import serving
from tests.support.processes import free_port
from whisk.cli.artifacts import save
from whisk.cli.errors import CliError
from whisk.cli.flags import GLOBAL
from whisk.cli.main import main
from whisk.cli.wskprops import read, resolve, write
from whisk.config import ClientSettings


@pytest.fixture
def props_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "wskprops"
    monkeypatch.setenv("WSK_CONFIG_FILE", str(path))
    for name in ("WHISK_APIHOST", "WHISK_AUTH", "WHISK_APIVERSION", "WSK_CLI_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_properties_file_format(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_text("APIHOST=h:1/ # comment\n  AUTH = x\nBROKEN=a=b\n# only a comment\nNAMESPACE=ns\nnonsense\n")
    assert read(str(path)) == {"APIHOST": "h:1/", "AUTH ": " x", "NAMESPACE": "ns"}
    assert read(str(tmp_path / "missing")) == {}
    write(str(path), {"apihost": "h", "OTHER": "kept"})
    assert path.read_text() == "APIHOST=h\nOTHER=kept\n"


def test_the_properties_file_is_its_users_only(tmp_path: Path) -> None:
    """It holds the API key: a new file is 0600 whatever the umask, an existing looser one is narrowed."""
    fresh, loose = tmp_path / "fresh", tmp_path / "loose"
    loose.write_text("APIHOST=h\n")
    loose.chmod(0o644)
    mask = os.umask(0o022)
    try:
        for path in (fresh, loose):
            write(str(path), {"AUTH": "uuid:key"})
            assert path.read_text() == "AUTH=uuid:key\n" and stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(mask)


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_text("APIHOST=file-host/\nAUTH=file:auth\nAPIVERSION=v9\n")
    none = {f.name: None for f in GLOBAL}
    settings = ClientSettings(config_file=str(path))
    props = resolve(settings, none)
    assert (props.apihost, props.auth, props.apiversion) == ("file-host", "file:auth", "v9")
    env = ClientSettings(config_file=str(path), apihost="env-host", auth="env:auth")
    assert (resolve(env, none).apihost, resolve(env, none).auth) == ("env-host", "env:auth")
    flags = {**none, "apihost": "flag-host", "auth": "flag:auth", "verbose": True}
    props = resolve(env, flags)
    assert (props.apihost, props.auth, props.verbose) == ("flag-host", "flag:auth", True)
    assert ClientSettings.from_env({"WSK_CONFIG_FILE": "", "HOME": "/h"}).config_file == ""
    assert ClientSettings.from_env({"HOME": "/h"}).config_file == "/h/.wskprops"


def test_property_set_get_unset(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    props_file.write_text("UNKNOWN=kept\n")
    assert main(["property", "set", "--apihost", "http://127.0.0.1:1", "--auth", "u:k", "--apiversion", "v1"]) == 0
    assert capsys.readouterr().out == (
        "ok: whisk auth set. Run 'wsk property get --auth' to see the new value.\n"
        "ok: whisk API host set to http://127.0.0.1:1\n"
        "ok: whisk API version set to v1\n")
    assert read(str(props_file)) == {"UNKNOWN": "kept", "APIHOST": "http://127.0.0.1:1", "AUTH": "u:k",
                                     "APIVERSION": "v1"}
    assert main(["property", "get", "--auth", "--apihost"]) == 0
    assert capsys.readouterr().out == "whisk API host\t\thttp://127.0.0.1:1\nwhisk auth\t\tu:k\n"
    assert main(["property", "get", "--apiversion", "-o", "raw"]) == 0
    assert capsys.readouterr().out == "v1\n"
    assert main(["property", "unset", "--auth", "--apiversion"]) == 0
    assert capsys.readouterr().out == ("ok: whisk auth unset.\n"
                                       "ok: whisk API version unset; the default value of v1 will be used.\n")
    assert read(str(props_file)) == {"UNKNOWN": "kept", "APIHOST": "http://127.0.0.1:1"}
    assert main(["property", "get", "--output", "json", "--auth"]) == 1
    assert capsys.readouterr().err == "error: Supported output format are std|raw\n"


def test_file_errors_read_as_go_words_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A file the client cannot write or read is named as Go's *os.PathError names it (`wsk`'s texts), not in
    Python's `[Errno 21] Is a directory: '...'`."""
    monkeypatch.setenv("WSK_CONFIG_FILE", str(tmp_path))            # a folder: no file can be written there
    assert main(["property", "set", "--auth", "u:k"]) == 1
    assert capsys.readouterr().err == ("error: Unable to set the property value(s): Whisk properties file write "
                                       f"failure: open {tmp_path}: is a directory\n")
    missing = tmp_path / "no" / "wskprops"
    monkeypatch.setenv("WSK_CONFIG_FILE", str(missing))
    assert main(["property", "unset", "--auth"]) == 1
    assert capsys.readouterr().err == ("error: Unable to unset the property value: Whisk properties file write "
                                       f"failure: open {missing}: no such file or directory\n")
    with pytest.raises(CliError) as caught:
        asyncio.run(save(str(missing), b"code"))                      # action get --save-as into no folder
    assert (caught.value.message, caught.value.status) == (
        f"Cannot create file '{missing}': open {missing}: no such file or directory", 2)


def test_environment_overrides_the_file(props_file: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    props_file.write_text("APIHOST=from-file\nAUTH=file:key\n")
    monkeypatch.setenv("WHISK_AUTH", "env:key")
    assert main(["property", "get", "--auth", "--apihost"]) == 0
    assert capsys.readouterr().out == "whisk API host\t\tfrom-file\nwhisk auth\t\tenv:key\n"
    assert main(["property", "get", "--auth", "-u", "flag:key"]) == 0     # property get's own --auth is a bool
    assert "unknown shorthand flag" not in capsys.readouterr().err


def test_no_api_host(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["action", "list"]) == 1
    assert capsys.readouterr().err == ("error: The API host is not valid: An API host must be provided.\n\n"
                                       "Run 'whisk --help' for usage.\n")
    assert main(["property", "get"]) == 1
    assert capsys.readouterr().err.startswith("error: The API host is not valid: ")
    # `property set` is exempt only with --apihost, --apiversion or --auth (wsk's SetupClientConfig)
    for argv in (["property", "set", "--cert", "c.pem"], ["property", "set", "--key", "k.pem"], ["property", "set"]):
        assert main(argv) == 1
        assert capsys.readouterr().err.startswith("error: The API host is not valid: ")
    assert "CERT" not in (props_file.read_text() if props_file.exists() else "")
    assert main(["property", "set", "--apiversion", "v1"]) == 0
    assert main(["property", "get", "--auth"]) == 0                      # specific properties need no host


def test_no_auth_exits_2(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    props_file.write_text(f"APIHOST=http://127.0.0.1:{free_port()}\n")
    assert main(["action", "get", "x"]) == 2
    assert capsys.readouterr().err == ("error: Unable to get action 'x': Authorization key is not configured "
                                       "(--auth is required)\nRun 'whisk --help' for usage.\n")
    assert main(["action", "invoke", "x"]) == 2
    assert "error: Unable to invoke action 'x': Authorization key" in capsys.readouterr().err


def test_connection_refused_exits_3(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()                                   # bound then released: nothing listens there
    props_file.write_text(f"APIHOST=http://127.0.0.1:{port}\nAUTH=u:k\n")
    assert main(["trigger", "list"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: Unable to obtain the list of triggers for namespace 'default': Get "
                          f'"http://127.0.0.1:{port}/api/v1/namespaces/_/triggers?limit=30&skip=0": ')
    assert err.endswith(f": dial tcp 127.0.0.1:{port}: connect: connection refused\n")
    assert main(["--apihost", f"127.0.0.1:{port}", "rule", "get", "r"]) == 3     # no scheme: https://
    assert f'Get "https://127.0.0.1:{port}/api/v1/namespaces/_/rules/r"' in capsys.readouterr().err


def test_property_get_build_failure_keeps_its_exit_status(props_file: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`wsk` prints `Unknown`, then fails with the inner error's status: 3 when nothing answers (it was 1)."""
    port = free_port()
    props_file.write_text(f"APIHOST=http://127.0.0.1:{port}\nAUTH=u:k\n")
    assert main(["property", "get", "--apibuild"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "whisk API build\t\tUnknown\n"
    assert captured.err == (f'error: Unable to obtain API build information: Get "http://127.0.0.1:{port}/api/v1": '
                            f"dial tcp 127.0.0.1:{port}: connect: connection refused\n")


class _Lists(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_tls_failures_read_as_wsk(props_file: Path, capsys: pytest.CaptureFixture[str],
                                  self_signed: tuple[Path, Path]) -> None:
    """Go's wording for an https URL on a plain server and for an unknown certificate authority; -i accepts it."""
    props_file.write_text("AUTH=u:k\n")
    with serving(_Lists) as plain:
        assert main(["trigger", "list", "--apihost", f"127.0.0.1:{plain}"]) == 3
        assert capsys.readouterr().err.startswith(
            "error: Unable to obtain the list of triggers for namespace 'default': Get "
            f'"https://127.0.0.1:{plain}/api/v1/namespaces/_/triggers?limit=30&skip=0": '
            "http: server gave HTTP response to HTTPS client\n")
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    with serving(_Lists, context) as secure:
        assert main(["trigger", "list", "--apihost", f"127.0.0.1:{secure}"]) == 3
        assert capsys.readouterr().err.startswith(
            "error: Unable to obtain the list of triggers for namespace 'default': Get "
            f'"https://127.0.0.1:{secure}/api/v1/namespaces/_/triggers?limit=30&skip=0": '
            "x509: certificate signed by unknown authority\n")
        assert main(["trigger", "list", "--apihost", f"127.0.0.1:{secure}", "-i"]) == 0
        assert capsys.readouterr().out == "triggers\n"
        # -i still presents a configured client certificate (it must load)
        assert main(["trigger", "list", "--apihost", f"127.0.0.1:{secure}", "-i", "--cert", str(cert),
                     "--key", str(key)]) == 0
        assert capsys.readouterr().out == "triggers\n"


def test_half_configured_client_certificate(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """wsk builds its client before any command runs: --cert without --key (or the reverse) fails with exit 1
    unless -i, and so does a key pair that cannot be read; no request is made."""
    props_file.write_text(f"APIHOST=http://127.0.0.1:{free_port()}\nAUTH=u:k\n")
    assert main(["action", "list", "--cert", "c.pem"]) == 1
    assert capsys.readouterr().err == ("error: Unable to initialize server connection: The Key file is not "
                                       "configured. Please configure the missing Key file.\n\n"
                                       "Run 'whisk --help' for usage.\n")
    assert main(["property", "get", "--auth", "--key", "k.pem"]) == 0       # property get's --key is a bool
    capsys.readouterr()
    props_file.write_text(props_file.read_text() + "KEY=k.pem\n")
    assert main(["property", "get", "--auth"]) == 1
    assert capsys.readouterr().err.startswith("error: Unable to initialize server connection: The Cert file is not "
                                              "configured. Please configure the missing Cert file.\n")
    assert main(["property", "set", "--cert", "c.pem"]) == 0                # setting one half at a time works
    assert capsys.readouterr().out.startswith("ok: client cert set.")
    assert main(["action", "list"]) == 1
    assert capsys.readouterr().err == ("error: Unable to initialize server connection: Unable to load the X509 key "
                                       "pair due to the following reason: open c.pem: no such file or directory\n"
                                       "Run 'whisk --help' for usage.\n")


def test_usage_errors(props_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    props_file.write_text("APIHOST=http://127.0.0.1:9\nAUTH=u:k\n")
    assert main(["action", "create", "a"]) == 2
    assert capsys.readouterr().err == ("error: Invalid argument(s). An action name and code artifact are required.\n"
                                       "Run 'whisk --help' for usage.\n")
    assert main(["rule", "create", "r", "t"]) == 1
    assert "Invalid argument(s). A rule, trigger and action name are required." in capsys.readouterr().err
    assert main(["trigger", "create", "t", "-p", "a", "1", "-F", "b", "2"]) == 149
    assert "Incorrect usage. Cannot combine --feed-param" in capsys.readouterr().err
    assert main(["trigger", "create", "t", "-F", "b", "2"]) == 149
    assert "Trigger without a feed cannot have feed parameters" in capsys.readouterr().err
    assert main(["action", "get", "a", "bogus"]) == 2
    assert "error: Invalid field filter 'bogus'." in capsys.readouterr().err
    assert main(["rule", "get", "a", "bogus"]) == 1
    assert main(["package", "list", "notanamespace"]) == 1
    assert "An entity name, 'notanamespace', was provided instead of a namespace." in capsys.readouterr().err
    assert main(["activation", "get"]) == 1
    assert "Invalid argument(s). An activation ID is required." in capsys.readouterr().err
    assert main(["namespace", "get", "/other"]) == 1


def test_admin_without_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "user", "list"]) == 1
    assert "whisk admin needs the store" in capsys.readouterr().err


def test_a_client_command_loads_none_of_the_server(tmp_path: Path) -> None:
    """Every command but `whisk admin` starts without the server's modules (they doubled a command's start)."""
    probe = ("import sys\nfrom whisk.__main__ import main\n"
             "code = main(['action', 'list', '--apihost', 'http://127.0.0.1:1', '-u', 'a:b'])\n"
             "server = ('whisk.roles', 'whisk.api', 'whisk.controller', 'whisk.invoker', 'whisk.store')\n"
             "print(code, sorted(name for name in sys.modules if name.startswith(server)))\n")
    env = {"WSK_CONFIG_FILE": str(tmp_path / "wskprops"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "3 []", done.stdout + done.stderr
