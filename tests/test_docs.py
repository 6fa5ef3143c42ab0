"""Every reference in the repository leads somewhere a reader of the repository has: no tracked file cites reference
material kept outside it, every `docs/<file>.md` a file names exists, and every section cited as
"docs/openwhisk.md §N" or "docs/testing.md, <Section>" is a heading there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Written in pieces so that this file does not match itself.
OUTSIDE = ["../" + "shared", "/work/" + "shared", "spec" + " §", "Spec" + " §", "spec/" + "OPEN"] + [
    name + "." + "md" for name in ("OPENWHISK", "WSK_CLI", "APIGW", "CONSUL", "DOCKER", "BACKENDS")]


def _tracked() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    texts = {}
    for name in names.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue                                    # images and other binaries cite nothing
    return texts


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]


def test_no_reference_outside_the_repository() -> None:
    found = [f"{name}:{n}: {needle}" for name, text in _tracked().items()
             for n, line in enumerate(text.splitlines(), 1) for needle in OUTSIDE if needle in line]
    assert not found, "references to files a reader of the repository does not have:\n" + "\n".join(found)


def test_named_docs_exist() -> None:
    missing = sorted({f"{name}: {doc}" for name, text in _tracked().items()
                      for doc in re.findall(r"(?<![\w/.])docs/[\w.-]+\.md", text) if not (ROOT / doc).is_file()})
    assert not missing, "docs named but absent:\n" + "\n".join(missing)


def test_cited_sections_exist() -> None:
    numbers = {m.group(1) for h in _headings(ROOT / "docs/openwhisk.md") if (m := re.match(r"(\d+(?:\.\d+)?)\.? ", h))}
    testing = _headings(ROOT / "docs/testing.md")
    bad = []
    for name, text in _tracked().items():
        for cite in re.finditer(r"docs/openwhisk\.md,? §(\d+(?:\.\d+)?)((?:(?:, | and |–|/)§\d+(?:\.\d+)?)*)", text):
            for number in [cite.group(1), *re.findall(r"§(\d+(?:\.\d+)?)", cite.group(2))]:
                if number not in numbers:
                    bad.append(f"{name}: docs/openwhisk.md §{number}")
        for section in re.findall(r"docs/testing\.md, ([A-Z][\w-]*)", text):
            if not any(h.startswith(section) for h in testing):
                bad.append(f"{name}: docs/testing.md, {section}")
    assert not bad, "cited sections that are not headings:\n" + "\n".join(bad)
