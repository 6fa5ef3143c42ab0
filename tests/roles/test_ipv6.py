"""A server on IPv6 (WHISK_HOST `::1`, `[::1]` or `::`): its URL as printed, registered and given to actions names
the address in brackets, it serves the IPv4 counterpart too, and its actions' API calls, relayed into the sandbox,
still come from addresses of their own (config.ACTIONS_NETWORK): refused the operators' routes, as on IPv4.

End to end against a standalone server on `::1` with the default process sandbox. Without an IPv6 loopback on the
machine the end-to-end tests skip, or fail under CI=true."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.api.support import run_cli
from tests.conftest import missing
from tests.support.http import call
from tests.support.processes import GUEST_AUTH, basic_auth, ipv6_loopback, whisk_server
from whisk.config import Settings, listen_hosts

# Its own key's call, the operators' /metrics, and a wrong key that names another client: each call's status.
CALLER = """
import base64, os, urllib.error, urllib.request

def main(args):
    host = os.environ["__OW_API_HOST"]
    key = base64.b64encode(os.environ["__OW_API_KEY"].encode()).decode()
    calls = {"own": ("/api/v1/namespaces", {"Authorization": "Basic " + key}), "metrics": ("/metrics", {}),
             "activation": ("/activation", {})}
    answers = {}
    for name, (path, headers) in calls.items():
        try:
            answers[name] = urllib.request.urlopen(urllib.request.Request(host + path, headers=headers),
                                                   timeout=10).status
        except urllib.error.HTTPError as exc:
            answers[name] = exc.code
    return answers
"""


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


def test_ipv6s_wildcard_and_loopback_are_served_with_their_ipv4_twins() -> None:
    assert listen_hosts("::") == ["::", "0.0.0.0"]
    assert listen_hosts("::1") == ["::1", "127.0.0.1"]
    for host in ("127.0.0.1", "0.0.0.0", "localhost", "", "2001:db8::1"):
        assert listen_hosts(host) == [host]


@pytest.mark.parametrize("given", ["0:0:0:0:0:0:0:1", "[0:0:0:0:0:0:0:1]", "0::1", "::0:1"])
def test_ipv6s_loopback_in_any_spelling_is_served_with_its_twin(given: str) -> None:
    """Compared as text, `0:0:0:0:0:0:0:1` listened on IPv6 alone, and the relay reached it from ::1: every action's
    call a local client's again."""
    settings = _settings(WHISK_HOST=given)
    assert settings.host == "::1" and settings.own_url == "http://[::1]:3233"
    assert listen_hosts(settings.host) == ["::1", "127.0.0.1"]
    assert _settings(WHISK_HOST="0:0:0:0:0:0:0:0").host == "::"
    assert _settings(WHISK_HOST="2001:DB8:0::1").host == "2001:db8::1"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[tuple[str, str]]:
    """A standalone server on ::1 (the default process sandbox); its URL and its log."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    data = tempfile.mkdtemp(prefix="whisk-ipv6-")
    log = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_HOST": "::1", "WHISK_DATA_DIR": data}, log_path=log) as url:
        yield url, log


async def test_the_server_says_its_url_in_brackets_and_serves_both_loopbacks(server: tuple[str, str]) -> None:
    url, log = server
    assert url.startswith("http://[::1]:")
    with open(log) as text:
        started = text.read()
    assert f"url={url}" in started and f"API host {url} " in started
    port = url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as session:
        for base in (url, f"http://127.0.0.1:{port}"):
            assert (await call(session, "GET", f"{base}/ping"))[0] == 200


async def test_actions_calls_are_refused_the_operators_routes(server: tuple[str, str]) -> None:
    """Relayed to IPv6's loopback, every container's call came from ::1, a local client's (and a trusted proxy's)
    address: /metrics and /activation answered any tenant's action."""
    url, _ = server
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as session:
        action = {"exec": {"kind": "python:3", "code": CALLER}, "annotations": [{"key": "provide-api-key",
                                                                                  "value": True}]}
        status, _ = await call(session, "PUT", "/api/v1/namespaces/_/actions/ipv6-caller?overwrite=true", action)
        assert status == 200
        status, body = await call(session, "POST", "/api/v1/namespaces/_/actions/ipv6-caller",
                                  params={"blocking": "true", "result": "true"})
    assert (status, body) == (200, {"own": 200, "metrics": 403, "activation": 403})


async def test_the_cli_reaches_it_by_the_bracketed_url(server: tuple[str, str]) -> None:
    url, _ = server
    env = {"WHISK_APIHOST": url, "WHISK_AUTH": GUEST_AUTH, "WSK_CONFIG_FILE": os.devnull}
    code, out, err = await run_cli("namespace", "list", env=env)
    assert (code, out.split()) == (0, ["namespaces", "guest"]), err
    code, out, err = await run_cli("property", "get", "--apihost", env=env)
    assert code == 0 and out.split()[-1] == url, (out, err)
