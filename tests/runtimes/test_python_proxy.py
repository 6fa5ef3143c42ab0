"""What only the Python proxy does: zip actions with __main__.py, async main, results json cannot write."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import whisk.runtimes
from tests.runtimes.harness import (RUN_META, http_request, raw_exchange, running_proxy, silenced_and_still_ended,
                                    zip_base64)

KIND = "python:3.11"


async def test_zip_action_imports_its_own_modules_and_files() -> None:
    archive = zip_base64({
        "__main__.py": ("from helper import twice\n"
                        "def main(args):\n"
                        "    with open('data/greeting.txt') as f:\n"      # relative to the action's folder
                        "        return {'value': twice(args['n']), 'greeting': f.read().strip()}\n"),
        "helper.py": "def twice(n):\n    return 2 * n\n",
        "data/greeting.txt": "hello\n",
    })
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(archive, binary=True) == (200, {"ok": True})
        assert await proxy.run({"n": 21}) == (200, {"value": 42, "greeting": "hello"})


async def test_zip_entry_point_other_than_main() -> None:
    archive = zip_base64({"__main__.py": "def handler(args):\n    return {'handled': True}\n"})
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(archive, main="handler", binary=True))[0] == 200
        assert await proxy.run() == (200, {"handled": True})


async def test_zip_compiled_by_openwhisks_python_runtime() -> None:
    """What `docker run -i openwhisk/action-python-v3.11 -compile NAME < src.zip` makes (the runtime's bin/compile):
    the action moved to main__.py, a launcher exec__.py that imports NAME from it as `main`, and a bash script
    `exec`. OpenWhisk runs `exec`; whisk imports main__.py and takes the entry point the launcher names."""
    archive = zip_base64({
        "exec": "#!/bin/bash\nexport PYTHONIOENCODING=UTF-8\ncd \"$(dirname $0)\"\nexec python exec__.py \"$@\"\n",
        "exec__.py": "#!/usr/bin/env python\nfrom main__ import niam as main\nimport sys\n# the loop reads fd 3\n",
        "main__.py": "from helper import shout\ndef niam(args):\n    return {'compiled': shout(args.get('w', 'x'))}\n",
        "helper.py": "def shout(w):\n    return w.upper()\n",
    })
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(archive, main="main", binary=True) == (200, {"ok": True})
        assert await proxy.run({"w": "yes"}) == (200, {"compiled": "YES"})


CANNOT_START = "Cannot start action. Check logs for details."
COMPILE_FAILED = "The action failed to generate or locate a binary. See logs for details."


async def test_zip_without_main_module_fails_init() -> None:
    # OpenWhisk's compile step finds no main module: its proxy answers that the compile failed, the reason in the log
    archive = zip_base64({"action.py": "def main(args):\n    return {}\n"})
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(archive, binary=True)
        assert (status, body) == (502, {"error": COMPILE_FAILED})
        await proxy.until_sentinels(1)
        assert any("Zip file does not include __main__.py" in line for line in proxy.err)
        assert "Command exited abruptly during initialization." not in proxy.err


@pytest.mark.parametrize("code, answer, logged", [
    # what the compile step's parse finds: the error's own lines, nothing of the proxy's
    ("def main(a) return {}\n", COMPILE_FAILED, "SyntaxError: expected ':'"),
    ("def main(a):\nreturn {}\n", COMPILE_FAILED, "IndentationError: expected an indented block"),
    # what only compiling finds, and errors while importing: the action fails to start
    ("return 1\ndef main(a):\n    return {}\n", CANNOT_START, "SyntaxError: 'return' outside function"),
    ("import helper_that_is_not_there\ndef main(a):\n    return {}\n", CANNOT_START, "No module named"),
])
async def test_a_syntax_error_fails_the_compile_step_and_an_import_error_the_start(code, answer, logged) -> None:
    """OpenWhisk's Python image compiles the action before its proxy starts it (bin/compile: ast.parse of the main
    module); a syntax error there answers COMPILE_FAILED, with only the compiler's output in the log."""
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(code) == (502, {"error": answer})
        await proxy.until_sentinels(1)
        assert any(logged in line for line in proxy.err), proxy.err
        assert ("Command exited abruptly during initialization." in proxy.err) == (answer == CANNOT_START)
        assert any("proxy.py" in line for line in proxy.err) == (answer == CANNOT_START)
    archive = zip_base64({"__main__.py": "def main(a) return {}\n"})
    async with running_proxy(KIND) as proxy:                         # a zip's main module too
        assert await proxy.init(archive, binary=True) == (502, {"error": COMPILE_FAILED})


