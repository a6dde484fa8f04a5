"""Entry point of the frozen app (PyInstaller runs this script as ``__main__``).

A frozen executable cannot run ``python -m module``, so the child processes slmdesk starts (the
optimizer worker, the model load probe, the doctor's probes) start the executable itself with a hidden first argument.
Those arguments are checked before anything heavy is imported, to keep the app's start fast.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Dispatch hidden child-process arguments, else run the normal command line."""
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    if first == "--slmdesk-optimize-worker":
        from slmdesk.optimize.child.main import frozen_dispatch as optimize_dispatch

        optimize_dispatch()
    elif first == "--slmdesk-probe-model":
        from slmdesk.llama.probe_child import frozen_dispatch as probe_dispatch

        probe_dispatch()
    elif first.startswith("--slmdesk-doctor-"):
        from slmdesk.diagnostics.doctor import frozen_dispatch as llama_dispatch
        from slmdesk.ui.qt_probe import frozen_dispatch as qt_dispatch

        llama_dispatch()
        qt_dispatch()
    from slmdesk.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
