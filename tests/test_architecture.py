"""The package's shape, read from its source (no import): rules a reviewer holds up, kept by a test.

Issue 33's rules that hold today: no import cycle (imports inside functions and under TYPE_CHECKING
count: a cycle hidden by a late import is still one), no class defined inside a function (Keras
callbacks and models are importable, subclassable and checkable with isinstance), no `_private` name
of one module used by another, no function longer than a screen, and no import of a group of the
same or a higher layer than the importer's (the layers and groups are README's module table: one
place a newcomer reads, and this test reads too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dlcli"
#: The longest a function may be, in lines (its signature to its last line).
LONGEST = 60


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


MODULES = _modules()


def _where(module: str, node: ast.AST) -> str:
    return f"{module}:{node.lineno}"


def _imports(name: str, tree: ast.Module) -> set[str]:
    """The dlcli modules `name` imports, wherever the import statement is."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dlcli":
            targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            out |= {t for t in targets if t in MODULES and t != "dlcli"}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in MODULES and a.name != "dlcli"}
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    graph = {name: _imports(name, tree) for name, tree in MODULES.items() if name != "dlcli"}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_class_is_defined_inside_a_function():
    found = [
        f"{_where(name, inner)} {inner.name} (in {outer.name})"
        for name, tree in MODULES.items()
        for outer in ast.walk(tree)
        if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(outer)
        if isinstance(inner, ast.ClassDef)
    ]
    assert not found, "classes defined inside functions (move each to module level):\n" + "\n".join(found)


def _private_uses(name: str, tree: ast.Module) -> list[str]:
    aliases: dict[str, str] = {}  # a local name bound to a dlcli module → that module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dlcli":
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in MODULES:
                    aliases[alias.asname or alias.name] = target
                elif alias.name.startswith("_") and not alias.name.startswith("__") and node.module != name:
                    found.append(f"{_where(name, node)} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != name
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{_where(name, node)} uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    found = [use for name, tree in MODULES.items() for use in _private_uses(name, tree)]
    assert not found, (
        "private names used by other modules (make them public, or move the code):\n" + "\n".join(found)
    )


def test_no_function_is_longer_than_a_screen():
    found = [
        f"{_where(name, node)} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > LONGEST
    ]
    assert not found, f"functions over {LONGEST} lines (split them):\n" + "\n".join(found)


def test_each_module_lives_in_its_groups_folder():
    for name, (_, group) in LAYERS.items():
        top = name.split(".")[1]
        assert top == group or (name.count(".") == 1 and group in ("api", "cli")), (
            f"{name} is not in {group}/"
        )


def test_the_packages_hold_docstrings_only():
    for name in sorted(PACKAGES - {"dlcli"}):
        body = MODULES[name].body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{name}/__init__.py holds code"


@pytest.mark.parametrize(
    "module",
    [
        "dlcli.training.callbacks.run_state",
        "dlcli.training.callbacks.early_stopping",
        "dlcli.models.sparse",
        "dlcli.export.export",
    ],
)
def test_the_keras_classes_are_at_module_level(module):
    tree = MODULES[module]
    assert any(isinstance(node, ast.ClassDef) for node in tree.body), module


def _layers() -> dict[str, tuple[int, str]]:
    """README's module table: `dlcli.<group>.<module>` (or `dlcli.<module>` at the top) → (layer, group)."""
    out = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        row = re.match(r"^\| (\d+) \| `([\w/]+)` \| (.*?) \|", line)
        if row:
            group = row.group(2).rstrip("/")
            for module in re.findall(r"`([\w.]+)`", row.group(3)):
                inside = f"dlcli.{group}.{module}"
                out[inside if inside in MODULES else f"dlcli.{module}"] = (int(row.group(1)), group)
    return out


LAYERS = _layers()


#: The group packages (and dlcli.training.callbacks): folders whose __init__ holds only a docstring.
PACKAGES = {"dlcli", "dlcli.training.callbacks"} | {
    f"dlcli.{group}" for _, group in LAYERS.values() if f"dlcli.{group}" in MODULES and group != "api"
}


def test_every_module_has_its_place_in_the_readme_table():
    placed = set(LAYERS)
    modules = set(MODULES) - PACKAGES
    assert modules - placed == set(), "modules missing from README's module table"
    assert placed - modules == set(), "README's module table names modules that do not exist"


def test_no_module_imports_a_group_of_its_layer_or_above():
    upward = []
    for name, tree in MODULES.items():
        if name not in LAYERS:
            continue
        layer, group = LAYERS[name]
        for target in sorted(_imports(name, tree)):
            if target in LAYERS and LAYERS[target][1] != group and LAYERS[target][0] >= layer:
                upward.append(f"{name} ({group}, layer {layer}) imports {target} {LAYERS[target]}")
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)
