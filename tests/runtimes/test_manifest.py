"""The runtime manifest: kinds, default aliases, OpenWhisk's messages, the GET / "runtimes" object, stem cells."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from whisk.entities.errors import Invalid
from whisk.runtimes.manifest import ManifestError, load_manifest

UNSUPPORTED = ("The specified runtime '{}' is not supported by this platform. "
               "Valid values are: 'blackbox', 'nodejs:20', 'python:3.11', 'sequence'.")


@pytest.mark.parametrize(("given", "kind"), [
    ("python:3.11", "python:3.11"), (" Python:3.11 ", "python:3.11"), ("python:3", "python:3.11"),
    ("python:default", "python:3.11"), ("nodejs:20", "nodejs:20"), ("NODEJS:default", "nodejs:20"),
])
def test_resolve_kinds_and_aliases(given: str, kind: str) -> None:
    assert load_manifest().resolve(given).kind == kind


def test_the_shipped_runtimes() -> None:
    manifest = load_manifest()
    python, node = manifest.resolve("python:3.11"), manifest.resolve("nodejs:20")
    assert (python.family, python.image, python.default, python.deprecated, python.requires_main) == (
        "python", "whisk/action-python-v3.11:latest", True, False, False)
    assert (node.family, node.image, node.default) == ("nodejs", "whisk/action-nodejs-v20:latest", True)
    # the local commands name this interpreter and the proxies beside the manifest
    assert python.command[0] == sys.executable and os.path.isfile(python.command[-1])
    assert node.command[0] == "node" and os.path.isfile(node.command[-1])
    assert Path(python.command[-1]).name == "proxy.py" and Path(node.command[-1]).name == "proxy.js"
    assert [(r.kind, r.prewarm_count, r.prewarm_memory_mb) for r in manifest.prewarm()] == [
        ("nodejs:20", 1, 256), ("python:3.11", 1, 256)]
    assert [r.kind for r in manifest.runtimes()] == ["nodejs:20", "python:3.11"]


def test_blackbox_is_always_accepted() -> None:
    runtime = load_manifest().resolve(" BlackBox")
    assert (runtime.kind, runtime.family, runtime.image, runtime.command, runtime.prewarm_count) == (
        "blackbox", "blackbox", "", (), 0)


@pytest.mark.parametrize("kind", ["java:8", "python:2", "go:default", "sequence", ""])
def test_unknown_kinds_get_openwhisk_message(kind: str) -> None:
    with pytest.raises(Invalid) as caught:
        load_manifest().resolve(kind)
    assert str(caught.value) == UNSUPPORTED.format(kind)


def test_info_is_the_runtimes_object_of_get_root() -> None:
    assert load_manifest().info() == {
        "nodejs": [{"kind": "nodejs:20", "image": "whisk/action-nodejs-v20:latest", "deprecated": False,
                    "default": True, "attached": True, "requireMain": False}],
        "python": [{"kind": "python:3.11", "image": "whisk/action-python-v3.11:latest", "deprecated": False,
                    "default": True, "attached": True, "requireMain": False}],
    }


def _write(tmp_path: Path, runtimes: dict) -> str:
    path = tmp_path / "runtimes.json"
    path.write_text(json.dumps({"runtimes": runtimes}))
    return str(path)


def test_openwhisk_manifest_shapes_and_deprecated_kinds(tmp_path: Path) -> None:
    path = _write(tmp_path, {"nodejs": [
        {"kind": "nodejs:18", "deprecated": True, "image": {"prefix": "openwhisk", "name": "action-nodejs-v18"},
         "stemCells": [{"count": 3, "memory": "128 MB"}]},
        {"kind": "nodejs:20", "default": True, "requireMain": True,
         "image": {"prefix": "openwhisk", "name": "action-nodejs-v20", "tag": "nightly"},
         "stemCells": [{"initialCount": 2, "memory": "1 GB", "reactive": {"minCount": 1, "maxCount": 4}}]},
    ]})
    manifest = load_manifest(path)
    with pytest.raises(Invalid) as caught:
        manifest.resolve("nodejs:18")
    assert str(caught.value) == ("The 'nodejs:18' runtime is no longer supported. "
                                 "You may read and delete but not update or invoke this action.")
    node = manifest.resolve("nodejs:default")
    assert (node.kind, node.image, node.requires_main, node.prewarm_count, node.prewarm_memory_mb) == (
        "nodejs:20", "openwhisk/action-nodejs-v20:nightly", True, 2, 1024)
    assert [r.kind for r in manifest.prewarm()] == ["nodejs:20"]           # no stem cells of a deprecated kind
    assert manifest.info()["nodejs"][0] == {"kind": "nodejs:18", "image": "openwhisk/action-nodejs-v18:latest",
                                            "deprecated": True, "default": False, "attached": True,
                                            "requireMain": False}


def test_a_family_of_one_needs_no_default_flag(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, {"go": [{"kind": "go:1.21", "image": "x/go:1"}]}))
    assert manifest.resolve("go:default").kind == "go:1.21"


@pytest.mark.parametrize(("runtimes", "message"), [
    ({"go": [{"kind": "go:1", "default": True}, {"kind": "go:2", "default": True}]}, "more than one default"),
    ({"go": [{"kind": "go:1"}, {"kind": "go:2"}]}, "multiple versions, but no default"),
    ({"go": [{"kind": "python:3"}]}, "not of the family"),
    ({"go": [{"kind": "go:1", "aliases": ["go:1"]}]}, "alias"),
    ({"go": [{"kind": "go:1", "stemCells": [{"count": 1, "memory": "lots"}]}]}, "not a size"),
    ({"go": [{"image": "no kind"}]}, "KeyError"),
])
def test_malformed_manifests_are_refused(tmp_path: Path, runtimes: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest(_write(tmp_path, runtimes))


def test_unreadable_manifest(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="bad.json"):
        load_manifest(str(tmp_path / "bad.json"))
