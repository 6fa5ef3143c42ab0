#!/usr/bin/env python3
"""whisk's Python action runtime: OpenWhisk's action container protocol (docs/openwhisk.md §4) in one stdlib-only file.

It runs as a container's entry point and as a child process of the `process://` backend, so it imports nothing
outside the standard library and, unlike the whisk package, reads its settings from os.environ:
`WHISK_PROXY_SOCKET=/path` serves HTTP on a unix socket, else TCP on `WHISK_PROXY_HOST` (0.0.0.0) :
`WHISK_PROXY_PORT` (8080). `WHISK_API_RELAY_SOCKET`, in a container without a network, names a socket that leads
to the API host; it is served on 127.0.0.1:`WHISK_API_RELAY_PORT` (start_api_relay).

    POST /init  {"value": {name, main, code, binary, env}}   source text, or a base64 zip with __main__.py
    POST /run   {value, namespace, action_name, ..., deadline}  -> main(value) as JSON

The user's code runs in this process, on its main thread, one activation at a time; an action that exits or kills
itself takes the process with it, which the platform reports as a crash. After every /run and after a failed /init
the sentinel line goes to stdout and stderr, after the user's own output.

The server is a `selectors` loop, not asyncio. Importing asyncio (with ssl, logging and concurrent.futures behind it)
and what only zip actions and failures need (zipfile, base64, shutil, traceback) cost every container about 23 ms of
CPU and 8 MB of memory before any action ran (docs/performance.md); each is imported where it is needed. A `main`
that returns an awaitable runs on an event loop of the proxy's, kept from one activation to the next, and a plain
`main` may call asyncio.run itself, as in OpenWhisk's Python runtime.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable

from _whisk_env import set_variable      # a sibling file: this directory is the script's, first on sys.path

TYPE_CHECKING = False
if TYPE_CHECKING:                # annotations only: asyncio is imported when an action needs it, zipfile by a zip
    import asyncio
    import zipfile

SENTINEL = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"

# Reasons for the statuses we send; the invoker looks only at 200 versus anything else.
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 502: "Bad Gateway"}
MAX_HEAD_BYTES = 64 * 1024
READ_BYTES = 64 * 1024                # at most this much is read at a time
ACCEPT_RETRY_S = 0.1                  # after a failed accept (no descriptor left), try again this much later
Answer = tuple[int, object]           # a status and its JSON: a value, or its text (str, or UTF-8 bytes)

# Messages as OpenWhisk's runtimes word them (openwhisk-runtime-go's actionloop proxy, which fronts the Python
# runtime, and openwhisk-runtime-nodejs). A failed /init leaves its reason to the logs, as the Python runtime's image
# runs that proxy (OW_LOG_INIT_ERROR); the reasons' words are ours. That proxy first unpacks the code and runs the
# image's compile step (which activates the zip's virtualenv and parses the main module): a failure there answers
# COMPILE_FAILED; then it starts the action, and a start that fails (an import that raises) answers CANNOT_START.
CANNOT_START = "Cannot start action. Check logs for details."
COMPILE_FAILED = "The action failed to generate or locate a binary. See logs for details."
INIT_EXITED = "Command exited abruptly during initialization."
MORE_THAN_ONCE = "Cannot initialize the action more than once."
COMMAND_EXITED = "command exited"
NO_CODE = "Missing main/no code to execute."
NOT_INITIALIZED = "no action defined yet"
NOT_A_DICTIONARY = "The action did not return a dictionary or array."
# An uncaught exception becomes the result {"error": str(exc)} with 200, an application error, as OpenWhisk's Python
# runtime answers (its launcher writes that result; docs/openwhisk.md §4). The container is kept. Node.js answers a
# throw with 502.
EXCEPTION_STATUS = 200


class InitFailure(Exception):
    """The action's code cannot be loaded: the reason, logged by /init (none when a traceback was logged already)."""


