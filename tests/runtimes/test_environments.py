"""whisk.runtimes.environments: the installer `make runtimes` runs. Stamped folders are left alone, a changed package
list rebuilds, a pip environment is a virtualenv that cannot see whisk's packages, and `check` says what to run.
Empty package lists keep these tests off the registries (tests/runtimes/test_bundled.py runs the real ones)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whisk.runtimes import environments
from whisk.runtimes.manifest import load_manifest


def manifest(tmp_path: Path, packages: dict[str, str], folder: Path):
    path = tmp_path / "runtimes.json"
    entries = {"py": [{"kind": "py:1", "command": ["{environment}/bin/python3"], "environment": {
        "name": "py-1", "installer": "pip", "interpreter": "python3.11", "packages": packages}}],
        "js": [{"kind": "js:1", "command": ["node"], "env": {"NODE_PATH": "{environment}/node_modules"},
                "environment": {"name": "js-1", "installer": "npm", "packages": {}}}]}
    path.write_text(json.dumps({"runtimes": entries}))
    return load_manifest(str(path), environments=str(folder))


def test_install_stamps_and_leaves_a_stamped_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "envs"
    runtimes = manifest(tmp_path, {}, folder).runtimes()
    assert not any(environments.is_installed(r.environment) for r in runtimes)
    environments.install(runtimes, str(folder))
    assert all(environments.is_installed(r.environment) for r in runtimes)
    python = folder / "py-1" / "bin" / "python3"
    assert (folder / "js-1" / "package.json").is_file()
    # the virtualenv is not whisk's interpreter and sees none of whisk's packages
    done = subprocess.run([str(python), "-c", "import sys; print(sys.prefix); import aiohttp"], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == str(folder / "py-1") and "No module named 'aiohttp'" in done.stderr
    marker = folder / "py-1" / "marker"
    marker.write_text("kept")
    capsys.readouterr()
    environments.install(runtimes, str(folder))
    assert capsys.readouterr().out.count("up to date") == 2 and marker.exists()
    # another package list is another folder: the stamp no longer matches, and install makes it anew
    changed = manifest(tmp_path, {"six": "1.16.0"}, folder).runtimes()
    assert not environments.is_installed(changed[0].environment)


def test_check_names_what_is_missing_and_what_to_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "whisk.runtimes.environments", "check", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert [line.split(" action environment")[0] for line in lines] == ["The nodejs:20", "The python:3.11"]
    assert all(f"not installed in {tmp_path}/" in line and "make runtimes" in line for line in lines)


def test_the_checkouts_environments_are_installed() -> None:
    """make runtimes (make test runs it) has installed what runtimes.json lists; a second run changes nothing."""
    runtimes = load_manifest().runtimes()
    missing = [r.kind for r in runtimes if not environments.is_installed(r.environment)]
    assert missing == [], "run `make runtimes`"
    done = subprocess.run([sys.executable, "-m", "whisk.runtimes.environments", "install"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.count("up to date") == len(runtimes), done.stdout + done.stderr


def test_help_says_what_each_command_does(capsys) -> None:
    """`--help` lists five commands; it says what each does (the module's docstring), not only their names."""
    with pytest.raises(SystemExit) as done:
        environments.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for said in ("`install` (what `make run` and `make test` do)", "`check` only says what is missing",
                 "`stage` installs", "`seal` adopts", "`hash` prints"):
        assert said in text, said
