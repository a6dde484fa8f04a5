"""The ``slmdesk`` command line.

Thin by design: parse arguments, call the domain packages, print text or ``--json``. Each group of
sub-commands lives in its own module under `slmdesk.cli` and exposes ``register(sub)``.

Exit codes: 0 success, 1 a user error (one line ``error: ...`` on stderr), 2 bad usage (argparse),
130 interrupted. No traceback reaches the user: a full disk or a folder without permission is a
user error with a sentence, and anything unexpected is written with its traceback to the log
file (or a temporary file when the log folder cannot be written) and reported in one line.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from slmdesk import __version__
from slmdesk.cli.output import one_line
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.logs import setup_logging

# Modules under slmdesk.cli, in the order their commands appear in --help.
COMMAND_MODULES = (
    "gui",
    "models",
    "inspect",
    "hub",
    "chat",
    "connections",
    "presets",
    "serve",
    "optimize",
    "doctor",
)


class _Parser(argparse.ArgumentParser):
    """argparse, with its error line kept short and printable like every other error line.

    argparse quotes the offending value (an unknown choice, an unrecognised argument), which can
    be thousands of characters long. Sub-command parsers are created with this class too.
    """

    def error(self, message: str) -> NoReturn:
        """Print the usage and one short ``PROG: error: ...`` line; exit 2 (bad usage)."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = _Parser(
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
    try:
        # Inside the handler: even opening the log can meet a read-only or full data folder.
        setup_logging(verbose=False)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so a closed pipe (`| head`) is handled below, not at exit
        return code
    except SlmdeskError as exc:
        _print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        sentence = describe_os_error(exc)
        if sentence is None:
            return _internal_error(exc, args.command)
        logging.getLogger("slmdesk").info("%s failed", args.command, exc_info=exc)
        _print_error(sentence)
        return 1
    except Exception as exc:  # a bug: keep the traceback for us, a sentence for the user
        return _internal_error(exc, args.command)


def describe_os_error(exc: OSError) -> str | None:
    """One sentence for a failure of the computer's files the user can fix, else None.

    A full disk, a read-only folder or a missing permission is not a bug in slmdesk: the user
    should hear which file (or folder) and why. Any other `OSError` is treated as a bug.
    """
    if exc.errno == errno.ENAMETOOLONG:
        return "A file name is too long for this computer's file system."
    reasons = {
        errno.ENOSPC: "the disk is full; free some space and try again",
        errno.EDQUOT: "the disk quota is used up; free some space and try again",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the disk is read-only",
    }
    reason = reasons.get(exc.errno or 0)
    if reason is None:
        return None
    return f"Cannot write {_what_failed(exc)}: {reason}."


def _what_failed(exc: OSError) -> str:
    """The file named in the error, or its folder when the file was being created there."""
    if not exc.filename:
        return "a file"
    path = Path(os.fsdecode(exc.filename))
    try:
        if not path.exists() and path.parent.is_dir():
            return f"a new file in {path.parent}"  # being created: the folder is the problem
    except OSError:
        pass
    return str(path)


def _internal_error(exc: BaseException, command: str) -> int:
    from slmdesk.common.logs import save_crash_report

    try:
        report = save_crash_report(exc, f"unexpected error in `slmdesk {command}`")
    except Exception:  # the report is a courtesy; the one-line message must still go out
        report = None
    where = f"details in {report}" if report else "no details could be saved (no writable folder)"
    _print_error(f"an internal error occurred; {where}")
    return 1


def _silence_stdout() -> None:
    """Point stdout at the null device so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _print_error(message: str) -> None:
    """The one ``error: ...`` line on stderr (a closed stderr is not worth a traceback)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