class CompileFailure(InitFailure):
    """The code fails what OpenWhisk's proxy does before starting it: unpacking, the virtualenv, the syntax."""


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
        self.loop: asyncio.AbstractEventLoop | None = None      # once a main returned an awaitable
        self.exit_code: int | None = None       # the action called exit(): the process ends after this answer

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
        folder = tempfile.mkdtemp(prefix="action-")
        self.folders.append(folder)
        try:
            export_env(value.get("env"))
            self.action = load(code, bool(value.get("binary")), main, folder)
        except InitFailure as exc:
            if str(exc):
                print(exc, file=sys.stderr)
            if isinstance(exc, CompileFailure):
                end_activation()
                return 502, {"error": COMPILE_FAILED}
            print(INIT_EXITED, file=sys.stderr)
            end_activation()
            return 502, {"error": CANNOT_START}
        return 200, {"ok": True}

    # --- /run ----------------------------------------------------------------------------------------------
    def run(self, body: bytes) -> Answer:
        """The answer; a main that returned an awaitable is run to its end on the proxy's event loop."""
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
        except BaseException as exc:
            return self.failed(exc)
        if isinstance(result, (dict, list)) or not hasattr(result, "__await__"):
            return self.result(result)
        return self.event_loop().run_until_complete(self.settle(result))

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The proxy's asyncio loop for awaitable results, made at the first; the same loop every time after, so that
        what an action keeps between activations (a client session, a lock) stays on the loop it was made on."""
        if self.loop is None or self.loop.is_closed():
            import asyncio
            self.loop = asyncio.new_event_loop()
        return self.loop

    async def settle(self, pending: Awaitable[object]) -> Answer:
        import asyncio              # imported already by event_loop()
        try:
            result = await pending
        except asyncio.CancelledError:          # cancelled within the action's own code: the action's error
            return self.failed(Exception("CancelledError"))
        except BaseException as exc:
            return self.failed(exc)
        return self.result(result)

    def failed(self, exc: BaseException) -> Answer:
        if isinstance(exc, SystemExit):
            return self.die(exc)
        if isinstance(exc, MemoryError):
            # Out of memory is the platform's business (a developer error, as when the container is OOM-killed),
            # not the action's own error result.
            print_traceback()
            end_activation()
            return 502, {"error": "MemoryError"}
        if not isinstance(exc, Exception):             # Stop (SIGTERM), KeyboardInterrupt: not the action's
            raise exc
        print_traceback()
        end_activation()
        return EXCEPTION_STATUS, {"error": str(exc)}

    def result(self, result: object) -> Answer:
        # OpenWhisk's launcher writes json.dumps(result) as UTF-8, and its proxy passes on an object, an array (a
        # tuple is one) or null, which the platform then refuses; anything else (a string, a number, NaN) it answers
        # with NOT_A_DICTIONARY, nothing logged. What the launcher cannot write (a datetime, a set, a circular
        # reference, a lone surrogate) fails outside its try and ends it: "command exited", the traceback logged.
        try:
            body = json.dumps(result, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError as exc:
            if not str(exc).startswith("Out of range float values"):
                return self.crashed()
            body = b"NaN"                       # written as such by the launcher, no JSON to its proxy
        except Exception:
            return self.crashed()
        end_activation()
        if body[:1] in (b"{", b"[") or body == b"null":
            return 200, body
        return 502, {"error": NOT_A_DICTIONARY}

    def crashed(self) -> Answer:
        """OpenWhisk's launcher died of an error outside the action's main: its traceback, then the answer its proxy
        gives once the process ended; this process ends too, after the answer (`exit_now`)."""
        print_traceback()
        self.exit_code = 1
        end_activation()
        return 400, {"error": COMMAND_EXITED}

    def die(self, exc: SystemExit) -> Answer:
        """The action called exit(): the answer OpenWhisk's proxy gives once its action's process ended (400
        "command exited", a developer error); the process ends when it is written (`exit_now`), as the user asked."""
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        self.exit_code = code or 0
        end_activation()
        return 400, {"error": COMMAND_EXITED}

    def exit_now(self) -> None:
        flush()
        self.cleanup()
        os._exit(self.exit_code or 0)

    def cleanup(self) -> None:
        import shutil
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def load(code: str, binary: bool, main: str, folder: str) -> Action:
    """Write or unzip the code into `folder`, import it as module `main__` and find the entry point."""
    source = os.path.join(folder, "__main__.py")
    plain = unzip(code, folder) if binary else code.encode("utf-8")
    if plain is None:
        launcher = os.path.join(folder, "exec")
        if not os.path.exists(source) and os.path.exists(os.path.join(folder, "main__.py")) and is_script(launcher):
            # Already compiled by OpenWhisk's runtime (`-compile NAME`): the action is main__.py, and exec__.py
            # imports the entry point it was compiled for as `main` (OpenWhisk then ignores the given main).
            source = os.path.join(folder, "main__.py")
            main = compiled_entry(folder) or main
        elif os.path.exists(launcher) and not os.path.exists(source):
            os.rename(launcher, source)     # OpenWhisk's compile step accepts `exec` too
        if not os.path.exists(source):
            raise CompileFailure("Zip file does not include __main__.py at its root.")
        activate_virtualenv(folder)
    else:
        with open(source, "wb") as f:
            f.write(plain)
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
        sys.path.remove(folder)
        sys.modules.pop("main__", None)
        if isinstance(exc, SyntaxError) and exc.filename == source and not parses(source):
            # What OpenWhisk's compile step finds parsing the main module; the error's own lines, without the
            # proxy's frames. Errors only the compiler finds ("'return' outside function") fail the start.
            import traceback
            raise CompileFailure("".join(traceback.format_exception_only(exc)).rstrip("\n")) from exc
        if isinstance(exc, SystemExit):     # as the interpreter ends on exit(): no traceback, a text code printed
            raise InitFailure("" if exc.code is None or isinstance(exc.code, int) else str(exc.code)) from exc
        print_traceback()
        raise InitFailure() from exc
    if not hasattr(module, main):
        # OpenWhisk's launcher imports the entry point by name: only a missing one fails the start (one that is not
        # a function fails each run, with the TypeError as the action's error).
        raise InitFailure(f"ImportError: cannot import name '{main}' from 'main__' ({source})")
    return Action(getattr(module, main), folder)


def parses(source: str) -> bool:
    """Whether the file parses as OpenWhisk's compile step parses the main module (UTF-8, ast.parse)."""
    try:
        with open(source, "rb") as f:
            compile(f.read().decode("utf-8"), source, "exec", _ONLY_AST)
    except (SyntaxError, ValueError):       # ValueError: not UTF-8, a NUL byte
        return False
    return True


