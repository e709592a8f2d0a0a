"""Architecture rules that import-linter (`make lint`, [tool.importlinter] in pyproject.toml) cannot
say, checked on the sources with `ast`:

- no import cycle between any two modules of tracewire, a package's `__init__` included (the
  acyclic_siblings contract sees cycles between siblings, not one through their parent package);
- an integration uses only the public adapter API of the core: `tracewire`, `tracewire.adapters`,
  `tracewire.model.attributes` and `tracewire.model.genai`, and never a name starting with `_`.

Like lint-imports, the graph counts imports inside functions (lazy ones) and leaves out those
under `if TYPE_CHECKING:`, which load nothing at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The installed layout: setuptools' package-dir in pyproject.toml.
SOURCES = {"tracewire": ROOT / "core", "tracewire.integrations": ROOT / "integrations"}

PUBLIC_ADAPTER_API = ("tracewire", "tracewire.adapters", "tracewire.model.attributes", "tracewire.model.genai")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the module the statement loads (a submodule when `from pkg import submodule`)
    names: tuple[str, ...]  # the names taken from it (`from ... import names`), empty for `import x`
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.importer} -> {self.imported}"


def find_modules(sources: dict[str, Path]) -> dict[str, Path]:
    """Every module name -> its file, for packages laid out as `sources` (package name -> folder)."""
    modules: dict[str, Path] = {}
    for package, folder in sources.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (function bodies too), except in `if TYPE_CHECKING:`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def find_imports(modules: dict[str, Path], root_package: str = "tracewire") -> list[Import]:
    """The imports between `modules`, resolved the way import-linter's graph (grimp) resolves them."""
    found: list[Import] = []
    for importer, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = importer.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = []
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append((submodule, ()) if submodule in modules else (base, (alias.name,)))
            for target, names in targets:
                if target.split(".")[0] != root_package:
                    continue
                while target not in modules and "." in target:  # `import pkg.mod.attr` -> pkg.mod
                    target = target.rsplit(".", 1)[0]
                if target != importer:
                    found.append(Import(importer, target, names, path, node.lineno))
    return found


def find_cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
        graph.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return sorted(cycles)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return find_modules(SOURCES)


@pytest.fixture(scope="module")
def imports(modules: dict[str, Path]) -> list[Import]:
    return find_imports(modules)


def test_the_graph_holds_every_package_and_lazy_imports(modules: dict[str, Path], imports: list[Import]) -> None:
    for name in ("tracewire", "tracewire.engine.client", "tracewire.pipeline", "tracewire.integrations.langchain"):
        assert name in modules, name
    # tracewire.cli.main imports the collector's CLI only inside a function, for `tracewire serve`
    assert any(i.importer == "tracewire.cli.main" and i.imported.startswith("tracewire.server") for i in imports)


def test_no_import_cycle_between_modules(imports: list[Import]) -> None:
    cycles = find_cycles(imports)
    lines = []
    for cycle in cycles:
        members = set(cycle)
        lines.append("cycle: " + ", ".join(cycle))
        lines += sorted({f"    {i}" for i in imports if i.importer in members and i.imported in members})
    assert not cycles, "import cycles (lazy imports count):\n" + "\n".join(lines)


def _core_module_names(modules: dict[str, Path]) -> dict[str, set[str]]:
    """For each integration module: the local names bound to core modules (to catch `A._private`)."""
    bound: dict[str, set[str]] = {}
    for name, path in modules.items():
        if not name.startswith("tracewire.integrations."):
            continue
        names = bound.setdefault(name, set())
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("tracewire")}
            elif node.module and node.module.startswith("tracewire") and not node.level:
                names |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in modules}
    return bound


def test_integrations_use_only_the_public_adapter_api(modules: dict[str, Path], imports: list[Import]) -> None:
    def allowed(module: str) -> bool:
        return module in PUBLIC_ADAPTER_API or (
            module.startswith("tracewire.adapters.") and not any(map(_is_private, module.split(".")))
        )

    bad: list[str] = []
    for imp in imports:
        if not imp.importer.startswith("tracewire.integrations.") or imp.imported.startswith("tracewire.integrations"):
            continue  # integrations among themselves: the independence contract in pyproject.toml
        if not allowed(imp.imported):
            bad.append(f"{imp}: not the public adapter API")
        bad += [f"{imp}: private name {n}" for n in imp.names if _is_private(n)]
    for module, names in _core_module_names(modules).items():
        path = modules[module]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names
                    and _is_private(node.attr)):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module} uses {node.value.id}.{node.attr}")
    assert not bad, "integrations reach past the public adapter API:\n" + "\n".join(sorted(set(bad)))


def test_the_checks_see_lazy_imports_and_skip_type_checking_ones(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import a\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
                              "def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("import pkg.c\n")
    (pkg / "c.py").write_text("def g():\n    from pkg import a\n")
    modules = find_modules({"pkg": pkg})
    found = {(i.importer, i.imported) for i in find_imports(modules, "pkg")}
    assert found == {("pkg", "pkg.a"), ("pkg.a", "pkg.sub.b"), ("pkg.sub.b", "pkg.c"), ("pkg.c", "pkg.a")}
    assert find_cycles(find_imports(modules, "pkg")) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
