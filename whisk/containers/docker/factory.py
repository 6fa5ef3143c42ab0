"""The `docker://` container backend: each action container is a Docker container, driven through aiodocker.

`docker://` talks to DOCKER_HOST (else the default socket), `docker:///path/docker.sock` to that socket,
`docker://host:port` over TCP. Containers get OpenWhisk's flags (docs/openwhisk.md §4): a name carrying the invoker,
the label `whisk.invoker=<instance>`, memory with swap equal to it, cpu shares in proportion to memory, an init
process (a Python server as PID 1 ignores SIGTERM), json-file logs; and whisk's hardening (security.py): a
user of its own, no capabilities, no new privileges, a read-only root with a bounded tmpfs at /tmp, pids, nofile
and fsize limits, bounded json-file logs.

How the invoker reaches the proxy in a container (`network`, from WHISK_DOCKER_NETWORK), always on this host:
  unix    `--network none`; the proxy listens on a unix socket in a per-container folder bind-mounted at
          /run/whisk (WHISK_PROXY_SOCKET). No TCP at all. The default here.
  host    host networking, so that actions reach the API host on loopback; the proxy still listens on a unix
          socket in its own bind-mounted folder, not on a port, so that no other container (all share the host's
          loopback) can reach it.
  bridge  OpenWhisk's: the container's own address, port 8080. For production; never used by the tests here.
Only the runtime images labelled `whisk.proxy-env` (ours) are told where to listen. Any other image (a blackbox
image, even one built FROM ours, or an official OpenWhisk runtime) listens on 8080 in its own network namespace:
in unix and host modes it runs with `--network none` beside a relay container that shares that namespace and
forwards the unix socket in the folder to 127.0.0.1:8080 there (config/runtimes/relay/relay.py).
A container with `--network none` reaches the API host through a socket of its own that the invoker relays
(api_relay.py), mounted read-only at /run/whisk-api; the proxy, or the relay container, serves it on the
container's loopback as __OW_API_HOST=http://127.0.0.1:3233.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import shutil
import ssl
import tempfile
from typing import Any
from urllib.parse import urlsplit

import aiodocker
import aiohttp

from whisk.containers import cpus
from whisk.containers.base import ContainerError, ContainerSpec, ImageError
from whisk.containers.api_relay import MOUNT as API_MOUNT
from whisk.containers.api_relay import ApiRelay, RelayConfigError, Upstream
from whisk.containers.docker.container import DockerContainer, Endpoint
from whisk.containers.docker.security import action_uid, hardening, open_folder, user

NETWORKS = ("unix", "host", "bridge")
INVOKER_LABEL = "whisk.invoker"
RUN_DIR_LABEL = "whisk.run-dir"
API_DIR_LABEL = "whisk.api-dir"
PROXY_ENV_LABEL = "whisk.proxy-env"          # set by config/runtimes/*/Dockerfile
RELAY_IMAGE = "whisk/relay:latest"
MOUNT = "/run/whisk"                         # the per-container folder, inside the container
SOCKET = "proxy.sock"
PROXY_PORT = 8080
# Docker's timeouts (docs/openwhisk.md §7.1): run and rm 1 min, pull 10 min.
CREATE_TIMEOUT_S, REMOVE_TIMEOUT_S, PULL_TIMEOUT_S = 60.0, 60.0, 600.0
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
_UNIX_PATH_MAX = 107
# json-file logs on the daemon's disk, bounded per container (an action printing without end would fill it): two
# files of 16 MB, read back across the rotation, against activation logs of at most WHISK_LIMIT_MAX_ACTION_LOGS.
# They are read after the activation: one that writes more than they hold (about 32 MB with docker's ~70 bytes of
# JSON a line) loses its first lines before they are read (logs.py says so where it can tell).
LOGS = {"Type": "json-file", "Config": {"max-size": "16m", "max-file": "2"}}
TMP_MB = 512                                 # the default size of each container's /tmp (WHISK_DOCKER_TMP_MB)
RELAY_TMP_MB = 1


def docker_host(containers_url: str) -> str | None:
    """`docker://` -> None (aiodocker then uses DOCKER_HOST or the default socket), `docker:///p` -> unix:///p,
    `docker://host:port` -> tcp://host:port."""
    parts = urlsplit(containers_url)
    if parts.scheme != "docker":
        raise ValueError(f"not a docker:// URL: {containers_url!r}")
    if parts.netloc:
        return f"tcp://{parts.netloc}"
    if parts.path not in ("", "/"):
        return f"unix://{parts.path}"
    return None


