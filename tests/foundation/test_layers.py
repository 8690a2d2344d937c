"""The packages form layers whose imports point down only (the README's Layout section).

Every import counts, also those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Bottom to top. A package may import itself and any package of a lower layer; packages that
# share a layer may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("media", "demo"),
    ("transforms",),
    ("trainer",),
    ("serving",),
    ("components",),
    ("pipeline",),
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute names of the project modules a file imports, wherever the import statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import; the project uses absolute ones")
            names.add(node.module)
            # `from components import model_report` names a module too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in RANK}


def project_files() -> list[pathlib.Path]:
    return sorted(p for package in RANK for p in (ROOT / package).rglob("*.py"))


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in project_files()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, imports in graph.items():
        here = module.split(".")[0]
        for name in imports:
            there = name.split(".")[0]
            if there != here and RANK[there] >= RANK[here]:
                problems.append(f"{module} imports {name} ({there} is not below {here})")
    return sorted(problems)


def unit_of(module: str) -> str:
    """The sub-package a module belongs to: components.media_example_gen, or trainer."""
    parts = module.split(".")
    if len(parts) > 2 or (ROOT / parts[0] / parts[-1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between sub-packages (components.X <-> components.Y), found by depth-first search."""
    known = set(graph)
    edges: dict[str, set[str]] = {}
    for module, imports in graph.items():
        for name in imports:
            # `from components.evaluation import config` names the module; an attribute of a
            # module (`from core.config import Config`) counts as the module itself.
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            a, b = unit_of(module), unit_of(name)
            if a != b:
                edges.setdefault(a, set()).add(b)
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "benchmarks"} <= set(RANK), "add the new package to LAYERS"


def test_imports_point_down_only():
    assert upward_imports(import_graph()) == []


def test_no_cycle_between_sub_packages():
    assert cycles(import_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = {
        "core.config": {"trainer.model"},
        "components.a.x": {"components.b.y"},
        "components.b.y": {"components.a.x"},
    }
    assert upward_imports(graph) == [
        "core.config imports trainer.model (trainer is not below core)"
    ]
    (cycle,) = cycles(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"components.a", "components.b"}


@pytest.mark.parametrize(
    "modules",
    [
        ["core.config", "core.features", "core.cli_args", "core.schema", "core.env", "core.logs"],
        # Beam workers decode without paying TensorFlow's start-up (seconds, hundreds of MB).
        ["media.decode", "media.dmvr", "media.errors", "media.fs"],
    ],
)
def test_bottom_layers_import_no_tensorflow(modules):
    code = f"import sys; import {', '.join(modules)}; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
