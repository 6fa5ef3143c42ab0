"""The package's import graph: no cycle, counting imports made only for type checking (a cycle hidden behind
`TYPE_CHECKING` is still two modules that cannot be understood apart); imports point down the layers README.md's
Layout draws, and the controller and the invoker meet only on the bus; only roles.py imports an adapter; the
entities need nothing of whisk above them and no library but orjson."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import whisk

ROOT = Path(whisk.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports by absolute name (a `from m import x` counts as `m` and as `m.x`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}                      # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_no_import_cycle() -> None:
    graph = _graph()
    assert "whisk.controller.launcher" in graph and graph["whisk.controller.launcher"]   # the walk sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_walk_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


PORTS = ("whisk.store", "whisk.messaging", "whisk.discovery", "whisk.containers")


def _adapter_of(module: str) -> str | None:
    """The port package whose adapter `module` is, None for a port (`base`) or a module outside the ports."""
    for port in PORTS:
        if module.startswith(port + ".") and module != port + ".base":
            return port
    return None


def _wrong_adapter_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{importer} -> {module}" for importer, imported in graph.items() for module in imported
                  if (port := _adapter_of(module)) is not None and importer != "whisk.roles"
                  and not importer.startswith(port + "."))


def test_adapters_are_imported_only_by_roles() -> None:
    """Services get their store, bus, discovery and container backend from roles.py and know only the port."""
    graph = _graph()
    assert "whisk.containers.process.factory" in graph["whisk.roles"]      # the walk sees the adapters
    assert _wrong_adapter_imports(graph) == []


def test_the_check_finds_a_service_importing_an_adapter() -> None:
    graph = {"whisk.roles": {"whisk.containers.docker.factory"},
             "whisk.containers.docker.factory": {"whisk.containers.base", "whisk.containers.docker.logs"},
             "whisk.containerpool.pool": {"whisk.containers.base", "whisk.containers.process.sandbox"}}
    assert _wrong_adapter_imports(graph) == ["whisk.containerpool.pool -> whisk.containers.process.sandbox"]


# README.md's Layout, bottom up: the entities; what every part shares (settings, logs, metrics, message shapes, retries
# while a backend is away, the runtime manifest, and the ports, `base.py`, the balancer's among them); the adapters;
# what decides and runs (the balancers, the container pool); the services (controller and its alarms and catalog,
# invoker); the REST API; the wiring and the entry points. An import may point to its own layer or below, never up.
LAYERS = (
    ("whisk", "whisk.entities"),
    ("whisk.config", "whisk.logs", "whisk.loopmetrics", "whisk.metrics", "whisk.messages", "whisk.proxy_protocol",
     "whisk.retry", "whisk.stopping", "whisk.runtimes", "whisk.store.base", "whisk.messaging.base",
     "whisk.discovery.base", "whisk.containers.base", "whisk.loadbalancer.base"),
    ("whisk.store", "whisk.messaging", "whisk.discovery", "whisk.containers"),
    ("whisk.loadbalancer", "whisk.containerpool"),
    ("whisk.controller", "whisk.alarms", "whisk.catalog", "whisk.invoker"),
    ("whisk.api",),
    ("whisk.roles", "whisk.cli", "whisk.__main__"),
)
# Services of one layer that must not import each other: the controller and the invoker talk over the bus.
APART = (("whisk.controller", "whisk.invoker"), ("whisk.invoker", "whisk.controller"),
         ("whisk.alarms", "whisk.invoker"), ("whisk.catalog", "whisk.invoker"))


def _place(module: str) -> tuple[int, str]:
    """The layer of `module` and the prefix that put it there (the longest that matches)."""
    best = (-1, "")
    for n, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best[1]):
                best = (n, prefix)
    assert best[0] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for importer, imported in graph.items():
        (low, own) = _place(importer)
        for module in imported:
            (high, other) = _place(module)
            if high > low or (own, other) in APART:
                wrong.append(f"{importer} -> {module}")
    return sorted(wrong)


def test_imports_point_down_the_layers() -> None:
    graph = _graph()
    assert "whisk.controller.invoke" in graph and "whisk.loadbalancer.base" in graph["whisk.controller.invoke"]
    assert _upward_imports(graph) == []


def test_the_check_finds_an_import_up_and_one_across() -> None:
    graph = {"whisk.entities.action": {"whisk.store.base"}, "whisk.store.base": {"whisk.entities.action"},
             "whisk.invoker.service": {"whisk.controller.ledger"}, "whisk.controller.ledger": set()}
    assert _upward_imports(graph) == ["whisk.entities.action -> whisk.store.base",
                                      "whisk.invoker.service -> whisk.controller.ledger"]


def test_the_entities_need_only_the_standard_library_and_orjson() -> None:
    """README.md: the entities are pure data and validation, below everything else."""
    libraries = {name.split(".")[0] for path in (ROOT / "entities").rglob("*.py") for name in _imports(path)}
    assert libraries - set(sys.stdlib_module_names) - {"whisk", "__future__"} == {"orjson"}