_ONLY_AST = 0x400       # ast.PyCF_ONLY_AST, without importing ast


def is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def compiled_entry(folder: str) -> str | None:
    """The function a compiled zip's launcher imports as `main` ("from main__ import NAME as main")."""
    import re
    try:
        with open(os.path.join(folder, "exec__.py"), encoding="utf-8") as f:
            found = re.search(r"^from main__ import ([A-Za-z_][A-Za-z0-9_]*) as main\s*$", f.read(), re.MULTILINE)
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


def unzip(code: str, folder: str) -> bytes | None:
    """Unpack base64 zip or tar.gz code into `folder`; the decoded bytes instead when they are neither, which
    OpenWhisk's proxy writes as the action's file and runs as its source."""
    import base64
    import binascii
    import io
    import shutil
    import zipfile
    # The platform's cap on what the code may unpack to (WHISK_LIMIT_MAX_CODE_UNPACKED_MB); 256 MB when unset.
    try:
        cap = int(os.environ["WHISK_MAX_CODE_UNPACKED_BYTES"])
    except (KeyError, ValueError):
        cap = 256 << 20
    try:
        data = base64.b64decode(code, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InitFailure(f"Cannot decode the action: {exc}") from exc
    if data[:3] == b"\x1f\x8b\x08":           # gzip, as OpenWhisk's proxy tells a tar.gz (filetype.go IsGz)
        untar(data, folder, cap)
        return None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # zipfile never inflates an entry past the size its header declares (a lying entry fails its CRC),
            # so the declared sizes bound what extraction writes: over the cap, nothing is written at all.
            declared = sum(info.file_size for info in archive.infolist())
            if declared > cap:
                shutil.rmtree(folder, ignore_errors=True)
                message = (f"Invalid action: the zip file unpacks to {declared} bytes, more than the limit of "
                           f"{cap} bytes.")
                raise CompileFailure(message)
            try:
                for info in archive.infolist():
                    extract(archive, info, folder)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
                shutil.rmtree(folder, ignore_errors=True)      # a partial extraction (a lying entry, a full /tmp)
                raise CompileFailure(f"Cannot unzip the action: {exc}") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise CompileFailure(f"Cannot unzip the action: {exc}") from exc
    return None


def extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: str) -> None:
    """One zip entry into `folder` as OpenWhisk's proxy writes it (openwhisk-runtime-go zip.go, Go's archive/zip):
    the name as its bytes, and a file's Unix mode, so that a bundled tool or script stays executable."""
    import stat
    if not info.flag_bits & 0x800:
        # zipfile reads a name not flagged UTF-8 as code page 437; Info-ZIP on Linux writes UTF-8 names unflagged.
        # Its bytes name the file, as in Go (names no UTF-8 too: os.fsdecode keeps them as surrogates).
        info.filename = os.fsdecode(info.filename.encode("cp437"))
    path = archive.extract(info, folder)        # drops absolute paths and "..", so nothing escapes
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode & 0o777 and stat.S_IFMT(mode) in (0, stat.S_IFREG) and not info.is_dir():
        os.chmod(path, mode & 0o777)


