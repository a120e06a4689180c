"""The package's shape (docs/design.md, "As built: modules"): src/infscale is split into parts that follow the
import graph. Every module imports only from its own part or from a part its part is allowed to import (LAYERS),
and no two modules import each other, directly or round a loop. Imports are read from the source (ast), lazy ones
inside functions included, so nothing is imported to check."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "infscale"

# The layer order, lowest first: core < evaluation, search < training (above search), reporting (above evaluation)
# < the top level. Part -> the other parts its modules may import from. "" is the top level: infscale/__init__ (the
# public grading API) and the entry points (infscale-grade, python -m infscale.estimate / infscale.config_reference),
# which may import any part. Adding an import that LAYERS does not allow (an upward or a sideways one) fails here:
# move the imported code down instead.
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "evaluation": {"core"},
    "search": {"core"},
    "training": {"core", "search"},
    "reporting": {"core", "evaluation"},
    "": {"core", "evaluation", "search", "training", "reporting"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def part_of(module: str) -> str:
    """The part a module belongs to: its subpackage under infscale, or "" for the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else ""


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The infscale modules `module` imports (a `from package import name` counts as the submodule when one
    exists, else as the package)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "infscale")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "infscale":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    return {m for m in out if m != module}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    graph = {m: imports_of(m, p, known) for m, p in mods.items()}
    unknown = {(m, t) for m, ts in graph.items() for t in ts if t not in known}
    assert not unknown, f"imports of modules that do not exist: {sorted(unknown)}"
    return graph


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            src, dst = part_of(m), part_of(t)
            if src not in LAYERS:
                bad.append(f"{m}: part {src!r} is not in LAYERS")
            elif dst != src and dst not in LAYERS[src]:
                bad.append(f"{m} ({src or 'top level'}) imports {t} ({dst or 'top level'})")
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_module_belongs_to_a_known_part():
    parts = {part_of(m) for m in modules()}
    assert parts == set(LAYERS), f"parts on disk {sorted(parts)} vs LAYERS {sorted(LAYERS)}"


def test_each_part_imports_only_from_itself_or_a_lower_part():
    assert layering_violations(import_graph()) == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_module_names_are_unique_across_parts():
    """benchmarks/mutation.py and the docs name a module by its last component."""
    names = [m.rsplit(".", 1)[-1] for m, p in modules().items() if p.name != "__init__.py"]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


@pytest.mark.parametrize("graph, expected", [
    ({"infscale.core.io": {"infscale.search.shards"}, "infscale.search.shards": set()}, "infscale.core.io (core)"),
    ({"infscale.search.rebase": {"infscale.training.sft"}, "infscale.training.sft": set()}, "search"),
    ({"infscale.reporting.tables": {"infscale.search.engines"}, "infscale.search.engines": set()}, "reporting"),
])
def test_an_upward_or_sideways_import_is_reported(graph, expected):
    bad = layering_violations(graph)
    assert len(bad) == 1 and expected in bad[0]


def test_a_cycle_is_found():
    graph = {"infscale.search.a": {"infscale.search.b"}, "infscale.search.b": {"infscale.search.c"},
             "infscale.search.c": {"infscale.search.a"}}
    assert find_cycle(graph) == ["infscale.search.a", "infscale.search.b", "infscale.search.c", "infscale.search.a"]
    assert find_cycle({"infscale.search.a": {"infscale.core.io"}, "infscale.core.io": set()}) is None


def test_relative_and_package_imports_are_resolved(tmp_path):
    known = {"infscale.core.io", "infscale.core", "infscale.search.engines", "infscale.search.engine_base"}
    src = tmp_path / "engines.py"
    src.write_text("from .engine_base import X\nfrom ..core import io\nfrom infscale.core.io import y\n"
                   "def f():\n    from infscale.search import engine_base\n")
    assert imports_of("infscale.search.engines", src, known) == {"infscale.search.engine_base", "infscale.core.io"}


def test_mutation_script_finds_every_core_module():
    """benchmarks/mutation.py resolves each core module's file in its part, and every equivalent mutant it lists
    is named after the module's import name (mutmut names mutants infscale.<part>.<module>.x_<function>...)."""
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "benchmarks" / "mutation.py")
    mutation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutation)
    dotted = {}
    for name in mutation.CORE_MODULES:
        path = ROOT / mutation.module_path(name)
        assert path.is_file() and path.stem == name
        dotted[name] = mutation.dotted(name)
        assert dotted[name] == module_name(path)
    for key in mutation.EQUIVALENT:
        prefix = re.match(r"(.*)\.x[_ǁ]", key).group(1)
        assert prefix in dotted.values(), f"EQUIVALENT key {key}: {prefix} is not a core module's import name"
