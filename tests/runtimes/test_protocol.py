"""The action container protocol (docs/openwhisk.md §4), the same for every runtime proxy, each run as a real child
process."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.runtimes.harness import RUN_META, SENTINEL, http_request, raw_exchange, running_proxy

# One action per behaviour, in each language.
CODE = {
    "python": {
        "echo": "def main(args):\n    print('echo', args)\n    return {'args': args}\n",
        "greet": "def greet(args):\n    return {'greeting': 'Hello ' + args.get('name', 'stranger') + '!'}\n",
        "env": ("import os\ndef main(args):\n    return {k: v for k, v in os.environ.items()\n"
                "            if k.startswith('__OW_') or k.startswith('INIT_')}\n"),
        "array": "def main(args):\n    return [1, 'two', {'three': 3}]\n",
        "app_error": "def main(args):\n    return {'error': 'no such thing'}\n",
        "exception": "def main(args):\n    raise ValueError('something broke')\n",
        "not_dict": "def main(args):\n    return 42\n",
        "no_main": "def handler(args):\n    return {}\n",
        "syntax": "def main(args)\n    return {}\n",
        "exit": "import sys\ndef main(args):\n    print('leaving')\n    sys.exit(3)\n",
        "slow": "import asyncio\nasync def main(args):\n    await asyncio.sleep(0.2)\n    return {'slow': True}\n",
        "child_env": ("import os, subprocess\ndef main(args):\n"
                      "    line = 'echo $__OW_ACTIVATION_ID $__OW_DEADLINE ${#__OW_ACTION_NAME} $TZ_SET'\n"
                      "    shell = subprocess.run(['sh', '-c', line], capture_output=True, text=True).stdout.split()\n"
                      "    os.environ['TZ_SET'] = 'by-action'\n"
                      "    return {'shell': shell, 'own': os.environ['__OW_ACTIVATION_ID']}\n"),
    },
    "nodejs": {
        "echo": "function main(args) {\n  console.log('echo', args);\n  return {args};\n}\n",
        "greet": "function greet(args) {\n  return {greeting: 'Hello ' + (args.name || 'stranger') + '!'};\n}\n",
        "env": ("function main(args) {\n  const out = {};\n  for (const [k, v] of Object.entries(process.env))\n"
                "    if (k.startsWith('__OW_') || k.startsWith('INIT_')) out[k] = v;\n  return out;\n}\n"),
        "array": "function main(args) {\n  return [1, 'two', {three: 3}];\n}\n",
        "app_error": "function main(args) {\n  return {error: 'no such thing'};\n}\n",
        "exception": "function main(args) {\n  throw new Error('something broke');\n}\n",
        "not_dict": "function main(args) {\n  return 42;\n}\n",
        "no_main": "function handler(args) {\n  return {};\n}\n",
        "syntax": "function main(args) {\n  return {;\n}\n",
        "exit": "function main(args) {\n  console.log('leaving');\n  process.exit(3);\n}\n",
        "slow": ("async function main(args) {\n  await new Promise(r => setTimeout(r, 200));\n"
                 "  return {slow: true};\n}\n"),
        "child_env": ("const {execFileSync} = require('child_process');\nfunction main(args) {\n"
                      "  const line = 'echo $__OW_ACTIVATION_ID $__OW_DEADLINE ${#__OW_ACTION_NAME} $TZ_SET';\n"
                      "  const shell = execFileSync('sh', ['-c', line]).toString().split(/\\s+/).filter(Boolean);\n"
                      "  process.env.TZ_SET = 'by-action';\n"
                      "  return {shell, own: process.env.__OW_ACTIVATION_ID};\n}\n"),
    },
}


def code(kind: str, name: str) -> str:
    return CODE[kind.split(":")[0]][name]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_init_then_run_with_params(kind: str, transport: str) -> None:
    async with running_proxy(kind, transport) as proxy:
        assert (await proxy.init(code(kind, "greet"), main="greet"))[0] == 200
        assert await proxy.run({"name": "whisk"}) == (200, {"greeting": "Hello whisk!"})
        assert await proxy.run({}) == (200, {"greeting": "Hello stranger!"})
        await proxy.until_sentinels(2)


async def test_main_defaults_to_main(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code(kind, "echo"), main=None))[0] == 200
        assert await proxy.run({"n": 1}) == (200, {"args": {"n": 1}})


async def test_env_from_init_and_run_metadata(kind: str) -> None:
    env = {"INIT_TEXT": "v", "INIT_OBJECT": {"b": [1, 2], "a": 0}, "INIT_NUMBER": 5, "INIT_NULL": None,
           "INIT_BOOL": True, "INIT_FALSE": False, "INIT_ZERO": 0}
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code(kind, "env"), env=env))[0] == 200
        status, result = await proxy.run({})
        assert status == 200
        # As OpenWhisk's runtimes export them: Node.js by toString, every false value as "" (service.js doInit);
        # Python's Go proxy as JSON, null too, a map's keys in order (actionProxy.go SetEnv).
        node = kind.startswith("nodejs")
        assert result == {"INIT_TEXT": "v", "INIT_NUMBER": "5", "INIT_BOOL": "true",
                          "INIT_OBJECT": '{"b":[1,2],"a":0}' if node else '{"a":0,"b":[1,2]}',
                          "INIT_NULL": "" if node else "null", "INIT_FALSE": "" if node else "false",
                          "INIT_ZERO": "" if node else "0",
                          **{f"__OW_{k.upper()}": v for k, v in RUN_META.items()}}
        # every activation sets its own values, and a number becomes its text
        status, result = await proxy.run({}, activation_id="second", deadline=1700000000001)
        assert (result["__OW_ACTIVATION_ID"], result["__OW_DEADLINE"]) == ("second", "1700000000001")



async def test_child_processes_see_each_activations_variables(kind: str) -> None:
    """The per-activation variables are set without setenv's leak (whisk/runtimes/python/_whisk_env.py, the
    process.env of proxy.js), and still reach the action's child processes, whatever their length."""
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code(kind, "child_env")))[0] == 200
        for n, name in enumerate(("/guest/a", "/guest/" + "b" * 300, "/guest/c")):
            activation_id = f"{n:032d}"
            status, result = await proxy.run({}, activation_id=activation_id, deadline=1700000000000 + n,
                                             action_name=name)
            assert status == 200, result
            assert result == {"shell": [activation_id, str(1700000000000 + n), str(len(name))]
                              + (["by-action"] if n else []), "own": activation_id}


