"""A controller's port for the API calls of actions that an invoker on another host relays (WHISK_ACTIONS_PORT).

An action calls the API host through its invoker's relay (containers/api_relay.py). On one host the relay gives each
container's calls an address of its own in config.ACTIONS_NETWORK, and the API host tells them apart by it: the
operators' routes refuse them (api/errors.py `not_for_actions`), no X-Forwarded-For of theirs is believed, and each
container's failed logins count against its own budget (api/auth_failures.py). An invoker on another host (an invoker
in a container, deploy/) connects from its own address, which the controller cannot tell from an operator's or a
proxy's. On this port every connection is an action's: its peer is an address of ACTIONS_NETWORK, the container's
own as the relay names it in a PROXY protocol version 1 line before its first request
(WHISK_DOCKER_API_PROXY_PROTOCOL), else SHARED, which all such connections share. Its failed logins count by that
address at the invoker, the socket's peer (`relay`): invokers on different hosts may give containers one address
(`api_relay.INVOKERS_APART` keeps only 16 instances apart). A line that is not such a header is refused with a 400:
the relay sends nothing else first, and a guess at what was meant would make a peer of it.

The line is HAProxy's PROXY protocol's (whisk/proxy_protocol.py), of which only the source is read. It comes first
in the stream, inside TLS when the port serves TLS. Only the invokers should reach this port: it is not the public
API (nginx and the ingress leave it out), and a client that did could only make itself an action, whose routes are a
subset of any tenant's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog

from whisk import logs, proxy_protocol
from whisk.api.early_errors import JsonErrors
from whisk.api.errors import REQUEST_ID, new_tid
from whisk.config import is_action_address

log = structlog.get_logger("whisk.http")
_REFUSED = logs.Bounded()

SHARED = "127.2.0.0"            # in ACTIONS_NETWORK, and never a relay's own (config.action_address skips .0)
NOT_A_HEADER = "Illegal request: the actions port takes a PROXY protocol line naming an action's relay address"


def action_of(line: bytes) -> str | None:
    """The action address a header line names (SHARED for `PROXY UNKNOWN`), None for any other line."""
    source = proxy_protocol.source_of(line)
    if source == "":
        return SHARED
    return source if is_action_address(source) else None


class ActionsConnection(JsonErrors):
    """A connection of the actions port: its peer, for every request it carries, is the action address its header
    named, or SHARED. aiohttp's requests read `peername` from their connection once each, at their start."""

    __slots__ = ("_action", "_head", "relay")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._action = SHARED
        self._head: bytes | None = b""          # what came before the header was settled; None once it is
        # The socket's peer, the invoker: two invokers may give containers one address (api_relay.INVOKERS_APART),
        # so a container is its address at its invoker (api/auth_failures.py counts so).
        self.relay = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.relay = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else ""

    @property
    def peername(self) -> tuple[str, int]:      # aiohttp's is the socket's; every caller here is an action
        return (self._action, 0)

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            return super().data_received(data)
        head = self._head + data
        if not head.startswith(proxy_protocol.PREFIX):
            if proxy_protocol.PREFIX.startswith(head):
                self._head = head                   # too little yet to tell
                return
            self._head = None                       # no header: SHARED's
            return super().data_received(head)
        end = head.find(b"\r\n", 0, proxy_protocol.MAX_LINE)
        if end < 0:
            if len(head) >= proxy_protocol.MAX_LINE:
                return self._refuse()
            self._head = head
            return
        source = action_of(head[:end])
        if source is None:
            return self._refuse()
        self._action, self._head = source, None
        rest = head[end + 2:]
        if rest:
            super().data_received(rest)

    def _refuse(self) -> None:
        # Before any request exists, so written as bytes: the error's shape as every other refusal's.
        self._head = None
        tid = new_tid()
        # An invoker relaying here without the line (its actions then write their own), or something that is not an
        # invoker: the operator's to know. Bounded, as whoever reaches the port can repeat it.
        if (bound := _REFUSED.fields()) is not None:
            log.warning("actions_port.refused", relay=self.relay, tid=tid, **bound)
        body = json.dumps({"error": NOT_A_HEADER, "code": tid}).encode()
        head = (f"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{REQUEST_ID}: {tid}\r\nConnection: close\r\n\r\n").encode()
        if self.transport is not None:
            self.transport.write(head + body)
            self.transport.close()
