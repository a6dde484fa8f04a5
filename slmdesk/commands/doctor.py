"""``slmdesk doctor [--model PATH] [--json]``: check that this installation works here.

Prints one line per check and exits 0 only when all pass (1 otherwise), so scripts and the
packaging tests can rely on the exit code. The Qt window probe lives here, not in core, because
core never imports Qt; it runs in a child process (`slmdesk.core.doctor.check_window`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from slmdesk.commands.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``doctor`` command."""
    p = sub.add_parser(
        "doctor",
        help="check that slmdesk can run here (libraries, folders, window, a model)",
        description=(
            "Check this installation: versions, CPU variant of llama.cpp, writable folders, free "
            "disk and memory, opening a window, loading a model and generating 8 tokens. "
            "Exits 0 only when every check passes."
        ),
    )
    p.add_argument(
        "--model", type=Path, help="GGUF file to load (default: a tiny synthesized model)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from slmdesk.core.doctor import run_doctor

    report = run_doctor(model=args.model)
    if args.json:
        print_json(report.as_dict())
    else:
        width = max(len(c.name) for c in report.checks)
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            print(f"{mark} {check.name.ljust(width)}  {check.summary}")
        runtime = next((c for c in report.checks if c.name == "llama.cpp"), None)
        if runtime is not None and runtime.details.get("system_info"):
            print(f"     llama.cpp system info: {runtime.details['system_info']}")
        print("all checks passed" if report.ok else "some checks failed")
    return 0 if report.ok else 1


def qt_probe() -> int:
    """Child entry: open a small window, render the app icon, print one JSON line."""
    import PySide6
    from PySide6.QtCore import qVersion
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QLabel

    from slmdesk.core.resources import resource_path

    app = QApplication([sys.argv[0]])
    window = QLabel("slmdesk doctor")
    window.resize(240, 80)
    window.show()
    app.processEvents()
    icon = QIcon(str(resource_path("icons", "app.svg")))
    pixmap = icon.pixmap(64, 64)
    answer = {
        "qt": qVersion(),
        "pyside6": PySide6.__version__,
        "platform": app.platformName(),
        "window_shown": window.isVisible(),
        "svg_icon": not pixmap.isNull(),
    }
    window.close()
    print(json.dumps(answer), flush=True)
    return 0


def frozen_dispatch(argv: Sequence[str] | None = None) -> None:
    """In a frozen app: if started as the Qt probe child, run it and exit."""
    from slmdesk.core.doctor import QT_PROBE_FLAG

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [QT_PROBE_FLAG]:
        sys.exit(qt_probe())


if __name__ == "__main__":
    frozen_dispatch()
    sys.exit(2)
