"""The package's import graph has no cycle, counting imports made only for type checking (a cycle hidden behind
`TYPE_CHECKING` is still two modules that cannot be understood apart)."""

from __future__ import annotations

import ast
from pathlib import Path

import whisk

ROOT = Path(whisk.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
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
