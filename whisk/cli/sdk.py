"""`whisk sdk install docker|ios|bashauto` (wsk's sdk.go).

`bashauto` writes a bash completion script for this command line (`wsk_cli_bash_completion.sh` in the current
folder, or stdout with --stdout), made from the command tree, so it completes every group, command and flag there
is. `docker` and `ios` download `<API host>/blackbox.tar.gz` (unpacked to ./dockerSkeleton) and
`<API host>/OpenWhiskIOSStarterApp.zip`, as `wsk` does; whisk itself serves neither (docs/testing.md), so against
it they end in the server's 404 (an error status ends them with the server's error, where wsk's client does not look
at the status and writes whatever came).
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from pathlib import Path

from whisk.cli.client import Call
from whisk.cli.context import Context
from whisk.cli.errors import GENERAL, NETWORK, CliError, path_error
from whisk.cli.flags import GLOBAL
from whisk.cli.grammar import BOOL, HELP, Command, Flag

COMPLETION_FILE = "wsk_cli_bash_completion.sh"
COMPONENTS = "docker, ios, or bashauto"
# component -> (file on the server and on disk, folder the archive unpacks to)
DOWNLOADS = {"docker": ("blackbox.tar.gz", "dockerSkeleton"), "ios": ("OpenWhiskIOSStarterApp.zip", "")}


def _flag_words(flags: tuple[Flag, ...]) -> str:
    words = [f"--{f.name}" for f in flags] + [f"-{f.short}" for f in flags if f.short]
    return " ".join(sorted(set(words)))      # `property get --auth` is also a global flag


def completion_script(root: Command) -> str:
    """A bash completion script for `root`'s tree: the words a command path takes next, and its flags."""
    commands: list[str] = []
    flags: list[str] = []

    def walk(words: list[str], command: Command) -> None:
        key = " ".join(words)
        if command.children:
            commands.append(f'        "{key}") echo "{" ".join(sorted(c.name for c in command.children))}" ;;')
        flags.append(f'        "{key}") echo "{_flag_words((*command.flags, *GLOBAL, HELP))}" ;;')
        for child in command.children:
            walk([*words, child.name], child)

    walk([], root)
    name = root.name
    return "\n".join([
        f"# bash completion for {name}                                 -*- shell-script -*-",
        f"# made by '{name} sdk install bashauto'; load it with: source {COMPLETION_FILE}",
        "",
        f"__{name}_commands() {{",
        '    case "$1" in',
        *commands,
        "    esac",
        "}",
        "",
        f"__{name}_flags() {{",
        '    case "$1" in',
        *flags,
        "    esac",
        "}",
        "",
        f"__{name}_complete() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" path="" word i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        f'        case " $(__{name}_commands "$path") " in',
        '            *" $word "*) path="${path:+$path }$word" ;;',
        "        esac",
        "    done",
        '    if [[ "$cur" == -* ]]; then',
        f'        COMPREPLY=($(compgen -W "$(__{name}_flags "$path")" -- "$cur"))',
        "    else",
        f'        COMPREPLY=($(compgen -W "$(__{name}_commands "$path")" -- "$cur"))',
        "    fi",
        "}",
        "",
        f"complete -o default -F __{name}_complete {name}",
        "",
    ])


async def _bashauto(ctx: Context) -> None:
    script = completion_script(ctx.inv.path[0])
    if ctx.flag("stdout"):
        ctx.out.write(script)
        return
    try:
        await asyncio.to_thread(Path(COMPLETION_FILE).write_text, script, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Unable to generate '{COMPLETION_FILE}': {path_error('open', COMPLETION_FILE, exc)}") from None
    ctx.out.write(f"The bash auto-completion script ({COMPLETION_FILE}) is installed in the current directory.\n"
                  "To enable command line completion of wsk commands, source the auto completion script into your "
                  "bash environment\n")


def _exists(path: str, what: str = "file") -> CliError | None:
    if os.path.lexists(path):
        return CliError(f"The {what} '{path}' already exists.  Delete it and retry.")
    return None


async def _download(ctx: Context, component: str) -> None:
    """sdkInstall: refuse a file already there, fetch the file (no credentials), unpack the docker skeleton."""
    filename, folder = DOWNLOADS[component]
    if (exists := _exists(filename)) is not None:
        raise exists
    try:
        reply = await ctx.send(Call("GET", filename, auth=False, root=True))
    except CliError as exc:
        # Go's plain HTTP client: a transport failure is a general error here, not wsk's network one
        status = GENERAL if exc.status == NETWORK else exc.status
        raise CliError(f"Unable to retrieve '{filename}' SDK: {exc.message}", status,
                       http_status=exc.http_status) from None
    if not folder:
        try:
            await asyncio.to_thread(Path(filename).write_bytes, reply.data)
        except OSError as exc:
            raise CliError(f"Error creating SDK file '{filename}': {path_error('open', filename, exc)}") from None
        return
    if (exists := _exists(folder, "directory")) is not None:
        raise exists
    try:
        with tarfile.open(fileobj=io.BytesIO(reply.data), mode="r:gz") as archive:
            await asyncio.to_thread(archive.extractall, ".", filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CliError(f"Error untarring file '{filename}': {exc}") from None


async def install(ctx: Context) -> None:
    if len(ctx.args) != 1:
        raise CliError(f"The SDK component argument is missing. One component ({COMPONENTS}) must be specified",
                       usage=True)
    component = ctx.args[0].lower()
    if component == "bashauto":
        await _bashauto(ctx)
        return
    if component not in DOWNLOADS:
        raise CliError(f"The SDK component argument '{component}' is invalid. Valid components are docker, ios and "
                       "bashauto", usage=True)
    try:
        await _download(ctx, component)
    except CliError as exc:
        raise exc.within(f"The {component} SDK installation failed") from None
    if component == "docker":
        ctx.out.line("The docker skeleton is now installed at the current directory.")
    else:
        ctx.out.line(f"Downloaded OpenWhisk iOS starter app. Unzip '{DOWNLOADS['ios'][0]}' and open the project in "
                     "Xcode.")


GROUP = Command("sdk", "work with the sdk", children=(
    Command("install COMPONENT", "install SDK artifacts", (
        Flag("stdout", "s", BOOL, help="prints bash command completion script to stdout"),
    ), install, long="install SDK artifacts, where valid COMPONENT values are docker, ios, and bashauto"),
))
