"""The cobra/pflag-style parser and the help text of every command."""

from __future__ import annotations

import pytest

from whisk.cli.errors import CliError, ParseError
from whisk.cli.flags import GLOBAL
from whisk.cli.grammar import Command, check_args, parse
from whisk.cli.main import ROOT, main
from whisk.cli.usage import render


def words(argv: list[str]) -> list[str]:
    return parse(ROOT, argv, GLOBAL).words


def test_command_path_skips_flags_before_and_between_words() -> None:
    assert words(["-i", "action", "-v", "list"]) == ["whisk", "action", "list"]
    assert words(["--apihost", "h", "action", "list"]) == ["whisk", "action", "list"]
    assert words(["--apihost=h", "trigger", "fire", "t"]) == ["whisk", "trigger", "fire"]


@pytest.mark.parametrize("argv,name,value", [
    (["action", "create", "a", "f.js", "--timeout", "500"], "timeout", 500),
    (["action", "create", "a", "f.js", "--timeout=500"], "timeout", 500),
    (["action", "create", "a", "f.js", "-t", "500"], "timeout", 500),
    (["action", "create", "a", "f.js", "-t500"], "timeout", 500),
    (["action", "create", "a", "f.js", "-t=500"], "timeout", 500),
    (["action", "create", "--kind", "python:3", "a", "f.js"], "kind", "python:3"),
    (["action", "list", "--limit", "0x10"], "limit", 16),          # pflag ints: Go's ParseInt(s, 0, 64)
    (["action", "list", "-l", "010"], "limit", 8),
    (["action", "list", "-l", "1_0"], "limit", 10),
    (["activation", "list", "--since", "-0b11"], "since", -3),
    (["action", "invoke", "a", "--blocking=false"], "blocking", False),
    (["action", "invoke", "a", "-b"], "blocking", True),
])
def test_flag_forms(argv: list[str], name: str, value: object) -> None:
    inv = parse(ROOT, argv, GLOBAL)
    assert inv.values[name] == value
    assert name in inv.given


def test_flags_anywhere_and_positionals_in_order() -> None:
    inv = parse(ROOT, ["action", "-t", "9", "create", "-m", "128", "a", "-i", "f.js", "-l", "2"], GLOBAL)
    assert inv.words == ["whisk", "action", "create"]
    assert inv.args == ["a", "f.js"]
    assert (inv.values["timeout"], inv.values["memory"], inv.values["logsize"]) == (9, 128, 2)
    assert inv.values["insecure"] is True
    assert inv.given == {"timeout", "memory", "insecure", "logsize"}


def test_grouped_short_bools_and_double_dash() -> None:
    inv = parse(ROOT, ["action", "invoke", "-br", "a"], GLOBAL)
    assert inv.values["blocking"] and inv.values["result"]
    inv = parse(ROOT, ["action", "invoke", "--", "-weird"], GLOBAL)
    assert inv.args == ["-weird"]


def test_defaults_are_not_given() -> None:
    inv = parse(ROOT, ["action", "create", "a", "f.js"], GLOBAL)
    assert inv.values["timeout"] == 60000 and inv.values["memory"] == 256
    assert inv.given == set()


def test_repeatable_flag_collects_values() -> None:
    inv = parse(ROOT, ["action", "update", "a", "--del-annotation", "x", "--del-annotation=y"], GLOBAL)
    assert inv.values["del-annotation"] == ["x", "y"]


def test_same_letter_means_different_flags_per_command() -> None:
    assert parse(ROOT, ["action", "create", "a", "f.js", "-l", "5"], GLOBAL).values["logsize"] == 5
    assert parse(ROOT, ["action", "list", "-l", "5"], GLOBAL).values["limit"] == 5
    assert parse(ROOT, ["activation", "get", "-l"], GLOBAL).values["last"] is True