@pytest.mark.parametrize("call, logged", [("sys.exit(1)", []), ("sys.exit('bye')", ["bye"])])
async def test_exit_while_importing_fails_the_start_as_the_interpreter_ends(call: str, logged: list[str]) -> None:
    """OpenWhisk's launcher imports the action: exit() there ends it as the interpreter ends on exit() (no
    traceback; a text code printed), and its proxy logs that the command exited."""
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(f"import sys\n{call}\ndef main(a):\n    return {{}}\n") == \
            (502, {"error": CANNOT_START})
        await proxy.until_sentinels(1)
        assert proxy.err == logged + ["Command exited abruptly during initialization.",
                                      "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"]


async def test_an_invalid_virtualenv_fails_the_compile_step() -> None:
    archive = zip_base64({"__main__.py": "def main(a):\n    return {}\n", "virtualenv/bin/python": ""})
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(archive, binary=True) == (502, {"error": COMPILE_FAILED})
        await proxy.until_sentinels(1)
        assert "Invalid virtualenv. Zip file does not include 'activate_this.py'." in proxy.err


@pytest.mark.parametrize("env", [{"a=b": "v"}, {"K": "a\u0000b"}, {"K\u0000": "v"}])
async def test_an_init_parameter_no_environment_can_hold_fails_init_cleanly(env: dict) -> None:
    """A name with "=" or a NUL, or a value with a NUL: os.environ raises ValueError; the proxy refuses the start
    (the reason in the log) and stays up, rather than dying with a traceback ("exited unexpectedly")."""
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init("def main(args):\n    return {}\n", env=env)
        assert (status, body) == (502, {"error": CANNOT_START})
        await proxy.until_sentinels(1)
        assert any("Cannot set the environment variable" in line for line in proxy.err)
        assert "Command exited abruptly during initialization." in proxy.err


async def test_binary_code_that_is_not_a_zip_is_the_source() -> None:
    # OpenWhisk's proxy writes base64 code that is no archive as the action's file and runs it.
    async with running_proxy(KIND) as proxy:
        source = "def main(args):\n    return {'ran': args.get('x')}\n"
        assert await proxy.init(base64.b64encode(source.encode()).decode(), binary=True) == (200, {"ok": True})
        assert await proxy.run({"x": 1}) == (200, {"ran": 1})
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(base64.b64encode(b"not python at all").decode(), binary=True)
        assert (status, body) == (502, {"error": COMPILE_FAILED})
        await proxy.until_sentinels(1)
        assert any("SyntaxError" in line for line in proxy.err)


# A main that returns an awaitable is awaited; a plain main may run an event loop of its own, as in OpenWhisk's Python
# runtime, where no event loop is running around main.
ASYNC_MAINS = {
    "awaited": "import asyncio\n"
               "async def main(args):\n"
               "    await asyncio.sleep(0)\n"
               "    return {'twice': 2 * args['x']}\n",
    "its-own-loop": "import asyncio\n"
                    "async def twice(x):\n"
                    "    await asyncio.sleep(0)\n"
                    "    return 2 * x\n"
                    "def main(args):\n"
                    "    return {'twice': asyncio.run(twice(args['x']))}\n",
}


@pytest.mark.parametrize("name", list(ASYNC_MAINS))
async def test_async_code_in_an_action(name: str) -> None:
    async with running_proxy(KIND) as proxy:
        await proxy.init(ASYNC_MAINS[name])
        assert await proxy.run({"x": 21}) == (200, {"twice": 42})
        assert await proxy.run({"x": 1}) == (200, {"twice": 2})


