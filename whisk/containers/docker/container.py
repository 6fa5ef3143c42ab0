"""One Docker action container: /init and /run over its endpoint, pause, unpause, logs, removal (docs/openwhisk.md §4).

The invoker never reuses a connection to a runtime (OpenWhisk doesn't), so each exchange opens one: over the unix
socket in the container's folder (unix and host networking), or TCP to the container's address (bridge).
When an exchange ends without an answer the container is inspected: a stopped container is reported as exited,
and as OOM-killed when Docker says so (State.OOMKilled). One found stopped when nothing could even connect, at a
/run or at the /init of a container that waited (a stem cell), or stopped before a /run its relay dropped, died
before the job reached it (a restarted daemon, a `docker kill`): ContainerGone, and the pool gives the job another
container.
A container without a network has an API relay (api_relay.py): its /init tells the action the relay's address as
__OW_API_HOST, and removing the container closes the relay.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import aiodocker
import aiohttp
import structlog

from whisk.containers.api_relay import ApiRelay
from whisk.containers.base import ContainerError, ContainerGone, Interaction
from whisk.containers.docker.logs import DockerLogReader, time_key
from whisk.containers.docker.security import lock_folder
from whisk.entities.document import now_ms

log = structlog.get_logger(__name__)

PAUSE_TIMEOUT_S = 10.0                       # OpenWhisk's pause/unpause timeouts (docs/openwhisk.md §7.1)
REMOVE_TIMEOUT_S = 60.0
RETRY_INTERVAL_S = 0.05                      # OpenWhisk retries /init every 50 ms (docs/openwhisk.md §4),
FAST_RETRY_S, FAST_RETRY_FOR_S = 0.005, 1.0  # but every 5 ms in the first second: a proxy listens ~0.1 s after start
STATE_CHECK_S = 0.25                         # while retrying, look whether the container is still running
EXIT_WAIT_S = 2.0                            # after a dropped exchange, how long Docker may take to see the exit
_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    socket: str = ""                         # a unix socket on this host, else TCP to host:port
    host: str = ""
    port: int = 0

    def connector(self) -> aiohttp.BaseConnector:
        if self.socket:
            return aiohttp.UnixConnector(path=self.socket, force_close=True)
        return aiohttp.TCPConnector(force_close=True)

    @property
    def base_url(self) -> str:
        return "http://localhost" if self.socket else f"http://{self.host}:{self.port}"


class DockerContainer:
    def __init__(self, docker: aiodocker.Docker, container: aiodocker.containers.DockerContainer, name: str,
                 endpoint: Endpoint, folder: str | None, relay: aiodocker.containers.DockerContainer | None,
                 forget: Callable[[DockerContainer], None], api: ApiRelay | None = None, uid: int = 0,
                 unremoved: Callable[[str], None] | None = None) -> None:
        self.id = container.id
        self.name = name
        self.uid = uid                         # its user (and its relay's), given to no other live container
        self.endpoint = endpoint
        self._docker = docker
        self._container = container
        self._folder = folder
        self._locked = folder is None          # the socket folder is closed to the container (security.py)
        self._relay = relay
        self._forget = forget
        self._unremoved = unremoved            # told of a container it could not remove (the factory retries)
        self._api_relay = api
        self._session: aiohttp.ClientSession | None = None
        self._destroyed = False
        self._made_at = asyncio.get_running_loop().time()
        self._log_reader = DockerLogReader(self._fetch_logs)

    def __repr__(self) -> str:
        return f"DockerContainer({self.name!r}, {self.id[:12]})"

    async def confine(self, cpus: str) -> None:
        """Run it (and its relay) on the CPUs `cpus` ("0,1") only: docker's `update --cpuset-cpus`."""
        if self._destroyed:
            return
        body = json.dumps({"CpusetCpus": cpus})
        for container in filter(None, (self._relay, self._container)):
            try:
                async with asyncio.timeout(REMOVE_TIMEOUT_S):
                    await self._docker._query_json(f"containers/{container.id}/update", method="POST", data=body)
            except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("containers.docker.confine_failed", container=self.name, error=str(exc))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=self.endpoint.connector(), headers=_HEADERS)
        return self._session

    async def _post(self, path: str, body: dict, max_bytes: int | None) -> tuple[int, bytes, int | None]:
        """(status, body, the body's length when only its first `max_bytes` were read). No more than that is
        held: an action can answer with any length (the connection is never reused, so the rest is left unread)."""
        data = json.dumps(body).encode()
        async with self._client().post(self.endpoint.base_url + path, data=data) as resp:
            if max_bytes is None:
                return resp.status, await resp.read(), None
            declared = resp.content_length
            if declared is not None and declared <= max_bytes:
                return resp.status, await resp.read(), None
            parts: list[bytes] = []
            taken = 0
            while taken <= max_bytes:
                chunk = await resp.content.read(max_bytes + 1 - taken)
                if not chunk:
                    break
                parts.append(chunk)
                taken += len(chunk)
            head = b"".join(parts)
            if taken <= max_bytes:
                return resp.status, head, None
            return resp.status, head[:max_bytes], max(declared or 0, taken)

    async def initialize(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        start = now_ms()
        if self._api_relay is not None:
            body = self._api_relay.upstream.init_body(body)
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + timeout_s
        next_check = began + STATE_CHECK_S
        # A container made just now (a cold start) is not listening yet; one that waited may have died meanwhile.
        waited = began - self._made_at >= STATE_CHECK_S
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    if not self._locked:       # no action code goes in while the container can write the folder
                        self._locked = await asyncio.to_thread(lock_folder, self._folder or "", os.path.basename(
                            self.endpoint.socket))
                    if self._locked:
                        status, reply, size = await self._post("/init", {"value": body}, max_bytes)
                        return Interaction(start, now_ms(), status, reply, size)
            except TimeoutError:
                return Interaction(start, now_ms(), timed_out=True)
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                # Nothing listens yet (the relay, when there is one, makes its socket once the action listens, and
                # drops connections the action refuses).
                if isinstance(exc, aiohttp.ServerDisconnectedError) and self._relay is None:
                    return await self._dropped(start, "/init", exc)
            except (aiohttp.ClientError, OSError) as exc:
                return await self._dropped(start, "/init", exc)
            if waited:             # nothing was sent (no socket yet, or nothing listening on it)
                waited = False
                await self._unless_gone("it does not listen")
            if loop.time() >= next_check:
                next_check = loop.time() + STATE_CHECK_S
                state = await self._state()
                if not state.get("Running", False):
                    return Interaction(start, now_ms(), exited=True, oom_killed=bool(state.get("OOMKilled")))
            pause = FAST_RETRY_S if loop.time() - began < FAST_RETRY_FOR_S else RETRY_INTERVAL_S
            if loop.time() + pause >= deadline:
                return Interaction(start, now_ms(), timed_out=True)
            await asyncio.sleep(pause)

    async def run(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        start = now_ms()
        try:
            async with asyncio.timeout(timeout_s):
                status, reply, size = await self._post("/run", body, max_bytes)
            return Interaction(start, now_ms(), status, reply, size)
        except TimeoutError:
            return Interaction(start, now_ms(), timed_out=True)
        except aiohttp.ClientConnectorError as exc:        # not even connected: nothing was sent
            await self._unless_gone(repr(exc))
            return await self._dropped(start, "/run", exc)
        except (aiohttp.ClientError, OSError) as exc:
            # The relay, when there is one, lives on and drops what it has no action to pass to (while the request
            # is still being written, or after).
            if self._relay is not None:
                try:
                    await self._unless_gone(repr(exc), before_ms=start)
                except ContainerGone:
                    raise
                except ContainerError:
                    pass                   # Docker cannot say: as any dropped /run
            return await self._dropped(start, "/run", exc)

    async def _unless_gone(self, why: str, before_ms: int | None = None) -> None:
        """Nothing could be sent to it: ContainerGone when the container no longer runs (and stopped before
        `before_ms`, when given: one that died under the exchange is the action's failure)."""
        state = await self._state()
        if state.get("Running", False):
            return
        if before_ms is None or _epoch_ms(state.get("FinishedAt") or "") <= before_ms:
            raise ContainerGone(f"container {self.name} is gone ({why})")

    async def _dropped(self, start: int, path: str, error: BaseException) -> Interaction:
        """The exchange ended without an answer: did the container die, and of what?"""
        end = now_ms()
        try:
            async with asyncio.timeout(EXIT_WAIT_S):
                await self._container.wait(condition="not-running")
        except (TimeoutError, aiodocker.DockerError, aiohttp.ClientError, OSError):
            pass        # still running: the proxy dropped the connection but lives
        try:
            state = await self._state()
        except ContainerError as exc:
            # Docker cannot say (the daemon gone; the containers outlive it). What was sent may have run: the
            # action's failure, never the pool's cue to send the job again.
            log.info("container.exchange.dropped", container=self.name, path=path, error=repr(error),
                     docker_error=str(exc))
            return Interaction(start, end, exited=True)
        running = state.get("Running", False)
        log.info("container.exchange.dropped", container=self.name, path=path, error=repr(error), running=running,
                 exit_code=state.get("ExitCode"), oom_killed=state.get("OOMKilled"),
                 docker_error=state.get("Error") or None)
        return Interaction(start, end, exited=not running, oom_killed=not running and bool(state.get("OOMKilled")))

    async def _state(self) -> dict:
        try:
            return (await self._container.show()).get("State") or {}
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return {}   # removed under us: as good as exited
            raise ContainerError(f"docker: cannot inspect {self.name}: {exc.message}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ContainerError(f"docker: cannot inspect {self.name}: {exc!r}") from exc

    async def suspend(self) -> None:
        await self._api("pause", self._container.pause, PAUSE_TIMEOUT_S)

    async def resume(self) -> None:
        await self._api("unpause", self._container.unpause, PAUSE_TIMEOUT_S)

    async def _api(self, what: str, call: Callable, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await call()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ContainerError(f"docker: cannot {what} {self.name}: {exc}") from exc

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool, grace_s: float = 0.0,
                   alone: bool = False) -> list[str]:
        try:
            return await self._log_reader.take(limit_bytes, wait_for_sentinel, grace_s, alone)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ContainerError(f"docker: cannot read the logs of {self.name}: {exc}") from exc

    async def _fetch_logs(self, since: str) -> bytes:
        # Both streams in one request: the multiplexed frames say which stream each line came from. aiodocker's
        # own `log()` drops that label and inspects the container before every call, so ask the API directly.
        params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": "0", "since": since}
        async with self._docker._query(f"containers/{self.id}/logs", params=params) as resp:
            return await resp.read()

    async def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        self._forget(self)
        try:
            failed: ContainerError | None = None
            for container in filter(None, (self._relay, self._container)):
                try:
                    async with asyncio.timeout(REMOVE_TIMEOUT_S):
                        await container.delete(force=True, v=True)
                    continue
                except aiodocker.DockerError as exc:
                    if exc.status in (404, 409):
                        continue
                    failed = ContainerError(f"docker: cannot remove {self.name}: {exc.message}")
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    failed = ContainerError(f"docker: cannot remove {self.name}: {exc!r}")
                if self._unremoved is not None:
                    self._unremoved(container.id)
            if failed is not None:
                raise failed
        finally:
            if self._api_relay is not None:
                await self._api_relay.close()
            if self._session is not None:
                await self._session.close()
            if self._folder:
                await asyncio.to_thread(shutil.rmtree, self._folder, True)


def _epoch_ms(timestamp: str) -> int:
    """Docker's RFC3339 time (State.FinishedAt) in epoch ms; 0 when there is none."""
    try:
        seconds, nanos = time_key(timestamp)
    except ValueError:
        return 0
    return seconds * 1000 + nanos // 1_000_000
