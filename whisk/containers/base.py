"""The container port: what the pool needs from a container backend (`process://` or `docker://`).

A container runs one runtime proxy (docs/openwhisk.md §4: `POST /init`, `POST /run`, sentinel lines after each
activation). The factory makes containers; a container answers /init and /run, pauses, resumes, hands over the log lines
of the last activation, and is destroyed. Adapters raise ContainerError subclasses, never library errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from whisk.entities.errors import WhiskError

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
# The stderr line that ends an activation's logs when they could not be read to the sentinels (docs/openwhisk.md §4).
LOG_COLLECTION_FAILED = "There was an issue while collecting your logs. Data might be missing."


def logs_truncated(limit_bytes: int) -> str:
    """The stderr line that ends an activation's logs cut at the limit (docs/openwhisk.md §4)."""
    return f"Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."


class ContainerError(WhiskError):
    """The platform could not provision or talk to a container (a whisk internal error)."""


class ContainerGone(ContainerError):
    """The container had exited before a request was sent to it: nothing of the job ran there."""


class ImageError(ContainerError):
    """The action's image is missing or broken (a developer error, e.g. "Failed to pull container image 'x'.")."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str                      # wsk{invoker}_{n}_{namespace}_{action} or wsk{invoker}_{n}_prewarm_{kind}
    kind: str                      # runtime kind, e.g. "python:3.11" or "blackbox"
    image: str                     # the runtime's image (docker) or the blackbox image
    memory_mb: int
    env: dict[str, str] = field(default_factory=dict)    # __OW_API_HOST and friends, set at container start
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Interaction:
    """One /init or /run exchange, timed in epoch milliseconds."""

    start_ms: int
    end_ms: int
    status: int | None = None      # HTTP status; None when the container gave no response
    body: bytes = b""              # the whole body, or its first `max_bytes` when it was longer (`size`)
    size: int | None = None        # the body's length when only its start was read: over the caller's max_bytes
    timed_out: bool = False
    oom_killed: bool = False       # the container died exhausting its memory
    exited: bool = False           # the container died during the exchange

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class Container(Protocol):
    id: str

    async def initialize(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        """POST /init with `{"value": body}`; retried while the proxy is not yet listening, within the timeout.
        `max_bytes`: read no more of the answer's body than this (the Interaction's `size` then has its length).
        ContainerGone when a backend knows the container had exited before anything was sent."""

    async def run(self, body: dict, timeout_s: float, max_bytes: int | None = None) -> Interaction:
        """POST /run with the flat body of docs/openwhisk.md §4; never retried. `max_bytes` as for /init: an action
        may answer with any length, the platform holds no more than the result limit of it."""

    async def suspend(self) -> None: ...

    async def resume(self) -> None: ...

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool, grace_s: float = 0.0,
                   alone: bool = False) -> list[str]:
        """The log lines written since the previous call, up to the sentinels, formatted as OpenWhisk stores them
        ("<RFC3339 time> stdout: text"), cut at `limit_bytes` with OpenWhisk's truncation line. Without waiting for
        the sentinels, output already on its way still gets up to `grace_s` to arrive (less once both are read).
        `alone`: no other activation runs in the container (concurrency 1), so the logs run to the last sentinel
        read, not the first (the action may print the sentinel itself)."""

    async def destroy(self) -> None:
        """Kill and remove; idempotent."""


class ContainerFactory(Protocol):
    async def create(self, spec: ContainerSpec) -> Container:
        """Create and start a container (ContainerError, or ImageError for a bad blackbox image)."""

    async def cleanup(self) -> None:
        """Remove containers this invoker left behind (its own label), e.g. after being killed."""

    def describe(self) -> str:
        """One line for the start-up log: which backend is in use and why (e.g. the daemon, the networking)."""

    async def confine(self, allowed: frozenset[int]) -> None:
        """Let every container, running or to come, run on the CPUs `allowed` only (calls must not overlap)."""

    async def close(self) -> None:
        """Destroy every container this factory made."""
