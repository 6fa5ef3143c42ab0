"""A server on IPv6 (WHISK_HOST `::1`, `[::1]` or `::`): its URL as printed, registered and given to actions names
the address in brackets.

End to end against a standalone server on `::1` with the default process sandbox. Without an IPv6 loopback on the
machine the end-to-end tests skip, or fail under CI=true."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.api.support import run_cli
from tests.conftest import missing
from tests.support.processes import GUEST_AUTH, whisk_server
from whisk.config import Settings

def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _settings(**env: str) -> Settings:
    return Settings.from_env({"WHISK_DATA_DIR": "/nonexistent", "WHISK_PORT": "3233", **env})


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_an_ipv6_host_is_named_in_brackets(host: str) -> None:
    settings = _settings(WHISK_HOST=host, WHISK_PLAYGROUND_PORT="3232")
    assert settings.host == "::1"
    assert settings.own_url == "http://[::1]:3233"
    assert settings.playground_url == "http://[::1]:3232/playground/"
    assert settings.address == "[::1]:3233"
    assert _settings(WHISK_HOST="127.0.0.1").own_url == "http://127.0.0.1:3233"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[tuple[str, str]]:
    """A standalone server on ::1 (the default process sandbox); its URL and its log."""
    if not _ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    data = tempfile.mkdtemp(prefix="whisk-ipv6-")
    log = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_HOST": "::1", "WHISK_DATA_DIR": data}, log_path=log) as url:
        yield url, log


async def test_the_server_says_its_url_in_brackets(server: tuple[str, str]) -> None:
    """It named itself http://::1:PORT, no URL: the sandbox's relay refused it, and the server did not start."""
    url, log = server
    assert url.startswith("http://[::1]:")
    with open(log) as text:
        started = text.read()
    assert f"url={url}" in started and f"API host {url} " in started


async def test_the_cli_reaches_it_by_the_bracketed_url(server: tuple[str, str]) -> None:
    url, _ = server
    env = {"WHISK_APIHOST": url, "WHISK_AUTH": GUEST_AUTH, "WSK_CONFIG_FILE": os.devnull}
    code, out, err = await run_cli("namespace", "list", env=env)
    assert (code, out.split()) == (0, ["namespaces", "guest"]), err
    code, out, err = await run_cli("property", "get", "--apihost", env=env)
    assert code == 0 and out.split()[-1] == url, (out, err)
