"""Start a container's process without stopping the event loop for a fork.

uvloop starts a subprocess with libuv, which forks: the kernel copies the page tables of the whole platform process,
so the event loop stands still for a time that grows with the platform's memory (measured: 2.4 ms at a small heap,
5.3 ms with 100 MB, 13.9 ms with 300 MB, against 0.8-2.5 ms with the standard library's vfork). A prewarmed start
pays it twice: the pool starts the replacement stem cell as it hands the prewarmed one out. So the child is
started as the standard library does it (subprocess's vfork and exec, on the loop's own thread: the launcher sets
PR_SET_PDEATHSIG, which follows the thread that started it), its pipes are read by the loop, and its exit is
watched through a pidfd.

The pipes are read by protocols that hand each chunk to an `Output` as it arrives (the container's log collector):
no reader task, no StreamReader, no turn of the loop between the bytes and the collector (docs/performance.md).
`Child` offers what the backend uses of asyncio's Process: `pid`, `returncode`, `wait()`, and `close_output()` for
pipes a grandchild still holds open.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
from collections.abc import Collection, Mapping
from typing import Protocol


class Output(Protocol):
    """Where a child's output goes: `feed` each chunk of a stream ("stdout", "stderr"), `close` at its end."""

    def feed(self, stream: str, data: bytes) -> None: ...

    def close(self, stream: str) -> None: ...


class _Pipe(asyncio.Protocol):
    __slots__ = ("_output", "_stream")

    def __init__(self, output: Output, stream: str) -> None:
        self._output = output
        self._stream = stream

    def data_received(self, data: bytes) -> None:
        self._output.feed(self._stream, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._output.close(self._stream)


class Child:
    def __init__(self, popen: subprocess.Popen[bytes], pipes: list[asyncio.BaseTransport],
                 exited: asyncio.Future[int]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._pipes = pipes
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def close_output(self) -> None:
        """Stop reading the pipes (a process the child started may keep them open after it ended)."""
        for pipe in self._pipes:
            pipe.close()


async def spawn(argv: list[str], env: Mapping[str, str], output: Output, pass_fds: Collection[int] = ()) -> Child:
    """Start `argv` in a session of its own, stdin from /dev/null, stdout and stderr to pipes read into `output`;
    OSError if it cannot be started."""
    loop = asyncio.get_running_loop()
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(env), start_new_session=True, pass_fds=tuple(pass_fds), close_fds=True)
    try:
        assert popen.stdout is not None and popen.stderr is not None
        pipes: list[asyncio.BaseTransport] = []
        for name, pipe in (("stdout", popen.stdout), ("stderr", popen.stderr)):
            transport, _ = await loop.connect_read_pipe(functools.partial(_Pipe, output, name), pipe)
            pipes.append(transport)
        exited: asyncio.Future[int] = loop.create_future()
        pidfd = os.pidfd_open(popen.pid)
    except BaseException:
        popen.kill()
        popen.wait()
        raise

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            code = popen.wait(timeout=1)     # it has ended: this reaps it at once
        except (subprocess.TimeoutExpired, ChildProcessError):
            code = popen.returncode if popen.returncode is not None else -1
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, on_exit)
    return Child(popen, pipes, exited)
