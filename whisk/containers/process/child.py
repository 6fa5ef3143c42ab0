"""Start a container's process without stopping the event loop for a fork.

uvloop starts a subprocess with libuv, which forks: the kernel copies the page tables of the whole platform process,
so the event loop stands still for a time that grows with the platform's memory (measured: 2.4 ms at a small heap,
5.3 ms with 100 MB, 13.9 ms with 300 MB, against 0.8-2.5 ms with the standard library's vfork). A prewarmed start
pays it twice: the pool starts the replacement stem cell as it hands the prewarmed one out. So the child is
started as the standard library does it (subprocess's vfork and exec, on the loop's own thread: the launcher sets
PR_SET_PDEATHSIG, which follows the thread that started it), its pipes are read by the loop, and its exit is
watched through a pidfd; it is reaped only by `reap()`, once the backend signals its process group no more (a pid
reaped at its exit could be another process group's by the container's pause or destroy).

The pipes are read by the loop's `add_reader`, and each chunk goes to an `Output` as it arrives (the container's log
collector): no reader task, no StreamReader, no turn of the loop between the bytes and the collector
(docs/performance.md). The pipes are made here and each read end belongs to its `_PipeReader` alone, which closes it
once. Not `connect_read_pipe`: uvloop's pipe transport closes the descriptor it reads, then closes the file object it
was given, that is the same number a second time (MagicStack/uvloop#763); a file another thread opened in between
(SQLite's, a /proc file, a pipe of the next container) lost its descriptor to it. `Child` offers what the backend
uses of asyncio's Process: `pid`, `returncode`, `wait()`, `reap()`, and `close_output()` for pipes a grandchild still
holds open; `drain()` reads what the pipes hold at once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Collection, Mapping
from typing import Protocol


class Output(Protocol):
    """Where a child's output goes: `feed` each chunk of a stream ("stdout", "stderr"), `close` at its end."""

    def feed(self, stream: str, data: bytes) -> None: ...

    def close(self, stream: str) -> None: ...


READ_BYTES = 256 * 1024             # at most this much a read (a pipe holds 64 KB unless grown)
DRAIN_READS = 5                     # a drain's reads at most: a pipe grown to the default pipe-max-size, and more


class _PipeReader:
    """The read end of one of the child's pipes: each chunk to `output` as the loop finds it readable, `close` at
    its end (EOF, or `close()`), the descriptor closed exactly once."""

    __slots__ = ("_loop", "_fd", "_output", "_stream")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, output: Output, stream: str) -> None:
        self._loop = loop
        self._fd = fd
        self._output = output
        self._stream = stream
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)

    def _read(self) -> bool:
        """One read into `output`: whether it read anything."""
        try:
            data = os.read(self._fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""                  # a broken pipe reads as its end
        if data:
            self._output.feed(self._stream, data)
            return True
        self.close()
        return False

    def drain(self) -> None:
        """What the pipe holds now, to `output` without waiting for the loop to find it readable (an action may
        grow its pipe to pipe-max-size, 1 MB: a few reads; one that keeps writing is read by the loop)."""
        for _ in range(DRAIN_READS):
            if self._fd < 0 or not self._read():
                return

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        self._loop.remove_reader(fd)
        os.close(fd)
        self._output.close(self._stream)


class Child:
    def __init__(self, popen: subprocess.Popen[bytes], pipes: list[_PipeReader],
                 exited: asyncio.Future[int]) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._pipes = pipes
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def reap(self) -> None:
        """Let the ended child's pid go: only once nothing will signal its process group any more."""
        if self._exited.done():
            try:
                self._popen.wait(timeout=1)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass

    def drain(self) -> None:
        """Hand over what the pipes hold now."""
        for pipe in self._pipes:
            pipe.drain()

    def close_output(self) -> None:
        """Stop reading the pipes (a process the child started may keep them open after it ended)."""
        for pipe in self._pipes:
            pipe.close()


async def spawn(argv: list[str], env: Mapping[str, str], output: Output, pass_fds: Collection[int] = ()) -> Child:
    """Start `argv` in a session of its own, stdin from /dev/null, stdout and stderr to pipes read into `output`;
    OSError if it cannot be started."""
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()                 # not inherited (O_CLOEXEC); the child gets them as 1 and 2
    try:
        err_read, err_write = os.pipe()
    except BaseException:
        os.close(out_read)
        os.close(out_write)
        raise
    try:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_write, stderr=err_write,
                                 env=dict(env), start_new_session=True, pass_fds=tuple(pass_fds), close_fds=True)
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        os.close(out_write)                         # the child's now: EOF when it (and what it started) are done
        os.close(err_write)
    pipes: list[_PipeReader] = []
    try:
        for name, fd in (("stdout", out_read), ("stderr", err_read)):
            pipes.append(_PipeReader(loop, fd, output, name))
        exited: asyncio.Future[int] = loop.create_future()
        pidfd = os.pidfd_open(popen.pid)
    except BaseException:
        for pipe in pipes:
            pipe.close()
        for fd in (out_read, err_read)[len(pipes):]:
            os.close(fd)
        popen.kill()
        popen.wait()
        raise

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        try:
            # Its status, but not reaped (WNOWAIT): until `reap`, its pid, which is the id of the container's
            # process group, cannot be given to another process, so pausing or destroying the container (which
            # signal that group) never reaches a process group that took the number over: another container's
            # (another tenant's), or any of the host's. An action can end its container whenever it likes.
            info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT)
            code = -1 if info is None else info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        except ChildProcessError:
            code = popen.returncode if popen.returncode is not None else -1
        finally:
            os.close(pidfd)
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, on_exit)
    return Child(popen, pipes, exited)
