"""The architecture rules of docs/ARCHITECTURE.md: import-linter contracts, no import cycles, and no
Qt or llama.cpp loaded by importing the domain packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

import slmdesk

ROOT = Path(slmdesk.__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
DOMAIN = ("common", "models", "llama", "chat", "hub", "optimize", "diagnostics", "serve", "cli")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(cwd), "PATH": str(LINT_IMPORTS.parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env
    )


def test_the_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "slmdesk", tmp_path / "slmdesk")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    hardware = tmp_path / "slmdesk" / "models" / "hardware.py"
    hardware.write_text(hardware.read_text() + "\nfrom PySide6 import QtCore  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "No Qt outside the window" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(group)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("slmdesk", cache_dir=None)
    assert _cycles(graph) == []


def test_importing_the_domain_packages_loads_neither_qt_nor_llama() -> None:
    modules = sorted(
        f"slmdesk.{p.relative_to(ROOT / 'slmdesk').with_suffix('').as_posix().replace('/', '.')}"
        for package in DOMAIN
        for p in (ROOT / "slmdesk" / package).rglob("*.py")
    )
    modules = [m.removesuffix(".__init__").removesuffix(".__main__") for m in modules]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'llama_cpp')]\n"
        + "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
