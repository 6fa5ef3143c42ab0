"""Settings: read once from the environment; a bad value names its variable (whisk/config.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from whisk.config import ConfigError, Settings, default_text, redact, variables


def test_defaults_are_openwhisks() -> None:
    s = Settings.from_env({"HOME": "/home/u"})
    assert (s.role, s.host, s.port, s.instance) == ("standalone", "127.0.0.1", 3233, 0)
    assert s.store_url == "sqlite:///home/u/.local/share/whisk/whisk.db"
    assert (s.bus_url, s.discovery_url, s.containers_url) == ("memory://", "local://", "process://")
    assert (s.invocations_per_minute, s.concurrent_invocations, s.fires_per_minute, s.sequence_length) == \
        (60, 30, 60, 50)
    assert (s.min_action_memory, s.std_action_memory, s.max_action_memory) == (128, 256, 512)
    assert (s.min_action_timeout, s.std_action_timeout, s.max_action_timeout) == (100, 60_000, 300_000)
    assert s.runs_controller and s.runs_invoker
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("env, message", [
    ({"WHISK_ROLE": "worker"}, "WHISK_ROLE: 'worker' is not one of controller, invoker, standalone"),
    ({"WHISK_PORT": "http"}, "WHISK_PORT: invalid literal"),
    ({"WHISK_PORT": "70000"}, "WHISK_PORT: 70000 is above the maximum 65535"),
    ({"WHISK_PORT": "0"}, "WHISK_PORT: 0 is below the minimum 1"),     # the server's URL would say port 0
    ({"WHISK_STORE": "mysql://x"}, "WHISK_STORE: unsupported scheme 'mysql'"),
    ({"WHISK_POOL_PREWARM": "maybe"}, "WHISK_POOL_PREWARM: not a boolean"),
    ({"WHISK_LIMIT_STD_ACTION_MEMORY": "1024"}, "WHISK_LIMIT_STD_ACTION_MEMORY: 1024 must lie between"),
    # Servers checked here, not by a traceback from the adapter; a password or token is never repeated.
    ({"WHISK_STORE": "mysql://admin:pw@db"}, "WHISK_STORE: unsupported scheme 'mysql' in 'mysql://admin:***@db'"),
    ({"WHISK_STORE": "couchdb://admin:pw@db:99999"}, "WHISK_STORE: Port out of range 0-65535 in "
                                                      "'couchdb://admin:***@db:99999'"),
    ({"WHISK_BUS": "kafka://127.0.0.1:9092,k2:port"}, "WHISK_BUS: Port could not be cast to integer value as 'port'"),
    ({"WHISK_BUS": "kafka://"}, "WHISK_BUS: a kafka:// URL needs a host"),
    ({"WHISK_BUS": "kafka://u:pw@k:9092"}, "WHISK_BUS: kafka:// takes no user or password"),
    ({"WHISK_DISCOVERY": "consul://token@"}, "WHISK_DISCOVERY: a consul:// URL needs a host (host:port) in "
                                             "'consul://***@'"),
])
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_redact_hides_passwords_and_tokens() -> None:
    assert redact("couchdb://admin:pw@db:5984/whisk_") == "couchdb://admin:***@db:5984/whisk_"
    assert redact("consul://token@consul:8500") == "consul://***@consul:8500"
    assert redact("kafka://k1:9092,k2:9092") == "kafka://k1:9092,k2:9092"


def test_the_program_stops_with_one_line_and_status_2() -> None:
    done = subprocess.run([sys.executable, "-m", "whisk"], env={"WHISK_ROLE": "worker", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "whisk: configuration error: WHISK_ROLE: 'worker' is not one of controller, invoker, standalone"]


def test_with_json_logs_the_reason_to_stop_is_one_json_line() -> None:
    """A collector parses every line of a json-logging process: the line an operator looks for first is one too."""
    done = subprocess.run([sys.executable, "-m", "whisk"], capture_output=True, text=True, timeout=30,
                          env={"WHISK_ROLE": "worker", "WHISK_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    (line,) = [json.loads(text) for text in done.stderr.strip().splitlines()]
    assert line["event"] == "server.failed" and line["level"] == "critical" and line["exit_status"] == 2, line
    assert line["error"] == ("configuration error: WHISK_ROLE: 'worker' is not one of controller, invoker, "
                             "standalone"), line


def test_every_setting_is_listed_for_help() -> None:
    names = [name for name, _, _ in variables()]
    assert len(names) == len(set(names)) and all(n.startswith("WHISK_") for n in names)
    assert {"WHISK_ROLE", "WHISK_STORE", "WHISK_BUS", "WHISK_DISCOVERY", "WHISK_CONTAINERS",
            "WHISK_LIMIT_INVOCATIONS_PER_MINUTE", "WHISK_POOL_MEMORY_MB"} <= set(names)


def test_serve_help_shows_what_an_unset_variable_means() -> None:
    done = subprocess.run([sys.executable, "-m", "whisk", "serve", "--help"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0
    shown = {line.split()[0]: line.split("default: ", 1)[1] for line in done.stdout.splitlines()
             if line.startswith("  WHISK_")}
    assert set(shown) == {name for name, _, _ in variables()}
    assert shown["WHISK_PORT"] == "3233"
    assert shown["WHISK_DATA_DIR"] == "$XDG_DATA_HOME/whisk, else ~/.local/share/whisk"
    assert shown["WHISK_STORE"] == "sqlite://<WHISK_DATA_DIR>/whisk.db"
    assert "''" not in shown.values()


def test_the_operations_guide_lists_every_setting_with_its_default() -> None:
    """docs/operations.md's settings table, which an operator deploys from, names every variable config.py reads,
    with the default `whisk serve --help` shows."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]

    def norm(value: str) -> str:
        return value.replace("`", "").replace("'", "").strip().lower()

    documented: dict[str, str] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        names = re.findall(r"`(WHISK_[A-Z_]+)`", cells[0]) if len(cells) == 3 else []
        if not names:
            continue
        defaults = re.findall(r"`([^`]*)`", cells[1])
        each = defaults if len(names) > 1 and len(defaults) == len(names) else [cells[1]] * len(names)
        documented |= dict(zip(names, each))
    assert set(documented) == {name for name, _, _ in variables()}
    for name, default in documented.items():
        assert norm(default) == norm(default_text(name)), name


