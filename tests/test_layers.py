"""The package's layers import downward only (docs/architecture.md).

Every import counts: module-level ones, lazy ones inside functions, and module names
given to `importlib.import_module` or kept in lazy-export tables as string constants.
A rule broken here is a design bug to fix by handing the lower layer what it needs
(a Protocol argument), not by moving the import out of sight.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "restore"

# layer -> the layers it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "engine": frozenset({"tasks", "cli", "api", "evaluate"}),
    "nets": frozenset({"tasks", "engine", "cli", "io"}),
    "io": frozenset({"nets", "engine", "tasks", "cli"}),
    "metrics": frozenset({"engine", "tasks", "cli", "nets"}),
    "tasks": frozenset({"cli", "api", "evaluate"}),
    "weights": frozenset({"engine", "tasks", "cli"}),
    "losses": frozenset({"engine", "tasks", "cli"}),
    "web": frozenset({"cli"}),
}


def module_name(path: Path, root: Path = PACKAGE_DIR.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """`restore.engine.train` -> `engine`; the package root itself has no layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "restore" else None


def imported_modules(path: Path, root: Path = PACKAGE_DIR.parent) -> Iterator[tuple[int, str]]:
    """(line, module) for every restore module the file names as an import."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("restore.")
            and node.value.replace(".", "").replace("_", "").isalnum()
        ):
            yield node.lineno, node.value


def package_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def layer_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in package_files():
        source = layer_of(module_name(path))
        for _, target in imported_modules(path):
            target_layer = layer_of(target)
            if source and target_layer and target_layer != source:
                edges.setdefault(source, set()).add(target_layer)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in the graph as a path that ends where it starts, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return visiting[visiting.index(node):] + [node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(edges.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_layers_import_downward_only() -> None:
    broken: dict[str, str] = {}
    for path in package_files():
        layer = layer_of(module_name(path))
        for line, target in imported_modules(path):
            if layer_of(target) in FORBIDDEN.get(layer, ()):
                where = f"{path.relative_to(PACKAGE_DIR.parent)}:{line}"
                broken[where] = min(broken.get(where, target), target, key=len)
    assert not broken, "layer rules broken:\n" + "\n".join(
        f"{where} imports {target}" for where, target in sorted(broken.items())
    )


def test_layer_graph_has_no_cycle() -> None:
    cycle = find_cycle(layer_edges())
    assert cycle is None, "import cycle between layers: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from restore.tasks import get_task\n", "restore.tasks.get_task"),
        ("import importlib\nimportlib.import_module('restore.cli.train')\n", "restore.cli.train"),
        ("from ..tasks import base\n", "restore.tasks.base"),
    ],
)
def test_lazy_and_relative_imports_are_seen(tmp_path: Path, source: str, expected: str) -> None:
    probe = tmp_path / "restore" / "engine" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source, encoding="utf-8")
    assert expected in {module for _, module in imported_modules(probe, root=tmp_path)}


def test_cycle_finder_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
