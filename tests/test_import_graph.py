"""No import circle in src/medgan: the package's import graph, read from the source with `ast`,
has no cycle. Every import counts, at module level or inside a function (a function-level import
hides a circle from Python's start-up, not from the reader). Importing `a.b.c` also imports the
packages `a.b` and `a` (their __init__ runs first), except the importer's own packages, which are
already being imported. Written by hand: grimp/import-linter are not installed, and the graph is
thirty lines."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(src: Path, package: str) -> dict[str, Path]:
    return {".".join(f.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): f
            for f in (src / package).rglob("*.py")}


def imported_names(module: str, file: Path) -> set[str]:
    """The absolute names of everything `file` imports (modules, or names inside them)."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(src: Path, package: str) -> nx.DiGraph:
    files = module_files(src, package)
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, file in files.items():
        own_packages = set(ancestors(module)) | ({module} if file.name == "__init__.py" else set())
        for name in imported_names(module, file):
            for target in [*ancestors(name), name]:
                if target in files and target != module and target not in own_packages:
                    graph.add_edge(module, target)
    return graph


def circles(graph: nx.DiGraph) -> list[str]:
    """Each group of modules that import each other round a loop, with one loop through it."""
    found = []
    for group in nx.strongly_connected_components(graph):
        if len(group) > 1:
            loop = [edge[0] for edge in nx.find_cycle(graph.subgraph(group))]
            start = loop.index(min(loop))  # the same loop prints the same way every time
            loop = loop[start:] + loop[:start]
            found.append(f"{' <-> '.join(sorted(group))} (e.g. {' -> '.join(loop + [loop[0]])})")
    return sorted(found)


def test_medgan_has_no_import_circle():
    graph = import_graph(SRC, "medgan")
    assert graph.number_of_edges() > 50  # the graph was read (not an empty package)
    found = circles(graph)
    assert not found, "import circles in src/medgan:\n" + "\n".join(found)


def test_a_circle_through_a_function_level_import_and_a_package_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from .. import other  # own package pkg.sub: no edge\n")
    (pkg / "other.py").write_text("def f():\n    from .top import g\n")
    (pkg / "top.py").write_text("import pkg.sub.leaf\n")
    found = circles(import_graph(tmp_path, "pkg"))
    assert found == ["pkg.other <-> pkg.sub <-> pkg.sub.leaf <-> pkg.top "
                     "(e.g. pkg.other -> pkg.top -> pkg.sub -> pkg.sub.leaf -> pkg.other)"]
    (pkg / "other.py").write_text("def f():\n    pass\n")
    assert circles(import_graph(tmp_path, "pkg")) == []
