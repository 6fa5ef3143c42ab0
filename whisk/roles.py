"""Wiring: the only module that maps a URL scheme to an adapter and builds each role's object graph (the controller's
services in `whisk/controller/services.py`, which it opens).

One `cleanup_ctx` entry per resource, opened in order and closed in reverse. Roles:
controller (REST API + balancer), invoker (pool + bus feed), standalone (both, in one process, over the
in-process bus unless WHISK_BUS says otherwise).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import os
import platform
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from aiohttp import web

from whisk import __version__, logs, metrics
from whisk.api import actions_port, early_errors, playground
from whisk.api.errors import REQUEST_LINE_LIMIT
from whisk.api.keys import SERVICES, STOP_BY, STORE, grace_left
from whisk.config import ConfigError, Settings, listen_hosts, redact
from whisk.containers.base import ContainerFactory
from whisk.containers.process.sandbox import SandboxUnavailable
from whisk.discovery.base import Discovery
from whisk.entities.errors import WhiskError
from whisk.messaging.base import Bus
from whisk.loadbalancer.base import LoadBalancer, Released
from whisk.runtimes.manifest import Manifest
from whisk.store.base import Store

if TYPE_CHECKING:
    from whisk.controller.services import BalancerFactory
    from whisk.invoker.service import Invoker

log = structlog.get_logger(__name__)

BUS = web.AppKey("bus", Bus)
DISCOVERY = web.AppKey("discovery", Discovery)
INVOKER: web.AppKey[Invoker] = web.AppKey("invoker")      # typed without importing the invoker on controllers
DRAINING = web.AppKey("draining", asyncio.Event)
INVOKER_TTL_S = 10.0      # discovery health check TTL: a killed invoker leaves the healthy list after this
# Past the stop's grace, what is still in flight is closed as "stopped" (`ControllerServices.stop_work`) and the
# requests still open get this long more to answer with it before they are cancelled (a dropped connection).
ANSWER_AT_STOP_S = 1.0


# --- adapters by URL -----------------------------------------------------------------------------------------------

def store_from_url(url: str, spool: str | None = None) -> AbstractAsyncContextManager[Store]:
    """The store a URL names; `spool` is the file where a server's CouchDB store keeps the records it has yet to
    write (`whisk admin` gives none: it writes no records)."""
    parts = urlsplit(url)
    match parts.scheme:
        case "memory":
            from whisk.store.memory import MemoryStore
            return MemoryStore()
        case "sqlite":
            from whisk.store.sqlite import SqliteStore
            return SqliteStore(unquote(parts.netloc + parts.path))   # makes its folder, 0700
        case "couchdb" | "couchdbs":
            from whisk.store.couchdb import CouchStore
            scheme = "https" if parts.scheme == "couchdbs" else "http"
            return CouchStore(f"{scheme}://{parts.netloc}{parts.path}", spool=spool)
        case other:
            raise ConfigError(f"WHISK_STORE: unsupported scheme {other!r}")


def bus_from_url(url: str, client_id: str) -> AbstractAsyncContextManager[Bus]:
    parts = urlsplit(url)
    match parts.scheme:
        case "memory":
            from whisk.messaging.memory import MemoryBus
            return MemoryBus()
        case "kafka":
            from whisk.messaging.kafka import KafkaBus
            wait = parse_qs(parts.query).get("fetch_max_wait_ms", ["500"])[0]   # kafka://h:9092?fetch_max_wait_ms=10
            if not wait.isdigit():
                raise ConfigError(f"WHISK_BUS: fetch_max_wait_ms must be a whole number of milliseconds, not {wait!r}")
            return KafkaBus(parts.netloc.split(","), client_id=client_id, fetch_max_wait_ms=int(wait))
        case other:
            raise ConfigError(f"WHISK_BUS: unsupported scheme {other!r}")


def discovery_from_url(url: str) -> AbstractAsyncContextManager[Discovery]:
    parts = urlsplit(url)
    match parts.scheme:
        case "local":
            from whisk.discovery.local import LocalDiscovery
            return LocalDiscovery()
        case "consul":
            from whisk.discovery.consul import ConsulDiscovery
            return ConsulDiscovery(f"http://{parts.netloc}")
        case other:
            raise ConfigError(f"WHISK_DISCOVERY: unsupported scheme {other!r}")


def containers_from_settings(settings: Settings, manifest: Any) -> ContainerFactory:
    parts = urlsplit(settings.containers_url)
    match parts.scheme:
        case "process":
            from whisk.containers.process.factory import ProcessContainerFactory
            return ProcessContainerFactory(manifest, invoker_instance=settings.instance,
                                           sandbox=not settings.trust_all_code, tmp_mb=settings.process_tmp_mb,
                                           hidden=_private_folders(settings),
                                           # relayed into each sandbox's network namespace
                                           api_host=settings.api_host or settings.own_url,
                                           api_cafile=settings.tls_cert or None)
        case "docker":
            from whisk.containers.docker.factory import DockerContainerFactory
            return DockerContainerFactory(settings.containers_url, invoker_instance=settings.instance,
                                          network=settings.docker_network, user_memory_mb=settings.pool_memory_mb,
                                          tmp_mb=settings.docker_tmp_mb,
                                          # relayed to containers without a network (WHISK_DOCKER_NETWORK=unix)
                                          api_host=settings.docker_api_upstream or settings.api_host
                                          or settings.own_url,
                                          api_proxy_protocol=settings.docker_api_proxy_protocol,
                                          api_cafile=settings.tls_cert or None)
        case other:
            raise ConfigError(f"WHISK_CONTAINERS: unsupported scheme {other!r}")


def _private_folders(settings: Settings) -> tuple[str, ...]:
    """The platform's own data, which no sandbox may show: the data folder and an SQLite store's folder."""
    parts = urlsplit(settings.store_url)
    store = (os.path.dirname(parts.path),) if parts.scheme == "sqlite" and parts.path else ()
    return (settings.data_dir, *store)


def isolation(settings: Settings) -> str | None:
    """Which mode actions run in, for the start-up log line; None on a controller, which runs none (and never
    probed the sandbox that `process://` would need)."""
    if not settings.runs_invoker:
        return None
    if urlsplit(settings.containers_url).scheme == "docker":
        return "docker containers"
    return "none: all code trusted (WHISK_TRUST_ALL_CODE)" if settings.trust_all_code else "process sandbox (bwrap)"


# --- resources as cleanup contexts -----------------------------------------------------------------------------------

def _store_ctx(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        spool = os.path.join(settings.data_dir, f"{settings.role}{settings.instance}.couchdb-records")
        async with store_from_url(settings.store_url, spool) as opened:
            store = metrics.instrument(opened, "store")      # every call timed, errors counted
            app[STORE] = store
            if settings.runs_controller and settings.bootstrap_users:
                from whisk.controller.subjects import Subjects
                await Subjects(store).bootstrap()
            yield
    return ctx


def _bus_ctx(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with bus_from_url(settings.bus_url, f"{settings.role}{settings.instance}") as bus:
            app[BUS] = timed_bus(settings.bus_url, bus)
            yield
    return ctx


def timed_bus(url: str, bus: Bus) -> Bus:
    """The bus with every call timed and its errors counted, except the in-process bus: it does no I/O, so there
    is nothing to time, and a timed call costs ~1.5 us, three an invoke."""
    return bus if urlsplit(url).scheme == "memory" else metrics.instrument(bus, "bus")


def _discovery_ctx(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with discovery_from_url(settings.discovery_url) as discovery:
            app[DISCOVERY] = discovery
            yield
    return ctx


def _cache_ctx(settings: Settings):
    """The controller's entity cache over the store, invalidated across instances on `cacheInvalidation`. It is
    opened after the invoker's context on purpose: the invoker keeps the plain store (its action fetch is keyed by
    revision)."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from whisk.controller.cache import EntityCache
        plain = app[STORE]
        async with EntityCache(plain, app[BUS], instance_id=f"{settings.role}{settings.instance}") as cache:
            app[STORE] = cache
            yield
    return ctx


