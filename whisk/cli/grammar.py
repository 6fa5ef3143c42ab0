"""A small cobra/pflag-style parser: a tree of commands, each with its own flags, plus global flags everywhere.

GNU style as `wsk` (cobra, pflag): flags anywhere after the command words, `--f v`, `--f=v`, `-f v`, `-fv`,
grouped short bools (`-br`), bools take no value (`--f=false` allowed), `--` ends the flags, `-h/--help` on every
command. Errors carry cobra's wording and exit 1, shown as cobra and `wsk` show them (errors.ParseError): an
unknown word after the root is an error with cobra's suggestions; after a group (`action frobnicate`) it shows
the group's help, as cobra does for any command but the root.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from whisk.cli.errors import CliError, ParseError

BOOL, STRING, INT, STRINGS = "bool", "string", "int", "stringArray"
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


@dataclass(frozen=True, slots=True)
class Flag:
    name: str                   # the long name, also the key of Invocation.values
    short: str = ""
    kind: str = BOOL
    default: Any = None
    help: str = ""              # one `NAME` in backquotes names the value in the help text
    prepass: bool = False       # -p/-P/-a/-A/-F/-T: removed before parsing (arguments.py), listed in help only

    def zero(self) -> Any:
        if self.default is not None:
            return self.default
        return {BOOL: False, STRING: "", INT: 0, STRINGS: []}[self.kind]


HELP = Flag("help", "h", BOOL, help="help for {name}")


@dataclass(slots=True)
class Command:
    use: str                                        # "create ACTION_NAME ACTION": the name, then the arguments
    short: str
    flags: tuple[Flag, ...] = ()
    run: Callable[[Any], Awaitable[None]] | None = None
    children: tuple[Command, ...] = ()
    long: str = ""
    usage: tuple[str, ...] = ()                     # extra usage lines (the root's)

    @property
    def name(self) -> str:
        return self.use.split()[0]

    def child(self, name: str) -> Command | None:
        return next((c for c in self.children if c.name == name), None)


@dataclass(slots=True)
class Invocation:
    path: list[Command]
    args: list[str]
    values: dict[str, Any]
    given: set[str] = field(default_factory=set)
    help: bool = False

    @property
    def command(self) -> Command:
        return self.path[-1]

    @property
    def words(self) -> list[str]:
        return [c.name for c in self.path]


def _parse_error(message: str) -> ParseError:
    return ParseError(message)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, case-insensitive (cobra's `ld(a, b, true)`)."""
    a, b = a.lower(), b.lower()
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[len(b)]


def _suggestions(command: Command, typed: str) -> str:
    """cobra's findSuggestions: commands within distance 2 or starting with what was typed."""
    names = [c.name for c in command.children if c.name != "help"
             and (_distance(typed, c.name) <= 2 or c.name.lower().startswith(typed.lower()))]
    return "".join(["\n\nDid you mean this?\n", *(f"\t{n}\n" for n in names)]) if names else ""


def _flag_label(flag: Flag) -> str:
    return f"-{flag.short}, --{flag.name}" if flag.short else f"--{flag.name}"


def _convert(flag: Flag, text: str, shown_as: str) -> Any:
    if flag.kind == BOOL:
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _parse_error(f'invalid argument "{text}" for "{shown_as}" flag: strconv.ParseBool: parsing '
                           f'"{text}": invalid syntax')
    if flag.kind == INT:
        problem, value = _go_int(text)
        if problem:
            raise _parse_error(f'invalid argument "{text}" for "{shown_as}" flag: strconv.ParseInt: parsing '
                               f'"{text}": {problem}')
        return value
    return text


_GO_INT = re.compile(r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*"
                     r"|[1-9](?:_?[0-9])*)")


def _go_int(text: str) -> tuple[str, int]:
    """pflag's int flags: Go's strconv.ParseInt(text, 0, 64) (0x/0o/0b prefixes, a leading 0 is octal, `_`
    between digits); returns (problem, value) with problem "" when it parses."""
    if not _GO_INT.fullmatch(text):
        return "invalid syntax", 0
    digits = text.lstrip("+-").replace("_", "")
    octal = len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXoObB"
    value = int(digits, 8) if octal else int(digits, 0)
    value = -value if text.startswith("-") else value
    if not -(2 ** 63) <= value < 2 ** 63:
        return "value out of range", 0
    return "", value