def untar(data: bytes, folder: str, cap: int) -> None:
    """Unpack a tar.gz archive into `folder` as OpenWhisk's proxy does (openwhisk-runtime-go tar.go): its folders and
    regular files, nothing else (no links, no devices). Read as a stream, each file written as it comes, at most
    `cap` bytes in all; an entry that would land outside `folder` fails the unpacking, which leaves nothing behind."""
    import io
    import shutil
    import tarfile
    import zlib
    root = os.path.abspath(folder)
    written = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                target = os.path.normpath(os.path.join(root, member.name.lstrip("/")))     # "/x" is "x", as tar
                if target == root and member.isdir():       # "./"
                    continue
                if not target.startswith(root + os.sep):
                    raise CompileFailure(f"Cannot unpack the action: the entry {member.name!r} points outside the "
                                         "archive.")
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                elif member.isreg():
                    written += member.size
                    if written > cap:
                        raise CompileFailure(f"Invalid action: the archive unpacks to more than the limit of {cap} "
                                             "bytes.")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None           # a regular file has its data
                    with source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    os.chmod(target, (member.mode & 0o777) or 0o644)
    except CompileFailure:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise CompileFailure(f"Cannot unpack the action: {exc}") from exc


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
                print_traceback()
                raise CompileFailure() from exc
            return
    raise CompileFailure("Invalid virtualenv. Zip file does not include 'activate_this.py'.")


def export_env(env: object) -> None:
    """/init's parameters as OpenWhisk's proxy exports them: strings as they are, anything else as compact JSON
    (null as "null", an object's keys in order, as Go writes a map)."""
    if isinstance(env, dict):
        for key, item in env.items():
            text = item if isinstance(item, str) else json.dumps(
                item, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
            try:
                os.environ[str(key)] = text
            except ValueError as exc:      # a name with "=" or a NUL, a value with a NUL: no process can hold it
                raise InitFailure(f"Cannot set the environment variable {str(key)!r}: {exc}") from None


def env_text(item: object) -> str:
    """An environment variable's text: strings as they are, null as "", anything else as compact JSON."""
    if isinstance(item, str):
        return item
    if item is None:
        return ""
    return json.dumps(item, separators=(",", ":"))


def print_traceback() -> None:
    """The exception being handled, to stderr, as the user's own output."""
    import traceback
    traceback.print_exc()


def flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, AttributeError):   # a closed log pipe (or the action's odd stream) must not
            pass                                        # fail the activation


# The sentinels' own descriptors, copies of 1 and 2 made before any action ran: an action that replaces or closes
# sys.stdout (a redirect_stdout left in place, a writer of its own) or points descriptor 1 elsewhere still gets its
# logs collected, as in OpenWhisk, whose sentinels another process (the runtime's proxy) writes. Not inherited.
LOG_FDS = (os.dup(1), os.dup(2))


def end_activation() -> None:
    """The user's output first, then one sentinel line on each stream (docs/openwhisk.md §4)."""
    flush()
    for fd in LOG_FDS:
        try:
            os.write(fd, SENTINEL)
        except OSError:                 # a closed log pipe must not fail the activation
            pass


# --- HTTP/1.1 --------------------------------------------------------------------------------------------------
class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def response(status: int, payload: object, keep_alive: bool) -> bytes:
    if isinstance(payload, bytes):
        body = payload
    else:
        body = (payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)).encode()
    close = "" if keep_alive else "Connection: close\r\n"
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{close}\r\n")
    return head.encode("latin-1") + body


