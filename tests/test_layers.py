"""The layering the README promises, checked with `ast` over `src/`: one engine, two thin shells.

Imports inside `if TYPE_CHECKING:` are annotations only and do not count; imports inside functions do.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
SHELLS = ("querywarden.cli", "querywarden.plugin")
FAMILIES = SHELLS + ("querywarden.reports", "querywarden.seeding")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for orelse in node.orelse:
                yield orelse
                yield from _runtime_nodes(orelse)
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(root: Path, path: Path) -> set[str]:
    """The absolute names a module imports at run time (relative imports resolved)."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    return {module_name(root, path): imports_of(root, path) for path in sorted(root.rglob("*.py"))}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every name `start` imports, directly or through the project's own modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def violations(root: Path) -> list[str]:
    graph = import_graph(root)
    broken: list[str] = []
    core = [name for name in graph if name.count(".") == 1 and not any(within(name, f) for f in FAMILIES)]
    for name in core:
        for imported in graph[name]:
            if any(within(imported, top) for top in ("pytest", "_pytest", "click")):
                broken.append(f"core module {name} imports {imported}")
            if any(within(imported, shell) for shell in SHELLS + ("querywarden.reports",)):
                broken.append(f"core module {name} imports {imported}")
    for shell, other in (SHELLS, SHELLS[::-1]):
        for name in graph:
            if within(name, shell):
                broken += [f"{name} imports {i}" for i in graph[name] if within(i, other)]
    touches_database = ("psycopg", "querywarden.database", "querywarden.measure", "querywarden.engine",
                        "querywarden.embedded", "querywarden.capture")
    for name in graph:
        if within(name, "querywarden.reports"):
            broken += [f"{name} reaches {i}" for i in sorted(reachable(graph, name))
                       if any(within(i, t) for t in touches_database)]
    if "querywarden.judge" in graph:
        broken += [f"querywarden.judge reaches {i}" for i in sorted(reachable(graph, "querywarden.judge"))
                   if within(i, "psycopg")]
    return sorted(set(broken))


def test_the_source_keeps_its_layers() -> None:
    assert (SOURCE / "querywarden" / "engine.py").is_file()
    assert violations(SOURCE) == []


def plant(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


SKELETON = {
    "querywarden/__init__.py": "",
    "querywarden/judge.py": "from .verdict import Verdict\n",
    "querywarden/verdict.py": "import json\n",
    "querywarden/engine.py": "import psycopg\n",
    "querywarden/cli/__init__.py": "import click\nfrom ..engine import run\n",
    "querywarden/plugin/__init__.py": "import pytest\nfrom querywarden import engine\n",
    "querywarden/reports/__init__.py": "from ..verdict import Verdict\n",
}


def test_a_clean_skeleton_passes(tmp_path: Path) -> None:
    plant(tmp_path, SKELETON)
    assert violations(tmp_path) == []


@pytest.mark.parametrize(
    ("relative", "text", "expected"),
    [
        ("querywarden/verdict.py", "import click\n", "core module querywarden.verdict imports click"),
        ("querywarden/engine.py", "def f():\n    import pytest\n", "core module querywarden.engine imports pytest"),
        ("querywarden/engine.py", "from .plugin import hooks\n",
         "core module querywarden.engine imports querywarden.plugin"),
        ("querywarden/plugin/report.py", "from querywarden.cli import write_reports\n",
         "querywarden.plugin.report imports querywarden.cli"),
        ("querywarden/cli/run.py", "from ..plugin import CAPTURE_KEY\n",
         "querywarden.cli.run imports querywarden.plugin"),
        ("querywarden/verdict.py", "from .engine import evaluate\n",
         "querywarden.reports reaches querywarden.engine"),
        ("querywarden/verdict.py", "from psycopg import errors\n", "querywarden.judge reaches psycopg"),
    ],
)
def test_each_broken_rule_is_found(tmp_path: Path, relative: str, text: str, expected: str) -> None:
    plant(tmp_path, {**SKELETON, relative: text})
    assert expected in violations(tmp_path)


def test_annotation_only_imports_do_not_count(tmp_path: Path) -> None:
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import psycopg\n"
    plant(tmp_path, {**SKELETON, "querywarden/verdict.py": guarded})
    assert violations(tmp_path) == []
