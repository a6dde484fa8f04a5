"""``slmdesk gui`` (the default): open the window."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gui`` command."""
    p = sub.add_parser("gui", help="open the slmdesk window (the default)")
    p.add_argument("--no-starter", action="store_true", help="do not add the starter model")
    p.set_defaults(func=_gui)


def _gui(args: argparse.Namespace) -> int:
    from slmdesk.app import run_app

    return run_app(install_starter=not args.no_starter)
