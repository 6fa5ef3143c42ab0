"""Failed authentications are slowed per client address (429 with OpenWhisk's error body) without slowing anyone
else: another address, or a key this server has already verified, passes. Over real HTTP; the table's bound and
address grouping directly."""

from __future__ import annotations

import os
import tempfile
import time
import types
from collections.abc import AsyncIterator
from unittest import mock

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from tests.api.support import basic, call
from tests.support.processes import GUEST_AUTH, whisk_server
from whisk.api import auth_failures
from whisk.api.auth_failures import TOO_MANY, AuthFailures, _group
from whisk.config import ConfigError, Settings, action_address
from whisk.entities.identity import SYSTEM_KEY, SYSTEM_UUID

PER_MINUTE = 5
BAD = GUEST_AUTH[:-1] + ("x" if GUEST_AUTH[-1] != "x" else "y")
SYSTEM_AUTH = f"{SYSTEM_UUID}:{SYSTEM_KEY}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def url() -> AsyncIterator[str]:
    data = tempfile.mkdtemp(prefix="whisk-auth-")
    env = {"WHISK_DATA_DIR": data, "WHISK_AUTH_FAILURES_PER_MINUTE": str(PER_MINUTE)}
    async with whisk_server(env, log_path=os.path.join(data, "server.log")) as base:
        yield base


def client(address: str, auth: str) -> dict[str, str]:
    """Headers of a request from `address` as nginx (a trusted proxy on loopback) forwards it."""
    return basic(auth) | {"X-Forwarded-For": f"203.0.113.99, {address}"}   # the first is the client's own claim


async def namespaces(session: aiohttp.ClientSession, address: str, auth: str) -> tuple[int, object]:
    return await call(session, "GET", "/api/v1/namespaces", headers=client(address, auth))


async def test_failures_are_slowed_for_their_address_only(url: str) -> None:
    async with aiohttp.ClientSession(base_url=url) as session:
        assert (await namespaces(session, "198.51.100.1", GUEST_AUTH))[0] == 200     # verified before the attack
        began = time.monotonic()
        statuses = [(await namespaces(session, "198.51.100.1", BAD))[0] for _ in range(50)]
        assert statuses[:PER_MINUTE] == [401] * PER_MINUTE and set(statuses[PER_MINUTE:]) == {429}, statuses
        assert time.monotonic() - began < 30
        status, body = await namespaces(session, "198.51.100.1", BAD)
        assert status == 429 and body == {"error": TOO_MANY, "code": body["code"]} and body["code"]
        # A key not verified yet is not even checked from that address: no guessing through the block.
        status, _ = await namespaces(session, "198.51.100.1", SYSTEM_AUTH)
        assert status == 429
        # Web actions: the unverified key counts as no key from there (anonymous), and as a key from elsewhere.
        guarded = await call(session, "PUT", "/api/v1/namespaces/_/actions/guarded?overwrite=true", {
            "exec": {"kind": "python:3", "code": "def main(args):\n    return {'ok': True}\n"},
            "annotations": [{"key": "web-export", "value": True}, {"key": "require-whisk-auth", "value": True}]},
            headers=client("198.51.100.1", GUEST_AUTH))
        assert guarded[0] == 200, guarded
        web = "/api/v1/web/guest/default/guarded.json"
        assert (await call(session, "GET", web, headers=client("198.51.100.1", SYSTEM_AUTH)))[0] == 401
        assert await call(session, "GET", web, headers=client("198.51.100.2", SYSTEM_AUTH)) == (200, {"ok": True})
        # The key it had verified still works from there; other addresses are untouched.
        assert (await namespaces(session, "198.51.100.1", GUEST_AUTH))[0] == 200
        assert await namespaces(session, "198.51.100.2", SYSTEM_AUTH) == (200, ["whisk.system"])
        assert (await namespaces(session, "198.51.100.2", BAD))[0] == 401
        # The client's own X-Forwarded-For entries do not count: only the address the proxy added.
        status, _ = await call(session, "GET", "/api/v1/namespaces",
                               headers=basic(BAD) | {"X-Forwarded-For": "198.51.100.1, 198.51.100.3"})
        assert status == 401


def test_the_table_is_bounded_and_forgets_the_least_recent() -> None:
    failures = AuthFailures(per_minute=1, max_clients=100, trusted_proxies=frozenset())
    for n in range(10_000):
        failures.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(failures) == 100
    assert failures.blocked("10.0.39.15") and not failures.blocked("10.0.0.1")      # the newest kept, the oldest not



