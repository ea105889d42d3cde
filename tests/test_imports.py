"""The package's import graph has no cycle.

Every `import` statement of every module counts, also those inside functions (a deferred
import still ties two modules together); only `if __name__ == "__main__":` blocks are left out,
since they run when a module is executed as a script, never on import.
"""

from __future__ import annotations

import ast
import os

import promoter_modelling

PACKAGE = "promoter_modelling"
ROOT = os.path.dirname(promoter_modelling.__file__)


def module_files() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            relative = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3].split(os.sep)
            if relative[-1] == "__init__":
                relative = relative[:-1]
            out[".".join(relative)] = os.path.join(folder, name)
    return out


def _is_main_block(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imported_modules(path: str, module: str, known: set[str]) -> set[str]:
    """Package modules imported anywhere in one file (outside `if __name__ == ...` blocks)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    is_package = path.endswith("__init__.py")
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if _is_main_block(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import submodule` imports the submodule; `from mod import name` the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that returns to its start, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_imports_have_no_cycle():
    files = module_files()
    known = set(files)
    graph = {name: imported_modules(path, name, known) for name, path in files.items()}
    assert graph[f"{PACKAGE}.strategies"], "the walker found no imports: it is broken"
    assert f"{PACKAGE}.checkpoints" in graph[f"{PACKAGE}.training"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
