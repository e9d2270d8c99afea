"""The package's layers (docs/architecture.md, "Who imports whom"): no import cycle between the
harness's modules, and no module imports one of a layer above its own.

Every import counts, a lazy one inside a function too (it runs, and a cycle through it is still
a cycle); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"

# Top to bottom: a module may import its own layer and the layers below it, never one above.
# A name stands for that module and every module under it.
# layers-begin
LAYERS: list[tuple[str, ...]] = [
    ("benchmark.__main__", "benchmark.check"),
    ("benchmark.site", "benchmark.calibration"),
    ("benchmark.leaderboard",),
    ("benchmark.runner", "benchmark.throughput"),
    ("benchmark.sandbox", "benchmark.evaluation"),
    ("benchmark.toolkit",),
    ("benchmark.records", "benchmark.training", "benchmark.features", "benchmark.data"),
    ("benchmark.api",),
    ("benchmark.utils",),
]
# layers-end


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement but those guarded by ``if TYPE_CHECKING:``."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    def known(name: str) -> str:  # the module a dotted name lives in
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("benchmark.")}
            elif node.level == 0 and (node.module or "").split(".")[0] == "benchmark":
                targets |= {known(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = targets - {name, "benchmark"}
    return graph


def _layer(module: str) -> int:
    homes = [
        (len(name), index)
        for index, layer in enumerate(LAYERS)
        for name in layer
        if module == name or module.startswith(name + ".")
    ]
    if not homes:
        pytest.fail(
            f"{module} is in no layer: add it to LAYERS in {__file__} and to the drawing in "
            "docs/architecture.md"
        )
    return max(homes)[1]  # the longest name that covers it


def test_no_module_imports_a_layer_above_its_own():
    graph = _graph(_modules())
    upward = [
        f"{a} -> {b}"
        for a in sorted(graph)
        if a != "benchmark"
        for b in sorted(graph[a])
        if _layer(b) < _layer(a)
    ]
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph, done, cycles = _graph(_modules()), set(), []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append(" -> ".join([*path[path.index(name) :], name]))
            return
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
