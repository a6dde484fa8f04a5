"""``slmdesk presets``: named system prompts, the same ones the chat window offers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slmdesk.cli.output import one_line, print_json, print_table

MAX_PRESET_FILE = 64 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``presets`` command group."""
    presets = sub.add_parser("presets", help="named system prompts for chats")
    psub = presets.add_subparsers(dest="presets_command", metavar="ACTION", required=True)

    p_list = psub.add_parser("list", help="every preset")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=_list)

    p_show = psub.add_parser("show", help="print one preset's text")
    p_show.add_argument("name")
    p_show.add_argument("--json", action="store_true", help="print JSON")
    p_show.set_defaults(func=_show)

    p_save = psub.add_parser("save", help="create a preset or replace its text")
    p_save.add_argument("name")
    source = p_save.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the system prompt")
    source.add_argument("--file", type=Path, help="read the system prompt from a UTF-8 file")
    p_save.add_argument("--json", action="store_true", help="print JSON")
    p_save.set_defaults(func=_save)

    p_ren = psub.add_parser("rename", help="give a preset another name")
    p_ren.add_argument("name")
    p_ren.add_argument("new_name")
    p_ren.add_argument("--json", action="store_true", help="print JSON")
    p_ren.set_defaults(func=_rename)

    p_del = psub.add_parser("delete", help="remove a preset")
    p_del.add_argument("name")
    p_del.add_argument("--json", action="store_true", help="print JSON")
    p_del.set_defaults(func=_delete)


def _list(args: argparse.Namespace) -> int:
    from slmdesk.chat.presets import PresetStore

    presets = PresetStore().all()
    if args.json:
        print_json({"presets": [p.as_dict() for p in presets]})
    elif not presets:
        print("No presets. Create one with `slmdesk presets save NAME --text TEXT`.")
    else:
        print_table(["NAME", "TEXT"], [[p.name, one_line(p.text, 70)] for p in presets])
    return 0


def _show(args: argparse.Namespace) -> int:
    from slmdesk.chat.presets import PresetStore

    preset = PresetStore().get(args.name)
    if args.json:
        print_json(preset.as_dict())
    else:
        print(preset.text)
    return 0


def _read_text(path: Path) -> str:
    from slmdesk.chat.presets import PresetError

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PRESET_FILE + 1)
    except OSError as exc:
        raise PresetError(f"Could not read {path}: {exc.strerror or exc}.") from None
    if len(data) > MAX_PRESET_FILE:
        raise PresetError(f"{path} is too long for a system prompt.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{path} is not UTF-8 text.") from None


def _save(args: argparse.Namespace) -> int:
    from slmdesk.chat.presets import PresetStore

    text = args.text if args.text is not None else _read_text(args.file)
    preset = PresetStore().save(args.name, text)
    _report(args, preset.as_dict(), f"saved preset {preset.name}")
    return 0


def _rename(args: argparse.Namespace) -> int:
    from slmdesk.chat.presets import PresetStore

    preset = PresetStore().rename(args.name, args.new_name)
    _report(args, preset.as_dict(), f"renamed to {preset.name}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from slmdesk.chat.presets import PresetStore

    preset = PresetStore().delete(args.name)
    _report(args, preset.as_dict(), f"deleted preset {preset.name}")
    return 0


def _report(args: argparse.Namespace, value: dict[str, str], text: str) -> None:
    if args.json:
        print_json(value)
    else:
        print(one_line(text), file=sys.stdout)
