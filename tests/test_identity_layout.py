"""Identity's layout holds (docs/identity.md, "Layout"): no import cycle among its modules, every import
at the top of its module (none hidden in a function), and every sub-package importing only from the
layers below it. Read from the source (ast): nothing is imported, so it takes milliseconds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "services" / "identity" / "klients_identity"
# Bottom to top: a module may import from its own layer (without a cycle) and from those below it.
LAYERS = {
    "core": 0, "connectors": 1, "oauth": 2, "access": 3, "login": 4, "operator": 5, "events": 6, "top": 7,
}
CORE = {"settings", "models", "db", "pages", "limits", "hardening", "hashing", "nonces", "retention", "__init__"}
TOP = {"app", "cli"}
# Function-local imports that must stay so (module, imported module): none other is allowed.
LATE_IMPORTS = {
    # ``klients-identity run`` loads nothing of identity's before eventlet patches the standard library, so
    # the other commands' machinery is imported when one of them runs.
    ("klients_identity.cli", "klients_identity.retention"),
    ("klients_identity.cli", "klients_identity.oauth.registration"),
}


def modules() -> dict[str, tuple[Path, bool]]:
    """Return every module of klients_identity (migrations aside) by dotted name: (file, is a package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if "migrations" in parts:
            continue
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = modules()


def targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Return the klients_identity modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if is_package else module.split(".")[:-1]
        if node.level:
            base = base[:len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names]
    return [name for name in names if name.split(".")[0] == "klients_identity" and name != module]


def imports() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Return the import graph (every statement) and the function-local imports (module, target, line)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    late: list[tuple[str, str, int]] = []
    for module, (path, is_package) in MODULES.items():
        def visit(node: ast.AST, in_function: bool, module: str = module, is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    loaded = targets(module, is_package, child)
                    graph[module].update(loaded)
                    if in_function:
                        late.extend((module, target, child.lineno) for target in loaded or ["(outside identity)"])
                visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))
        visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return graph, late


GRAPH, LATE = imports()


def layer(module: str) -> int:
    """Return the layer of a module of klients_identity."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in CORE:
        return LAYERS["core"]
    if parts[1] in TOP:
        return LAYERS["top"]
    return LAYERS[parts[1]]


def test_the_layout_is_read_from_every_sub_package():
    assert {m.split(".")[1] for m in MODULES if "." in m} >= {"oauth", "login", "access", "operator", "events",
                                                           "connectors", "app", "db", "cli"}
    assert sum(len(edges) for edges in GRAPH.values()) > 100


def test_no_import_cycle():
    cycles, done, path = [], set(), []

    def walk(module: str) -> None:
        if module in path:
            cycles.append(" -> ".join([*path[path.index(module):], module]))
            return
        if module in done:
            return
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            walk(target)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        walk(module)
    assert cycles == []


def test_imports_are_at_the_top_of_their_module():
    hidden = [f"{module}:{line} {target}" for module, target, line in LATE if (module, target) not in LATE_IMPORTS]
    assert hidden == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_from_its_layer_and_below(module):
    upward = sorted(target for target in GRAPH[module] if layer(target) > layer(module))
    assert upward == [], f"{module} (layer {layer(module)}) imports from above"


def test_the_package_init_holds_no_code():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in tree.body)
