"""Run the real client (`python -m whisk <wsk args>`) as a child process against the session's whisk server.

Each test gets its own properties file (APIHOST = the server, AUTH = guest) through WSK_CONFIG_FILE, and its own
working directory. Tests that need action invocation or trigger fires ask for the `invoke_ready` / `fire_ready`
fixtures: while the server still answers 503 there, the test is skipped with that reason (a failure under CI=true).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import missing
from tests.support.processes import GUEST_AUTH

REPO = Path(__file__).resolve().parents[2]
_DROPPED = ("WHISK_APIHOST", "WHISK_AUTH", "WHISK_APIVERSION", "WSK_CLI_DEBUG")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "invoke: needs action invocation on the server (POST .../actions/NAME)")
    config.addinivalue_line("markers", "fire: needs trigger fires on the server (POST .../triggers/NAME)")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


class Wsk:
    """`await wsk("action", "list")` runs `python -m whisk action list` and returns its exit code and output."""

    def __init__(self, props: Path, cwd: Path) -> None:
        self.props = props
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        self.env |= {"WSK_CONFIG_FILE": str(props), "PYTHONPATH": str(REPO)}

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", *args, cwd=self.cwd, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def __call__(self, *args: str, timeout_s: float = 90) -> Ran:
        proc = await self.start(*args)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Ran(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode())


def unique(prefix: str) -> str:
    """Entity names unique across the session's shared server."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_wsk(url: str, directory: Path) -> Wsk:
    props = directory / "wskprops"
    props.write_text(f"APIHOST={url}\nAUTH={GUEST_AUTH}\n")
    return Wsk(props, directory)


@pytest.fixture
def wsk(whisk_url: str, tmp_path: Path) -> Wsk:
    return make_wsk(whisk_url, tmp_path)


NODE_ECHO = """function main(args) {
  console.log("hello from " + (args.name || "nobody"));
  console.error("to stderr");
  if (args.fail) return {error: "bad " + args.fail};
  if (args.sleep) return new Promise(done => setTimeout(() => done({slept: args.sleep}), args.sleep));
  return {greeting: "hello " + (args.name || "nobody"), args: args};
}
"""


@pytest.fixture
def echo_js(tmp_path: Path) -> Path:
    path = tmp_path / "echo.js"
    path.write_text(NODE_ECHO)
    return path


async def _probe(wsk: Wsk, what: str, *args: str) -> None:
    ran = await wsk(*args)
    if ran.code == 247:
        missing(f"{what} (the server answers 503: {ran.err.strip()})")
    assert ran.code == 0, f"probe {args} failed: {ran.code} {ran.err}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def invoke_ready(whisk_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    directory = tmp_path_factory.mktemp("invoke-probe")
    (directory / "probe.js").write_text("function main() { return {ok: true}; }\n")
    wsk = make_wsk(whisk_url, directory)
    name = unique("probe")
    assert (await wsk("action", "create", name, str(directory / "probe.js"))).code == 0
    await _probe(wsk, "action invocation", "action", "invoke", name, "-r")
    yield


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fire_ready(whisk_url: str, invoke_ready: None,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    directory = tmp_path_factory.mktemp("fire-probe")
    wsk = make_wsk(whisk_url, directory)
    name = unique("probe")
    assert (await wsk("trigger", "create", name)).code == 0
    await _probe(wsk, "trigger fire", "trigger", "fire", name)
    yield
