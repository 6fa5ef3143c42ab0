"""Installs the action environments the runtime manifest names: what actions can import, apart from whisk's own.

    python -m whisk.runtimes.environments [install | check | stage KIND TARGET | seal KIND | hash KIND] [--dir DIR]

`install` (what `make run` and `make test` do) makes each kind's folder under DIR (default: the checkout's
`.runtimes`, else `$XDG_DATA_HOME/whisk/runtimes`; WHISK_RUNTIMES_DIR for whisk itself): for pip a virtualenv of the
kind's interpreter (no access to whisk's packages) with the listed packages, wheels only; for npm a node_modules
folder. A folder whose stamp matches its inputs is left alone, so a second run takes well under a second; a changed
package list rebuilds it. `check` only says what is missing. `stage` installs a kind's packages into TARGET for a
Docker image (config/runtimes/build.sh), for the image's Python 3.11 on Linux x86_64 whatever runs this. `seal`
adopts a kind's folder whose packages were put there by such a staging (the whisk image, deploy/image.sh): for pip it
makes the virtualenv around the copied site-packages, then stamps the folder. `hash` prints the hash of what a kind's
folder is made from (its stamp, by which build.sh keys a staged folder).

Standard library only, so that a Python without whisk's dependencies can run it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

from whisk.runtimes.manifest import Environment, Runtime, default_environments, load_manifest

# The Python a pip environment is made from: Debian's own first (the same as the python:3.11 Docker image's, and
# outside /root, which a sandboxed action cannot enter), else the first of that name on PATH.
SYSTEM_BIN = "/usr/bin"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux1_x86_64",
                   "manylinux_2_5_x86_64")


class InstallError(RuntimeError):
    """An environment cannot be made; the message says why and what to do."""


def say(text: str) -> None:
    print(f"runtimes: {text}", flush=True)


def inputs_hash(environment: Environment, interpreter: str = "") -> str:
    """What the folder is made from: a different hash means it must be made again."""
    digest = hashlib.sha256()
    digest.update(json.dumps([environment.installer, environment.packages, interpreter]).encode())
    if environment.constraints:
        with open(environment.constraints, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def interpreter_of(environment: Environment) -> str:
    name = environment.interpreter
    system = os.path.join(SYSTEM_BIN, name)
    found = system if os.access(system, os.X_OK) else shutil.which(name)
    if not found:
        raise InstallError(f"{environment.name}: no {name} found (in {SYSTEM_BIN} or on PATH); install it "
                                f"(Debian: apt-get install {name}) and run this again")
    return found


def is_installed(environment: Environment) -> bool:
    try:
        with open(environment.stamp, encoding="utf-8") as f:
            stamp = f.read().strip()
    except OSError:
        return False
    if environment.installer == "pip":
        try:
            return stamp == inputs_hash(environment, interpreter_of(environment))
        except InstallError:
            return False
    return stamp == inputs_hash(environment)


def missing_message(runtime: Runtime) -> str:
    """What to tell someone whose environment is not there (whisk does not fall back to its own packages)."""
    env = runtime.environment
    assert env is not None
    return (f"The {runtime.kind} action environment is not installed in {env.path}: run `make runtimes` in whisk's "
            f"checkout, or `python -m whisk.runtimes.environments install --dir {os.path.dirname(env.path)}`.")


def run(argv: list[str], **kwargs) -> None:
    result = subprocess.run(argv, **kwargs)
    if result.returncode != 0:
        raise InstallError(f"{' '.join(argv[:4])} ... failed with status {result.returncode}")


def pip_requirements(environment: Environment) -> list[str]:
    args = [f"{name}=={version}" for name, version in environment.packages]
    if environment.constraints:
        args = ["-c", environment.constraints, *args]
    return args


def pip_command() -> list[str]:
    """pip of the Python running this (it installs into another interpreter with --python, pip >= 22.3)."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise InstallError(f"{sys.executable} has no pip; run this with whisk's virtualenv (.venv/bin/python)")
    return [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def install_pip(environment: Environment) -> str:
    base = interpreter_of(environment)
    shutil.rmtree(environment.path, ignore_errors=True)
    say(f"{environment.name}: virtualenv of {base} in {environment.path}")
    run([base, "-m", "venv", "--without-pip", environment.path])
    python = os.path.join(environment.path, "bin", "python3")
    if not environment.packages:
        return inputs_hash(environment, base)
    say(f"{environment.name}: pip install {len(environment.packages)} packages (wheels only)")
    run([*pip_command(), "--python", python, "install", "--quiet", "--only-binary=:all:", "--no-warn-script-location",
         *pip_requirements(environment)])
    return inputs_hash(environment, base)


def install_npm(environment: Environment) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(f"{environment.name}: npm is not installed (Debian: apt-get install npm)")
    shutil.rmtree(environment.path, ignore_errors=True)
    os.makedirs(environment.path)
    write_package_json(environment, environment.path)
    say(f"{environment.name}: npm install {len(environment.packages)} packages in {environment.path}")
    run([npm, "install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
        cwd=environment.path)
    return inputs_hash(environment)


def write_package_json(environment: Environment, folder: str) -> None:
    document = {"name": f"whisk-{environment.name}", "private": True, "description":
                "The modules whisk's actions can require (runtimes.json); made by whisk.runtimes.environments",
                "dependencies": dict(environment.packages)}
    with open(os.path.join(folder, "package.json"), "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)


@contextlib.contextmanager
def locked(folder: str) -> Iterator[None]:
    """One installer at a time per folder (make test and make run may start together)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def install(runtimes: list[Runtime], folder: str) -> None:
    with locked(folder):
        for runtime in runtimes:
            env = runtime.environment
            if env is None:
                continue
            if is_installed(env):
                say(f"{env.name}: up to date ({env.path})")
                continue
            started = time.monotonic()
            stamp = install_pip(env) if env.installer == "pip" else install_npm(env)
            with open(env.stamp, "w", encoding="utf-8") as f:
                f.write(stamp + "\n")
            say(f"{env.name}: installed in {time.monotonic() - started:.1f} s")


def stage(runtime: Runtime, target: str) -> None:
    """The kind's packages in TARGET, for an image: site-packages for Python 3.11 (cp311, manylinux x86_64 wheels),
    or node_modules. TARGET is made anew."""
    env = runtime.environment
    if env is None:
        raise InstallError(f"{runtime.kind} has no environment")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    if env.installer == "pip":
        version = env.interpreter.removeprefix("python")
        abi = "cp" + version.replace(".", "")
        platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
        run([*pip_command(), "install", "--quiet", "--no-warn-conflicts", "--target", target, "--only-binary=:all:",
             "--implementation",
             "cp", "--python-version", version, "--abi", abi, *platforms, "--no-warn-script-location",
             *pip_requirements(env)])
    else:
        npm = shutil.which("npm")
        if npm is None:
            raise InstallError("npm is not installed (Debian: apt-get install npm)")
        write_package_json(env, target)
        run([npm, "install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
            cwd=target)


def seal(runtime: Runtime) -> None:
    env = runtime.environment
    if env is None:
        raise InstallError(f"{runtime.kind} has no environment")
    if env.installer == "pip":
        base = interpreter_of(env)
        run([base, "-m", "venv", "--without-pip", env.path])       # keeps the site-packages already there
        stamp = inputs_hash(env, base)
    else:
        if not os.path.isdir(os.path.join(env.path, "node_modules")):
            raise InstallError(f"{env.name}: no node_modules in {env.path} to seal")
        stamp = inputs_hash(env)
    with open(env.stamp, "w", encoding="utf-8") as f:
        f.write(stamp + "\n")
    say(f"{env.name}: sealed {env.path}")


def main(argv: list[str] | None = None) -> int:
    # The whole docstring but its last line: what each command does is its second paragraph.
    parser = argparse.ArgumentParser(prog="python -m whisk.runtimes.environments",
                                     description=__doc__.rsplit("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="install", choices=("install", "check", "stage", "seal", "hash"))
    parser.add_argument("kind", nargs="?", help="stage, seal, hash: the kind (e.g. python:3.11)")
    parser.add_argument("target", nargs="?", help="stage: the folder to fill")
    parser.add_argument("--dir", default=os.environ.get("WHISK_RUNTIMES_DIR") or default_environments(os.environ),
                        help="where the environments live (default: WHISK_RUNTIMES_DIR, else the checkout's .runtimes,"
                             " else $XDG_DATA_HOME/whisk/runtimes)")
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.dir)
    manifest = load_manifest(environments=folder)
    try:
        if args.command == "install":
            install(manifest.runtimes(), folder)
        elif args.command == "check":
            missing = [r for r in manifest.runtimes() if r.environment and not is_installed(r.environment)]
            for runtime in missing:
                print(missing_message(runtime), file=sys.stderr)
            return 1 if missing else 0
        elif args.command == "seal":
            seal(manifest.resolve(args.kind or ""))
        elif args.command == "hash":        # what build.sh keys a staged folder by
            runtime = manifest.resolve(args.kind or "")
            print(inputs_hash(runtime.environment) if runtime.environment else "none")
        else:
            if not (args.kind and args.target):
                parser.error("stage needs a kind and a target folder")
            stage(manifest.resolve(args.kind), os.path.abspath(args.target))
    except InstallError as exc:
        print(f"runtimes: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
