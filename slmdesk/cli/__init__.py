"""The ``slmdesk`` command line: one module per group of sub-commands, each with ``register(sub)``."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slmdesk`` command (see `slmdesk.cli.entry`)."""
    from slmdesk.cli.entry import main as run

    return run(argv)