def container_name(name: str) -> str:
    """Docker accepts [a-zA-Z0-9][a-zA-Z0-9_.-]*; OpenWhisk drops the other characters of namespace and action."""
    cleaned = _NAME_CHARS.sub("", name)[:200]
    return cleaned if cleaned[:1].isalnum() else f"wsk{cleaned}"


def cpu_shares(memory_mb: int, user_memory_mb: int) -> int:
    """OpenWhisk's share of 1024 in proportion to the container's part of the pool's memory, at least 2."""
    return max(2, 1024 * memory_mb // max(user_memory_mb, 1))


class DockerContainerFactory:
    """Makes action containers on one Docker daemon for one invoker; an async context manager."""

    def __init__(self, url: str = "docker://", *, invoker_instance: int = 0, network: str = "unix",
                 user_memory_mb: int = 2048, run_dir: str | None = None, relay_image: str = RELAY_IMAGE,
                 docker_url: str | None = None, tmp_mb: int = TMP_MB, api_host: str | None = None,
                 api_cafile: str | None = None, api_proxy_protocol: bool = False) -> None:
        """`url` is WHISK_CONTAINERS; `docker_url` (unix:///p, tcp://h:p), when given, names the daemon instead.
        `api_host` is relayed to containers without a network (none given: they have no API host); `api_cafile`
        is trusted for it besides the system's certificates; `api_proxy_protocol` begins each relayed connection
        with a line naming the container (for a controller's actions port, api/actions_port.py)."""
        if network not in NETWORKS:
            raise ValueError(f"docker network mode {network!r} is not one of {', '.join(NETWORKS)}")
        self.url = url
        self.invoker = invoker = invoker_instance
        self.network = network
        self.user_memory_mb = user_memory_mb
        self.relay_image = relay_image
        self.tmp_mb = tmp_mb
        self.api_host, self._api_cafile, self.api_proxy_protocol = api_host, api_cafile, api_proxy_protocol
        self._upstream: Upstream | None = None
        self._serial = itertools.count()                     # picks each container's user (action_uid)
        self._uids: set[int] = set()                         # the users of live containers: never given twice
        default_dir = os.path.join(tempfile.gettempdir(), _run_dir_name(invoker))
        # A unix socket path holds at most 107 bytes: <run_dir>/<8 hex>-api/api.sock, the longer one, must fit.
        too_long = run_dir is not None and len(run_dir) + 1 + len(_api_folder("x" * 8)) + 1 + 8 > _UNIX_PATH_MAX
        self.run_dir = default_dir if run_dir is None or too_long else run_dir
        self._host = docker_url or docker_host(url)
        self._docker: aiodocker.Docker | None = None
        self._version: dict = {}
        self._images: dict[str, dict] = {}                 # image -> its Config, once seen on the daemon
        self._containers: set[DockerContainer] = set()
        self._unremoved: set[str] = set()        # ids whose removal failed (the daemon away): retried
        self._cpuset: str | None = None          # CpusetCpus for new containers once `confine` was called

    async def __aenter__(self) -> DockerContainerFactory:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and ask the daemon for its version (ContainerError when it does not answer)."""
        docker = self._client()
        try:
            async with asyncio.timeout(10):
                self._version = await docker.version()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ContainerError(f"docker: the daemon at {self.daemon} does not answer: {exc}") from exc
        if self.api_host and self._upstream is None and self.network != "bridge":
            try:
                self._upstream = await asyncio.to_thread(Upstream.from_url, self.api_host, self._api_cafile,
                                                         self.api_proxy_protocol)
            except (RelayConfigError, OSError, ssl.SSLError) as exc:
                raise ContainerError(f"docker: cannot relay the API host to the containers: {exc}") from exc

    @property
    def daemon(self) -> str:
        return self._host or os.environ.get("DOCKER_HOST") or "the default socket"   # for messages only

    def describe(self) -> str:
        """One line for the start-up log: which backend, where, and why this networking."""
        version = (f"Docker {self._version.get('Version', '?')}, API {self._version.get('ApiVersion', '?')}"
                   if self._version else "daemon not contacted yet")
        api = (f"; containers without a network reach the API host {self.api_host} through a socket the invoker "
               "relays" if self._upstream else "")
        why = {"unix": "no network in the container; the proxy listens on a unix socket in a bind-mounted folder",
               "host": "host networking for the actions; each proxy listens on a unix socket in its own folder",
               "bridge": "OpenWhisk's bridge networking; the invoker calls each container's address on port 8080"}
        return (f"containers: docker ({self.url} -> {self.daemon}, {version}); every action runs in a Docker "
                f"container because WHISK_CONTAINERS is docker://; networking {self.network} "
                f"(WHISK_DOCKER_NETWORK): {why[self.network]}{api}")

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._host)
        return self._docker

    async def create(self, spec: ContainerSpec) -> DockerContainer:
        docker = self._client()
        if self._unremoved:
            await self._remove_left(docker)
        image = await self._image_config(spec)
        labels = image.get("Labels") or {}
        # The label is the image author's word: a blackbox image is the tenant's, and its own entrypoint would run
        # while its socket folder is still writable (a descriptor opened there outlives the lock and writes to the
        # invoker's disk). Only the manifest's images are given the folder; a tenant's runs behind the relay.
        direct = self.network == "bridge" or (labels.get(PROXY_ENV_LABEL) == "1" and spec.kind != "blackbox")
        name = container_name(spec.name)
        token = secrets.token_hex(4)
        needs_folder = self.network != "bridge"
        folder = os.path.join(self.run_dir, token) if needs_folder else None
        # As OpenWhisk's deployments set it (and process:// does): the Node.js proxy runs several /run at once only
        # with it, and answered the second of an action with concurrency above 1 "System not ready".
        env = {"__OW_ALLOW_CONCURRENT": "true"} | dict(spec.env)
        uid = self._new_uid()
        host_config: dict = {
            "Init": True,
            "Memory": spec.memory_mb << 20, "MemorySwap": spec.memory_mb << 20,
            "CpuShares": cpu_shares(spec.memory_mb, self.user_memory_mb),
            "LogConfig": LOGS,
        } | hardening(self.tmp_mb) | ({"CpusetCpus": self._cpuset} if self._cpuset else {})
        endpoint: Endpoint
        if self.network == "bridge":
            host_config["NetworkMode"] = "bridge"
            endpoint = Endpoint(host="", port=PROXY_PORT)           # the address is known once started
        else:
            host_config["NetworkMode"] = "host" if self.network == "host" and direct else "none"
            assert folder is not None
            if direct:             # behind a relay the image listens on 8080 and needs no folder: the relay has it
                host_config["Binds"] = [f"{folder}:{MOUNT}"]
                env["WHISK_PROXY_SOCKET"] = f"{MOUNT}/{SOCKET}"
            endpoint = Endpoint(socket=os.path.join(folder, SOCKET))
        api = None                 # no network: the API host through a socket the invoker relays (api_relay.py)
        if host_config["NetworkMode"] == "none" and self._upstream is not None and folder is not None:
            api = ApiRelay(self._upstream, _api_folder(folder), uid, name, self.invoker)
            host_config["Binds"] = host_config.get("Binds", []) + [f"{api.folder}:{API_MOUNT}:ro"]
            env |= self._upstream.container_env()
        # An image's VOLUME would be an anonymous volume on the daemon's disk: writable past /tmp's size and the
        # memory limit, and kept after the container. A tmpfs as /tmp's goes there instead (its pages are memory),
        # but where a folder of ours is bound (Docker refuses two mounts at one place).
        bound = {os.path.normpath(bind.split(":")[1]) for bind in host_config.get("Binds", [])}
        host_config["Tmpfs"] = {path: host_config["Tmpfs"]["/tmp"] for path in image.get("Volumes") or {}
                                if os.path.normpath(path) not in bound} | host_config["Tmpfs"]
        if folder is not None:
            await asyncio.to_thread(open_folder, folder, uid)
        # Both folder labels always, empty when there is no such folder: a container carries its image's labels
        # where it is given none of the name, and a tenant's image would name what `cleanup` removes.
        own = {INVOKER_LABEL: str(self.invoker), RUN_DIR_LABEL: folder or "", API_DIR_LABEL: api.folder if api else ""}
        config = {"Image": spec.image, "Env": [f"{k}={v}" for k, v in env.items()], "User": user(uid),
                  "Labels": dict(spec.labels) | own, "HostConfig": host_config}
        try:
            if api is not None:
                await api.start()      # before the container: its bind mount needs the folder
            container = await self._create_and_start(docker, config, name, spec)
            relay = None
            if not direct:
                relay = await self._start_relay(docker, container.id, name, folder or "", own, uid, api)
            if self.network == "bridge":
                endpoint = Endpoint(host=await _bridge_address(container), port=PROXY_PORT)
        except BaseException:
            self._uids.discard(uid)
            if api is not None:
                await api.close()
            if folder is not None:
                await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        made = DockerContainer(docker, container, name, endpoint, folder, relay, self._forget, api, uid,
                               self._unremoved.add)
        self._containers.add(made)
        if self._cpuset is not None and self._cpuset != host_config.get("CpusetCpus"):   # confined while it started
            await made.confine(self._cpuset)
        return made

    def _new_uid(self) -> int:
        # The counter wraps after 65,536 containers (days of cold starts): skip a user a container still has.
        while (uid := action_uid(self.invoker, next(self._serial))) in self._uids:
            pass
        self._uids.add(uid)
        return uid

    async def _remove_left(self, docker: aiodocker.Docker) -> None:
        # Containers the pool destroyed while the daemon was away (a restart) would stay on it, stopped, with their
        # logs, until the invoker's next start: removed once it answers again.
        left = list(self._unremoved)
        done = await asyncio.gather(*(_force_remove(docker.containers.container(i)) for i in left),
                                    return_exceptions=True)
        self._unremoved.difference_update(i for i, outcome in zip(left, done) if outcome is None)

    def _forget(self, container: DockerContainer) -> None:
        self._containers.discard(container)
        self._uids.discard(container.uid)

    async def confine(self, allowed: frozenset[int]) -> None:
        """Let every container, running or to come, run on the CPUs `allowed` only; a daemon reached over TCP (whose
        CPUs may not be the invoker's) is left alone."""
        if self._host is not None and not self._host.startswith("unix://"):
            return
        self._cpuset = cpus.text(allowed)
        await asyncio.gather(*(c.confine(self._cpuset) for c in list(self._containers)))

    async def _image_config(self, spec: ContainerSpec) -> dict:
        """The image's Config (labels, volumes); a missing blackbox image is pulled, a missing runtime image is a
        platform fault."""
        if spec.image in self._images:
            return self._images[spec.image]
        docker = self._client()
        try:
            info = await docker.images.inspect(spec.image)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise ContainerError(f"docker: cannot inspect image {spec.image!r}: {exc.message}") from exc
            if spec.kind != "blackbox":
                raise ContainerError(f"docker: the runtime image {spec.image!r} is not on the daemon at "
                                     f"{self.daemon}; build it with `make images`") from exc
            info = await self._pull(spec.image)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ContainerError(f"docker: cannot inspect image {spec.image!r}: {exc!r}") from exc
        config = info.get("Config") or {}
        self._images[spec.image] = config
        return config

    async def _pull(self, image: str) -> dict:
        # With no registry here a local image is used as it is, and only an absent one is pulled (OpenWhisk
        # pulls every blackbox image tagged latest before each start).
        docker = self._client()
        try:
            async with asyncio.timeout(PULL_TIMEOUT_S):
                await docker.images.pull(image)
            return await docker.images.inspect(image)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise ImageError(f"Failed to pull container image '{image}'.") from exc

    async def _create_and_start(self, docker: aiodocker.Docker, config: dict, name: str,
                                spec: ContainerSpec) -> aiodocker.containers.DockerContainer:
        try:
            async with asyncio.timeout(CREATE_TIMEOUT_S):
                try:
                    container = await docker.containers.create(config, name=name)
                except aiodocker.DockerError as exc:
                    if exc.status != 409 or not await self._remove_stale(docker, name):
                        raise
                    container = await docker.containers.create(config, name=name)
                try:
                    await container.start()
                except BaseException:
                    await _force_remove(container)
                    raise
                return container
        except aiodocker.DockerError as exc:
            if exc.status == 404 and spec.kind == "blackbox":
                self._images.pop(spec.image, None)
                raise ImageError(f"Failed to pull container image '{spec.image}'.") from exc
            raise ContainerError(f"docker: cannot start a container of {spec.image!r}: {exc.message}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ContainerError(f"docker: cannot start a container of {spec.image!r}: {exc!r}") from exc

    async def _remove_stale(self, docker: aiodocker.Docker, name: str) -> bool:
        """A container of this invoker left with the same name (a restart reuses counters): remove it."""
        try:
            old = await docker.containers.get(name)
        except aiodocker.DockerError:
            return False
        if (old["Config"].get("Labels") or {}).get(INVOKER_LABEL) != str(self.invoker):
            return False
        await _force_remove(old)
        return True

    async def _start_relay(self, docker: aiodocker.Docker, target: str, name: str, folder: str,
                           labels: dict[str, str], uid: int,
                           api: ApiRelay | None) -> aiodocker.containers.DockerContainer:
        # The relay shares the action's network namespace, and runs as the action's user: it gives it nothing new.
        # With an API socket it also serves it on that namespace's loopback, as our proxies do.
        env = {"WHISK_RELAY_SOCKET": f"{MOUNT}/{SOCKET}", "WHISK_RELAY_PORT": str(PROXY_PORT)}
        binds = [f"{folder}:{MOUNT}"]
        if api is not None:
            env |= api.upstream.container_env()
            binds.append(f"{api.folder}:{API_MOUNT}:ro")
        config: dict[str, Any] = {"Image": self.relay_image, "Env": [f"{k}={v}" for k, v in env.items()],
                  "Labels": labels | {"whisk.relay-for": name}, "User": user(uid),
                  "HostConfig": hardening(RELAY_TMP_MB) | {
                      "NetworkMode": f"container:{target}", "Binds": binds, "Init": True,
                      "Memory": 64 << 20, "MemorySwap": 64 << 20, "CpuShares": 64, "PidsLimit": 64,
                      "LogConfig": LOGS} | ({"CpusetCpus": self._cpuset} if self._cpuset else {})}
        try:
            async with asyncio.timeout(CREATE_TIMEOUT_S):
                relay = await docker.containers.create(config, name=f"{name}_relay")
                try:
                    await relay.start()
                except BaseException:
                    await _force_remove(relay)
                    raise
                return relay
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            await _force_remove(docker.containers.container(target))
            hint = " (build it with `make images`)" if getattr(exc, "status", 0) == 404 else ""
            raise ContainerError(f"docker: cannot start the relay {self.relay_image!r}{hint}: {exc}") from exc

    async def cleanup(self) -> None:
        """Remove every container labelled with this invoker's instance, running or not, and their folders.

        Called at start, it also checks that the daemon answers (so describe() can name its version)."""
        if not self._version:
            await self.start()
        docker = self._client()
        try:
            found = await docker.containers.list(
                all=True, filters={"label": [f"{INVOKER_LABEL}={self.invoker}"]})
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ContainerError(f"docker: cannot list containers at {self.daemon}: {exc}") from exc
        folders = [c["Labels"].get(label) for c in found if c["Labels"] for label in (RUN_DIR_LABEL, API_DIR_LABEL)]
        await asyncio.gather(*(_force_remove(c) for c in found))
        for folder in filter(None, folders):
            # Only a folder of the kind this invoker makes: a container made by an older whisk may carry a label its
            # image gave it, naming any folder at all.
            if self._made_here(folder):
                await asyncio.to_thread(shutil.rmtree, folder, True)

    def _made_here(self, folder: str) -> bool:
        """A container folder of this invoker's run folder, or of its instance's under another TMPDIR."""
        folder = os.path.normpath(folder)
        parent = os.path.dirname(folder)
        named = re.fullmatch(r"[0-9a-f]{8}(-api)?", os.path.basename(folder)) is not None
        return named and os.path.isabs(folder) and (parent == os.path.normpath(self.run_dir)
                                                     or os.path.basename(parent) == _run_dir_name(self.invoker))

    async def close(self) -> None:
        """Destroy every container this factory made, then let go of the daemon."""
        await asyncio.gather(*(c.destroy() for c in list(self._containers)), return_exceptions=True)
        if self._unremoved and self._docker is not None:
            await self._remove_left(self._docker)
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()
        await asyncio.to_thread(_remove_if_empty, self.run_dir)


def _run_dir_name(invoker: int) -> str:
    return f"whisk-docker-{invoker}"


def _api_folder(folder: str) -> str:
    """The API socket's folder beside the container's own: never writable by the container."""
    return f"{folder}-api"


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass            # absent, or another platform of this instance still has containers there


async def _force_remove(container: aiodocker.containers.DockerContainer) -> None:
    try:
        async with asyncio.timeout(REMOVE_TIMEOUT_S):
            await container.delete(force=True, v=True)
    except aiodocker.DockerError as exc:
        if exc.status not in (404, 409):       # gone already, or its removal is under way
            raise ContainerError(f"docker: cannot remove container {container.id[:12]}: {exc.message}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ContainerError(f"docker: cannot remove container {container.id[:12]}: {exc!r}") from exc


async def _bridge_address(container: aiodocker.containers.DockerContainer) -> str:
    info = await container.show()
    settings = info.get("NetworkSettings") or {}
    address = settings.get("IPAddress") or next(
        (n.get("IPAddress") for n in (settings.get("Networks") or {}).values() if n.get("IPAddress")), "")
    if not address:
        await _force_remove(container)
        raise ContainerError(f"docker: container {container.id[:12]} has no address on the bridge network")
    return address
