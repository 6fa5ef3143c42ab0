"""The `process://` container backend: each container is the runtime's proxy running as a child process.

A container is `launcher.py` exec'ing the manifest's command in its own session, dying with the platform
(PR_SET_PDEATHSIG), serving HTTP on a unix socket in a private folder, its memory limited by a v1 memory cgroup
where the platform may create one, else by RLIMIT_DATA. By default the command runs in the sandbox of
`sandbox.py` (bwrap, a user of its own); unconfined only when the operator trusts all code (WHISK_TRUST_ALL_CODE).
One `ProxyClient` per container talks to it (keep-alive connections); stdout and stderr are read continuously into a
LogCollector. Pause is SIGSTOP and resume SIGCONT of its process group. What this backend can tell about a death:
"exited" whenever the proxy process ends during /init or /run; "oom_killed" when the cgroup counted an OOM kill, or
(without a cgroup) when the dead process's last stderr lines show a Python MemoryError or V8's out-of-memory abort.
A MemoryError the proxy catches and answers is the action's own error, not an OOM; a timeout is never one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
from typing import Any

import structlog

from whisk.containers import cpus
from whisk.containers.api_relay import ApiRelay, RelayConfigError, Upstream
from whisk.containers.base import ContainerError, ContainerGone, ContainerSpec, ImageError, Interaction
from whisk.containers.process.cgroups import MemoryCgroups
from whisk.containers.process.child import Child, spawn
from whisk.containers.process.logcollector import LogCollector
from whisk.containers.process.sandbox import (SYSTEM_DIRS, WORKDIR, Sandbox, check_hidden, find_sandbox,
                                              inside_root, interpreter_paths, pin_socket, prepare_masks, proxy_pid)
from whisk.containers.process.strays import kill_strays, process_start
from whisk.containers.proxy_client import Oversized, ProxyClient, Unreachable
from whisk.entities.document import now_ms
from whisk.entities.errors import Invalid
from whisk.entities.json_value import encode
from whisk.runtimes.environments import is_installed, missing_message

log = structlog.get_logger(__name__)

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
INIT_RETRY_S = 0.01                  # the proxy is not listening yet: try /init again this soon
EXIT_GRACE_S = 1.0                   # after a dropped connection, how long to wait for the process to end
OOM_MARKERS = (b"MemoryError", b"JavaScript heap out of memory", b"Fatal process out of memory",
               b"Fatal process OOM")
# Memory kept per stream (logcollector.LINE_COST a line beyond its bytes): the largest log limit (10 MB) in lines of
# 100 bytes fits; a flood of shorter lines is cut sooner rather than held at several times its size.
DEFAULT_LOG_CAP = 24 * 1_048_576


READY_TIMEOUT_S = 30.0


class ProcessContainer:
    def __init__(self, factory: ProcessContainerFactory, name: str, proc: Child,
                 folder: str, cgroup: str | None, collector: LogCollector, api: ApiRelay | None = None) -> None:
        self.id = name
        self.pid = proc.pid                  # the launcher's: the process group, bwrap's monitor when sandboxed
        self.proxy_pid = proc.pid            # the proxy's own (memory figures), once it listens
        self._factory = factory
        self._proc = proc
        self._folder = folder
        self._cgroup = cgroup
        self._collector = collector
        self._proxy: ProxyClient | None = None     # once the proxy listens (`connect`)
        self._pinned: int | None = None            # a sandbox's socket, as O_PATH (sandbox.pin_socket)
        self._api = api                            # a sandbox's way to the API host (api_relay.py)
        self._exit = asyncio.ensure_future(proc.wait())
        self._destroying: asyncio.Future[None] | None = None

    def tasks(self) -> list[int]:
        """Every thread of this container (blocking: call it through `asyncio.to_thread`)."""
        return cpus.tasks(self.pid, self._cgroup)

    def connect(self, client: ProxyClient, pinned: int | None) -> None:
        """The proxy listens: `client` reaches it; a sandbox's socket is reached through `pinned` from now on."""
        if pinned is not None:
            self.proxy_pid = proxy_pid(self.pid) or self.pid
            self._pinned = pinned
            client.socket_path = f"/proc/self/fd/{pinned}"
        self._proxy = client

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    @property
    def _client(self) -> ProxyClient:
        if self._proxy is None:            # the factory connects every container it hands out
            raise ContainerError(f"container {self.id} is not connected")
        return self._proxy

    # --- /init and /run ------------------------------------------------------------------------------------
    async def initialize(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        if self._api is not None:                   # the sandbox's own loopback, where the proxy serves the API host
            body = self._api.upstream.init_body(body)
        payload = encode({"value": body})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        start = now_ms()
        if not self.alive:                          # died while it waited (a prewarm): the action played no part
            raise ContainerGone(f"container {self.id} is gone (exit status {self._proc.returncode})")
        while True:
            if not self.alive:
                return await self._broken(start)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Interaction(start, now_ms(), timed_out=True)
            try:
                status, data = await self._client.post("/init", payload, remaining, max_bytes)
                return Interaction(start, now_ms(), status=status, body=data)
            except Oversized as exc:
                return Interaction(start, now_ms(), status=exc.status, body=exc.head, size=exc.size)
            except Unreachable:                            # not listening yet (no socket file, or refused)
                await asyncio.sleep(INIT_RETRY_S)
            except TimeoutError:
                return await self._timed_out(start)
            except OSError:                                # Broken, or another failure of the connection
                return await self._broken(start)

    async def run(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        if not self.alive:
            raise ContainerError(f"container {self.id} is gone (exit status {self._proc.returncode})")
        payload = encode(body)
        start = now_ms()
        try:
            status, data = await self._client.post("/run", payload, timeout_s, max_bytes)
            return Interaction(start, now_ms(), status=status, body=data)
        except Oversized as exc:
            return Interaction(start, now_ms(), status=exc.status, body=exc.head, size=exc.size)
        except Unreachable as exc:                         # never reached the action: it was gone before
            raise ContainerError(f"container {self.id} does not answer: {exc}") from exc
        except TimeoutError:
            return await self._timed_out(start)
        except OSError:                                    # Broken, or another failure of the connection
            return await self._broken(start)

    async def _timed_out(self, start: int) -> Interaction:
        # A timeout is a timeout, as in OpenWhisk (which looks for an OOM kill only when the connection broke): the
        # cgroup's count covers the container's whole life, so a child of an earlier activation killed there would
        # otherwise make every later timeout "exhausted its memory".
        return Interaction(start, now_ms(), timed_out=True)

    async def _broken(self, start: int) -> Interaction:
        """No (complete) reply: find out whether the process died, and whether of memory exhaustion."""
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), EXIT_GRACE_S)
        except TimeoutError:
            pass
        return Interaction(start, now_ms(), exited=not self.alive, oom_killed=await self._oom_killed())

    async def _oom_killed(self) -> bool:
        if self._cgroup is not None:
            return await asyncio.to_thread(MemoryCgroups.oom_kills, self._cgroup) > 0
        if self.alive:
            return False
        await self._collector.wait_closed(EXIT_GRACE_S)
        tail = b"\n".join(raw for _, raw in self._collector.streams["stderr"].current.lines[-20:])
        return any(marker in tail for marker in OOM_MARKERS)

    # --- pause, logs, destroy ------------------------------------------------------------------------------
    async def suspend(self) -> None:
        await self._signal(signal.SIGSTOP)

    async def resume(self) -> None:
        if not self.alive:
            raise ContainerError(f"container {self.id} is gone (exit status {self._proc.returncode})")
        await self._signal(signal.SIGCONT)

    async def _signal(self, signum: int) -> None:
        """To its process group, and with a cgroup to every process in it: an action's processes that left the
        group (a new session) are paused too, as docker's freezer pauses all of a container."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError as exc:
            raise ContainerError(f"container {self.id} is gone") from exc
        if self._cgroup is not None:
            await asyncio.to_thread(MemoryCgroups.signal_all, self._cgroup, signum)

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool, grace_s: float = 0.0,
                   alone: bool = False) -> list[str]:
        # The proxy wrote its sentinels before its answer: read them now, so that a sentinel the action printed
        # itself, read already, cannot end its logs before them.
        self._proc.drain()
        if wait_for_sentinel:
            return await self._collector.take(limit_bytes, True, alone=alone)
        # Output written before the reply (or before dying) may still be in the pipes.
        if not self.alive and grace_s > 0:
            await self._collector.wait_closed(EXIT_GRACE_S)
            return await self._collector.take(limit_bytes, False, alone=alone)
        return await self._collector.take(limit_bytes, False, grace_s=grace_s, alone=alone)

    async def destroy(self) -> None:
        if self._destroying is None:
            self._destroying = asyncio.ensure_future(self._destroy())
        await asyncio.shield(self._destroying)

    async def _destroy(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            await self._exit
            self._proc.reap()                            # signalled for the last time: its pid may go
            await self._collector.wait_closed(EXIT_GRACE_S)
            self._proc.close_output()                    # a process it started may keep the pipes open
            if self._proxy is not None:
                await self._proxy.close()
            if self._pinned is not None:
                os.close(self._pinned)
                self._pinned = None
            if self._api is not None:
                await self._api.close()
            await asyncio.to_thread(self._remove_files)
        finally:
            self._factory._forget(self)

    def _remove_files(self) -> None:
        if self._cgroup is not None:
            MemoryCgroups.remove(self._cgroup)
        shutil.rmtree(self._folder, ignore_errors=True)


class ProcessContainerFactory:
    """Makes ProcessContainers for the runtimes of a manifest (`whisk.runtimes.manifest.Manifest`)."""

    def __init__(self, manifest: Any, *, invoker_instance: int = 0, use_cgroups: bool | None = None,
                 log_cap_bytes: int = DEFAULT_LOG_CAP, root_dir: str | None = None, sandbox: bool = True,
                 tmp_mb: int = 512, hidden: tuple[str, ...] = (), api_host: str | None = None,
                 api_cafile: str | None = None) -> None:
        """`sandbox=False` runs proxies unconfined (all code trusted); `tmp_mb` bounds a sandbox's /tmp; `hidden`
        are the platform's private folders (its data) that no sandbox's read-only path may contain. A sandbox has
        no network but its own loopback: `api_host` is relayed to it there (none given: it has no API host);
        `api_cafile` is trusted for it besides the system's certificates."""
        self._manifest = manifest
        self._instance = invoker_instance
        self._want_cgroups = use_cgroups
        self._log_cap = log_cap_bytes
        self._parent_dir = root_dir or tempfile.gettempdir()
        self._root: str | None = None
        self._cgroups: MemoryCgroups | None = None
        self._opening: asyncio.Future[None] | None = None
        self._live: set[ProcessContainer] = set()
        self._counter = itertools.count(1)
        self._masks: str | None = None          # the stand-ins for the /proc entries a sandbox does not see
        self._missing: dict[str, str] = {}      # kind -> what to run: its action environment is not installed
        self._want_sandbox = sandbox
        self._tmp_mb = tmp_mb
        self._hidden = hidden
        self._sandbox: Sandbox | None = None
        self._read_only: dict[str, list[str]] = {}          # per kind: checked once
        self._api_host, self._api_cafile = api_host, api_cafile
        self._upstream: Upstream | None = None
        self._cpus = cpus.allowed()             # where containers may run (`confine`)

    async def __aenter__(self) -> ProcessContainerFactory:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def describe(self) -> str:
        limit = "a v1 memory cgroup" if self._cgroups else "RLIMIT_DATA"
        if self._sandbox is None:
            return f"action proxies run as child processes, unconfined (all code trusted); memory limited by {limit}"
        return (f"action proxies run as child processes in a bwrap sandbox, each as a user of its own; memory "
                f"limited by {limit}, /tmp by {self._tmp_mb} MB")

    @property
    def sandboxed(self) -> bool:
        return self._sandbox is not None

    @property
    def uses_cgroups(self) -> bool:
        return self._cgroups is not None

    async def _open(self) -> None:
        if self._opening is None:
            self._opening = asyncio.ensure_future(asyncio.to_thread(self._open_blocking))
        await asyncio.shield(self._opening)

    def _open_blocking(self) -> None:
        # No fallback to whisk's own interpreter and packages: say at start what is missing and what to run.
        for runtime in self._manifest.runtimes():
            if runtime.environment is not None and not is_installed(runtime.environment):
                self._missing[runtime.kind] = missing_message(runtime)
                log.error("containers.process.environment_missing", kind=runtime.kind,
                          message=self._missing[runtime.kind])
        if self._want_sandbox:
            self._sandbox = find_sandbox(self._tmp_mb)          # SandboxUnavailable: refuse to run untrusted code
            if self._api_host:
                try:
                    self._upstream = Upstream.from_url(self._api_host, self._api_cafile)
                except (RelayConfigError, OSError, ssl.SSLError) as exc:
                    raise ContainerError(f"cannot relay the API host to the sandboxes: {exc}") from exc
        self._root = tempfile.mkdtemp(prefix=f"whisk-proc{self._instance}-", dir=self._parent_dir)
        with open(os.path.join(self._root, "owner"), "w") as f:
            f.write(f"{os.getpid()} {process_start(os.getpid())}")
        if self._sandbox is not None:
            self._masks = prepare_masks(os.path.join(self._root, "masks"))
        if self._want_cgroups is not False:
            cgroups = MemoryCgroups(self._instance)
            if cgroups.open():
                self._cgroups = cgroups
            elif self._want_cgroups:
                raise ContainerError("memory cgroups were asked for but cannot be created here")

    async def create(self, spec: ContainerSpec) -> ProcessContainer:
        await self._open()
        try:
            runtime = self._manifest.resolve(spec.kind)
        except Invalid as exc:
            raise ImageError(f"Failed to pull container image '{spec.image or spec.kind}'.") from exc
        if not runtime.command:              # blackbox images need a container engine
            log.warning("containers.process.no_command", kind=spec.kind, image=spec.image)
            raise ImageError(f"Failed to pull container image '{spec.image}'.")
        if runtime.kind in self._missing:       # installed since the start? then no restart is needed
            if not await asyncio.to_thread(is_installed, runtime.environment):
                raise ImageError(self._missing[runtime.kind])
            del self._missing[runtime.kind]
        executable = shutil.which(runtime.command[0])
        if executable is None:
            raise ContainerError(f"{runtime.command[0]}: not found, cannot start a {spec.kind} container")
        read_only = self._read_only.get(runtime.kind)
        if self._sandbox is not None and read_only is None:
            read_only = await asyncio.to_thread(self._read_only_of, runtime, executable)
        read_only = read_only or []
        n = next(self._counter)
        assert self._root is not None                 # made by _open
        # Named at random, not by `n`: an action sees its folder (its socket's path, its sandbox's command line),
        # and a count would tell it how many containers every tenant has started.
        folder = os.path.join(self._root, secrets.token_hex(8))
        socket_path = os.path.join(folder, "proxy.sock")
        memory_bytes = spec.memory_mb * 1_048_576
        cgroup = None
        if self._cgroups is not None:
            try:
                cgroup = await asyncio.to_thread(self._cgroups.create, f"{n}-{spec.name}"[:200], memory_bytes)
            except OSError as exc:
                raise ContainerError(f"cannot create the memory cgroup of {spec.name}: {exc}") from exc
        env = {"PATH": CHILD_PATH, "LANG": "C.UTF-8", "WHISK_PROXY_SOCKET": socket_path,
               "__OW_ALLOW_CONCURRENT": "true"} | dict(runtime.env) | spec.env
        command = [executable, *runtime.command[1:]]
        mask = self._cpus
        filter_fd = None
        api = None
        if self._sandbox is None:
            argv = [sys.executable, "-I", "-S", LAUNCHER, str(os.getpid()), folder, cgroup or "-", str(memory_bytes),
                    "-", cpus.text(mask), "--", *command]
        else:
            if self._upstream is not None:      # its network namespace has only its loopback: the API host relayed
                api = ApiRelay(self._upstream, f"{folder}-api", None, spec.name, self._instance)
                env |= self._upstream.container_env()
            filter_fd = self._sandbox.filter_fd()
            argv = [sys.executable, "-I", "-S", LAUNCHER, str(os.getpid()), WORKDIR, cgroup or "-",
                    str(memory_bytes), self._sandbox.launcher_arg(), cpus.text(mask), "--",
                    *self._sandbox.wrap(read_only, folder, filter_fd, api.folder if api else None, self._masks),
                    *command]
        try:
            if api is not None:
                await api.start()               # before the sandbox: its bind mount needs the folder
            collector = LogCollector(self._log_cap)
            proc = await spawn(argv, env, collector, () if filter_fd is None else (filter_fd,))
        except OSError as exc:
            if cgroup is not None:
                await asyncio.to_thread(MemoryCgroups.remove, cgroup)
            if api is not None:
                await api.close()
            raise ContainerError(f"cannot start {spec.name}: {exc}") from exc
        finally:
            if filter_fd is not None:
                os.close(filter_fd)
        container = ProcessContainer(self, spec.name, proc, folder, cgroup, collector, api)
        self._live.add(container)
        if mask != self._cpus:                  # confined anew while it started, after `confine` took its list
            await asyncio.to_thread(lambda: cpus.pin(container.tasks(), self._cpus))
        await self._listening(container, socket_path)
        return container

    async def _listening(self, container: ProcessContainer, socket_path: str) -> None:
        """Return once the proxy answers HTTP, so that a prewarmed container is ready for /init at once (a cold start
        waits the same time either way). The check is a request the proxies answer 404 (`POST /`): a runtime's
        first request costs it 1 ms (Python) to 3.5 ms (Node.js) more than the next, which the caller's /init
        would otherwise pay; its connection is kept for the /init. A proxy that dies or stays silent is destroyed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while container.alive:
            # A sandbox's socket is on its own tmpfs: reached through the proxy's root, once the proxy runs.
            path = socket_path if self._sandbox is None else inside_root(container.pid, socket_path)
            if path is not None:
                client = ProxyClient(path)
                try:
                    await client.post("/", b"{}", max(0.001, deadline - loop.time()))
                    pinned = None
                    if self._sandbox is not None:
                        pinned = pin_socket(path)
                        if pinned is None:
                            await client.close()
                            break
                    container.connect(client, pinned)
                    return
                except Unreachable:
                    pass                          # not listening yet
                except (TimeoutError, OSError):   # it accepted but did not answer
                    await client.close()
                    break
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.002)
        await container.destroy()
        raise ContainerError(f"the {container.id} proxy did not start listening")

    def _read_only_of(self, runtime: Any, executable: str) -> list[str]:
        """The host folders a kind's sandbox shows read-only: the manifest's and its interpreter's prefix."""
        paths = [*runtime.read_only_paths, *interpreter_paths(executable)]
        for path in paths:
            if not os.path.isdir(path):
                raise ContainerError(f"{path}: not found, cannot start a {runtime.kind} container in the sandbox")
        check_hidden([*SYSTEM_DIRS, *paths], (*self._hidden, self._parent_dir))
        self._read_only[runtime.kind] = paths
        return paths

    async def confine(self, allowed: frozenset[int]) -> None:
        """Let every container, running or to come, run on the CPUs `allowed` only."""
        self._cpus = allowed
        live = list(self._live)

        def pin_all() -> None:
            for container in live:
                cpus.pin(container.tasks(), allowed)
        await asyncio.to_thread(pin_all)

    def _forget(self, container: ProcessContainer) -> None:
        self._live.discard(container)

    @property
    def containers(self) -> list[ProcessContainer]:
        """The containers not yet destroyed."""
        return list(self._live)

    @property
    def pids(self) -> list[int]:
        """The proxy processes of the containers not yet destroyed."""
        return [c.pid for c in self._live]

    @property
    def root(self) -> str | None:
        """The folder holding the containers' folders and sockets (made on first use)."""
        return self._root

    async def cleanup(self) -> None:
        """Remove what an earlier platform of this invoker left behind: its folders, its memory cgroups, and any
        process its actions started that outlived it (its proxies themselves died with it)."""
        await self._open()
        await asyncio.to_thread(self._cleanup_blocking)

    def _cleanup_blocking(self) -> None:
        prefix = f"whisk-proc{self._instance}-"
        for name in os.listdir(self._parent_dir):
            path = os.path.join(self._parent_dir, name)
            if not name.startswith(prefix) or path == self._root:
                continue
            try:
                with open(os.path.join(path, "owner")) as f:
                    pid, _, started = f.read().strip().partition(" ")
                owner = int(pid)
            except (OSError, ValueError):
                continue
            # Its owner still running: the same pid and start (a pid is reused: a server restarted in a container
            # gets its predecessor's, and its folder, with the files of unconfined actions, was then kept for
            # good). A folder of an older whisk says only the pid.
            alive = process_start(owner)
            if alive is not None and (alive == started if started else owner != os.getpid()):
                continue
            killed = kill_strays(path)
            if killed:
                log.warning("containers.process.strays_killed", root=path, pids=killed)
            shutil.rmtree(path, ignore_errors=True)
        if self._cgroups is not None:
            self._cgroups.cleanup()

    async def close(self) -> None:
        await asyncio.gather(*(c.destroy() for c in list(self._live)), return_exceptions=True)
        if self._opening is not None and self._opening.done() and self._root is not None:
            await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        if self._cgroups is not None:
            self._cgroups.close()
        if self._root is not None:
            kill_strays(self._root)
            shutil.rmtree(self._root, ignore_errors=True)