def test_serve_refuses_arguments_instead_of_ignoring_them() -> None:
    done = subprocess.run([sys.executable, "-m", "whisk", "serve", "--port", "3000"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("whisk: 'serve' takes no arguments, not '--port 3000'; every setting is a WHISK_*"
                                   " environment variable ('whisk serve --help' lists them)")


def test_the_readmes_table_names_settings_with_their_defaults() -> None:
    """README.md's Configuration table (the main settings) names only variables config.py reads, with the defaults
    `whisk serve --help` shows (a number may drop a `.0`; `–` is no default)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    known = {name for name, _, _ in variables()}

    def norm(value: str) -> str:
        value = value.replace("`", "").replace("'", "").replace("<data dir>", "<WHISK_DATA_DIR>").strip().lower()
        return re.sub(r"^(\d+)\.0$", r"\1", value)

    checked = 0
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        names = re.findall(r"`(WHISK_[A-Z_]+)`", cells[0]) if len(cells) == 3 else []
        if not names or names == ["WHISK_LIMIT_"]:
            continue
        assert set(names) <= known, names
        defaults = [d.strip() for d in cells[1].split(",")] if len(names) > 1 else [cells[1]]
        if len(defaults) == 1:
            defaults *= len(names)                      # one default said for the pair (`–` for the TLS files)
        for name, default in zip(names, defaults, strict=True):
            shown = norm(default_text(name))
            if default in ("–", "-"):
                assert shown.startswith("none") or shown == "", name
            elif not default.startswith("`"):
                continue                        # said in words (the data dir, the API host, the playground)
            else:
                assert norm(default) == shown, name
            checked += 1
    assert checked > 20
