"""``slmdesk models sources``: other apps' folders the library reads models from, in place."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from slmdesk.cli.output import one_line, print_json, print_table
from slmdesk.cli.validate import check_model_ref

if TYPE_CHECKING:
    from slmdesk.models.library import Library

ACTIONS = ("list", "add", "remove", "enable", "disable")


def register(msub: argparse._SubParsersAction) -> None:
    """Add ``models sources`` to the ``models`` command group."""
    p = msub.add_parser(
        "sources",
        help="other apps' model folders (Hugging Face cache, LM Studio, Ollama, GPT4All, Jan)",
        description="List the folders models are read from in place, add or remove a folder, "
        "or turn an app's folder on or off.",
    )
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS, help="default: list")
    p.add_argument("target", nargs="?", metavar="PATH|APP", help="a folder (add, remove) or app")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_sources)


def _sources(args: argparse.Namespace) -> int:
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.library import Library

    library = Library()
    if args.action != "list":
        if not args.target:
            what = "a folder" if args.action in ("add", "remove") else "an app (e.g. ollama)"
            raise SlmdeskError(f"`models sources {args.action}` needs {what}.")
        target = check_model_ref(args.target)
        if args.action == "add":
            library.add_source_folder(target)
        elif args.action == "remove":
            library.remove_source_folder(target)
        else:
            library.set_app_enabled(target.strip().lower(), args.action == "enable")
    else:
        library.sync_sources()
    sources = library.sources()
    counts: dict[str, int] = {}
    for entry in library.entries():
        folder = entry.provenance.get("folder") if entry.source else None
        if isinstance(folder, str):
            counts[folder] = counts.get(folder, 0) + 1
    if args.json:
        print_json(
            {"sources": [{**s.as_dict(), "models": counts.get(str(s.path), 0)} for s in sources]}
        )
        return 0
    rows = [
        [
            s.title,
            "on" if s.enabled else "off",
            "found" if s.found else ("not available" if s.added else "not found"),
            str(counts.get(str(s.path), 0)) if s.enabled and s.found else "-",
            str(s.path),
        ]
        for s in sources
    ]
    print_table(["SOURCE", "ON", "STATE", "MODELS", "FOLDER"], rows)
    return 0


def sync_quietly(library: Library) -> None:
    """Record what other apps' folders hold now (with the header facts a listing just read), so
    an unplugged folder's models stay listed with what was known about them; a library that
    cannot be written (read-only disk) is listed all the same."""
    from slmdesk.common.errors import SlmdeskError

    try:
        library.sync_sources()
    except (OSError, SlmdeskError):
        pass


def warn_before_deleting(library: Library, name: str) -> None:
    """Say on stderr which app a file belongs to before ``--delete-file`` deletes it."""
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.library.source_sync import deletion_warning

    try:
        entry = library.get(name)
    except SlmdeskError:
        return  # `remove` says what is wrong
    if entry.source:
        print(one_line(f"warning: {deletion_warning(entry.source)}"), file=sys.stderr)
