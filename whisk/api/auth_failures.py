"""Failed authentications, counted per client address, so that guessing keys is slow (beyond OpenWhisk, which
does not limit them).

Each address has a bucket of WHISK_AUTH_FAILURES_PER_MINUTE failures that refills over a minute. With the bucket
empty, credentials this server has not already verified are not checked at all: the API answers 429, a web action
runs as anonymous. Keys already verified (the subjects' cache) still pass, and other addresses are untouched, so
legitimate clients are not slowed by someone else's failures. The table is bounded: past
WHISK_AUTH_FAILURE_CLIENTS addresses the one that failed least recently is forgotten. IPv6 clients count by /64,
the block a single host usually holds. Behind a proxy named in WHISK_TRUSTED_PROXIES (nginx), the client is the
last address of X-Forwarded-For, the one that proxy added. Actions' calls through the invoker's relay each come from
their container's own address (config.ACTIONS_NETWORK), so one tenant's failures never use up another's budget; on
a controller's actions port, that address at the invoker that relayed it (api/actions_port.py).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

from aiohttp import web

from whisk.config import Settings, is_action_address

TOO_MANY = "Too many failed authentication attempts from this address; try again later."


class AuthFailures:
    def __init__(self, per_minute: int, max_clients: int, trusted_proxies: frozenset[str]) -> None:
        self._capacity = float(per_minute)
        self._refill_per_s = per_minute / 60.0
        self._max_clients = max_clients
        self._trusted = trusted_proxies
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()   # client -> (tokens, as of)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthFailures:
        trusted = frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
        return cls(settings.auth_failures_per_minute, settings.auth_failure_clients, trusted)

    def __len__(self) -> int:
        return len(self._buckets)

    def client_of(self, request: web.Request) -> str:
        peer = request.remote or ""
        if is_action_address(peer):
            # On a controller's actions port, the container's address at the invoker that relayed it: every invoker
            # numbers its containers' addresses from the same start (api/actions_port.py's `relay`).
            relay = getattr(request.protocol, "relay", None)
            return f"{_group(peer)} via {relay}" if isinstance(relay, str) and relay else _group(peer)
        if peer in self._trusted:
            forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
            if forwarded:
                peer = forwarded
        return _group(peer)

    def blocks(self, request: web.Request) -> bool:
        """Whether the request's client is blocked. With no failure on record (the usual case) the address is not
        even read: grouping it parses it, which every authenticated request would pay."""
        return bool(self._buckets) and self.blocked(self.client_of(request))

    def _tokens(self, client: str, now: float) -> float:
        entry = self._buckets.get(client)
        if entry is None:
            return self._capacity
        tokens, since = entry
        return min(self._capacity, tokens + (now - since) * self._refill_per_s)

    def blocked(self, client: str) -> bool:
        return self._tokens(client, time.monotonic()) < 1.0

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)


def _group(address: str) -> str:
    """An address as counted: IPv4 as is, IPv6 by its /64 (an IPv4-mapped one as its IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address                            # a unix socket or something unexpected: counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
