"""The house: every import between the packages of nanoweb/, function-level and type-checking
ones too, goes downwards, so no package needs another that needs it back.

lib at the bottom, then providers, credits, studio (with its job engine, studio.jobs), boards,
and the machine-facing endpoints; `web` (view helpers) and other top-level modules are packages
of their own."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.portable

ROOT = Path(__file__).resolve().parent.parent
# Lowest first. A package not listed is still checked for cycles.
LAYERS = ["lib", "web", "providers", "credits", "studio", "boards", "machine", "urls"]

Edges = dict[str, dict[str, list[str]]]  # package → package it imports → where ("path:line")


def package_of(module: str) -> str | None:
    """`nanoweb.studio.jobs.sweep` → `studio`; `nanoweb.web` → `web`; None outside nanoweb."""
    parts = module.split(".")
    if parts[0] != "nanoweb" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    # `from nanoweb import studio` imports the package studio.
    return [f"{base}.{alias.name}" for alias in node.names] if base == "nanoweb" else [base]


def import_graph(source: Path) -> Edges:
    """Every import between the top-level packages (and modules) under `source`."""
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(source.rglob("*.py")):
        parts = path.relative_to(source.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        importer = package_of(module)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in imported_modules(node, module, is_package):
                imported = package_of(target)
                if importer and imported and imported != importer:
                    edges[importer][imported].append(f"{path.relative_to(source.parent)}:{node.lineno}")
    return edges


def knots(edges: Edges) -> list[list[str]]:
    """The groups of packages that import each other, directly or not (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for following in edges.get(node, {}):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def cycles(edges: Edges) -> list[list[str]]:
    """One cycle through each knot."""
    return [loop_within(knot, edges) for knot in knots(edges)]


def loop_within(component: list[str], edges: Edges) -> list[str]:
    """A path from the component's first package back to it, staying inside the component."""
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for following in sorted(edges.get(node, {})):
            if following == start:
                return paths[node] + [start]
            if following in component and following not in paths:
                paths[following] = paths[node] + [following]
                queue.append(following)
    raise AssertionError(f"{component} is not a cycle")


def described(loop: list[str], edges: Edges) -> str:
    steps = [f"{a} → {b} ({', '.join(edges[a][b][:3])})" for a, b in zip(loop, loop[1:], strict=False)]
    return "; ".join(steps)


def test_no_package_of_nanoweb_imports_one_that_imports_it_back():
    edges = import_graph(ROOT / "nanoweb")
    found = [f"{described(loop_within(knot, edges), edges)} (in a knot of {', '.join(knot)})" for knot in knots(edges)]
    assert not found, "import cycles between packages:\n" + "\n".join(found)


def test_each_known_package_imports_only_those_below_it():
    edges = import_graph(ROOT / "nanoweb")
    upwards = [
        f"{a} → {b} ({', '.join(where[:3])})"
        for a, imported in edges.items()
        for b, where in imported.items()
        if a in LAYERS and b in LAYERS and LAYERS.index(b) > LAYERS.index(a)
    ]
    assert not upwards, "imports upwards:\n" + "\n".join(upwards)


def test_a_cycle_closed_by_a_function_level_import_is_found_and_named(tmp_path):
    package = tmp_path / "nanoweb"
    for name in ["alpha", "beta", "gamma"]:
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "alpha" / "models.py").write_text("from nanoweb.beta import views\n")
    (package / "beta" / "views.py").write_text("from ..gamma.rules import check\n")  # relative
    (package / "gamma" / "rules.py").write_text("def check():\n    from nanoweb import alpha\n")
    edges = import_graph(package)
    assert cycles(edges) == [["alpha", "beta", "gamma", "alpha"]]
    assert described(["alpha", "beta", "gamma", "alpha"], edges) == (
        "alpha → beta (nanoweb/alpha/models.py:1); beta → gamma (nanoweb/beta/views.py:1); "
        "gamma → alpha (nanoweb/gamma/rules.py:2)"
    )


def test_packages_that_only_import_downwards_have_no_cycle(tmp_path):
    package = tmp_path / "nanoweb"
    (package / "top").mkdir(parents=True)
    (package / "top" / "views.py").write_text("import nanoweb.bottom.lib\nfrom nanoweb.middle import x\n")
    (package / "middle").mkdir()
    (package / "middle" / "x.py").write_text("from nanoweb.bottom import lib\n")
    assert cycles(import_graph(package)) == []
