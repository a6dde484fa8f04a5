"""The ``slmdesk`` command line.

Thin by design: parse arguments, call `slmdesk.core`, print text or ``--json``. Each group of
sub-commands lives in its own module under `slmdesk.cli` and exposes ``register(sub)``.

Exit codes: 0 success, 1 a user error (one line ``error: ...`` on stderr), 2 bad usage (argparse),
130 interrupted. No traceback reaches the user: unexpected errors are written to the log file.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from slmdesk import __version__
from slmdesk.common.errors import SlmdeskError

# Modules under slmdesk.cli, in the order their commands appear in --help.
COMMAND_MODULES = ("gui", "models", "inspect", "hub", "chat", "optimize", "doctor")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="slmdesk",
        description="Find, shrink and chat with small language models on this computer.",
    )
    parser.add_argument("--version", action="version", version=f"slmdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(f"slmdesk.cli.{name}") is None:
            continue  # a command group not part of this build
        module = importlib.import_module(f"slmdesk.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list or ["gui"])
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from slmdesk.common.logs import setup_logging

    log_file = setup_logging(verbose=False)
    try:
        return int(args.func(args) or 0)
    except SlmdeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: keep the traceback for us, a sentence for the user
        logging.getLogger("slmdesk").exception("unexpected error in %s", args.command)
        print(
            f"error: unexpected problem ({type(exc).__name__}: {exc}); details in {log_file}",
            file=sys.stderr,
        )
        return 1
