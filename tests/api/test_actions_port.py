"""A controller's actions port (WHISK_ACTIONS_PORT): the port an invoker on another host relays its actions' API calls
to. Every connection there is an action's, whatever its socket's address: refused the operators' routes, its failed
logins counted by the container its relay names in a PROXY protocol line, apart from every other container's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aiohttp import web
from structlog.testing import capture_logs

from tests.api.test_parse_errors import _answer
from tests.support.http import GUEST_BASIC
from tests.support.processes import free_port, whisk_server
from whisk import proxy_protocol
from whisk.api.actions_port import NOT_A_HEADER, SHARED, ActionsConnection, action_of
from whisk.api.early_errors import Site
from whisk.api.auth_failures import TOO_MANY
from whisk.config import ConfigError, Settings, action_address

PER_MINUTE = 3
WRONG = "Basic " + "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOndyb25n"   # a subject that does not exist


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ports() -> AsyncIterator[tuple[int, int]]:
    """A standalone server's API port and its actions port."""
    actions = free_port()
    env = {"WHISK_ACTIONS_PORT": str(actions), "WHISK_AUTH_FAILURES_PER_MINUTE": str(PER_MINUTE)}
    async with whisk_server(env) as url:
        yield int(url.rsplit(":", 1)[1]), actions


async def _exchange(port: int, *chunks: bytes, requests: int = 1,
                    source: str | None = None) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `chunks` one write each (a pause between them, so they arrive apart), read `requests` answers;
    from `source`, another loopback address (another invoker's host), when given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0) if source else None)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.05)
        answers = []
        for _ in range(requests):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status, headers, _ = _answer(head)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answers.append((status, headers, body))
        return answers
    finally:
        writer.close()


def _get(path: str, auth: str = GUEST_BASIC.decode(), close: bool = False) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
            f"{'Connection: close' if close else ''}\r\n\r\n").encode()