@pytest.mark.parametrize("argv,message", [
    (["action", "list", "--bogus"], "unknown flag: --bogus"),
    (["action", "list", "-z"], "unknown shorthand flag: 'z' in -z"),
    (["action", "list", "--limit"], "flag needs an argument: --limit"),
    (["action", "list", "-l"], "flag needs an argument: 'l' in -l"),
    (["action", "list", "--limit", "x"],
     'invalid argument "x" for "-l, --limit" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (["action", "invoke", "a", "--blocking=maybe"],
     'invalid argument "maybe" for "-b, --blocking" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["action", "list", "-l", "08"],
     'invalid argument "08" for "-l, --limit" flag: strconv.ParseInt: parsing "08": invalid syntax'),
    (["action", "list", "-l", "99999999999999999999"], ('invalid argument "99999999999999999999" for "-l, --limit" '
                                                       'flag: strconv.ParseInt: parsing "99999999999999999999": '
                                                       'value out of range')),
    (["frobnicate"], 'unknown command "frobnicate" for "whisk"'),
    (["action", "create", "a", "f.js", "--param=k"], "takes its values as separate arguments"),
])
def test_parse_errors_exit_1(argv: list[str], message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(ROOT, argv, GLOBAL)
    assert message in caught.value.message
    assert caught.value.status == 1 and not caught.value.usage


@pytest.mark.parametrize("argv,err", [
    # a runnable command (SilenceErrors in wsk): only the message, no `error:`, no usage hint
    (["action", "list", "--bogus"], "unknown flag: --bogus\n"),
    (["rule", "list", "-l", "x"],
     'invalid argument "x" for "-l, --limit" flag: strconv.ParseInt: parsing "x": invalid syntax\n'),
    # a group or the root: cobra prints `Error: ...` first, then wsk the message again
    (["action", "--bogus"], "Error: unknown flag: --bogus\nunknown flag: --bogus\n"),
    (["--bogus"], "Error: unknown flag: --bogus\nunknown flag: --bogus\n"),
    # an unknown command at the root: cobra's message with suggestions and its usage line, then wsk's copy
    (["frobnicate"], ('Error: unknown command "frobnicate" for "whisk"\nRun \'whisk --help\' for usage.\n'
                      'unknown command "frobnicate" for "whisk"\n')),
    (["acton"], ('Error: unknown command "acton" for "whisk"\n\nDid you mean this?\n\taction\n\n'
                 "Run 'whisk --help' for usage.\n"
                 'unknown command "acton" for "whisk"\n\nDid you mean this?\n\taction\n\n')),
])
def test_parse_errors_are_printed_as_wsk_prints_them(argv: list[str], err: str, capsys) -> None:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", err)


def test_unknown_word_after_a_group_shows_its_help(capsys) -> None:
    """cobra only rejects unknown commands at the root; below it the group's help is shown, exit 0."""
    assert main(["action", "frobnicate"]) == 0
    assert capsys.readouterr().out == render([ROOT, ROOT.child("action")], GLOBAL)
    assert main(["help", "rule", "frobnicate"]) == 0
    assert capsys.readouterr().out == render([ROOT, ROOT.child("rule")], GLOBAL)
    assert main(["help", "frobnicate"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Unknown help topic [`frobnicate`]\nUsage:\n")


def test_check_args_messages() -> None:
    with pytest.raises(CliError, match=r"^Invalid argument\(s\)\. hint$"):
        check_args([], 1, 1, "hint")
    with pytest.raises(CliError, match=r"^Invalid argument\(s\): c, d\. hint$"):
        check_args(["a", "b", "c", "d"], 1, 2, "hint")
    check_args(["a"], 1, 2, "hint")


def test_group_alone_or_help_flag_asks_for_help() -> None:
    assert parse(ROOT, ["action"], GLOBAL).help
    assert parse(ROOT, ["action", "create", "--help"], GLOBAL).help
    assert parse(ROOT, ["-h"], GLOBAL).help
    assert parse(ROOT, ["rule", "create", "-h"], GLOBAL).help          # help wins over missing arguments
    with pytest.raises(CliError, match="unknown flag"):
        parse(ROOT, ["rule", "list", "-h", "--bogus"], GLOBAL)             # parse errors still come first


def all_commands(command: Command, path: list[Command]) -> list[list[Command]]:
    found = [path + [command]]
    for child in command.children:
        found += all_commands(child, path + [command])
    return found


COMMANDS = [p for p in all_commands(ROOT, []) if p[-1].name != "help"]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(c.name for c in p))
def test_help_of_every_command_lists_its_flags_and_exits_0(path: list[Command], capsys) -> None:
    argv = [c.name for c in path[1:]] + ["--help"]
    if argv[:1] == ["serve"]:
        return                                           # `whisk serve --help` belongs to the server entry point
    assert main(argv) == 0
    text = capsys.readouterr().out
    command = path[-1]
    assert text == render(path, GLOBAL)
    assert text.startswith((command.long or command.short) + "\nUsage:\n")
    for flag in command.flags:
        assert f"--{flag.name}" in text
        if flag.short:
            assert f"-{flag.short}, --{flag.name}" in text
    assert "-h, --help" in text
    if command.run is not None:
        usage_line = " ".join(c.name for c in path) + (" " + command.use.partition(" ")[2]).rstrip() + " [flags]"
        assert f"  {usage_line}\n" in text
    if len(path) > 1:
        assert "Global Flags:" in text and "--apihost HOST" in text and "-u, --auth KEY" in text
    for child in command.children:
        assert f"  {child.name.ljust(11)} {child.short}\n" in text


def test_root_help_lists_serve_admin_and_sdk(capsys) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for word in ("action", "activation", "trigger", "rule", "package", "namespace", "property", "list", "admin"):
        assert f"\n  {word} " in text
    assert "serve       start the server; role and settings from WHISK_* variables, see README" in text
    assert "api         work with APIs\n" in text
    assert "sdk         work with the sdk\n" in text
    assert "whisk                  start the server (same as 'whisk serve')" in text


def test_help_command_and_flag_defaults(capsys) -> None:
    assert main(["help", "action", "create"]) == 0
    text = capsys.readouterr().out
    assert "-t, --timeout LIMIT" in text and "(default 60000)" in text and "(default 256)" in text
    assert main(["property", "get", "-h"]) == 0
    assert '-o, --output string' in capsys.readouterr().out


def test_help_of_serve_is_the_servers_own(capsys) -> None:
    """`whisk help serve` (and `serve --help` after a global flag, which the client parses) says what `whisk serve
    --help` says, the WHISK_* variables, not a client usage whose global flags `serve` refuses."""
    from whisk.config import serve_help
    for argv in (["help", "serve"], ["-v", "serve", "--help"]):
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert text == serve_help(), argv
        assert "WHISK_PORT" in text and "--apihost" not in text