async def test_array_result(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "array"))
        assert await proxy.run() == (200, [1, "two", {"three": 3}])


async def test_application_error_is_a_200_with_error(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "app_error"))
        assert await proxy.run() == (200, {"error": "no such thing"})


async def test_uncaught_exception(kind: str) -> None:
    """Python's runtime makes it the result {"error": ...} (an application error); Node.js's answers 502."""
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "exception"))
        status, body = await proxy.run()
        assert status == (200 if kind.startswith("python") else 502)
        assert set(body) == {"error"} and "something broke" in body["error"]
        await proxy.until_sentinels(1)
        assert any("something broke" in line for line in proxy.err)      # the trace is in the action's log


async def test_result_that_is_not_a_dictionary(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "not_dict"))
        status, body = await proxy.run()
        assert status == 502
        assert body["error"].startswith("The action did not return a dictionary")
        await proxy.until_sentinels(1)


async def test_missing_main_fails_init_with_sentinels(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        status, body = await proxy.init(code(kind, "no_main"))
        assert status == 502
        await proxy.until_sentinels(1)
        if kind.startswith("python"):       # OpenWhisk's Python runtime: the reason in the logs, not the answer
            assert body["error"] == "Cannot start action. Check logs for details."
            assert any("cannot import name 'main'" in line for line in proxy.err)
            assert "Command exited abruptly during initialization." in proxy.err
        else:
            assert "'main' is not a function" in body["error"]


async def test_syntax_error_fails_init(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        status, body = await proxy.init(code(kind, "syntax"))
        assert status == 502
        await proxy.until_sentinels(1)
        if kind.startswith("python"):           # OpenWhisk's compile step parses the code before it is started
            assert body["error"] == "The action failed to generate or locate a binary. See logs for details."
            assert any("SyntaxError" in line for line in proxy.err)
        else:
            assert "SyntaxError" in body["error"]


async def test_no_code_is_refused(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        assert await proxy.init("") == (403, {"error": "Missing main/no code to execute."})


async def test_second_init_is_forbidden(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code(kind, "echo")))[0] == 200
        assert await proxy.init(code(kind, "array")) == (403, {"error": "Cannot initialize the action more than once."})
        assert await proxy.run({"still": "echo"}) == (200, {"args": {"still": "echo"}})


async def test_run_before_init_is_an_error(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        status, body = await proxy.run()
        assert status not in (200, 502) and isinstance(body.get("error"), str)
        await proxy.until_sentinels(1)


async def test_sentinels_follow_the_output_of_each_activation(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "echo"))
        assert proxy.sentinels() == (0, 0)                  # a successful init ends no activation
        for i in range(3):
            assert (await proxy.run({"i": i}))[0] == 200
            await proxy.until_sentinels(i + 1)
        assert [line == SENTINEL for line in proxy.out] == [False, True] * 3
        assert all(proxy.out[2 * i].startswith("echo") and str(i) in proxy.out[2 * i] for i in range(3))
        assert proxy.err == [SENTINEL] * 3


async def test_keep_alive_serves_many_requests_on_one_connection(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        with proxy.raw_connection() as (sock, buffer):
            init = {"value": {"name": "echo", "main": "main", "code": code(kind, "echo"), "binary": False}}
            status, _, headers = raw_exchange(sock, http_request("/init", init), buffer)
            assert status == 200 and "close" not in headers.get("connection", "")
            for i in range(5):
                status, body, headers = raw_exchange(sock, http_request("/run", {"value": {"i": i}}), buffer)
                assert (status, body.replace(b" ", b"")) == (200, b'{"args":{"i":%d}}' % i)
                assert "close" not in headers.get("connection", "")
            # Connection: close is honoured: the answer says so, then the proxy hangs up
            status, _, headers = raw_exchange(sock, http_request("/run", {"value": {}}, "Connection: close\r\n"),
                                              buffer)
            assert status == 200 and headers["connection"].lower() == "close"
            assert sock.recv(1) == b""


async def test_pipelined_requests_are_answered_in_order(kind: str) -> None:
    # Many requests in one write: each is answered, in order, whether its answer is ready at once or not.
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "echo"))
        with proxy.raw_connection() as (sock, buffer):
            requests = [http_request("/run", {"value": {"i": i}}) if i % 50 else http_request("/nowhere", {})
                        for i in range(300)]
            sock.sendall(b"".join(requests))
            for i in range(300):
                status, body, _ = raw_exchange(sock, b"", buffer)
                if i % 50:
                    assert (status, body.replace(b" ", b"")) == (200, b'{"args":{"i":%d}}' % i)
                else:
                    assert status == 404


async def test_requests_split_into_many_reads_are_read_whole(kind: str) -> None:
    # A head, a body and a chunked body's every part may arrive split anywhere, several reads each; header names in
    # any case; empty lines before a request line are skipped. A pause after each piece lets the proxy read it alone.
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "echo"))
        with proxy.raw_connection() as (sock, buffer):
            plain = b'{"value": {"split": 1}}'
            chunked = b'{"value": {"split": 2}}'
            stream = (b"\r\nPOST /run HTTP/1.1\r\nhost: localhost\r\nCONTENT-type: application/json\r\n"
                      b"content-LENGTH: %d\r\n\r\n%s" % (len(plain), plain)
                      + b"POST /run HTTP/1.1\r\nHost: localhost\r\nTRANSFER-Encoding: Chunked\r\n\r\n"
                      + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (chunked[:7], chunked[7:]))
                      + b"0\r\nX-Trailer: yes\r\n\r\n")
            for at in range(0, len(stream), 5):
                sock.sendall(stream[at:at + 5])
                await asyncio.sleep(0.002)
            for i in (1, 2):
                status, body, _ = raw_exchange(sock, b"", buffer)
                assert (status, body.replace(b" ", b"")) == (200, b'{"args":{"split":%d}}' % i)


