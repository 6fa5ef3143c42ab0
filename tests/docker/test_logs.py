"""Log collection through Docker's logs API: the limit, long lines, no collection, activations kept apart."""

from __future__ import annotations

import asyncio
import os
import time

import aiodocker
import pytest

from tests.docker.conftest import init_body, python_spec
from whisk.containers.base import LOG_COLLECTION_FAILED, logs_truncated
from whisk.containers.docker.factory import DockerContainerFactory
from whisk.containers.docker.logs import DockerLogReader, parse_frames, time_key

pytestmark = pytest.mark.docker

CHATTY = """
import sys
def main(a):
    for i in range(a.get("lines", 0)):
        print(f"line {i:03d} " + "x" * 90)
    if a.get("long"):
        print("L" * a["long"], file=sys.stderr)
    return {"ok": True}
"""


def frame(stream: int, text: str) -> bytes:
    data = text.encode()
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_frames_are_split_by_stream_and_long_lines_joined() -> None:
    payload = (frame(1, "2026-01-01T00:00:00.000000001Z out\n") + frame(2, "2026-01-01T00:00:00.000000002Z ab")
               + frame(1, "2026-01-01T00:00:00.000000003Z out2\n") + frame(2, "2026-01-01T00:00:00.000000004Z cd\n"))
    entries = parse_frames(payload)
    assert [(e.stream, e.text, e.timestamp[-4:]) for e in entries] == [
        ("stdout", "out", "001Z"), ("stdout", "out2", "003Z"), ("stderr", "abcd", "002Z")]
    assert time_key("2026-01-01T00:00:01.5Z") == (1767225601, 500_000_000)


def test_a_line_of_many_frames_is_joined_once_and_read_whole() -> None:
    """An action's 30 MB without a newline is one line of ~1,900 frames: joined a frame at a time (quadratic), it
    held the invoker's event loop for 25 s, every API call waiting. A character cut between frames is read whole."""
    def raw(stream: int, data: bytes) -> bytes:
        data = b"2026-01-01T00:00:00.000000001Z " + data
        return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    cut = "é".encode()
    payload = (raw(1, b"z" * 16384) * 3072 + raw(1, b"end\n")                   # 48 MB and a bit, one line
               + raw(2, b"a" + cut[:1]) + raw(2, cut[1:] + b"b\n"))
    started = time.perf_counter()
    entries = parse_frames(payload)
    assert time.perf_counter() - started < 3.0                 # 0.4 s; 62 s joined a frame at a time
    assert [(e.stream, len(e.text), e.text[-4:], e.whole) for e in entries] == [
        ("stdout", 48 * 1048576 + 3, "zend", True), ("stderr", 3, "aéb", True)]


async def test_many_lines_are_read_without_holding_the_event_loop() -> None:
    """An activation's 200,000 lines (400 kB of text, 14 MB in docker's log) held the invoker's event loop for the
    whole read (4 to 9 s here), every API call and every other activation waiting; now it gets a turn at least every
    ~0.1 s (parsed on a thread, handled in slices)."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    payload = b"".join(frame(1, f"2026-01-01T00:00:{i // 10_000:02d}.{i:09d}Z x\n") for i in range(200_000))
    payload += frame(1, "2026-01-01T00:00:59.000000001Z " + sentinel) + frame(2, "2026-01-01T00:00:59.2Z " + sentinel)

    async def fetch(since: str) -> bytes:
        return payload

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        lines = await DockerLogReader(fetch).take(10 << 20, wait_for_sentinel=True)
        await asyncio.sleep(0.01)                   # the gap the read itself made is counted too
    finally:
        ticking.cancel()
    assert len(lines) == 200_000 and lines[0].endswith("stdout: x") and lines[-1].endswith("stdout: x")
    assert max(gaps) < 1.0, max(gaps)


async def test_a_long_line_caught_half_written_is_taken_whole_on_a_later_poll() -> None:
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    first = frame(2, "2026-01-01T00:00:00.000000001Z " + "L" * 16384)
    answers = [first,
               first + frame(2, "2026-01-01T00:00:00.000000002Z " + "L" * 100 + "\n")
               + frame(1, "2026-01-01T00:00:00.000000003Z " + sentinel)
               + frame(2, "2026-01-01T00:00:00.000000004Z " + sentinel)]
    asked: list[str] = []

    async def fetch(since: str) -> bytes:
        asked.append(since)
        return answers[min(len(asked), len(answers)) - 1]

    lines = await DockerLogReader(fetch).take(1 << 20, wait_for_sentinel=True)
    assert [line.split("stderr: ")[1] for line in lines] == ["L" * 16384, "L" * 100] and len(asked) == 2


async def test_output_without_a_newline_ends_on_the_sentinel_line() -> None:
    """`sys.stdout.write("partial")`, then the runtime's sentinel: one line "partialXXX_THE_END...", which ends the
    activation's stream at once, its text before the sentinel kept."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    payload = (frame(1, "2026-01-01T00:00:00.000000001Z partial" + sentinel)
               + frame(2, "2026-01-01T00:00:00.000000002Z  " + sentinel)
               + frame(1, "2026-01-01T00:00:00.000000003Z next\n"))
    asked: list[str] = []

    async def fetch(since: str) -> bytes:
        asked.append(since)
        return payload

    lines = await DockerLogReader(fetch).take(1 << 20, wait_for_sentinel=True)
    assert len(lines) == 1 and lines[0].endswith("stdout: partial") and len(asked) == 1


