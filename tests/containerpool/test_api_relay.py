"""The invoker's API host relay (whisk/containers/api_relay.py) against real HTTP servers on loopback, plain and
TLS, driven through its unix socket as a container's proxy would: one upstream, bounded connections, idle timeout,
a clean 502 when the upstream cannot be reached, and nothing left behind."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import itertools
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from tests.conftest import missing
from tests.support.processes import free_port, ipv6_loopback
from tests.support.waiting import until
from whisk.containers import api_relay
from whisk.config import url_host, ACTIONS_NETWORK, action_address, is_action_address
from whisk.api.actions_port import SHARED, ActionsConnection
from whisk.api.early_errors import Site
from whisk.containers.api_relay import ApiRelay, RelayConfigError, Upstream

MAKE_CERT = Path(__file__).resolve().parents[2] / "config" / "nginx" / "make-cert.sh"
UID = 2_000_000_123

ACTIONS = ipaddress.ip_network(ACTIONS_NETWORK)


class Api:
    """A stand-in API host: counts connections and the requests in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()
        self.release.set()

    async def hello(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return web.json_response({"path": request.path, "auth": request.headers.get("Authorization"),
                                  "host": request.headers.get("Host"), "remote": request.remote})


async def _serve(api: Api, tls: ssl.SSLContext | None = None, actions_port: bool = False,
                 host: str = "127.0.0.1") -> AsyncIterator[str]:
    """The stand-in on a port of its own, on `host` alone; `actions_port`: served as a controller's actions port is."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", api.hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    if actions_port:
        await Site(runner, host, port, ssl_context=tls, handler=ActionsConnection).start()
    else:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
    try:
        yield f"{'https' if tls else 'http'}://{url_host(host)}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def run_dir() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="whisk-api-relay-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture
async def api() -> Api:
    return Api()


@pytest_asyncio.fixture
async def plain(api: Api) -> AsyncIterator[str]:
    async for url in _serve(api):
        yield url


async def _relay(url: str, run_dir: str, cafile: str | None = None, names_container: bool = False) -> ApiRelay:
    upstream = await asyncio.to_thread(Upstream.from_url, url, cafile, names_container)
    relay = ApiRelay(upstream, os.path.join(run_dir, "c0-api"), UID, "wsk0_1_guest_hello")
    await relay.start()
    return relay


async def _get(relay: ApiRelay, path: str = "/api/v1/namespaces/_/actions") -> tuple[int, dict]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=relay.socket, force_close=True)) as s:
        async with s.get(f"http://127.0.0.1:3233{path}", headers={"Authorization": "Basic a2V5"}) as r:
            return r.status, await r.json(content_type=None)


async def test_a_request_reaches_the_one_upstream_and_the_socket_is_the_containers(
        plain: str, run_dir: str) -> None:
    relay = await _relay(plain, run_dir)
    try:
        status, body = await _get(relay)
        assert status == 200
        # Bytes as the action sent them: its path, its key and the Host it named (the relay's own address).
        # From the container's own loopback address among the actions', which the API host believes no
        # X-Forwarded-For from and counts failed logins by.
        assert body == {"path": "/api/v1/namespaces/_/actions", "auth": "Basic a2V5", "host": "127.0.0.1:3233",
                        "remote": relay.address}
        assert is_action_address(relay.address) and ipaddress.ip_address(relay.address) in ACTIONS
        info = os.stat(relay.socket)
        assert stat.S_ISSOCK(info.st_mode)
        if os.geteuid() == 0:          # the container's user alone may connect; nobody but the invoker may write
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (UID, 0o600)
        assert stat.S_IMODE(os.stat(relay.folder).st_mode) == 0o755 and os.stat(relay.folder).st_uid == os.geteuid()
        assert relay.upstream.inside_url() == plain.rstrip("/")     # a plain loopback API host keeps its URL
    finally:
        await relay.close()
    assert not os.path.exists(relay.folder)


async def test_at_most_sixteen_connections_at_once_and_the_others_wait(plain: str, api: Api, run_dir: str) -> None:
    relay = await _relay(plain, run_dir)
    api.release.clear()
    try:
        calls = [asyncio.create_task(_get(relay, f"/n/{n}")) for n in range(api_relay.MAX_CONNECTIONS + 8)]
        await until_in_flight(api, api_relay.MAX_CONNECTIONS)
        await asyncio.sleep(0.2)            # room for a 17th to arrive, were it let through
        assert api.in_flight == api_relay.MAX_CONNECTIONS
        api.release.set()
        answers = await asyncio.gather(*calls)
        assert [a[1]["path"] for a in answers] == [f"/n/{n}" for n in range(api_relay.MAX_CONNECTIONS + 8)]
        assert api.most == api_relay.MAX_CONNECTIONS
    finally:
        await relay.close()


async def until_in_flight(api: Api, n: int) -> None:
    await until(f"{n} requests in flight", lambda: api.in_flight, ok=lambda got: got >= n)


async def test_an_idle_connection_is_closed(plain: str, run_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_relay, "IDLE_TIMEOUT_S", 0.3)
    relay = await _relay(plain, run_dir)
    try:
        reader, writer = await asyncio.open_unix_connection(relay.socket)
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""       # closed by the relay, not answered
        assert 0.25 <= loop.time() - began < 3
        writer.close()
    finally:
        await relay.close()


async def test_an_unreachable_upstream_answers_502_in_openwhisks_error_shape(run_dir: str) -> None:
    relay = await _relay(f"http://127.0.0.1:{free_port()}", run_dir)        # nothing listens there
    try:
        status, body = await _get(relay)
        assert status == 502 and "The API host cannot be reached" in body["error"], body
    finally:
        await relay.close()


async def test_an_unreachable_ipv6_upstream_is_logged_in_brackets(run_dir: str) -> None:
    """The warning named `::1:PORT`, which reads as no address."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    port = free_port()
    relay = await _relay(f"http://[::1]:{port}", run_dir)                  # nothing listens on either loopback
    try:
        with capture_logs() as logs:
            status, _ = await _get(relay)
        assert status == 502
        assert [e["upstream"] for e in logs if e["event"] == "api_relay.upstream_failed"] == [f"[::1]:{port}"]
    finally:
        await relay.close()


async def test_close_cuts_open_connections(plain: str, api: Api, run_dir: str) -> None:
    relay = await _relay(plain, run_dir)
    api.release.clear()
    call = asyncio.create_task(_get(relay))
    await until_in_flight(api, 1)
    await relay.close()
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(call, timeout=5)
    api.release.set()
    assert not os.path.exists(relay.folder)



async def test_a_closed_relay_is_freed_without_the_collector(plain: str, run_dir: str) -> None:
    """Every destroyed sandboxed container closes its relay: that must free it by reference counting, not leave it
    in a cycle (its cancelled accept task's CancelledError holding the task's frame, which holds the relay) until
    the collector runs, which the server does rarely (whisk/roles.py)."""
    relay = await _relay(plain, run_dir)
    gc.disable()
    try:
        assert (await _get(relay))[0] == 200
        await relay.close()
        freed = weakref.ref(relay)
        del relay
        assert freed() is None
    finally:
        gc.enable()

def _tls(run_dir: str) -> tuple[ssl.SSLContext, str]:
    """A server's TLS context with a self-signed certificate made for it, and that certificate's file."""
    if shutil.which("openssl") is None:
        missing("openssl (bash .ci/deps.sh)")
    certs = os.path.join(run_dir, "tls")
    subprocess.run(["sh", str(MAKE_CERT), certs], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{certs}/cert.pem", f"{certs}/key.pem")
    return context, f"{certs}/cert.pem"


async def test_tls_upstream_is_verified(api: Api, run_dir: str) -> None:
    context, cafile = _tls(run_dir)
    async for url in _serve(api, context):
        trusted = await _relay(url, run_dir, cafile=cafile)
        try:
            assert await _get(trusted) == (200, {"path": "/api/v1/namespaces/_/actions", "auth": "Basic a2V5",
                                                 "host": "127.0.0.1:3233", "remote": trusted.address})
        finally:
            await trusted.close()
        untrusted = await _relay(url, run_dir)          # the system's certificates only: a self-signed one fails
        try:
            status, body = await _get(untrusted)
            assert status == 502 and "CERTIFICATE_VERIFY_FAILED" in body["error"], body
        finally:
            await untrusted.close()


@pytest.mark.parametrize("tls", [False, True])
async def test_to_an_actions_port_each_connection_names_its_container(api: Api, run_dir: str, tls: bool) -> None:
    """An actions port (api/actions_port.py) knows a container by the line its relay sends first, not by the socket's
    address (from another host, the invoker's), also over TLS."""
    context, cafile = _tls(run_dir) if tls else (None, None)
    async for url in _serve(api, context, actions_port=True):
        relays = [await _relay(url, os.path.join(run_dir, str(n)), cafile, names_container=True) for n in range(2)]
        try:
            for relay in relays:
                for _ in range(2):          # a connection each: every one begins with the line
                    assert await _get(relay) == (200, {"path": "/api/v1/namespaces/_/actions", "auth": "Basic a2V5",
                                                       "host": "127.0.0.1:3233", "remote": relay.address})
        finally:
            for relay in relays:
                await relay.close()
        unnamed = await _relay(url, os.path.join(run_dir, "unnamed"), cafile)
        try:
            assert (await _get(unnamed))[1]["remote"] == SHARED      # no line: the one address all such share
        finally:
            await unnamed.close()


@pytest.mark.parametrize("url", ["127.0.0.1:3233", "ftp://127.0.0.1", "http://", "http://h:port"])
def test_an_api_host_that_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(RelayConfigError):
        Upstream.from_url(url)


def test_the_url_path_is_kept_inside() -> None:
    assert Upstream.from_url("https://whisk.example.org/ow/").inside_url() == "http://127.0.0.1:3233/ow"


@pytest.mark.parametrize("url, port, inside", [
    # Plain HTTP on the loopback (standalone whisk): the URL clients use works inside too, so actions see it.
    ("http://127.0.0.1:41234", 41234, "http://127.0.0.1:41234"),
    ("http://localhost:41234/p/", 41234, "http://localhost:41234/p"),
    ("http://127.0.0.1:3233", 3233, "http://127.0.0.1:3233"),
    # Elsewhere, over TLS, or on 8080 (a blackbox image's own port): the relay's own address.
    ("http://127.0.0.1:8080", 3233, "http://127.0.0.1:3233"),
    ("https://127.0.0.1:41234", 3233, "http://127.0.0.1:3233"),
    ("http://whisk.example.org:41234", 3233, "http://127.0.0.1:3233"),
])
def test_a_loopback_api_host_keeps_its_url_inside(url: str, port: int, inside: str) -> None:
    upstream = Upstream.from_url(url)
    assert (upstream.inside_port, upstream.inside_url()) == (port, inside)
    assert Upstream.from_url("https://whisk.example.org").port == 443


async def test_a_relay_to_every_address_of_this_machine_comes_from_the_actions_address(plain: str,
                                                                                     run_dir: str) -> None:
    """A server on 0.0.0.0 names itself so in its own URL; the relay reaches it on 127.0.0.1 from the container's
    address, not from a trusted proxy's 127.0.0.1 (the stand-in listens on 127.0.0.1 alone: nothing here listens
    beyond it)."""
    relay = await _relay(plain.replace("127.0.0.1", "0.0.0.0"), run_dir)
    try:
        status, body = await _get(relay)
        assert status == 200 and body["remote"] == relay.address and is_action_address(body["remote"])
    finally:
        await relay.close()


# In any spelling: `0:0:0:0:0:0:0:1` relayed to ::1 as named, from ::1 (WHISK_TRUSTED_PROXIES is read so too).
@pytest.mark.parametrize("host", ["[::1]", "[::]", "[0:0:0:0:0:0:0:1]", "[::0]", "[0::0:1]", "[::ffff:127.0.0.1]"])
async def test_a_relay_to_ipv6s_loopback_comes_from_the_actions_address(plain: str, run_dir: str, host: str) -> None:
    """IPv6's loopback is one address, so every container's call relayed there came from ::1, a local client's (and a
    trusted proxy's): whisk serves ::1 and :: with their IPv4 twins (config.listen_hosts), and the relay goes there
    (the stand-in listens on 127.0.0.1 alone)."""
    relay = await _relay(plain.replace("127.0.0.1", host), run_dir)
    try:
        status, body = await _get(relay)
        assert status == 200 and body["remote"] == relay.address and is_action_address(body["remote"])
        assert relay.upstream.inside_url() == "http://127.0.0.1:3233"
    finally:
        await relay.close()


async def test_an_api_host_on_ipv6_alone_is_not_reached_from_ipv6s_loopback(api: Api, run_dir: str) -> None:
    """Another server that listens on ::1 and not on 127.0.0.1 (nginx on `[::1]` alone): reached from ::1, an
    action's calls would pass for a local client's and a trusted proxy's again (the relay fell back to it). It is
    refused instead, and the warning says where the relay went."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    async for url in _serve(api, host="::1"):
        relay = await _relay(url, run_dir)
        try:
            with capture_logs() as logs:
                status, body = await _get(relay)
            assert status == 502 and "127.0.0.1" in body["error"], body
            upstream = url.removeprefix("http://")
            assert [e["upstream"] for e in logs if e["event"] == "api_relay.upstream_failed"] == [upstream]
        finally:
            await relay.close()


async def test_an_api_host_named_by_a_name_of_ipv6s_loopback_is_not_reached_from_it(
        api: Api, run_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that resolves to ::1 alone (Debian's `ip6-localhost`) is no address the relay can map: connected as
    named, every action's call came from ::1, a local client's. Whatever the upstream is named, a call that would
    leave from the loopback's own address is refused."""
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    resolve = socket.getaddrinfo

    def ip6_localhost(host: Any, *args: Any, **kwargs: Any) -> Any:
        return resolve("::1" if host == "whisk-ip6-localhost" else host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", ip6_localhost)
    async for url in _serve(api, host="::1"):
        relay = await _relay(url.replace("[::1]", "whisk-ip6-localhost"), run_dir)
        try:
            status, body = await _get(relay)
            assert status == 502 and "::1" in body["error"], body
        finally:
            await relay.close()


async def test_each_containers_calls_come_from_an_address_of_its_own(plain: str, run_dir: str) -> None:
    """So that the API host can count one container's failed logins apart from another's."""
    relays = [await _relay(plain, os.path.join(run_dir, str(n))) for n in range(3)]
    try:
        remotes = [(await _get(relay))[1]["remote"] for relay in relays]
        assert remotes == [relay.address for relay in relays] and len(set(remotes)) == 3
    finally:
        for relay in relays:
            await relay.close()


def test_invokers_sharing_a_host_never_give_two_containers_one_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invoker (a process of its own) numbers its containers from the same start; two invokers on one host
    (one loopback API host) would otherwise give their first containers the same address, and one tenant's failed
    logins would lock another's action out."""
    upstream = Upstream.from_url("http://127.0.0.1:3233")
    every = []
    for invoker in range(api_relay.INVOKERS_APART):
        monkeypatch.setattr(api_relay, "_relays_made", itertools.count())      # a process of its own
        every += [ApiRelay(upstream, "/nonexistent", None, f"c{n}", invoker).address for n in range(200)]
    assert len(set(every)) == len(every) and all(is_action_address(a) for a in every)


def test_the_actions_addresses_cycle_through_the_range_and_skip_0_and_255() -> None:
    addresses = [action_address(n) for n in range(254 * 256)]
    assert len(set(addresses)) == 254 * 256 and action_address(254 * 256) == addresses[0] == "127.2.0.1"
    assert all(ipaddress.ip_address(a) in ACTIONS and a.rsplit(".", 1)[1] not in ("0", "255") for a in addresses)
    assert not is_action_address("127.0.0.1") and not is_action_address(None) and is_action_address("127.2.9.9")
    assert is_action_address("::ffff:127.2.9.9") and not is_action_address("::ffff:127.0.0.1")   # dual-stack
