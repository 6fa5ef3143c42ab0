"""The runtime manifest: kinds, default aliases, OpenWhisk's messages, the GET / "runtimes" object, stem cells."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from whisk.entities.errors import Invalid
from whisk.runtimes.manifest import CHECKOUT_ENVIRONMENTS, ManifestError, Reactive, StemCell, load_manifest

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
    # the local commands name the action environment's interpreter (never whisk's own) and the proxies beside the
    # manifest; node finds the environment's modules through NODE_PATH
    environments = str(CHECKOUT_ENVIRONMENTS)
    assert python.command[0] == f"{environments}/python-3.11/bin/python3" != sys.executable
    assert os.path.isfile(python.command[-1])
    assert dict(node.env) == {"NODE_PATH": f"{environments}/nodejs-20/node_modules"}
    assert python.environment.installer == "pip" and node.environment.installer == "npm"
    assert dict(node.environment.packages)["openwhisk"] == "3.21.8"
    assert dict(python.environment.packages)["requests"] == "2.32.2"
    # a sandbox shows the proxy its own folder and the environment (the interpreter's prefix it finds itself)
    assert python.read_only_paths == (str(Path(python.command[-1]).parent), f"{environments}/python-3.11")
    assert node.read_only_paths == (str(Path(node.command[-1]).parent), f"{environments}/nodejs-20")
    assert node.command[0] == "node" and os.path.isfile(node.command[-1])
    assert Path(python.command[-1]).name == "proxy.py" and Path(node.command[-1]).name == "proxy.js"
    assert [(r.kind, r.prewarm_count, r.prewarm_memory_mb) for r in manifest.prewarm()] == [
        ("nodejs:20", 1, 256), ("python:3.11", 1, 256)]
    assert [r.kind for r in manifest.runtimes()] == ["nodejs:20", "python:3.11"]
    reactive = Reactive(min_count=1, max_count=4, ttl_s=120.0, threshold=1, increment=1)    # upstream's default
    assert [r.stem_cells for r in manifest.prewarm()] == [(StemCell(1, 256, reactive),)] * 2


def test_blackbox_is_always_accepted() -> None:
    runtime = load_manifest().resolve(" BlackBox")
    assert (runtime.kind, runtime.family, runtime.image, runtime.command, runtime.prewarm_count) == (
        "blackbox", "blackbox", "", (), 0)


@pytest.mark.parametrize("kind", ["java:8", "python:2", "go:default", "sequence", ""])
def test_unknown_kinds_get_openwhisk_message(kind: str) -> None:
    with pytest.raises(Invalid) as caught:
        load_manifest().resolve(kind)
    assert str(caught.value) == UNSUPPORTED.format(kind)


def test_which_kinds_run_several_activations_in_one_container() -> None:
    """runtimes.json's "concurrent": Node.js's proxy runs several /run at once, Python's one at a time; a blackbox
    image is its own business (OpenWhisk sends it c); an unknown kind never runs."""
    manifest = load_manifest()
    assert [manifest.concurrent(k) for k in ("nodejs:default", "nodejs:20", "python:3", "blackbox", "cobol:1")] == [
        True, True, False, True, False]


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
         "stemCells": [{"initialCount": 2, "memory": "1 GB", "reactive": {
             "minCount": 1, "maxCount": 4, "ttl": "90 s", "threshold": 2, "increment": 1}}]},
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
    assert node.stem_cells == (StemCell(2, 1024, Reactive(min_count=1, max_count=4, ttl_s=90.0, threshold=2,
                                                          increment=1)),)
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
    ({"go": [{"kind": "go:1", "command": ["{environment}/bin/go"]}]}, "has no environment"),
    ({"go": [{"kind": "go:1", "environment": {"name": "go", "installer": "apt", "packages": {}}}]}, "installer"),
    ({"go": [{"kind": "go:1", "environment": {"name": "../go", "installer": "npm", "packages": {}}}]}, "folder name"),
    ({"go": [{"kind": "go:1", "environment": {"name": "go", "installer": "pip", "packages": {}}}]}, "interpreter"),
    ({"go": [{"kind": "go:1", "environment": {"name": "go", "installer": "npm"}}]}, "packages"),
])
def test_malformed_manifests_are_refused(tmp_path: Path, runtimes: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest(_write(tmp_path, runtimes))


REACTIVE = {"minCount": 1, "maxCount": 4, "ttl": "2 minutes", "threshold": 1, "increment": 1}


@pytest.mark.parametrize(("ttl", "seconds"), [
    ("2 minutes", 120.0), ("1 minute", 60.0), ("90s", 90.0), ("30 seconds", 30.0), ("1.5 h", 5400.0),
    ("1 day", 86400.0), ("500 ms", 0.5), ("2 mins", 120.0),
])
def test_reactive_stem_cell_ttls_read_as_scala_durations(tmp_path: Path, ttl: str, seconds: float) -> None:
    cell = {"count": 1, "memory": 128, "reactive": REACTIVE | {"ttl": ttl}}
    (runtime,) = load_manifest(_write(tmp_path, {"go": [{"kind": "go:1", "stemCells": [cell]}]})).prewarm()
    assert runtime.stem_cells[0].reactive.ttl_s == seconds


def test_stem_cells_of_several_memories(tmp_path: Path) -> None:
    cells = [{"count": 1, "memory": "128 MB"}, {"count": 2, "memory": "512 MB", "reactive": REACTIVE}]
    (runtime,) = load_manifest(_write(tmp_path, {"go": [{"kind": "go:1", "stemCells": cells}]})).prewarm()
    assert [(c.count, c.memory_mb, c.reactive is not None) for c in runtime.stem_cells] == [
        (1, 128, False), (2, 512, True)]
    assert (runtime.prewarm_count, runtime.prewarm_memory_mb) == (3, 128)


@pytest.mark.parametrize(("cell", "message"), [
    ({"memory": "256 MB"}, "go:1: a stem cell needs both initialCount and memory"),
    ({"count": 1}, "go:1: a stem cell needs both initialCount and memory"),
    ({"count": 0, "memory": 256}, "go:1: stem cell initialCount must be positive"),
    ({"count": "2", "memory": 256}, "go:1: stem cell initialCount '2' is not an integer"),
    ({"count": 1, "memory": 256, "reactive": 4}, "go:1: stem cell reactive is not an object of minCount, "),
    ({"count": 1, "memory": 256, "reactive": {"minCount": 1, "maxCount": 4}},
     "go:1: stem cell reactive misses ttl, threshold, increment"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"minCount": 5}},
     "minCount must be be greater than 0 and less than or equal to maxCount"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"minCount": -1}}, "minCount must be be greater"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"minCount": 0, "maxCount": 0}},
     "maxCount must be positive"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"ttl": "0 s"}}, "ttl must be positive"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"ttl": 120}}, "ttl 120 is not a duration such as"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"ttl": "2 fortnights"}}, "'2 fortnights' is not a dur"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"threshold": 0}}, "threshold must be positive"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"increment": 5}},
     "increment must be positive and less than or equal to maxCount"),
    ({"count": 1, "memory": 256, "reactive": REACTIVE | {"maxCount": True}}, "maxCount True is not an integer"),
])
def test_bad_stem_cells_are_refused_with_the_reason(tmp_path: Path, cell: dict, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(_write(tmp_path, {"go": [{"kind": "go:1", "stemCells": [cell]}]}))
    assert message in str(caught.value)


def test_two_stem_cells_of_one_memory_are_refused(tmp_path: Path) -> None:
    cells = [{"count": 1, "memory": "256 MB"}, {"count": 1, "memory": 256}]
    with pytest.raises(ManifestError, match="go:1: two stem cells of the same memory"):
        load_manifest(_write(tmp_path, {"go": [{"kind": "go:1", "stemCells": cells}]}))


def test_unreadable_manifest(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="bad.json"):
        load_manifest(str(tmp_path / "bad.json"))


def test_environments_are_placed_where_the_setting_says(tmp_path: Path) -> None:
    entry = {"kind": "go:1", "command": ["{environment}/bin/go", "{runtimes}/go/proxy"],
             "env": {"GOPATH": "{environment}/lib"},
             "environment": {"name": "go-1", "installer": "npm", "packages": {"left-pad": "1.3.0"}}}
    (runtime,) = load_manifest(_write(tmp_path, {"go": [entry]}), environments=str(tmp_path / "envs")).runtimes()
    assert runtime.command[0] == f"{tmp_path}/envs/go-1/bin/go"
    assert dict(runtime.env) == {"GOPATH": f"{tmp_path}/envs/go-1/lib"}
    assert runtime.environment.path == f"{tmp_path}/envs/go-1"
    assert runtime.environment.packages == (("left-pad", "1.3.0"),)


def test_read_only_paths_of_the_process_sandbox_come_from_the_manifest(tmp_path: Path) -> None:
    here = Path(load_manifest.__code__.co_filename).parent
    shipped = load_manifest()
    assert str(here / "python") in shipped.resolve("python:3").read_only_paths       # the proxy's own folder
    assert str(here / "nodejs") in shipped.resolve("nodejs:20").read_only_paths
    entry = {"kind": "x:1", "image": "i", "command": ["x"], "readOnlyPaths": ["/opt/x-libs", "{runtimes}/x"]}
    assert load_manifest(_write(tmp_path, {"x": [entry]})).resolve("x:1").read_only_paths == (
        "/opt/x-libs", str(here / "x"))
    with pytest.raises(ManifestError, match="readOnlyPaths must be absolute"):
        load_manifest(_write(tmp_path, {"x": [entry | {"readOnlyPaths": ["lib"]}]}))