class Request:
    """One request as its bytes arrive: the head, then a body by Content-Length or in chunks."""

    __slots__ = ("method", "target", "keep_alive", "chunked", "need", "parts", "crlf", "trailers")

    def __init__(self, method: str, target: str, keep_alive: bool, chunked: bool, length: int) -> None:
        self.method, self.target, self.keep_alive, self.chunked = method, target, keep_alive, chunked
        self.need = length          # body bytes still to come (of the current chunk when chunked)
        self.parts: list[bytes] = []
        self.crlf = False           # chunked: the CRLF after a chunk's data is next
        self.trailers = False       # chunked: the last chunk came, trailer lines up to an empty one are next


class Connection:
    """HTTP/1.1 on one connection, one request at a time (keep-alive; Content-Length or chunked bodies; Expect:
    100-continue), each answered with one write, in the same step that read its last bytes. The socket is blocking:
    it is read only when the selector says it is readable, and an answer is written whole before the next request."""

    def __init__(self, runtime: Runtime, server: Server, sock: socket.socket) -> None:
        self.runtime = runtime
        self.server = server
        self.sock: socket.socket | None = sock
        self.buffer = bytearray()
        self.request: Request | None = None

    def received(self, data: memoryview) -> None:
        self.buffer += data
        self.pump()

    def pump(self) -> None:
        """Answer every whole request in the buffer (pipelined ones too), until one closes the connection."""
        while self.sock is not None:
            try:
                if self.request is None:
                    if not self.read_head():
                        return
                    continue
                body = self.read_body()
            except BadRequest as exc:
                self.answer((exc.status, {"error": str(exc)}), False)
                return
            if body is None:
                return
            request, self.request = self.request, None
            self.answer(self.dispatch(request, body), request.keep_alive)
            if self.runtime.exit_code is not None:
                self.runtime.exit_now()

    def read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise BadRequest(431, "Request headers too large.")
            return False
        lines = self.buffer[:end].decode("latin-1").lstrip("\r\n").split("\r\n")
        del self.buffer[:end + 4]
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise BadRequest(400, "Bad request line.") from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if headers.get("expect", "").lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = 0
        if not chunked and "content-length" in headers:
            text = headers["content-length"]
            if not (text.isascii() and text.isdigit()):    # not "-1", not "²"
                raise BadRequest(400, "Bad Content-Length.")
            length = int(text)
        self.request = Request(method, target, keep_alive, chunked, length)
        return True

    def read_body(self) -> bytes | None:
        """The whole body once it is in, else None."""
        request = self.request
        assert request is not None
        while True:
            if request.need:                                # body (or chunk) bytes, as they arrive
                take = min(request.need, len(self.buffer))
                if not take:
                    return None
                request.parts.append(bytes(self.buffer[:take]))
                del self.buffer[:take]
                request.need -= take
                request.crlf = request.chunked and not request.need
                continue
            if not request.chunked:
                return b"".join(request.parts)
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return None
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 2]
            if request.crlf:                                # the CRLF after a chunk's data
                request.crlf = False
            elif request.trailers:
                if not line:
                    return b"".join(request.parts)
            else:
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest(400, "Bad chunk size.") from None
                request.need = size
                request.trailers = size == 0

    def dispatch(self, request: Request, body: bytes) -> Answer:
        path = request.target.split("?", 1)[0]
        if path not in ("/init", "/run"):
            return 404, {"error": "The requested resource does not exist."}
        if request.method != "POST":
            return 405, {"error": f"Method {request.method} is not allowed on {path}."}
        if path == "/run":
            return self.runtime.run(body)
        return self.runtime.initialize(body)

    def answer(self, outcome: Answer, keep_alive: bool) -> None:
        self.write(response(*outcome, keep_alive))
        if not keep_alive:
            self.close()                    # after what was written; nothing more is read from it

    def write(self, data: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendall(data)
        except OSError:                     # the client is gone: so is the connection
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.server.forget(self.sock)
            self.sock.close()
            self.sock = None


class Stop(BaseException):
    """SIGTERM or SIGINT: the proxy ends (its folders removed, its socket unlinked)."""


class Server:
    """The listening socket and its connections on one selector; one buffer that every read goes into (a read
    that allocated its own would cost a 64 KiB allocation each time)."""

    def __init__(self, runtime: Runtime, listener: socket.socket) -> None:
        self.runtime = runtime
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.chunk = memoryview(bytearray(READ_BYTES))
        self.tcp = listener.family in (socket.AF_INET, socket.AF_INET6)

    def serve_forever(self) -> None:
        select, chunk = self.selector.select, self.chunk
        while True:
            for key, _ in select():
                connection = key.data
                if connection is None:
                    self.accept()
                    continue
                try:
                    count = key.fileobj.recv_into(chunk)     # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    count = 0
                if count:
                    connection.received(chunk[:count])
                else:                        # the client closed (or half-closed): every whole request is answered
                    connection.close()

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError:
            # Out of descriptors (an action that leaks them) or memory: the connection stays queued and the listener
            # readable, so wait a little rather than spin, as asyncio's server does; the proxy itself goes on.
            time.sleep(ACCEPT_RETRY_S)
            return
        sock.setblocking(True)
        if self.tcp:                         # one write an answer: nothing for Nagle's algorithm to wait for
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, Connection(self.runtime, self, sock))

    def forget(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)


