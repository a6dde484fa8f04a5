"""The ``slmdesk`` entry point stays a function however the CLI's modules were imported."""

from __future__ import annotations

import importlib

import slmdesk.cli


def test_entry_point_is_callable_after_the_cli_modules_are_imported(capsys) -> None:
    importlib.import_module("slmdesk.cli.entry")
    assert callable(slmdesk.cli.main)
    try:
        slmdesk.cli.main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.startswith("slmdesk ")
