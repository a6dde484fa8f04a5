"""``slmdesk models folder [PATH] [--move]``: show, choose or move the models folder."""

from __future__ import annotations

import argparse

from slmdesk.cli.output import ProgressBar, human_size, print_json


def register(msub: argparse._SubParsersAction) -> None:
    """Add ``models folder`` to the ``models`` command group."""
    p_folder = msub.add_parser(
        "folder",
        help="show or choose the models folder (--move moves the models there)",
        description=(
            "Without PATH: the models folder, its free space and the models in it. With PATH: new "
            "models go there; the models already stored stay where they are and stay listed "
            "(linked in place) unless --move moves them."
        ),
    )
    p_folder.add_argument("path", nargs="?", metavar="PATH", help="an existing, writable folder")
    p_folder.add_argument(
        "--move",
        action="store_true",
        help="move every model of the current folder there (copy, verify, then remove)",
    )
    p_folder.add_argument("--json", action="store_true", help="print JSON")
    p_folder.set_defaults(func=_folder, folder_parser=p_folder)


def _folder(args: argparse.Namespace) -> int:
    from slmdesk.common import paths
    from slmdesk.common.fileio import atomic_write_json
    from slmdesk.common.paths import DataFolderError
    from slmdesk.models.library import Library
    from slmdesk.models.library.location import check_folder, folder_info, use_folder
    from slmdesk.models.library.move import move_models

    if args.move and not args.path:
        args.folder_parser.error("--move needs PATH, the folder to move the models to")
    try:
        library = Library()
    except DataFolderError:
        if not args.path or args.move or paths.chosen_models_dir() is None:
            raise
        # the chosen folder is gone (an unplugged drive): choosing another must still work
        folder = check_folder(args.path)
        atomic_write_json(paths.models_folder_setting_path(), {"path": str(folder)})
        library = Library()
    if not args.path:
        info = folder_info(library)
    elif args.move:
        bar = None if args.json else ProgressBar("moving")
        result = move_models(library, args.path, progress=None if bar is None else bar.update)
        if bar is not None:
            bar.finish(f"{result.models} model(s), {human_size(result.bytes)}")
        info = folder_info(library)
    elif library.models_dir == check_folder(args.path):
        info = folder_info(library)  # just switched away from a folder that is gone
    else:
        previous = library.models_dir
        info = use_folder(library, args.path)
        if not args.json:
            print(
                f"New models go to {info.path}. Models already in {previous} stay there and stay "
                "listed; move them with --move."
            )
            return 0
    if args.json:
        print_json(info.as_dict())
        return 0
    free = "unknown" if info.free_bytes is None else human_size(info.free_bytes)
    print(f"{info.path}\n{info.models} model(s), {human_size(info.bytes)}; {free} free")
    return 0
