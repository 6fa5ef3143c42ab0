#!/usr/bin/env python3
"""whisk's Python action runtime: OpenWhisk's action container protocol (docs/openwhisk.md §4) in one stdlib-only file.

It runs as a container's entry point and as a child process of the `process://` backend, so it imports nothing
outside the standard library and, unlike the whisk package, reads its settings from os.environ:
`WHISK_PROXY_SOCKET=/path` serves HTTP on a unix socket, else TCP on `WHISK_PROXY_HOST` (0.0.0.0) :
`WHISK_PROXY_PORT` (8080). `WHISK_API_RELAY_SOCKET`, in a container without a network, names a socket that leads
to the API host; it is served on 127.0.0.1:`WHISK_API_RELAY_PORT` (start_api_relay).

    POST /init  {"value": {name, main, code, binary, env}}   source text, or a base64 zip with __main__.py
    POST /run   {value, namespace, action_name, ..., deadline}  -> main(value) as JSON

The user's code runs in this process, on the event loop (one activation at a time); an action that exits or kills
itself takes the process with it, which the platform reports as a crash. After every /run and after a failed /init
the sentinel line goes to stdout and stderr, after the user's own output.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib.util
import inspect
import io
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
import zipfile

from _whisk_env import set_variable      # a sibling file: this directory is the script's, first on sys.path

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"

# Reasons for the statuses we send; the invoker looks only at 200 versus anything else.
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 502: "Bad Gateway"}
MAX_HEAD_BYTES = 64 * 1024

# Messages as OpenWhisk's runtimes word them (openwhisk-runtime-go's actionloop proxy, which fronts the Python
# runtime, and openwhisk-runtime-nodejs); the detail after "Invalid action:" is ours.
MORE_THAN_ONCE = "Cannot initialize the action more than once."
NO_CODE = "Missing main/no code to execute."
NOT_INITIALIZED = "no action defined yet"
NOT_A_DICTIONARY = "The action did not return a dictionary or array."
# An uncaught exception becomes the result {"error": str(exc)} with 200, an application error, as OpenWhisk's Python
# runtime answers (its launcher writes that result; docs/openwhisk.md §4). The container is kept. Node.js answers a
# throw with 502.
EXCEPTION_STATUS = 200


class InitFailure(Exception):
    """The action's code cannot be loaded; the message is the init reply's `error`."""


class Action:
    """The loaded user code: its entry point and the folder it runs in."""

    def __init__(self, main, folder: str) -> None:
        self.main = main
        self.folder = folder


class Runtime:
    """The proxy's state: no action until the first successful /init, which is then final."""

    def __init__(self) -> None:
        self.action: Action | None = None
        self.folders: list[str] = []

    # --- /init ---------------------------------------------------------------------------------------------
    def initialize(self, body: bytes) -> tuple[int, object]:
        if self.action is not None:
            return 403, {"error": MORE_THAN_ONCE}
        try:
            message = json.loads(body or b"{}")
        except ValueError as exc:
            return 400, {"error": f"Error unmarshaling request: {exc}"}
        value = message.get("value") if isinstance(message, dict) else None
        if not isinstance(value, dict):
            value = {}
        code, main = value.get("code"), value.get("main") or "main"
        if not isinstance(code, str) or not code or not isinstance(main, str):
            return 403, {"error": NO_CODE}
        export_env(value.get("env"))
        folder = tempfile.mkdtemp(prefix="action-")
        self.folders.append(folder)
        try:
            self.action = load(code, bool(value.get("binary")), main, folder)
        except InitFailure as exc:
            end_activation()
            return 502, {"error": str(exc)}
        return 200, {"ok": True}

    # --- /run ----------------------------------------------------------------------------------------------
    async def run(self, body: bytes) -> tuple[int, object]:
        try:
            message = json.loads(body or b"{}")
        except ValueError as exc:
            end_activation()
            return 400, {"error": f"Error unmarshaling request: {exc}"}
        if not isinstance(message, dict):
            message = {}
        if self.action is None:
            end_activation()
            return 500, {"error": NOT_INITIALIZED}
        value = message.get("value")
        for key, item in message.items():
            if key != "value":
                set_variable("__OW_" + key.upper(), env_text(item))
        try:
            result = self.action.main({} if value is None else value)
            if inspect.isawaitable(result):
                result = await result
        except SystemExit as exc:
            self.die(exc)
        except MemoryError:
            # Out of memory is the platform's business (a developer error, as when the container is OOM-killed),
            # not the action's own error result.
            traceback.print_exc()
            end_activation()
            return 502, {"error": "MemoryError"}
        except Exception as exc:
            traceback.print_exc()
            end_activation()
            return EXCEPTION_STATUS, {"error": str(exc) or type(exc).__name__}
        if isinstance(result, (dict, list)):
            try:
                text = json.dumps(result, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                print(f"The result is not JSON: {exc}", file=sys.stderr)
            else:
                end_activation()
                return 200, text
        else:
            print(f"The result must be a dictionary or an array but has type '{type(result).__name__}'.",
                  file=sys.stderr)
        end_activation()
        return 502, {"error": NOT_A_DICTIONARY}

    def die(self, exc: SystemExit) -> None:
        """The action called exit(): end the process now, as the user asked, with the user's output flushed."""
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        flush()
        self.cleanup()
        os._exit(code or 0)

    def cleanup(self) -> None:
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def load(code: str, binary: bool, main: str, folder: str) -> Action:
    """Write or unzip the code into `folder`, import it as module `main__` and find the entry point."""
    source = os.path.join(folder, "__main__.py")
    if binary:
        unzip(code, folder)
        if os.path.exists(os.path.join(folder, "exec")) and not os.path.exists(source):
            os.rename(os.path.join(folder, "exec"), source)     # OpenWhisk's compile step accepts `exec` too
        if not os.path.exists(source):
            raise InitFailure("Invalid action: the zip file does not include __main__.py at its root.")
        activate_virtualenv(folder)
    else:
        with open(source, "w", encoding="utf-8") as f:
            f.write(code)
    os.chdir(folder)            # OpenWhisk runs the action from its own folder; relative paths depend on it
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location("main__", source)
        if spec is None or spec.loader is None:     # no loader for the file's suffix
            raise ImportError(f"cannot load {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["main__"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:           # SystemExit too: exit() while loading is an init failure
        traceback.print_exc()
        sys.path.remove(folder)
        sys.modules.pop("main__", None)
        raise InitFailure(f"Invalid action: {type(exc).__name__}: {exc}") from exc
    entry = getattr(module, main, None)
    if not callable(entry):
        message = f"Invalid action: the entry point '{main}' is not a function in __main__.py."
        print(message, file=sys.stderr)
        raise InitFailure(message)
    return Action(entry, folder)


def unzip(code: str, folder: str) -> None:
    # The platform's cap on what the code may unpack to (WHISK_LIMIT_MAX_CODE_UNPACKED_MB); 256 MB when unset.
    try:
        cap = int(os.environ["WHISK_MAX_CODE_UNPACKED_BYTES"])
    except (KeyError, ValueError):
        cap = 256 << 20
    try:
        data = base64.b64decode(code, validate=False)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # zipfile never inflates an entry past the size its header declares (a lying entry fails its CRC),
            # so the declared sizes bound what extraction writes: over the cap, nothing is written at all.
            declared = sum(info.file_size for info in archive.infolist())
            if declared > cap:
                shutil.rmtree(folder, ignore_errors=True)
                message = (f"Invalid action: the zip file unpacks to {declared} bytes, more than the limit of "
                           f"{cap} bytes.")
                print(message, file=sys.stderr)
                raise InitFailure(message)
            try:
                archive.extractall(folder)      # extractall drops absolute paths and "..", so nothing escapes
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
                shutil.rmtree(folder, ignore_errors=True)      # a partial extraction (a lying entry, a full /tmp)
                print(f"Cannot unzip the action: {exc}", file=sys.stderr)
                raise InitFailure(f"Invalid action: the zip file cannot be unpacked ({exc}).") from exc
    except (binascii.Error, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"Cannot unzip the action: {exc}", file=sys.stderr)
        raise InitFailure(f"Invalid action: the code is not a base64-encoded zip file ({exc}).") from exc


def activate_virtualenv(folder: str) -> None:
    """A zip may carry its dependencies in `virtualenv/`, activated as OpenWhisk's launcher does."""
    venv = os.path.join(folder, "virtualenv")
    if not os.path.isdir(venv):
        return
    for script in ("bin/activate_this.py", "Scripts/activate_this.py"):
        path = os.path.join(venv, script)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    exec(compile(f.read(), path, "exec"), {"__file__": path})
            except Exception as exc:
                traceback.print_exc()
                raise InitFailure(f"Invalid action: the virtualenv cannot be activated: {exc}") from exc
            return
    message = "Invalid virtualenv. Zip file does not include 'activate_this.py'."
    print(message, file=sys.stderr)
    raise InitFailure(message)


def export_env(env: object) -> None:
    if isinstance(env, dict):
        for key, item in env.items():
            os.environ[str(key)] = env_text(item)


def env_text(item: object) -> str:
    """An environment variable's text: strings as they are, null as "", anything else as compact JSON."""
    if isinstance(item, str):
        return item
    if item is None:
        return ""
    return json.dumps(item, separators=(",", ":"))


def flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed log pipe must not fail the activation
            pass


def end_activation() -> None:
    """The user's output first, then one sentinel line on each stream (docs/openwhisk.md §4)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.write(SENTINEL)
            stream.flush()
        except (OSError, ValueError):   # a closed log pipe must not fail the activation
            pass


# --- HTTP/1.1 --------------------------------------------------------------------------------------------------
class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def response(status: int, payload: object, keep_alive: bool) -> bytes:
    body = (payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)).encode()
    close = "" if keep_alive else "Connection: close\r\n"
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{close}\r\n")
    return head.encode("latin-1") + body


async def read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]) -> bytes:
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "Bad chunk size.") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":      # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:
        return b""
    try:
        size = int(length)
    except ValueError:
        raise BadRequest(400, "Bad Content-Length.") from None
    return await reader.readexactly(size) if size > 0 else b""


class Server:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        path = path.split("?", 1)[0]
        if path not in ("/init", "/run"):
            return 404, {"error": "The requested resource does not exist."}
        if method != "POST":
            return 405, {"error": f"Method {method} is not allowed on {path}."}
        if path == "/run":
            return await self.runtime.run(body)
        return self.runtime.initialize(body)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return                                  # the client closed the connection
                except asyncio.LimitOverrunError:
                    writer.write(response(431, {"error": "Request headers too large."}, False))
                    return
                lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    writer.write(response(400, {"error": "Bad request line."}, False))
                    return
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                connection = headers.get("connection", "").lower()
                keep_alive = ("close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection)
                try:
                    body = await read_body(reader, writer, headers)
                except BadRequest as exc:
                    writer.write(response(exc.status, {"error": str(exc)}, False))
                    return
                status, payload = await self.dispatch(method, target, body)
                writer.write(response(status, payload, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()


# --- the API host in a container without a network ----------------------------------------------------------
def start_api_relay() -> None:
    """Serve the API host socket the platform gives a container without a network on its own loopback.

    Each connection to 127.0.0.1:WHISK_API_RELAY_PORT is piped to WHISK_API_RELAY_SOCKET, which the invoker relays
    to the API host, so that __OW_API_HOST can be http://127.0.0.1:<port>. Bound before the proxy listens, hence
    before any action code. On a thread of its own: the action runs on the main loop, and a synchronous call to the
    API host from it (urllib, requests) would otherwise wait for a loop it blocks itself."""
    target = os.environ.get("WHISK_API_RELAY_SOCKET")
    if not target:
        return
    listener = socket.create_server(("127.0.0.1", int(os.environ.get("WHISK_API_RELAY_PORT", "3233"))), backlog=64)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()          # pass the half-close on: the other side may still answer
        except OSError:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(target)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    async def relay() -> None:
        server = await asyncio.start_server(forward, sock=listener)
        await server.serve_forever()

    threading.Thread(target=asyncio.run, args=(relay(),), name="whisk-api-relay", daemon=True).start()


async def serve() -> None:
    start_api_relay()
    runtime = Runtime()
    server_ = Server(runtime)
    socket_path = os.environ.get("WHISK_PROXY_SOCKET")
    if socket_path:
        try:
            os.unlink(socket_path)                          # a stale socket file from an earlier run
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(server_.connection, path=socket_path, limit=MAX_HEAD_BYTES)
        os.chmod(socket_path, 0o666)                        # the invoker may run as another user than the action
    else:
        host = os.environ.get("WHISK_PROXY_HOST", "0.0.0.0")
        port = int(os.environ.get("WHISK_PROXY_PORT", "8080"))
        server = await asyncio.start_server(server_.connection, host, port, limit=MAX_HEAD_BYTES,
                                            reuse_address=True)
    stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def stop() -> None:
        if not stopped.done():
            stopped.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        # PID 1 in a container ignores SIGTERM unless it handles it (docs/testing.md, Docker)
        asyncio.get_running_loop().add_signal_handler(signum, stop)
    try:
        async with server:
            await stopped
    finally:
        runtime.cleanup()
        if socket_path:
            try:
                os.unlink(socket_path)
            except OSError:
                pass


if __name__ == "__main__":
    asyncio.run(serve())