def test_an_address_that_fails_again_is_kept_before_quieter_ones() -> None:
    """The table forgets the address that failed least recently, not the one that failed first: an attacker who keeps
    failing from one address is not let off by other addresses' failures."""
    failures = AuthFailures(per_minute=1, max_clients=3, trusted_proxies=frozenset())
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1", "192.0.2.4"):
        failures.failed(address)
    assert failures.blocked("192.0.2.1") and not failures.blocked("192.0.2.2")


def test_the_budget_refills_over_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """WHISK_AUTH_FAILURES_PER_MINUTE failures, then blocked; one more try back every 60 s / that number, and the
    whole budget back after a minute, never more."""
    now = [1000.0]
    monkeypatch.setattr(auth_failures, "time", types.SimpleNamespace(monotonic=lambda: now[0]))   # its clock only
    failures = AuthFailures(per_minute=6, max_clients=100, trusted_proxies=frozenset())
    for _ in range(6):
        assert not failures.blocked("192.0.2.1")
        failures.failed("192.0.2.1")
    assert failures.blocked("192.0.2.1")
    now[0] += 9.5
    assert failures.blocked("192.0.2.1")
    now[0] += 1.0                                # past 10 s: one failure more
    assert not failures.blocked("192.0.2.1")
    failures.failed("192.0.2.1")
    assert failures.blocked("192.0.2.1")
    now[0] += 600                                # long quiet: the budget, not ten times it
    for _ in range(6):
        assert not failures.blocked("192.0.2.1")
        failures.failed("192.0.2.1")
    assert failures.blocked("192.0.2.1")


def test_ipv6_clients_count_by_their_64() -> None:
    assert _group("2001:db8:1:2:aaaa::1") == _group("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert _group("2001:db8:1:3::1") != _group("2001:db8:1:2::1")
    assert _group("::ffff:192.0.2.7") == "192.0.2.7" and _group("192.0.2.7") == "192.0.2.7"


def _from(peer: str, headers: dict[str, str]) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 4242) if name == "peername" else default
    return make_mocked_request("GET", "/api/v1/namespaces", headers=headers, transport=transport)


def test_trusted_proxies_are_read_as_addresses_in_any_spelling() -> None:
    """`[::1]` (as URLs write it) or `0:0:0:0:0:0:0:1` named no peer: compared as text, they silently trusted no one,
    and every client behind that nginx shared its one failed-login budget (one wrong key locked them all out)."""
    settings = Settings.from_env({"WHISK_TRUSTED_PROXIES": " [::1], 0:0:0:0:0:0:0:2 ,::ffff:127.0.0.3,"})
    assert settings.trusted_proxies == "::1,::2,127.0.0.3"
    failures = AuthFailures.from_settings(settings)
    for peer in ("::1", "::2", "127.0.0.3"):
        assert failures.client_of(_from(peer, {"X-Forwarded-For": "2001:db8:1:2::7"})) == "2001:db8:1:2::/64"
    assert failures.client_of(_from("::3", {"X-Forwarded-For": "2001:db8:1:2::7"})) == "::/64"
    with pytest.raises(ConfigError, match="WHISK_TRUSTED_PROXIES.*'nginx' is not an IP address"):
        Settings.from_env({"WHISK_TRUSTED_PROXIES": "127.0.0.1,nginx"})


def test_an_actions_address_is_never_a_trusted_proxy() -> None:
    """Even named in WHISK_TRUSTED_PROXIES, a call from a container's relay address is counted as that address:
    the action wrote its X-Forwarded-For, and would name any client it liked (and lock that client out)."""
    relay_address = action_address(7)
    failures = AuthFailures(per_minute=1, max_clients=100, trusted_proxies=frozenset({relay_address, "127.0.0.1"}))
    headers = {"X-Forwarded-For": "198.51.100.7"}

    def from_(peer: str) -> web.Request:
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (peer, 4242) if name == "peername" \
            else default
        return make_mocked_request("GET", "/api/v1/namespaces", headers=headers, transport=transport)

    assert failures.client_of(from_(relay_address)) == relay_address
    assert failures.client_of(from_("127.0.0.1")) == "198.51.100.7"          # nginx's word is taken
