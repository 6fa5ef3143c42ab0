"""The API host for containers without a network: one unix socket per container, relayed to the API host.

Under `docker://` with `unix` networking an action container has no network (`--network none`), and a `process://`
sandbox has a network namespace of its own with nothing but its loopback; yet its action may call the API host
(`__OW_API_HOST`), as OpenWhisk's can. The invoker serves a unix socket for each such container, in
a folder of its own that is bind-mounted read-only (the container can never replace or remove the socket), and pipes
every connection made to it, as bytes, to the one upstream named by the API host URL, over TLS when that URL is
https. Inside the container the runtime proxy (or the relay beside a blackbox image) listens on the container's own
loopback and forwards each connection to the socket: on the API host's own port when the API host is plain HTTP on
127.0.0.1 or localhost (standalone whisk), so that `__OW_API_HOST` is the very URL clients use, as on OpenWhisk
(actions build links from it); else on 127.0.0.1:3233, and `__OW_API_HOST` there is http://127.0.0.1:3233. The
relay is not an open proxy: whatever the action sends goes to that one host and port.

Bounds, per container: at most MAX_CONNECTIONS connections are relayed at a time; more wait, unaccepted, in the
socket's backlog (BACKLOG) and are refused past it. A connection with no byte in either direction for IDLE_TIMEOUT_S
is closed, as is one whose upstream does not connect within CONNECT_TIMEOUT_S (the action then reads a 502). The
socket is made with the container, off the activation path; bytes flow only while the action calls the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog

from whisk import proxy_protocol
from whisk.config import action_address, is_action_address, url_host

log = structlog.get_logger(__name__)

SOCKET = "api.sock"
MOUNT = "/run/whisk-api"            # where a container sees the socket's folder, read-only
INSIDE_PORT = 3233                  # where the proxy listens on the container's loopback (not 8080: blackbox images)
_SAME_INSIDE = ("127.0.0.1", "localhost")   # an API host on these (plain HTTP) keeps its URL inside
MAX_CONNECTIONS = 16                # relayed at once, per container: 2 invoker file descriptors each
BACKLOG = 64                        # waiting beyond those, in the kernel, before connect() is refused
IDLE_TIMEOUT_S = 120.0              # no byte either way: longer than a blocking invoke may wait (60 s)
CONNECT_TIMEOUT_S = 10.0
CHUNK = 65536


class RelayConfigError(ValueError):
    """The API host URL cannot be relayed to (not http:// or https://, no host)."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """The one place a relay connects to: the API host's address, TLS or not, and the URL's path."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    path: str
    names_container: bool = False     # each connection begins with a line naming the container's address

    @classmethod
    def from_url(cls, url: str, cafile: str | None = None, names_container: bool = False) -> Upstream:
        """Blocking when the URL is https (loads the trusted certificates): call it once, from a thread.

        `cafile` is trusted besides the system's certificates (the server's own, when it serves TLS itself);
        OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR name others. `names_container`: the upstream is a controller's
        actions port, which reads each connection's first line (api/actions_port.py)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RelayConfigError(f"the API host {url!r} is not an http:// or https:// URL")
        tls = None
        if parts.scheme == "https":
            tls = ssl.create_default_context()
            if cafile:
                tls.load_verify_locations(cafile)
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError as exc:
            raise RelayConfigError(f"the API host {url!r} has a bad port") from exc
        return cls(parts.hostname, port, tls, parts.path.rstrip("/"), names_container)

    @property
    def _url_kept(self) -> bool:
        # 8080 is a blackbox image's own port, beside which the relay may run.
        return self.tls is None and self.host in _SAME_INSIDE and self.port != 8080

    @property
    def inside_port(self) -> int:
        """Where the container's proxy serves the relay on its loopback."""
        return self.port if self._url_kept else INSIDE_PORT

    def inside_url(self) -> str:
        """`__OW_API_HOST` inside the container."""
        if self._url_kept:
            return f"http://{self.host}:{self.port}{self.path}"
        return f"http://127.0.0.1:{INSIDE_PORT}{self.path}"

    def container_env(self) -> dict[str, str]:
        """What a container without a network is told: the socket (for any image), where our proxy or the relay
        serves it on the container's loopback, and __OW_API_HOST there (OpenWhisk sets it at container start too)."""
        return {"WHISK_API_RELAY_SOCKET": f"{MOUNT}/{SOCKET}", "WHISK_API_RELAY_PORT": str(self.inside_port),
                "__OW_API_HOST": self.inside_url()}

    def init_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """An /init body with the API host named as the container reaches it (the invoker's /init names the API host
        as clients reach it)."""
        if not isinstance(body.get("env"), dict):
            return body
        return body | {"env": body["env"] | {"__OW_API_HOST": self.inside_url()}}

    async def connect(self, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # From the container's `address` (config.ACTIONS_NETWORK) when the API host is on this machine's loopback
        # (or every address of it, 0.0.0.0 or ::): from 127.0.0.1 or ::1 an action's X-Forwarded-For would be
        # believed (a trusted proxy's), and it would pass for any local client. IPv6's loopback is one address, so an
        # API host there is reached on the IPv4 loopback, which whisk serves with it (config.listen_hosts). Never on
        # ::1 itself, even when nothing listens on 127.0.0.1 (nginx on [::1] alone): the action reads a 502 rather
        # than pass for a local client.
        host = _reached_at(self.host)
        local = (address, 0) if host == "localhost" or host.startswith("127.") else None
        reader, writer = await asyncio.open_connection(host, self.port, ssl=self.tls, limit=CHUNK, local_addr=local,
                                                       server_hostname=self.host if self.tls else None)
        own = _local_client(writer.get_extra_info("sockname"))
        if own is not None:
            # A name that resolves to ::1 alone (Debian's ip6-localhost) is no address mapped above.
            writer.close()
            raise ConnectionRefusedError(f"the call would come from {own}, a local client's address; name the API "
                                         "host by an address (::1 is reached on 127.0.0.1)")
        if self.names_container:
            # From another host the controller sees the invoker's address, whichever container called.
            writer.write(proxy_protocol.line(address, self.port))
        return reader, writer


def _reached_at(host: str) -> str:
    """Where connect() reaches an API host: 0.0.0.0, :: and ::1 on 127.0.0.1, an IPv4-mapped address as its IPv4 one,
    in any spelling (`0:0:0:0:0:0:0:1` is ::1)."""
    try:
        ip = _unmapped(ipaddress.ip_address(host))
    except ValueError:
        return host                                        # a name (localhost)
    if ip.is_unspecified or (ip.version == 6 and ip.is_loopback):
        return "127.0.0.1"
    return str(ip)


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as its IPv4 address; any other as it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _local_client(sockname: Any) -> str | None:
    """The loopback address a connection leaves from, when it is not one of ACTIONS_NETWORK's (so the API host would
    read the action's call as a local client's)."""
    try:
        ip = _unmapped(ipaddress.ip_address(sockname[0]))
    except (TypeError, IndexError, ValueError):
        return None
    return str(ip) if ip.is_loopback and not is_action_address(str(ip)) else None


def _listen(folder: str, uid: int | None) -> socket.socket:
    """Make the folder and the listening socket in it (blocking: use a thread). A root invoker gives the socket to
    the container's user alone; any other, or one that does not know that user yet (`uid` None: a sandbox's user
    is its launcher's pid, and only the sandbox's mount shows the folder), opens it to all, as the proxies' own
    sockets are."""
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, 0o711)
    os.mkdir(folder)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if os.geteuid() == 0 and uid is not None:
            os.chown(path, uid, uid)
            os.chmod(path, 0o600)
        else:
            os.chmod(path, 0o666)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return sock


_relays_made = itertools.count()
# Invokers on one host each number their containers from the same start: the nth container of invoker i takes the
# address n * INVOKERS_APART + i % INVOKERS_APART, so that up to this many invokers sharing a host (and so its
# loopback API host) never give two containers one address, whose failed logins would then count together.
INVOKERS_APART = 16


class ApiRelay:
    """One container's socket and the connections relayed through it; start() once, close() once. Its calls to a
    loopback API host come from an address of the container's own (`address`), which the API host counts failed
    logins by."""

    def __init__(self, upstream: Upstream, folder: str, uid: int | None, name: str, invoker: int = 0) -> None:
        self.upstream = upstream
        self.address = action_address(next(_relays_made) * INVOKERS_APART + invoker % INVOKERS_APART)
        self.folder = folder
        self.socket = os.path.join(folder, SOCKET)
        self._uid = uid
        self._name = name
        self._sock: socket.socket | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._accepting: asyncio.Task[None] | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._warned = False

    async def start(self) -> None:
        self._sock = await asyncio.to_thread(_listen, self.folder, self._uid)
        self._accepting = asyncio.create_task(self._accept(self._sock), name=f"api-relay-{self._name}")

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()          # at the limit, connections wait in the backlog, not in memory
            try:
                conn, _ = await loop.sock_accept(sock)
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._relay(conn))
            self._links.add(task)
            task.add_done_callback(self._links.discard)

    async def _relay(self, conn: socket.socket) -> None:
        try:
            down_reader, down_writer = await asyncio.open_connection(sock=conn, limit=CHUNK)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    up_reader, up_writer = await self.upstream.connect(self.address)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self._warn(exc)
                await _refuse(down_writer, f"The API host cannot be reached from the action's container: {exc!r}")
                return
            link = _Link()
            try:
                await asyncio.gather(link.pipe(down_reader, up_writer), link.pipe(up_reader, down_writer))
            finally:
                for writer in (up_writer, down_writer):
                    writer.close()
        except OSError:
            conn.close()
        finally:
            self._slots.release()

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:            # once per container: an action can retry in a loop
            self._warned = True
            log.warning("api_relay.upstream_failed", container=self._name,
                        upstream=f"{url_host(self.upstream.host)}:{self.upstream.port}", error=repr(exc))

    async def close(self) -> None:
        """Stop accepting, cut every relayed connection, remove the socket's folder."""
        tasks = [t for t in (self._accepting, *self._links) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The cancelled accept task keeps its CancelledError, whose traceback holds the task's frame and so this
        # relay: a cycle that would wait for the collector, once per destroyed container.
        self._accepting = None
        if self._sock is not None:
            self._sock.close()
        await asyncio.to_thread(shutil.rmtree, self.folder, True)


class _Link:
    """Both directions of one relayed connection, closed together once neither has moved for IDLE_TIMEOUT_S."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                left = self._last + IDLE_TIMEOUT_S - self._loop.time()
                if left <= 0:
                    break                                  # idle both ways: the finally closes both ends
                try:
                    async with asyncio.timeout(left):
                        data = await reader.read(CHUNK)
                        if data:
                            self._last = self._loop.time()
                            writer.write(data)
                            await writer.drain()
                except TimeoutError:
                    continue                               # the other direction may have moved meanwhile
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()                 # pass the half-close on: the other side may answer
                        return
                    break
        except (ConnectionError, OSError, ssl.SSLError):
            pass                                           # either end went away: close both
        writer.close()                                     # the other direction then reads the end of its stream


async def _refuse(writer: asyncio.StreamWriter, message: str) -> None:
    """A 502 in OpenWhisk's error shape, so that the action's HTTP client says why rather than 'connection reset'."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        writer.write(head + body)
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await writer.drain()
    writer.close()
