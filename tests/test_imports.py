"""The import graph of ``labelbench`` and ``rlaif``: no cycle, and no import of a higher layer.

The graph is read from the source with the standard library's ``ast`` (nothing is imported), and
counts every import: at module level, inside functions (deferred imports still tie the modules
together) and under ``if TYPE_CHECKING``. ``from package import name`` depends on ``package``
(its ``__init__`` runs and ``name`` is read from it) and, when ``name`` is a submodule, on that
submodule as well. A parent package that Python initialises on the way to a submodule is not
counted: ``import labelbench.data.formats`` depends on ``labelbench.data.formats`` only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labelbench", "rlaif")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # lowest first: a module may import its own layer and the layers listed before it
    (
        "foundation",
        ("labelbench", "labelbench.errors", "labelbench.requests", "labelbench.yamlio"),
    ),
    ("data", ("labelbench.data", "labelbench.data.*")),
    ("models", ("labelbench.models", "labelbench.models.*")),
    ("prompting", ("labelbench.prompting", "labelbench.prompting.*")),
    ("statistics", ("labelbench.metrics", "labelbench.aggregate", "labelbench.aggregate.*")),
    ("config", ("labelbench.config", "labelbench.config_schema")),
    ("run folder", ("labelbench.rundir", "labelbench.rundir.*")),
    ("labeling", ("labelbench.labeling", "labelbench.labeling.*")),
    ("report", ("labelbench.report", "labelbench.report.*")),
    (
        "applications",
        (
            "labelbench.benchmark",
            "labelbench.reward_engine",
            "labelbench.reward_service",
            "labelbench.serve",
            "labelbench.rewards",
            "labelbench.reuse",
            "labelbench.view",
            "labelbench.view.*",
        ),
    ),
    ("rlaif", ("rlaif", "rlaif.*")),
    ("command line", ("labelbench.cli", "*.cli", "*.__main__")),
)
"""The layers, lowest first. A module's layer is the first whose patterns match it, trying the
command-line layer before the others (``labelbench.data.cli`` is command-line wiring, free to
import any layer)."""

LOW_LAYERS = ("foundation", "data", "models", "prompting", "statistics")
"""``labelbench/data``, ``models``, ``prompting`` and ``metrics.py`` (with their foundation): no
import of labeling, report, the applications, rlaif or the command line, without exception."""

UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""Known upward imports outside the low layers, each with why it is still there."""


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of ``packages`` under ``root``
    (``pkg/__init__.py`` is the module ``pkg``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name``, or its nearest parent, if it is one of ``modules``."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module`` (read from ``path``) imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_known(alias.name, modules) or "")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - (not is_package)]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(_known(source, modules) or "")
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
    found.discard("")
    found.discard(module)
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``packages`` (imports of other packages left out)."""
    modules = module_files(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One import cycle per strongly connected component of ``graph`` with more than one module
    (or a module importing itself), as the modules in import order, the first repeated last."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest cycle through the smallest module name of ``component``."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    return [*paths[node], start]
                if child in component and child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def layer_of(module: str) -> int:
    """The position of ``module``'s layer in ``LAYERS`` (the command line matched first)."""
    order = [len(LAYERS) - 1, *range(len(LAYERS) - 1)]
    for position in order:
        if any(fnmatchcase(module, pattern) for pattern in LAYERS[position][1]):
            return position
    raise AssertionError(f"{module} is in no layer of LAYERS; add it to one")


def upward_imports(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, str, str, str]]:
    """``(importer, its layer, imported, its layer)`` for each import of a higher layer."""
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            if layer_of(target) > layer_of(module):
                names = LAYERS[layer_of(module)][0], LAYERS[layer_of(target)][0]
                found.append((module, names[0], target, names[1]))
    return found


# ---------------------------------------------------------------------------- the checker itself


def test_the_checker_finds_a_cycle_and_names_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_reads_function_level_and_package_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.low import thing\n")
    (package / "low.py").write_text("def f():\n    from pkg.sub import deep\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("from .. import low\nfrom pkg import other\n")
    (package / "other.py").write_text("import pkg.sub.deep as d\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.low"] == {"pkg.sub", "pkg.sub.deep"}
    assert graph["pkg.sub.deep"] == {"pkg", "pkg.low", "pkg.other"}
    assert graph["pkg.other"] == {"pkg.sub.deep"}
    assert cycles(graph) == [["pkg", "pkg.low", "pkg.sub.deep", "pkg"]]


def test_the_checker_places_modules_in_layers() -> None:
    assert LAYERS[layer_of("labelbench.data.cli")][0] == "command line"
    assert LAYERS[layer_of("labelbench.data.formats")][0] == "data"
    assert LAYERS[layer_of("rlaif.data")][0] == "rlaif"
    assert upward_imports({"labelbench.metrics": {"labelbench.labeling.labeler"}}) == [
        ("labelbench.metrics", "statistics", "labelbench.labeling.labeler", "labeling")
    ]
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("labelbench.somewhere_new")


# ---------------------------------------------------------------------------- the code base


GRAPH = import_graph()


def test_the_graph_covers_both_packages() -> None:
    assert "labelbench.config" in GRAPH["labelbench.labeling.labeler"]
    assert any(module.startswith("rlaif.") for module in GRAPH)


def test_no_import_cycle() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(GRAPH)]
    assert not found, "import cycle(s):\n" + "\n".join(found)


def test_every_module_has_a_layer() -> None:
    for module in GRAPH:
        layer_of(module)


def test_data_models_prompting_and_metrics_import_no_higher_layer() -> None:
    low = {LAYERS.index(next(layer for layer in LAYERS if layer[0] == name)) for name in LOW_LAYERS}
    found = [
        f"{module} ({layer}) imports {target} ({target_layer})"
        for module, layer, target, target_layer in upward_imports(GRAPH)
        if layer_of(module) in low
    ]
    assert not found, "upward import(s):\n" + "\n".join(found)


def test_no_other_upward_import_than_the_known_ones() -> None:
    found = [
        f"{module} ({layer}) imports {target} ({target_layer})"
        for module, layer, target, target_layer in upward_imports(GRAPH)
        if (module, target) not in UPWARD_EXCEPTIONS
    ]
    assert not found, "upward import(s):\n" + "\n".join(found)
    stale = [pair for pair in UPWARD_EXCEPTIONS if pair[1] not in GRAPH.get(pair[0], ())]
    assert not stale, f"no longer imported, remove from UPWARD_EXCEPTIONS: {stale}"