def _distributed(settings: Settings) -> bool:
    """Standalone over the in-process bus keeps the lean balancer (one invoker, no health protocol,
    docs/openwhisk.md §9.3); every other setup runs the sharding balancer with invoker supervision."""
    return not (settings.role == "standalone" and urlsplit(settings.bus_url).scheme == "memory")


def _invoker_ctx(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from whisk.containerpool.pool import CODE_CAP_ENV, ContainerPool
        from whisk.invoker.blocklist import Blocklist
        from whisk.invoker.service import Invoker
        from whisk.runtimes.manifest import load_manifest

        manifest = load_manifest(environments=settings.runtimes_dir)
        factory = containers_from_settings(settings, manifest)

        def image_of(action: dict[str, Any]) -> str:
            exec_ = action.get("exec") or {}
            if exec_.get("kind") == "blackbox":
                return exec_.get("image", "")
            return manifest.resolve(exec_.get("kind", "")).image

        try:
            await factory.cleanup()      # containers a killed predecessor left; also proves the backend answers
        except BaseException as exc:
            await factory.close()        # what the failed contact opened (a Docker client's session)
            if isinstance(exc, SandboxUnavailable):
                raise ConfigError(f"WHISK_TRUST_ALL_CODE is false and {exc}") from exc
            raise
        log.info("invoker.containers", backend=settings.containers_url, detail=factory.describe())
        pool = ContainerPool(factory, manifest, invoker_instance=settings.instance,
                             memory_mb=settings.pool_memory_mb, pause_grace_s=settings.pool_pause_grace_ms / 1000,
                             idle_timeout_s=settings.pool_idle_timeout_s, prewarm=settings.pool_prewarm,
                             prewarm_check_s=settings.pool_prewarm_check_s,
                             max_result_bytes=settings.max_payload_size,
                             spin_s=settings.pool_spin_us / 1e6, on_idle=app[STORE].loop_idle,
                             container_env={CODE_CAP_ENV: str(settings.max_code_unpacked_mb << 20)})
        await pool.start()
        unwatch_pool = metrics.watch_pool(pool.stats)          # pool gauges, read at scrape time
        loop_core = None
        if settings.loop_cpu == "auto":
            from whisk.invoker.loop_core import LoopCore
            loop_core = asyncio.ensure_future(LoopCore(factory).watch())
        api_host = settings.api_host or settings.own_url
        unwatch_bus: Callable[[], None] | None = None
        try:
            async with Invoker(instance=settings.instance, bus=app[BUS], store=app[STORE], pool=pool,
                               image_of=image_of, api_host=api_host, user_memory_mb=settings.pool_memory_mb,
                               max_intake=max(4, settings.pool_memory_mb // 128 * settings.max_action_concurrency),
                               # Standalone's lean balancer has no health protocol: pings would only pile up.
                               ping_interval_s=1.0 if _distributed(settings) else None,
                               user_events=settings.user_events,
                               blocklist=Blocklist(app[STORE], poll_s=settings.blocklist_poll_s),
                               # a start that fails or is signalled once the feed has taken work: still one grace
                               exit_grace_s=settings.shutdown_grace_s,
                               ) as invoker:
                app[INVOKER] = invoker
                # Whether the bus answers (whisk_bus_up), from its pings and acks; the in-process bus cannot be away.
                if _distributed(settings):
                    unwatch_bus = metrics.watch_bus(invoker.bus_answers)
                from whisk.discovery.base import InvokerInfo
                await app[DISCOVERY].register_invoker(
                    InvokerInfo(settings.instance, settings.pool_memory_mb, settings.address),
                    ttl_s=INVOKER_TTL_S)
                try:
                    yield
                finally:
                    try:
                        await app[DISCOVERY].deregister_invoker(settings.instance)
                    except WhiskError as exc:
                        log.warning("invoker.deregister_failed", error=str(exc))
                await invoker.drain(grace_left(app, settings.shutdown_grace_s))
        finally:
            if loop_core is not None:
                loop_core.cancel()
                await asyncio.gather(loop_core, return_exceptions=True)
            unwatch_pool()
            if unwatch_bus is not None:
                unwatch_bus()
            await pool.close()
            await factory.close()
    return ctx


def _balancer_of(settings: Settings, app: web.Application) -> BalancerFactory:
    """The balancer this setup runs, opened by the controller's services with their release callback."""
    timeout_std_s = settings.std_action_timeout / 1000     # the ack timeout's floor (docs/openwhisk.md §5.5)

    def open_balancer(on_release: Released) -> AbstractAsyncContextManager[LoadBalancer]:
        if _distributed(settings):
            from whisk.loadbalancer.sharding_balancer import ShardingBalancer
            return ShardingBalancer(app[BUS], app[STORE], app[DISCOVERY], controller=settings.instance,
                                    timeout_factor=settings.ack_timeout_factor,
                                    timeout_addon_s=settings.ack_timeout_addon_s, timeout_std_s=timeout_std_s,
                                    on_release=on_release, depart_after_s=settings.invoker_depart_s)
        from whisk.loadbalancer.lean import LeanBalancer
        return LeanBalancer(app[BUS], controller=settings.instance, invoker=settings.instance,
                            timeout_factor=settings.ack_timeout_factor, timeout_addon_s=settings.ack_timeout_addon_s,
                            timeout_std_s=timeout_std_s, on_release=on_release)
    return open_balancer


def _controller_ctx(settings: Settings, manifest: Manifest | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from whisk.api.app import provide
        from whisk.controller.services import open_controller

        async with open_controller(settings, app[STORE], app[BUS], _balancer_of(settings, app),
                                   manifest) as services:
            balancer = services.balancer
            unwatch_balancer = metrics.watch_balancer(lambda: metrics.BalancerState.of(balancer))
            # Whether the bus answers (whisk_bus_up), from the sharding balancer's check of it every second.
            bus_answers = getattr(balancer, "bus_answers", None)
            unwatch_bus = metrics.watch_bus(bus_answers) if bus_answers is not None else None
            provide(app, services)
            await app[DISCOVERY].register_controller(settings.instance, settings.address)
            try:
                yield
            finally:
                unwatch_balancer()
                if unwatch_bus is not None:
                    unwatch_bus()
                try:
                    await app[DISCOVERY].deregister_controller(settings.instance)
                except WhiskError as exc:
                    log.warning("controller.deregister_failed", error=str(exc))
    return ctx


# --- the applications ---------------------------------------------------------------------------------------------

async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


def _balancer_in(app: web.Application) -> LoadBalancer | None:
    services = app.get(SERVICES)
    return services.balancer if services is not None else None


def build_app(settings: Settings) -> web.Application:
    from whisk.api.health import mount  # /metrics, /health and request metrics on every role
    from whisk.api.keys import SETTINGS

    manifest: Manifest | None = None
    if settings.runs_controller:
        from whisk.api.app import make_app
        from whisk.controller.services import api_manifest
        manifest = api_manifest()
        app = make_app(settings, manifest)       # its services arrive through the controller's cleanup context
    else:
        from whisk.api.errors import openwhisk_errors, transaction_ids
        # An invoker's answers carry a transaction id too (its errors' `code`), and each request its access line;
        # its refusals (unknown path, wrong method) are `{"error", "code"}` as OpenWhisk's BasicHttpService answers.
        app = web.Application(middlewares=[transaction_ids, openwhisk_errors])
        app[SETTINGS] = settings
        app.router.add_get("/ping", _ping)
    app[DRAINING] = asyncio.Event()
    mount(app, lambda: {"store": app.get(STORE), "bus": app.get(BUS), "discovery": app.get(DISCOVERY)},
          draining=app[DRAINING].is_set)
    app.cleanup_ctx.append(_store_ctx(settings))
    app.cleanup_ctx.append(_bus_ctx(settings))
    app.cleanup_ctx.append(_discovery_ctx(settings))
    from whisk.api import invokers as invoker_routes
    if settings.runs_controller:
        invoker_routes.mount_controller(app, lambda: _balancer_in(app))
    if settings.role == "invoker":
        invoker_routes.mount_invoker(app, lambda: app.get(INVOKER))
    if settings.runs_invoker:
        app.cleanup_ctx.append(_invoker_ctx(settings))
    if settings.runs_controller:
        app.cleanup_ctx.append(_cache_ctx(settings))
        app.cleanup_ctx.append(_controller_ctx(settings, manifest))
    return app


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, loaded before any service opens: a missing or unreadable PEM is a configuration
    error naming its variables, not a traceback from a half-started server."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"WHISK_TLS_CERT, WHISK_TLS_KEY: cannot load {settings.tls_cert!r} with "
                          f"{settings.tls_key!r}: {exc.strerror or exc}") from None
    return context


class ServerInUse(OSError):
    """Another running server holds this data folder for the same role and instance."""


def claim_data_folder(settings: Settings) -> list[int]:
    """Lock the data folder for this process's controller and invoker instances (flock on `controller<N>.lock`,
    `invoker<N>.lock`; the locks go with the process, a SIGKILL included), before anything opens: a second server
    started by mistake beside a running one otherwise opened the store, seeded subjects and cleared its invoker's
    containers (on a shared Docker daemon, the running server's, activations and all) before the journal's lock or
    the port stopped it. The descriptors to close at the end."""
    held: list[int] = []
    names = ([f"controller{settings.instance}"] if settings.runs_controller else []) + \
            ([f"invoker{settings.instance}"] if settings.runs_invoker else [])
    for name in names:
        path = os.path.join(settings.data_dir, f"{name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            for other in held:
                os.close(other)
            raise ServerInUse(f"another whisk server is running on the data folder {settings.data_dir} (its lock "
                              f"{name}.lock is held)") from None
        held.append(fd)
    return held


def refuse_a_port_in_use(host: str, port: int) -> None:
    """Fail before anything opens when the API's port is taken, for the reason above (a second server on another
    data folder but the same port and invoker instance). A probe bound as the server binds (SO_REUSEADDR, IPv6
    only on IPv6) and closed at once; other bind errors are left to the server's own bind, which says them."""
    try:
        found = [info for one in listen_hosts(host)
                 for info in socket.getaddrinfo(one or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)]
    except socket.gaierror as exc:        # a host name that does not resolve: say which setting it is
        raise ConfigError(f"WHISK_HOST: cannot listen on {host!r}: {exc.strerror}") from None
    for family, kind, proto, _, address in dict.fromkeys(found):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:         # in asyncio's words, as the server's bind says it
                    raise OSError(exc.errno, f"error while attempting to bind on address {address!r}: "
                                             f"{(exc.strerror or '').lower()}") from None


async def serve(settings: Settings) -> None:
    """Run the role until SIGTERM or SIGINT; a second signal stops at once."""
    try:
        Path(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)   # the platform's data: its user's only
    except OSError as exc:
        raise ConfigError(f"WHISK_DATA_DIR: cannot make the folder {settings.data_dir!r}: {exc.strerror}") from None
    held = claim_data_folder(settings)
    try:
        refuse_a_port_in_use(settings.host, settings.port)
        if settings.runs_controller and settings.actions_port:
            refuse_a_port_in_use(settings.host, settings.actions_port)
        await _serve(settings)
    finally:
        for fd in held:
            os.close(fd)


async def _serve(settings: Settings) -> None:
    # Every line this process logs names its role and instance; tasks inherit the binding.
    logs.bind(role=settings.role, instance=settings.instance)
    _watch_children_with_pidfds()
    tls = _ssl_context(settings)
    app = build_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.shutdown_grace_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The signals are this server's from before the start: one during it cancels the start, which closes what it
    # had opened (left to asyncio, SIGINT was a KeyboardInterrupt traceback, or nothing at all when a cancellation
    # was lost on the way, and SIGTERM ended the process with its containers left running). A cancellation lost even
    # so still stops the server once it has started: `stop` is set.
    starting: list[asyncio.Task[Any]] = [task] if (task := asyncio.current_task()) is not None else []

    received: list[str] = []            # the signal that stops it, for `server.stopping`: SIGINT a person, SIGTERM a
                                        # supervisor (systemd, Docker, Kubernetes)

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("server.killed", reason="second signal", signal=sig.name)
            os._exit(1)
        received.append(sig.name)
        stop.set()
        for start in starting:
            start.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    playground_runner: web.AppRunner | None = None
    try:
        await runner.setup()
        # The playground's server before the API's, so that the API's /playground leads there from its first answer
        # on; a port it could not have is said once the API listens (a failed start says only why it failed).
        playground_runner, playground_off = (await _start_playground(settings, tls, app) if settings.serves_playground
                                             else (None, ""))
        options = {**_connection_options(settings),
                   # A body is read as sent, whatever its Content-Encoding says: OpenWhisk's routes have no
                   # decodeRequest, so a false `gzip` on plain JSON is just read, and a gzipped body is not JSON
                   # (400); aiohttp's decoding made the first a 500 and `br` a 400 in plain text.
                   "auto_decompress": False}
        sites = [early_errors.Site(runner, settings.host, settings.port, ssl_context=tls, backlog=1024, **options)]
        if settings.runs_controller and settings.actions_port:
            sites.append(early_errors.Site(runner, settings.host, settings.actions_port, ssl_context=tls,
                                           backlog=1024, handler=actions_port.ActionsConnection, **options))
        try:
            for site in sites:
                await site.start()
        except OSError as exc:
            if playground_runner is not None:
                await playground_runner.cleanup()
            await runner.cleanup()          # the services opened by setup close in order (a port in use, say)
            if isinstance(exc, socket.gaierror):        # a host name that does not resolve: say which setting it is
                raise ConfigError(f"WHISK_HOST: cannot listen on {settings.host!r}: {exc.strerror}") from None
            raise
    except asyncio.CancelledError:
        if not stop.is_set() or not starting:
            raise
        starting[0].uncancel()              # handled: what the start opened is closed below, awaited
        starting.clear()
        log.info("server.stopping", during="start", signal=received[0] if received else None)
        if playground_runner is not None:
            await playground_runner.cleanup()
        await runner.cleanup()
        log.info("server.stopped")
        return
    starting.clear()
    tune_garbage_collector()
    url = settings.own_url
    mode = isolation(settings)
    actions: dict[str, Any] = {} if mode is None else {"containers": settings.containers_url, "isolation": mode}
    if settings.runs_controller and settings.actions_port:
        actions["actions_port"] = settings.actions_port
    if playground_runner is not None:
        actions["playground"] = settings.playground_url
    # The versions first: what an operator compares with a release note or a bug report.
    log.info("server.started", version=__version__, python=platform.python_version(), role=settings.role, url=url,
             store=redact(settings.store_url), bus=redact(settings.bus_url), **actions)
    if playground_off:
        log.warning("playground.unavailable", port=settings.playground_port, reason=playground_off)
    # The banner for a person at a terminal; with json every line of the process is one JSON object (`docker logs`
    # and Kubernetes mix stdout into stderr, and a collector fails on plain text), and `server.started` says it all.
    if settings.log_format == "console":
        if settings.runs_controller and settings.bootstrap_users:
            from whisk.controller.subjects import GUEST_KEY, GUEST_UUID  # the well-known key, docs/openwhisk.md §1.2
            print(f"whisk is ready: API host {url}  auth {GUEST_UUID}:{GUEST_KEY}\n"
                  f"  wsk property set --apihost {url} --auth {GUEST_UUID}:{GUEST_KEY}", flush=True)
        if playground_off:
            print(f"  playground: off, port {settings.playground_port} unavailable: {playground_off} "
                  "(WHISK_PLAYGROUND_PORT)", flush=True)
        elif playground_runner is not None:
            print(f"  playground: {settings.playground_url}", flush=True)
    await stop.wait()
    log.info("server.stopping", signal=received[0] if received else None, grace_s=settings.shutdown_grace_s)
    # One grace for the whole stop: the controller's drain, the launcher's work, the requests still open and the
    # invoker's running activations each get what is left of it (they took a grace each, up to four in all).
    app[STOP_BY] = loop.time() + settings.shutdown_grace_s
    app[DRAINING].set()
    if settings.role == "controller":
        await _stop_accepting(runner)
    services = app.get(SERVICES)
    if services is not None:
        # Keep serving reads and in-flight callers; new activations get 503 until those in flight complete.
        await services.drain.wait(settings.shutdown_grace_s)
    # aiohttp waits this long for the requests still being handled (a setting of the runner, made at its start),
    # then cancels them; 0 would mean no limit to it. A private attribute: an aiohttp without it keeps the whole grace.
    if hasattr(runner, "_shutdown_timeout"):
        runner._shutdown_timeout = max(grace_left(app, settings.shutdown_grace_s), ANSWER_AT_STOP_S)
    await runner.cleanup()
    if playground_runner is not None:
        await playground_runner.cleanup()
    log.info("server.stopped")


async def _stop_accepting(runner: web.AppRunner) -> None:
    """A controller's first step of its stop, as OpenWhisk's controller unbinds first: stop listening and close the
    idle connections (each busy one after its answer), so that a proxy in front (nginx, which tries the next
    controller only when a connection fails) sends what comes next to another controller instead of to this one's
    503s for the whole drain. Its callers in flight keep their connections. Standalone keeps listening through its
    drain: it has no other controller, and its running actions may still read through its API."""
    # No await from here to the last idle connection closed: a client that finds the port closed finds no idle
    # connection left either. (BaseSite.stop only closes the listener.) A request already read is not idle: it is
    # answered, then its connection closed.
    for site in list(runner.sites):
        await site.stop()
    for connection in runner.server.connections if runner.server is not None else ():
        # aiohttp's own test of an idle connection (its keep-alive timer's): waiting for a request that has not come.
        # Its `close()` alone would end the waiting task and leave the socket open, unread, until the stop's end.
        waiter = getattr(connection, "_waiter", None)
        if waiter is not None and not waiter.done():
            connection.force_close()
        else:
            connection.close()    # once its answer is sent


def _connection_options(settings: Settings) -> dict[str, Any]:
    """What every server's connections share (aiohttp's RequestHandler arguments): no aiohttp access log (whisk
    writes its own), request lines up to REQUEST_LINE_LIMIT (a longer target than 8k is 414, api/errors.py; the
    limit apart from a header's tells the two apart, api/early_errors.py), and aiohttp's keep-alive timer, which
    also runs from a connection's start and closes it while no complete request head has come: idle, never used,
    or a head trickling in."""
    return {"access_log": None, "max_line_size": REQUEST_LINE_LIMIT, "keepalive_timeout": settings.http_idle_timeout_s}


async def _start_playground(settings: Settings, tls: ssl.SSLContext | None,
                            api: web.Application) -> tuple[web.AppRunner | None, str]:
    """The playground's server on its own port (api/playground.py says why), or why it could not listen. A port it
    cannot have leaves the playground off and the API serving: the page is a convenience, the API the platform.
    Only a playground that listens is redirected to from the API's `/playground`."""
    runner = web.AppRunner(playground.make_app(settings), handle_signals=False)
    await runner.setup()
    try:
        await early_errors.Site(runner, settings.host, settings.playground_port, ssl_context=tls,
                                **_connection_options(settings)).start()
    except OSError as exc:
        await runner.cleanup()
        return None, exc.strerror or str(exc)
    api[playground.SERVED].set()
    return runner, ""


# Collect the youngest generation once it has grown by this many objects (CPython's default: 700). docs/performance.md:
# at 32 invokes in flight, 700 collected ~7 times per 100 invokes, 6-9 % of the loop, with a full collection (13 ms
# pause) every ~2,000 invokes; at 20,000 a handful in 11,000 invokes.
YOUNG_GENERATION_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """Once started: freeze what startup made (modules, routes, settings; never garbage), so that a full collection
    no longer walks ~50,000 objects, and collect young objects less often. Invokes make little cyclic garbage; what
    the collector was mostly doing was walking the objects of the invokes in flight, which refcounting frees anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


def _watch_children_with_pidfds() -> None:
    """Reap container processes through pidfds in the event loop instead of one waiting thread per child (a pool
    of 100 containers would otherwise hold 100 threads). Python 3.12 and later do so by themselves where the
    kernel has pidfds (their default watcher, and from 3.14 the loop itself); only 3.11 needs the watcher set,
    through an API that 3.14 removed."""
    if sys.version_info >= (3, 12):
        return
    try:
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
    except (AttributeError, OSError, NotImplementedError) as exc:    # no pidfd_open: keep the default
        log.info("server.child_watcher.default", reason=str(exc))


@asynccontextmanager
async def open_store(url: str | None) -> AsyncIterator[Store]:
    """For `whisk admin`: the configured store (WHISK_STORE) or the given URL. A store this opening made is said:
    the command was most likely run with other settings than the server's."""
    if url is None:
        url = Settings.from_env().store_url
    if urlsplit(url).scheme == "memory":        # a server's memory:// store is its own process's: none to reach
        raise ConfigError("WHISK_STORE: memory:// is a server's own, lost at its exit: whisk admin cannot reach it "
                          "(give the server a sqlite:// or couchdb:// store)")
    async with store_from_url(url) as store:
        if getattr(store, "created", False):
            log.warning("admin.store.new", store=redact(url),
                        hint="no server has used this store yet: check WHISK_STORE, WHISK_DATA_DIR or --store")
        yield store
