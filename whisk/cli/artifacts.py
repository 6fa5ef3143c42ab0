"""Action code on disk: the `exec` an artifact file makes (kind from the extension, zip/jar/balx as base64) and
`action get --save` writing it back (wsk's action.go)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from pathlib import Path
from typing import Any

from whisk.cli.arguments import reading
from whisk.cli.errors import CliError, path_error, usage_error

KIND_BY_EXTENSION = {
    ".swift": "swift:default", ".js": "nodejs:default", ".py": "python:default", ".jar": "java:default",
    ".php": "php:default", ".rb": "ruby:default", ".rs": "rust:default", ".go": "go:default",
    ".balx": "ballerina:default",
}
BINARY_EXTENSIONS = (".zip", ".jar", ".balx")
SOURCE_EXTENSION = {"nodejs": ".js", "python": ".py", "swift": ".swift", "php": ".php", "ruby": ".rb",
                    "rust": ".rs", "go": ".go"}
BINARY_EXTENSION = {"java": ".jar", "ballerina": ".balx"}
NATIVE_IMAGE = "openwhisk/dockerskeleton"


def extension(path: str) -> str:
    """Go's filepath.Ext: from the last dot of the last element ("" when none)."""
    base = path.replace(os.sep, "/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""


def no_artifact() -> CliError:
    return usage_error("An action name and code artifact are required.")


async def read_code(path: str) -> str:
    """The artifact as `exec.code`: text, or base64 for .zip/.jar/.balx."""
    def read() -> bytes:
        return Path(path).read_bytes()
    with reading(path):
        data = await asyncio.to_thread(read)
    if extension(path) in BINARY_EXTENSIONS:
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", errors="replace")


async def build_exec(artifact: str | None, *, kind: str, docker: str, native: bool, main: str) -> dict[str, Any]:
    """`getExec`: the exec of `action create|update NAME [ARTIFACT]` with --kind/--docker/--native/--main."""
    exec_: dict[str, Any] = {}
    ext = ""
    if artifact is not None:
        ext = extension(artifact)
        exec_["code"] = await read_code(artifact)
    elif not docker:
        raise no_artifact()
    if kind:
        exec_["kind"] = kind
    elif docker or native:
        exec_["kind"] = "blackbox"
        exec_["image"] = NATIVE_IMAGE if native else docker
    elif ext in KIND_BY_EXTENSION:
        exec_["kind"] = KIND_BY_EXTENSION[ext]
    elif ext == ".zip":
        raise usage_error("creating an action from a .zip artifact requires specifying the action kind explicitly")
    else:
        raise usage_error(f"'{ext}' is not a supported action runtime")
    if main:
        exec_["main"] = main
    elif exec_["kind"] == "java":
        raise usage_error("Java actions require --main to specify the fully-qualified name of the main class")
    # The Go client's struct order: kind, code, image, main.
    return {k: exec_[k] for k in ("kind", "code", "image", "main") if k in exec_}


def save_target(action: dict[str, Any], filename: str) -> tuple[str, bytes]:
    """(file name, content) for `get --save` / `--save-as FILE`, with `wsk`'s refusals."""
    exec_ = found if isinstance(found := action.get("exec"), dict) else {}
    runtime = str(exec_.get("kind", "")).split(":")[0].lower()
    code = exec_.get("code")
    binary = exec_.get("binary") is True
    if runtime == "blackbox" and code is None and not binary:
        raise usage_error("Cannot save Docker images")
    if runtime == "sequence":
        raise usage_error("Cannot save action sequences")
    text = code if isinstance(code, str) else ""
    if binary:
        try:
            content = base64.b64decode(text)
        except (binascii.Error, ValueError):
            content = b""
        filename = filename or f"{action.get('name', '')}{BINARY_EXTENSION.get(runtime, '.zip')}"
    else:
        content = text.encode("utf-8")
        filename = filename or f"{action.get('name', '')}{SOURCE_EXTENSION.get(runtime, '')}"
    return filename, content


async def save(filename: str, content: bytes) -> str:
    """Write a new file (never overwrite); returns the path `wsk` reports."""
    def write() -> None:
        with open(filename, "xb") as file:
            file.write(content)
    try:
        await asyncio.to_thread(write)
    except FileExistsError:
        raise usage_error(f"The file '{filename}' already exists") from None
    except OSError as exc:
        raise usage_error(f"Cannot create file '{filename}': {path_error('open', filename, exc)}") from None
    return os.path.join(os.getcwd(), filename)