class _Parser:
    def __init__(self, flags: tuple[Flag, ...]) -> None:
        self.long = {f.name: f for f in flags}
        self.short = {f.short: f for f in flags if f.short}
        self.values: dict[str, Any] = {f.name: f.zero() for f in flags}
        self.given: set[str] = set()

    def _set(self, flag: Flag, value: Any) -> None:
        if flag.prepass:
            raise _parse_error(f"flag '--{flag.name}' takes its values as separate arguments "
                               f"(-{flag.short} or --{flag.name} followed by them)")
        if flag.kind == STRINGS:
            self.values[flag.name] = [*self.values[flag.name], value]
        else:
            self.values[flag.name] = value
        self.given.add(flag.name)

    def takes_value(self, token: str) -> bool:
        """Whether a flag token consumes the next token while the command path is still being found: as cobra
        assumes, yes unless it is a known bool, has `=value`, or is a short flag with its value attached."""
        if "=" in token:
            return False
        if token.startswith("--"):
            flag = self.long.get(token[2:])
        elif len(token) == 2:
            flag = self.short.get(token[1])
        else:
            return False
        return flag is None or flag.kind != BOOL

    def parse(self, tokens: list[str]) -> list[str]:
        positional: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token == "--":
                positional.extend(tokens[i:])
                break
            if token.startswith("--"):
                name, eq, text = token[2:].partition("=")
                flag = self.long.get(name)
                if flag is None:
                    raise _parse_error(f"unknown flag: --{name}")
                if flag.kind == BOOL:
                    self._set(flag, _convert(flag, text, _flag_label(flag)) if eq else True)
                elif eq:
                    self._set(flag, _convert(flag, text, _flag_label(flag)))
                elif i < len(tokens):
                    self._set(flag, _convert(flag, tokens[i], _flag_label(flag)))
                    i += 1
                else:
                    raise _parse_error(f"flag needs an argument: --{name}")
            elif token.startswith("-") and len(token) > 1:
                i = self._shorts(token, tokens, i)
            else:
                positional.append(token)
        return positional

    def _shorts(self, token: str, tokens: list[str], i: int) -> int:
        letters = token[1:]
        j = 0
        while j < len(letters):
            letter = letters[j]
            flag = self.short.get(letter)
            if flag is None:
                raise _parse_error(f"unknown shorthand flag: '{letter}' in {token}")
            rest = letters[j + 1:]
            if flag.kind == BOOL:
                if rest.startswith("="):
                    self._set(flag, _convert(flag, rest[1:], _flag_label(flag)))
                    return i
                self._set(flag, True)
                j += 1
                continue
            if rest:
                self._set(flag, _convert(flag, rest.removeprefix("="), _flag_label(flag)))
            elif i < len(tokens):
                self._set(flag, _convert(flag, tokens[i], _flag_label(flag)))
                i += 1
            else:
                raise _parse_error(f"flag needs an argument: '{letter}' in -{letter}")
            return i
        return i


def parse(root: Command, argv: list[str], global_flags: tuple[Flag, ...]) -> Invocation:
    """Find the command named by the leading words, then parse every other token against its flags."""
    path = [root]
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        current = path[-1]
        if token == "--" or not current.children:
            rest.extend(argv[i:])
            break
        if token.startswith("-") and len(token) > 1:
            skip = 2 if _Parser((*global_flags, *current.flags, HELP)).takes_value(token) else 1
            rest.extend(argv[i:i + skip])
            i += skip
            continue
        child = current.child(token)
        if child is None:
            if len(path) == 1:
                raise ParseError(f'unknown command "{token}" for "{root.name}"{_suggestions(root, token)}',
                                 echoed=True, hint=True)
            rest.extend(argv[i:])       # a group's unknown word: cobra shows the group's help
            break
        path.append(child)
        i += 1
    command = path[-1]
    parser = _Parser((*global_flags, *command.flags, HELP))
    try:
        positional = parser.parse(rest)
    except ParseError as exc:
        exc.echoed = command.run is None        # runnable commands have SilenceErrors, groups and the root not
        raise
    help_wanted = bool(parser.values.pop("help")) or command.run is None
    parser.given.discard("help")
    return Invocation(path, positional, parser.values, parser.given, help_wanted)


def check_args(args: list[str], low: int, high: int, hint: str) -> None:
    """`wsk`'s CheckArgs: too few -> "Invalid argument(s). <hint>", too many -> "Invalid argument(s): a, b. <hint>"."""
    if len(args) < low:
        raise CliError(f"Invalid argument(s). {hint}", usage=True)
    if len(args) > high:
        raise CliError(f"Invalid argument(s): {', '.join(args[high:])}. {hint}", usage=True)