def test_the_line_a_relay_writes_names_its_container() -> None:
    line = proxy_protocol.line("127.2.3.4", 3234)
    assert line == b"PROXY TCP4 127.2.3.4 0.0.0.0 0 3234\r\n" and len(line) <= proxy_protocol.MAX_LINE
    assert action_of(line[:-2]) == "127.2.3.4"
    assert action_of(b"PROXY UNKNOWN") == SHARED
    # The protocol lets an UNKNOWN line carry anything after the word, which a receiver ignores.
    assert action_of(b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2") == SHARED
    for other in (b"PROXY TCP4 10.0.0.1 0.0.0.0 0 3234", b"PROXY TCP4 127.0.0.1 0.0.0.0 0 3234",
                  b"PROXY TCP6 ::1 ::1 0 3234", b"PROXY TCP4 127.2.3 0.0.0.0 0 3234", b"PROXY TCP4 127.2.3.4",
                  b"PROXY TCP4 \xff 0.0.0.0 0 1"):
        assert action_of(other) is None, other


async def test_operators_routes_refuse_every_connection_of_the_port(ports: tuple[int, int]) -> None:
    api, actions = ports
    # On the API's port a loopback client (an operator) reads them.
    [(status, _, _)] = await _exchange(api, _get("/metrics", close=True))
    assert status == 200
    header = proxy_protocol.line(action_address(5), actions)
    for chunks in ([_get("/metrics")], [header + _get("/metrics")], [header[:3], header[3:20], header[20:],
                                                                        _get("/activation")]):
        [(status, headers, body)] = await _exchange(actions, *chunks)
        assert status == 403 and json.loads(body)["code"] == headers["x-request-id"], (chunks, body)
    # Every request of a connection is the action's, not only its first; the tenant's own routes answer.
    three = _get("/api/v1/namespaces") + _get("/activation/count") + _get("/metrics")
    answers = await _exchange(actions, header + three, requests=3)
    assert [a[0] for a in answers] == [200, 403, 403]


@pytest.mark.parametrize("first", [b"PROXY TCP4 10.0.0.1 0.0.0.0 0 3234\r\n", b"PROXY " + b"x" * 120,
                                   b"PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n",
                                   # an action's line, one byte past the protocol's 107
                                   b"PROXY TCP4 127.2.3.4 0.0.0.0 0 " + b"1".rjust(75, b"0") + b"\r\n"])
async def test_a_line_that_names_no_action_is_refused(ports: tuple[int, int], first: bytes) -> None:
    """The relay writes nothing else first: a peer made of a guess would be an address the caller chose."""
    _, actions = ports
    reader, writer = await asyncio.open_connection("127.0.0.1", actions)
    try:
        writer.write(first + _get("/api/v1/namespaces"))
        raw = await asyncio.wait_for(reader.read(), 10)       # to the server's close
    finally:
        writer.close()
    status, headers, body = _answer(raw)
    assert status == 400 and headers["connection"] == "close"
    assert json.loads(body) == {"error": NOT_A_HEADER, "code": headers["x-request-id"]}


async def test_each_container_has_its_own_failed_login_budget(ports: tuple[int, int]) -> None:
    api, actions = ports
    guessing, other = (proxy_protocol.line(action_address(n), actions) for n in (100, 101))
    statuses = [(await _exchange(actions, guessing + _get("/api/v1/namespaces", WRONG)))[0][0]
                for _ in range(PER_MINUTE + 1)]
    assert statuses == [401] * PER_MINUTE + [429]
    [(_, _, body)] = await _exchange(actions, guessing + _get("/api/v1/namespaces", WRONG))
    assert json.loads(body)["error"] == TOO_MANY
    # Another container behind the same invoker (the same socket address), and the API's own clients, go on.
    [(status, _, _)] = await _exchange(actions, other + _get("/api/v1/namespaces", WRONG))
    assert status == 401
    [(status, _, _)] = await _exchange(api, _get("/api/v1/namespaces", WRONG, close=True))
    assert status == 401


async def test_the_same_container_address_at_two_invokers_has_two_budgets(ports: tuple[int, int]) -> None:
    """Every invoker numbers its relays' addresses from the same start (config.action_address): the first container
    of one and the first of another name the same address, and one tenant's failures locked the other's action out
    (429, its key unchecked) on every controller they both called."""
    _, actions = ports
    first = proxy_protocol.line(action_address(200), actions)
    statuses = [(await _exchange(actions, first + _get("/api/v1/namespaces", WRONG), source="127.0.0.1"))[0][0]
                for _ in range(PER_MINUTE + 1)]
    assert statuses == [401] * PER_MINUTE + [429]
    [(status, _, _)] = await _exchange(actions, first + _get("/api/v1/namespaces", WRONG), source="127.0.0.3")
    assert status == 401


def test_the_ports_and_the_relays_line_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="WHISK_ACTIONS_PORT"):
        Settings.from_env({"WHISK_PORT": "4000", "WHISK_ACTIONS_PORT": "4000"})
    with pytest.raises(ConfigError, match="WHISK_ACTIONS_PORT"):
        Settings.from_env({"WHISK_ROLE": "standalone", "WHISK_PLAYGROUND_PORT": "4001", "WHISK_ACTIONS_PORT": "4001"})
    with pytest.raises(ConfigError, match="WHISK_DOCKER_API_PROXY_PROTOCOL"):
        Settings.from_env({"WHISK_DOCKER_API_PROXY_PROTOCOL": "true"})
    settings = Settings.from_env({"WHISK_DOCKER_API_PROXY_PROTOCOL": "true", "WHISK_ACTIONS_PORT": "3234",
                                  "WHISK_DOCKER_API_UPSTREAM": "http://controller0:3234"})
    assert settings.docker_api_proxy_protocol and settings.actions_port == 3234


async def test_a_refused_line_is_a_warning_naming_the_relay() -> None:
    """An invoker relaying without the line lets its actions write one: the operator's to know, from the log."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    port = free_port()
    await Site(runner, "127.0.0.1", port, handler=ActionsConnection).start()
    try:
        with capture_logs() as lines:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PROXY TCP4 10.1.2.3 0.0.0.0 0 1\r\n")
            status, headers, _ = _answer(await asyncio.wait_for(reader.read(), 10))
            writer.close()
        refused = [line for line in lines if line["event"] == "actions_port.refused"]
        assert status == 400 and refused == [{"event": "actions_port.refused", "log_level": "warning",
                                              "relay": "127.0.0.1", "tid": headers["x-request-id"]}]
    finally:
        await runner.cleanup()


async def test_a_line_only_counts_first_on_its_connection(ports: tuple[int, int]) -> None:
    """A connection that began without a line (SHARED's) cannot name an action later: what it sends after its first
    bytes is HTTP, and a PROXY line there an unknown method."""
    _, actions = ports
    later = proxy_protocol.line(action_address(5), actions) + _get("/api/v1/namespaces")
    answers = await _exchange(actions, _get("/api/v1/namespaces"), later, requests=2)
    assert [a[0] for a in answers] == [200, 501]