async def test_async_mains_run_on_one_event_loop_from_one_activation_to_the_next() -> None:
    """What an action keeps between activations (here a lock, bound to the loop it is first used on) still works."""
    code = ("import asyncio\n"
            "lock = None\n"
            "async def main(args):\n"
            "    global lock\n"
            "    lock = lock or asyncio.Lock()\n"
            "    async with lock:\n"
            "        await asyncio.sleep(0)\n"
            "    return {'loop': id(asyncio.get_running_loop())}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        (first_status, first), (second_status, second) = await proxy.run(), await proxy.run()
        assert first_status == second_status == 200 and first == second


async def test_an_action_that_needs_no_asyncio_does_not_load_it() -> None:
    """Importing asyncio costs every container tens of milliseconds of CPU and megabytes (docs/performance.md)."""
    async with running_proxy(KIND) as proxy:
        await proxy.init("import sys\ndef main(args):\n    return {'loaded': 'asyncio' in sys.modules}\n")
        assert await proxy.run() == (200, {"loaded": False})


async def test_a_cancellation_within_an_async_main_is_the_actions_error() -> None:
    code = ("import asyncio\n"
            "async def main(args):\n"
            "    if args.get('cancel'):\n"
            "        task = asyncio.ensure_future(asyncio.sleep(10))\n"
            "        task.cancel()\n"
            "        await task\n"
            "    return {'ok': True}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await asyncio.wait_for(proxy.run({"cancel": True}), 10) == (200, {"error": "CancelledError"})
        assert await proxy.run() == (200, {"ok": True})           # the container goes on


async def test_an_action_that_used_up_its_descriptors_leaves_the_proxy_serving() -> None:
    """A connection the proxy cannot accept for want of a descriptor waits, and is served once the action frees some;
    the proxy neither dies nor spins."""
    code = ("import os, resource\n"
            "held = []\n"
            "def main(args):\n"
            "    if args.get('hold'):\n"
            "        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "        try:\n"
            "            while True:\n"
            "                held.append(os.open(os.devnull, os.O_RDONLY))\n"
            "        except OSError:\n"
            "            return {'held': len(held) > 0}\n"
            "    while held:\n"
            "        os.close(held.pop())\n"
            "    return {'released': True}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run({"hold": True}) == (200, {"held": True})
        with proxy.raw_connection() as (sock, buffer):      # queued: the proxy has no descriptor to accept it with
            await asyncio.sleep(0.3)
            assert proxy.proc.returncode is None
            assert await proxy.run({}) == (200, {"released": True})
            sock.settimeout(10)
            request = http_request("/run", {"value": {}, **RUN_META})
            status, body, _ = await asyncio.to_thread(raw_exchange, sock, request, buffer)
        assert (status, body.replace(b" ", b"")) == (200, b'{"released":true}')


async def test_sigterm_ends_the_proxy_with_its_socket_and_the_actions_folder_removed() -> None:
    async with running_proxy(KIND) as proxy:
        await proxy.init("import os\ndef main(args):\n    return {'folder': os.getcwd()}\n")
        status, seen = await proxy.run()
        assert status == 200 and os.path.isdir(seen["folder"])
        proxy.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proxy.proc.wait(), 10) == 0
        assert isinstance(proxy.address, str) and not os.path.exists(proxy.address)       # the socket
        assert not os.path.exists(seen["folder"])


RESULTS = ("import datetime\n"
           "def main(args):\n"
           "    kind = args['kind']\n"
           "    circular = {}\n"
           "    circular['self'] = circular\n"
           "    return {'set': {1, 2}, 'datetime': {'at': datetime.datetime(2020, 1, 1)}, 'circular': circular,\n"
           "            'surrogate': {'s': '\\ud800'}, 'bare': datetime.date(2020, 1, 1), 'nan': {'n': float('nan')},\n"
           "            'string': 'text', 'none': None}[kind]\n")


@pytest.mark.parametrize("kind", ["set", "datetime", "circular", "surrogate", "bare"])
async def test_a_result_json_cannot_write_ends_the_action_as_openwhisks_launcher_does(kind: str) -> None:
    """OpenWhisk's launcher writes the result outside its try: json.dumps (or UTF-8) fails, the launcher dies with
    its traceback, and its proxy answers 400 "command exited"; the process ends after the answer."""
    async with running_proxy(KIND) as proxy:
        await proxy.init(RESULTS)
        assert await proxy.run({"kind": kind}) == (400, {"error": "command exited"})
        await proxy.until_sentinels(1)
        assert "Traceback (most recent call last):" in proxy.err
        assert any(line.startswith(("TypeError:", "ValueError:", "UnicodeEncodeError:")) for line in proxy.err)
        assert await proxy.exit_status() == 1


async def test_results_its_proxy_refuses_and_null() -> None:
    async with running_proxy(KIND) as proxy:
        await proxy.init(RESULTS)
        for kind in ("nan", "string"):      # written by the launcher, refused by its proxy: nothing logged
            assert await proxy.run({"kind": kind}) == \
                (502, {"error": "The action did not return a dictionary or array."})
        # None is written as null, as OpenWhisk's launcher does; the platform refuses that answer.
        assert await proxy.run({"kind": "none"}) == (200, None)
        await proxy.until_sentinels(3)
        assert not any(line.startswith(("Traceback", "ValueError")) for line in proxy.err)


async def test_exception_logs_its_traceback() -> None:
    async with running_proxy(KIND) as proxy:
        await proxy.init("def main(args):\n    return {'x': 1 / args['zero']}\n")
        assert await proxy.run({"zero": 0}) == (200, {"error": "division by zero"})   # an application error
        await proxy.until_sentinels(1)
        assert "Traceback (most recent call last):" in proxy.err
        assert proxy.err.index("ZeroDivisionError: division by zero") < proxy.err.index(
            "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")


async def test_exception_at_import_fails_init() -> None:
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init("import no_such_module_here\ndef main(args):\n    return {}\n")
        assert (status, body) == (502, {"error": CANNOT_START})
        await proxy.until_sentinels(1)
        assert any("No module named 'no_such_module_here'" in line for line in proxy.err)


_ENV_CHURN = """
import os, sys, uuid
sys.path.insert(0, sys.argv[1])
from _whisk_env import set_variable
def rss_kb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
def churn(n, set_):
    before = rss_kb()
    for i in range(n):
        set_("__OW_ACTIVATION_ID", uuid.uuid4().hex)
        set_("__OW_DEADLINE", str(1700000000000 + i))
        set_("__OW_TRANSACTION_ID", uuid.uuid4().hex)
    return rss_kb() - before
churn(1000, set_variable)
print(churn(50000, set_variable), churn(50000, os.environ.__setitem__))
"""


def test_per_activation_variables_do_not_grow_the_process() -> None:
    """glibc's setenv keeps every distinct value it was given: set through os.environ, 50,000 activations' fresh
    ids and deadlines cost megabytes; through _whisk_env's reused buffers, next to nothing."""
    folder = Path(whisk.runtimes.__file__).parent / "python"
    out = subprocess.run([sys.executable, "-c", _ENV_CHURN, str(folder)], capture_output=True, text=True, check=True)
    ours_kb, setenv_kb = map(int, out.stdout.split())
    assert setenv_kb > 5_000 and ours_kb < 1_000, (ours_kb, setenv_kb)


async def test_a_variable_the_action_changed_or_removed_is_the_platforms_again_next_time() -> None:
    code = ("import os, subprocess\n"
            "def main(args):\n"
            "    seen = subprocess.run(['sh', '-c', 'echo $__OW_NAMESPACE'], capture_output=True, text=True)\n"
            "    out = {'env': os.environ.get('__OW_NAMESPACE'), 'child': seen.stdout.strip()}\n"
            "    if args.get('change'):\n"
            "        os.environ['__OW_NAMESPACE'] = 'changed'\n"
            "    if args.get('remove'):\n"
            "        del os.environ['__OW_NAMESPACE']\n"
            "    return out\n")
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(code))[0] == 200
        for args in ({"change": True}, {"remove": True}, {}):
            status, seen = await proxy.run(args, namespace="guest")
            assert status == 200 and seen == {"env": "guest", "child": "guest"}, args


async def test_results_and_errors_as_openwhisks_launcher_writes_them() -> None:
    # A tuple is written as an array (json.dumps); an exception's error is str(exc), empty when it has no message.
    code = ("def main(args):\n"
            "    if args.get('raise'):\n"
            "        raise ValueError()\n"
            "    return (1, 'a')\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run({}) == (200, [1, "a"])
        assert await proxy.run({"raise": True}) == (200, {"error": ""})


async def test_a_main_that_is_no_function_fails_each_run_not_the_start() -> None:
    # OpenWhisk's launcher imports the entry point by name; calling it is what fails, as the action's error.
    async with running_proxy(KIND) as proxy:
        assert await proxy.init("main = 3\n") == (200, {"ok": True})
        assert await proxy.run({}) == (200, {"error": "'int' object is not callable"})


@pytest.mark.parametrize("silence", [
    "sys.stdout = sys.stderr = open(os.devnull, 'w')",
    "contextlib.redirect_stdout(io.StringIO()).__enter__(); contextlib.redirect_stderr(io.StringIO()).__enter__()",
    "os.dup2(os.open(os.devnull, os.O_WRONLY), 1); os.dup2(1, 2)",
], ids=["replaced", "redirected", "descriptors"])
async def test_an_action_that_silences_its_output_still_ends_each_activation(silence: str) -> None:
    """The sentinels went through sys.stdout and sys.stderr: an action that replaced them (or descriptors
    1 and 2) lost them, and each of its activations waited 2 s for its logs, got "There was an issue while collecting
    your logs" and lost its container. OpenWhisk's runtime writes them from another process."""
    code = ("import contextlib, io, os, sys\ndef main(args):\n    print('heard', flush=True)\n"
            f"    if args.get('silence'):\n        {silence}\n    print('unheard')\n    return {{}}\n")
    await silenced_and_still_ended(KIND, code)
