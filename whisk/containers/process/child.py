"""Start a container's process without stopping the event loop for a fork.

uvloop starts a subprocess with libuv, which forks: the kernel copies the page tables of the whole platform process,
so the event loop stands still for a time that grows with the platform's memory (measured: 2.4 ms at a small heap,
5.3 ms with 100 MB, 13.9 ms with 300 MB, against 0.8-2.5 ms with the standard library's vfork). A prewarmed start
pays it twice: the pool starts the replacement stem cell as it hands the prewarmed one out. So the child is
started as the standard library does it (subprocess's vfork and exec, on the loop's own thread: the launcher sets
PR_SET_PDEATHSIG, which follows the thread that started it), its pipes are read by the loop, and its exit is
watched through a pidfd.

`Child` offers what the backend uses of asyncio's Process: `pid`, `returncode`, `stdout`, `stderr`, `wait()`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Collection, Mapping

# Each pipe's StreamReader buffers up to this much before the reader drains it (asyncio's default limit).
_PIPE_LIMIT = 64 * 1024


class Child:
    def __init__(self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader, stderr: asyncio.StreamReader,
                 exited: asyncio.Future[int]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdout = stdout
        self.stderr = stderr
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


async def _reader(loop: asyncio.AbstractEventLoop, pipe: object) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=_PIPE_LIMIT, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    return reader


async def spawn(argv: list[str], env: Mapping[str, str], pass_fds: Collection[int] = ()) -> Child:
    """Start `argv` in a session of its own, stdin from /dev/null, stdout and stderr to pipes; OSError if it
    cannot be started."""
    loop = asyncio.get_running_loop()
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(env), start_new_session=True, pass_fds=tuple(pass_fds), close_fds=True)
    try:
        assert popen.stdout is not None and popen.stderr is not None
        readers = [await _reader(loop, pipe) for pipe in (popen.stdout, popen.stderr)]
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
    return Child(popen, readers[0], readers[1], exited)