async def test_a_sentinel_the_action_prints_itself_ends_nothing_when_it_runs_alone() -> None:
    """An action that printed the sentinel ended its stream's logs there: the rest of its lines went to the
    container's next activation, and every later activation got the logs of the one before. Alone in its container,
    a stream's logs run to the last sentinel read."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    log = [frame(1, "2026-01-01T00:00:00.000000001Z one before\n"),
           frame(1, "2026-01-01T00:00:00.000000002Z " + sentinel),
           frame(2, "2026-01-01T00:00:00.000000003Z " + sentinel),
           frame(1, "2026-01-01T00:00:00.000000004Z one after\n"),
           frame(2, "2026-01-01T00:00:00.000000005Z one err\n"),
           frame(1, "2026-01-01T00:00:00.000000006Z " + sentinel),
           frame(2, "2026-01-01T00:00:00.000000007Z " + sentinel)]

    async def fetch(since: str) -> bytes:
        return b"".join(log)

    reader = DockerLogReader(fetch)
    lines = await reader.take(1 << 20, wait_for_sentinel=True, alone=True)
    assert [line.split(" ", 1)[1] for line in lines] == ["stdout: one before", "stdout: one after", "stderr: one err"]
    log += [frame(1, "2026-01-01T00:00:00.000000008Z two\n"),
            frame(1, "2026-01-01T00:00:00.000000009Z " + sentinel),
            frame(2, "2026-01-01T00:00:00.000000010Z " + sentinel)]
    lines = await reader.take(1 << 20, wait_for_sentinel=True, alone=True)
    assert [line.split(" ", 1)[1] for line in lines] == ["stdout: two"]


async def test_a_developer_errors_lines_still_being_copied_are_read_within_the_grace() -> None:
    """Docker copies a container's output to its log on its own time: right after a failed /init the traceback the
    runtime wrote before answering may not be there yet (a CI failure). Without waiting for the sentinels, the
    reader still polls until both have come or the grace is over; with no grace it reads once."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    copied = (frame(2, "2026-01-01T00:00:00.000000001Z Bad CRC-32\n")
              + frame(1, "2026-01-01T00:00:00.000000002Z " + sentinel)
              + frame(2, "2026-01-01T00:00:00.000000003Z " + sentinel))
    answers = [b"", b"", copied]
    asked: list[str] = []

    async def fetch(since: str) -> bytes:
        asked.append(since)
        return answers[min(len(asked), len(answers)) - 1]

    assert await DockerLogReader(fetch).take(1 << 20, wait_for_sentinel=False) == [] and len(asked) == 1
    asked.clear()
    lines = await DockerLogReader(fetch).take(1 << 20, wait_for_sentinel=False, grace_s=5.0)
    assert len(lines) == 1 and lines[0].endswith("stderr: Bad CRC-32") and len(asked) == 3   # not the whole grace
    asked.clear()
    answers[2] = frame(2, "2026-01-01T00:00:00.000000001Z died without sentinels\n")
    lines = await DockerLogReader(fetch).take(1 << 20, wait_for_sentinel=False, grace_s=0.1)
    assert len(lines) == 1 and lines[0].endswith("stderr: died without sentinels") and len(asked) > 3


