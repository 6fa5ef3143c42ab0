"""Help text in cobra's layout (what `wsk <command> --help` prints): description, usage line, sub-commands,
local flags, global flags, each flag line formatted as pflag does."""

from __future__ import annotations

import re

from whisk.cli.grammar import BOOL, HELP, STRING, Command, Flag

_VARNAME = re.compile(r"`([^`]*)`")
_MIN_NAME_PADDING = 11


def _flag_lines(flags: list[Flag], command_name: str) -> list[str]:
    rows: list[tuple[str, str]] = []
    for flag in sorted(flags, key=lambda f: f.name):
        text = flag.help.replace("{name}", command_name)
        match = _VARNAME.search(text)
        if match:
            varname = match.group(1)
            text = text[:match.start()] + varname + text[match.end():]
        else:
            varname = "" if flag.kind == BOOL else flag.kind
        head = f"  -{flag.short}, --{flag.name}" if flag.short else f"      --{flag.name}"
        if varname:
            head += f" {varname}"
        default = flag.default
        if default not in (None, "", 0, False, []):
            text += f' (default "{default}")' if flag.kind == STRING else f" (default {default})"
        rows.append((head, text))
    width = max(len(head) for head, _ in rows)
    return [f"{head.ljust(width)}   {text}".rstrip() for head, text in rows]


def render(path: list[Command], global_flags: tuple[Flag, ...]) -> str:
    """The help of the last command of `path` (path[0] is the root)."""
    command = path[-1]
    words = " ".join(c.name for c in path)
    lines = [(command.long or command.short).rstrip(), "Usage:"]
    for extra in command.usage:
        lines.append(f"  {extra}")
    if command.run is not None:
        args = command.use.partition(" ")[2]
        lines.append(f"  {words}{' ' + args if args else ''} [flags]")
    if command.children:
        lines.append(f"  {words} [command]")
        lines.append("")
        lines.append("Available Commands:")
        width = max(_MIN_NAME_PADDING, *(len(c.name) for c in command.children))
        for child in sorted(command.children, key=lambda c: c.name):
            lines.append(f"  {child.name.ljust(width)} {child.short}")
    local = [*command.flags, HELP] if len(path) > 1 else [*global_flags, HELP]
    lines.append("")
    lines.append("Flags:")
    lines.extend(_flag_lines(local, command.name))
    if len(path) > 1:
        lines.append("")
        lines.append("Global Flags:")
        lines.extend(_flag_lines(list(global_flags), command.name))
    if command.children:
        lines.append("")
        lines.append(f'Use "{words} [command] --help" for more information about a command.')
    return "\n".join(lines) + "\n"
