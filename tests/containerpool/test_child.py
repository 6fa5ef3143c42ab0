"""Starting a container's process (containers/process/child.py): its pipes, its exit status, and nothing left open."""

from __future__ import annotations

import asyncio
import os
import select
import threading

import uvloop

from whisk.containers.process.child import spawn


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Captured:
    """An Output that keeps what each stream brought, and whether it ended."""

    def __init__(self) -> None:
        self.data = {"stdout": b"", "stderr": b""}
        self.ended: set[str] = set()
        self.changed = asyncio.Event()

    def feed(self, stream: str, data: bytes) -> None:
        assert stream not in self.ended
        self.data[stream] += data
        self.changed.set()

    def close(self, stream: str) -> None:
        self.ended.add(stream)
        self.changed.set()

    async def until_ended(self) -> None:
        while len(self.ended) < 2:
            self.changed.clear()
            await self.changed.wait()


async def test_pipes_exit_status_and_no_descriptor_left() -> None:
    before = open_fds()
    for n in range(20):
        output = Captured()
        child = await spawn(["/bin/sh", "-c", f"echo out{n}; echo err{n} >&2; exit {n % 3}"], {"PATH": "/bin"},
                            output)
        assert child.returncode is None or child.returncode == n % 3
        await asyncio.wait_for(output.until_ended(), 10)
        assert output.data == {"stdout": b"out%d\n" % n, "stderr": b"err%d\n" % n}
        assert await asyncio.wait_for(child.wait(), 10) == n % 3
        assert child.returncode == n % 3
    await asyncio.sleep(0)           # the pipes' transports close on the loop's next turn
    assert open_fds() <= before


async def test_a_killed_child_is_seen_ending() -> None:
    child = await spawn(["/bin/sleep", "60"], {"PATH": "/bin"}, Captured(), ())
    assert child.returncode is None
    os.killpg(child.pid, 9)          # its own session, so its own process group
    assert await asyncio.wait_for(child.wait(), 10) == -9


async def test_output_a_grandchild_keeps_open_can_be_let_go() -> None:
    """The pipes stay open while a process the child started holds them; close_output stops reading them."""
    before = open_fds()
    output = Captured()
    child = await spawn(["/bin/sh", "-c", "echo started; (sleep 60 &) ; exit 0"], {"PATH": "/bin"}, output)
    assert await asyncio.wait_for(child.wait(), 10) == 0
    await asyncio.sleep(0.1)
    assert output.data["stdout"] == b"started\n" and not output.ended        # the sleeper still holds them
    child.close_output()
    await asyncio.wait_for(output.until_ended(), 10)
    os.killpg(child.pid, 9)          # the sleeper, in the child's session
    await asyncio.sleep(0)
    assert open_fds() <= before


async def test_drain_hands_over_what_the_pipes_hold_without_a_turn_of_the_loop() -> None:
    """The logs of an activation are taken once its answer came: what the proxy wrote before answering (its
    sentinels) must be read then, even when the loop has not found the pipe readable yet."""
    output = Captured()
    child = await spawn(["/bin/sh", "-c", "echo out; echo err >&2; exec sleep 60"], {"PATH": "/bin"}, output)
    try:
        for pipe in child._pipes:
            select.select([pipe._fd], [], [], 10)      # written: in the pipe, and the loop has had no turn
        child.drain()
        assert output.data == {"stdout": b"out\n", "stderr": b"err\n"}
        child.drain()                                    # nothing more: no wait, no end
        assert not output.ended
    finally:
        os.killpg(child.pid, 9)
        await asyncio.wait_for(child.wait(), 10)
        child.reap()
        child.close_output()


def test_no_other_threads_descriptor_is_closed_on_the_servers_loop(tmp_path) -> None:
    """On uvloop (the server's loop) `connect_read_pipe` closed each pipe's descriptor twice (MagicStack/uvloop#763):
    a file another thread opened between the two closes lost its descriptor (SQLite's files are opened by threads).
    Threads here open and check a file without pause while the loop starts and reaps 600 processes; with the
    transports, nearly every run of this saw some of their descriptors closed under them."""
    file = tmp_path / "held"
    file.write_bytes(b"x" * 100)
    stop = threading.Event()
    problems: list[str] = []

    def hold() -> None:
        while not stop.is_set():
            fd = os.open(file, os.O_RDONLY)
            try:
                for _ in range(3):
                    if os.fstat(fd).st_size != 100:
                        problems.append("another file")
            except OSError as exc:
                problems.append(f"fstat: {exc}")
                continue                # closed under this thread: nothing left to close
            try:
                os.close(fd)
            except OSError as exc:
                problems.append(f"close: {exc}")

    async def start_and_reap() -> None:
        for _ in range(600):
            child = await spawn(["/bin/true"], {}, Captured())
            await child.wait()
            child.close_output()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(start_and_reap())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