async def test_lines_the_log_rotation_deleted_before_they_were_read_are_said_to_be_missing() -> None:
    """The json-file logs are two bounded files (factory.LOGS): an activation that writes more than they hold loses
    its first lines before they are read. The line the previous read ended on is asked for again (`since`); when it
    is gone while later ones are there, the activation's logs say that data is missing, where it is missing."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"

    def ended(t: int, text: str) -> bytes:
        return (frame(1, f"2026-01-01T00:00:00.{t:09d}Z {text}\n") + frame(1, f"2026-01-01T00:00:00.{t + 1:09d}Z "
                + sentinel) + frame(2, f"2026-01-01T00:00:00.{t + 2:09d}Z " + sentinel))

    first = ended(1, "first")
    for answer, missing in ((first + ended(50, "second"), False), (ended(50, "second"), True)):
        answers = [first, answer]

        async def fetch(since: str) -> bytes:
            return answers.pop(0)

        reader = DockerLogReader(fetch)
        assert [line.split(": ", 1)[1] for line in await reader.take(1 << 20, wait_for_sentinel=True)] == ["first"]
        lines = await reader.take(1 << 20, wait_for_sentinel=True)
        texts = [line.split(": ", 1)[1] for line in lines]
        assert texts == ([LOG_COLLECTION_FAILED, "second"] if missing else ["second"]), lines
        assert lines[0].startswith("2026-01-01T00:00:00.000000050Z stderr: ") or not missing


async def test_a_developer_errors_read_leaves_the_next_activations_lines() -> None:
    """With concurrency above 1 an activation that failed (a timeout) reads the log without waiting for the
    sentinels while another one of its container is still running. It took everything there, past its sentinels:
    the other's lines and sentinels too, and the other's read then waited 2 s for sentinels already taken and ended
    with "There was an issue while collecting your logs", its own lines in the failed one's record."""
    sentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
    log = [frame(stream, f"2026-01-01T00:00:00.{n:09d}Z {text}") for n, (stream, text) in enumerate(
        [(1, "a out\n"), (1, sentinel), (2, sentinel), (1, "b out\n"), (1, sentinel), (2, sentinel)], 1)]

    async def fetch(since: str) -> bytes:                 # from the line stamped `since` on (line n at n ns)
        return b"".join(log[max(int(since.split(".")[1]) - 1, 0):])

    reader = DockerLogReader(fetch)
    failed = await reader.take(1 << 20, wait_for_sentinel=False, grace_s=0.1)
    assert [line.split(": ", 1)[1] for line in failed] == ["a out"]
    started = time.monotonic()
    other = await reader.take(1 << 20, wait_for_sentinel=True)
    assert [line.split(": ", 1)[1] for line in other] == ["b out"] and time.monotonic() - started < 1.0