# --- the API host in a container without a network ----------------------------------------------------------
def start_api_relay() -> None:
    """Serve the API host socket the platform gives a container without a network on its own loopback.

    Each connection to 127.0.0.1:WHISK_API_RELAY_PORT is piped to WHISK_API_RELAY_SOCKET, which the invoker relays
    to the API host, so that __OW_API_HOST can be http://127.0.0.1:<port>. Bound before the proxy listens, hence
    before any action code. Threads with blocking sockets, off the main thread: the action runs there, and a
    synchronous call to the API host from it (urllib, requests) would otherwise wait for a server it blocks; not
    asyncio, whose import would cost every container ~8 MB and ~20 ms (the module's docstring) for a relay that
    most actions never use. The invoker's side bounds the connections (16 at a time per container)."""
    target = os.environ.get("WHISK_API_RELAY_SOCKET")
    if not target:
        return
    import threading                # only here, as asyncio would be
    try:
        listener = socket.create_server(("127.0.0.1", int(os.environ.get("WHISK_API_RELAY_PORT", "3233"))),
                                        backlog=64)
    except OSError as exc:
        # Served already in this network namespace, before any action code: by the relay container beside an image
        # built FROM ours, which runs as a blackbox image does (docs/operations.md, "Threat model").
        if exc.errno == errno.EADDRINUSE:
            return
        raise

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)   # pass the half-close on: the other side may still answer
        except OSError:                     # either end failed: end both, so the other direction's recv returns
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def forward(client: socket.socket) -> None:
        with client:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with upstream:
                try:
                    upstream.connect(target)
                except OSError:
                    return
                back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
                back.start()
                pipe(client, upstream)
                back.join()

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:                 # out of descriptors (the action's own doing): try again shortly
                time.sleep(0.05)
                continue
            threading.Thread(target=forward, args=(client,), daemon=True).start()

    threading.Thread(target=accept, name="whisk-api-relay", daemon=True).start()


def bind_unix(path: str) -> socket.socket:
    """A unix socket at `path` that any user may connect to (the invoker may run as another user than the action).

    Made so by the umask at bind, not by a chmod afterwards: the invoker takes the folder back as soon as the socket
    exists (docs/operations.md, "Threat model"), and a chmod racing that would fail and end the proxy."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o111)
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(mask)
    return sock


def listen(socket_path: str | None) -> socket.socket:
    """The listening socket: a unix socket at `socket_path`, else TCP on WHISK_PROXY_HOST:WHISK_PROXY_PORT."""
    if socket_path:
        try:
            os.unlink(socket_path)                          # a stale socket file from an earlier run
        except FileNotFoundError:
            pass
        listener = bind_unix(socket_path)
        listener.listen(128)
        return listener
    host = os.environ.get("WHISK_PROXY_HOST", "0.0.0.0")
    port = int(os.environ.get("WHISK_PROXY_PORT", "8080"))
    return socket.create_server((host, port), backlog=128)     # SO_REUSEADDR, as any server


def stop(signum: int, frame: object) -> None:
    raise Stop(signum)


def serve() -> None:
    start_api_relay()
    runtime = Runtime()
    socket_path = os.environ.get("WHISK_PROXY_SOCKET")
    # PID 1 in a container ignores SIGTERM unless it handles it (docs/testing.md, Docker)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        Server(runtime, listen(socket_path)).serve_forever()
    except Stop:
        pass
    finally:
        runtime.cleanup()
        if socket_path:
            try:
                os.unlink(socket_path)
            except OSError:
                pass


if __name__ == "__main__":
    serve()
