"""``slmdesk doctor [--model PATH] [--json]``: check that this installation works here.

Prints one line per check and exits 0 only when all pass (1 otherwise), so scripts and the
packaging tests can rely on the exit code. The Qt window probe lives in `slmdesk.ui.qt_probe` (only the
UI imports Qt) and runs in a child process (`slmdesk.diagnostics.doctor.check_window`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slmdesk.cli.output import print_json


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
    from slmdesk.diagnostics.doctor import run_doctor

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