async def test_nothing_is_answered_after_a_connection_close(kind: str) -> None:
    # A request that asks to close, with more behind it in the same write: one answer, then the end of the stream.
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "echo"))
        with proxy.raw_connection() as (sock, buffer):
            sock.sendall(http_request("/run", {"value": {"i": 0}}, "Connection: close\r\n")
                         + http_request("/run", {"value": {"i": 1}}))
            status, body, headers = raw_exchange(sock, b"", buffer)
            assert (status, headers["connection"].lower()) == (200, "close")
            while chunk := sock.recv(65536):
                buffer += chunk
            assert buffer == b""
        assert (await proxy.run({"i": 2}))[0] == 200        # served in turn, after anything the first connection ran
        await proxy.until_sentinels(2)
        echoed = [line for line in proxy.out if line.startswith("echo")]
        assert proxy.sentinels() == (2, 2) and len(echoed) == 2 and "1" not in echoed[0] + echoed[1]


async def test_an_action_that_exits_ends_the_process(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        assert (await proxy.init(code(kind, "exit")))[0] == 200
        if kind.startswith("python"):       # as OpenWhisk's Go proxy answers when its action's process ended
            assert await proxy.run() == (400, {"error": "command exited"})
            await proxy.until_sentinels(1)
        else:                               # Node.js: no answer at all
            with pytest.raises(aiohttp.ClientError):
                await proxy.run()
        assert await proxy.exit_status() == 3
        await proxy.until(lambda: "leaving" in proxy.out)     # the action's output was flushed before it died


async def test_chunked_body_and_expect_continue(kind: str) -> None:
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "echo"))
        with proxy.raw_connection() as (sock, buffer):
            body = b'{"value": {"chunked": true}}'
            head = (b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
            sock.sendall(head)
            while b"\r\n\r\n" not in buffer:                  # the interim 100 Continue comes first
                buffer += sock.recv(65536)
            assert bytes(buffer).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            del buffer[:len(b"HTTP/1.1 100 Continue\r\n\r\n")]
            status, answer, _ = raw_exchange(sock, chunks, buffer)
            assert (status, answer.replace(b" ", b"")) == (200, b'{"args":{"chunked":true}}')


async def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(kind: str) -> None:
    """A client may shut down its sending side once the request is out (HTTP/1.0 style): an action still running
    then is answered all the same, and the proxy closes the connection after."""
    import socket
    async with running_proxy(kind) as proxy:
        await proxy.init(code(kind, "slow"))
        with proxy.raw_connection() as (sock, buffer):
            sock.sendall(http_request("/run", {"value": {}, **RUN_META}))
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):                  # the answer, then the end of the connection
                buffer += chunk
        head, _, body = bytes(buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body.replace(b" ", b"") == b'{"slow":true}', buffer


@pytest.mark.parametrize("length", ["-1", "\u00b2", "ten"])
async def test_a_content_length_that_is_not_a_number_is_a_400(kind: str, length: str) -> None:
    async with running_proxy(kind) as proxy:
        with proxy.raw_connection() as (sock, buffer):
            head = f"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n".encode("latin-1")
            status, body, _ = raw_exchange(sock, head, buffer)
        assert status == 400 and b"Content-Length" in body
