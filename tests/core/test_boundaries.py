"""The core/UI boundary: slmdesk.core must never import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import slmdesk.core

CORE = Path(slmdesk.core.__file__).parent
QT_MODULES = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "qtpy")


def test_core_sources_have_no_qt_imports() -> None:
    offenders = []
    for file in sorted(CORE.rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{file.name}: {n}" for n in names if n.split(".")[0] in QT_MODULES]
    assert offenders == []


def test_importing_all_of_core_loads_no_qt() -> None:
    modules = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import slmdesk.core.{m}\n" for m in modules)
        + "bad = [m for m in sys.modules if m.split('.')[0] in "
        + repr(QT_MODULES)
        + "]\nprint(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