async def test_limit_long_lines_and_no_collection(factory: DockerContainerFactory) -> None:
    container = await factory.create(python_spec(factory.invoker))
    assert (await container.initialize(init_body(CHATTY), timeout_s=10)).status == 200

    # 50 lines of 100 bytes (with the newline) against a 1000-byte limit: 10 lines, then the truncation line.
    await container.run({"value": {"lines": 50}}, timeout_s=10)
    lines = await container.logs(1000, wait_for_sentinel=True)
    assert len(lines) == 11 and lines[-1].endswith(f"stderr: {logs_truncated(1000)}"), lines
    assert [line.split("stdout: ")[1][:8] for line in lines[:-1]] == [f"line {i:03d}" for i in range(10)]

    # The cut activation was read to its sentinels: the next one gets only its own lines.
    await container.run({"value": {"lines": 2}}, timeout_s=10)
    lines = await container.logs(1000, wait_for_sentinel=True)
    assert [line.split("stdout: ")[1][:8] for line in lines] == ["line 000", "line 001"], lines

    # A line longer than docker's 16 KiB buffer is stored as docker's pieces, one log line each, as OpenWhisk reads
    # the json-file driver's entries.
    await container.run({"value": {"long": 40_000}}, timeout_s=10)
    lines = await container.logs(1 << 20, wait_for_sentinel=True)
    assert [len(line.split("stderr: ")[1]) for line in lines] == [16_384, 16_384, 7_232], lines
    assert all(set(line.split("stderr: ")[1]) == {"L"} for line in lines)

    # A log limit of 0 collects nothing, and still moves past the activation.
    await container.run({"value": {"lines": 3}}, timeout_s=10)
    assert await container.logs(0, wait_for_sentinel=True) == []
    await container.run({"value": {"lines": 1}}, timeout_s=10)
    assert len(await container.logs(1000, wait_for_sentinel=True)) == 1
    await container.destroy()


FORGER = """
import sys
def main(a):
    n = a["n"]
    print(f"{n} before", flush=True)
    if n == 1:
        print("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX", flush=True)
        print("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX", file=sys.stderr, flush=True)
    print(f"{n} after", flush=True)
    return {}
"""


async def test_a_sentinel_the_action_prints_itself_does_not_shift_the_later_activations(
        factory: DockerContainerFactory) -> None:
    """The action's own sentinel ended its logs, its proxy's then ended the next activation's at once, and every
    later activation got the logs of the one before. Docker copies lines on its own time, so the proxy's sentinel may
    come after the read of the first: what follows the action's own then opens the next activation's logs (as on
    OpenWhisk), and the one after is its own again."""
    container = await factory.create(python_spec(factory.invoker))
    assert (await container.initialize(init_body(FORGER), timeout_s=10)).status == 200
    texts = []
    for n in (1, 2, 3):
        await container.run({"value": {"n": n}}, timeout_s=10)
        texts.append([line.split("stdout: ")[1] for line in await container.logs(1 << 20, True, alone=True)])
    assert texts[0] + texts[1] == ["1 before", "1 after", "2 before", "2 after"], texts
    assert texts[1][-2:] == ["2 before", "2 after"] and texts[2] == ["3 before", "3 after"], texts
    await container.destroy()


async def test_the_log_files_on_the_daemon_are_bounded(factory: DockerContainerFactory,
                                                       docker: aiodocker.Docker) -> None:
    """An action printing 48 MB leaves at most two 16 MB json-file logs on the daemon's disk, and its activation
    logs are cut at the limit. Its first lines were rotated away before they could be read: from a container's
    second activation on, the logs say so."""
    container = await factory.create(python_spec(factory.invoker))
    assert (await container.initialize(init_body(CHATTY), timeout_s=10)).status == 200
    run = await container.run({"value": {"lines": 480_000}}, timeout_s=60)      # 480,000 lines of 100 bytes
    assert run.status == 200, run
    lines = await container.logs(10 << 20, wait_for_sentinel=True)
    assert lines[-1].endswith(f"stderr: {logs_truncated(10 << 20)}"), lines[-1]
    assert len(lines) > 1000 and all("stdout: line" in line for line in lines[:-1])
    info = await docker.containers.container(container.id).show()
    assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "16m", "max-file": "2"}
    path = info["LogPath"]
    sizes = [os.path.getsize(p) for p in (path, path + ".1") if os.path.exists(p)]
    assert len(sizes) == 2 and sum(sizes) <= 2 * (16 << 20) + (1 << 20), sizes    # rotated, and no more kept
    run = await container.run({"value": {"lines": 480_000}}, timeout_s=60)
    assert run.status == 200, run
    lines = await container.logs(10 << 20, wait_for_sentinel=True)
    assert lines[0].endswith(f"stderr: {LOG_COLLECTION_FAILED}"), lines[0]
    assert "stdout: line 000 " not in lines[1] and lines[-1].endswith(f"stderr: {logs_truncated(10 << 20)}")
    await container.destroy()
