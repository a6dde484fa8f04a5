"""``slmdesk gui`` (the default): open the window."""

from __future__ import annotations

import argparse
import os
import sys

from slmdesk.common.errors import SlmdeskError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gui`` command."""
    p = sub.add_parser("gui", help="open the slmdesk window (the default)")
    p.add_argument("--no-starter", action="store_true", help="do not add the starter model")
    p.set_defaults(func=_gui)


def _check_display() -> None:
    """Qt aborts the process when it cannot reach a display; say so in a sentence instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise SlmdeskError(
            "No display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set). Start "
            "slmdesk from your desktop, or use the command line: `slmdesk --help`."
        )


def _gui(args: argparse.Namespace) -> int:
    _check_display()
    from slmdesk.app import run_app

    return run_app(install_starter=not args.no_starter)
