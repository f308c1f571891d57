"""The import direction of DESIGN.md §1 holds, and no module-level import cycle exists."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "models", "limits", "server", "routes")
# Composition roots: they may import everything, nothing of the product imports them.
ROOTS = frozenset({"server.app", "server.serve", "server.admin.cli"})
# What each layer may import from the project (besides itself); the rest of the world is free.
ALLOWED = {
    "config": {"config"},
    "models": {"models", "config"},
    "limits": {"limits"},
    "server": {"server", "limits", "models", "config"},
    "routes": {"routes", "server", "limits", "models", "config"},
}


def modules() -> Iterator[tuple[str, Path]]:
    """Every product module: (dotted name, file)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(path: Path, name: str) -> set[str]:
    """Project modules imported when `path` is imported (not under TYPE_CHECKING, not lazily)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    known = {m for m, _ in modules()}
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports at import time."""
    return {name: top_level_imports(path, name) - {name} for name, path in modules()}


def test_every_import_runs_the_way_the_layers_allow() -> None:
    wrong = []
    for name, imported in graph().items():
        layer = "routes" if name in ROOTS else name.split(".")[0]
        for target in imported:
            if target in ROOTS and name not in ROOTS:
                wrong.append(f"{name} imports the composition root {target}")
            elif target.split(".")[0] not in ALLOWED[layer]:
                wrong.append(f"{name} ({layer}) imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_only_config_reads_the_environment() -> None:
    readers = [
        name
        for name, path in modules()
        if not name.startswith("config")
        and any(word in path.read_text() for word in ("os.environ", "os.getenv", "getenv("))
    ]
    assert readers == []


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The rule is not vacuous: an import of the server from limits is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from server.errors import GatewayError\n")
    assert "server.errors" in top_level_imports(bad, "limits.bad")
