"""``slmdesk connections list|add|remove``: the remote servers the chat can use.

The API key is never printed: ``list`` shows whether one is set. ``add`` reads the key from
``--api-key`` or, to keep it out of the process list, from ``SLMDESK_REMOTE_API_KEY``.
"""

from __future__ import annotations

import argparse
import os

from slmdesk.cli.output import print_json, print_table
from slmdesk.cli.remote_chat import API_KEY_ENV
from slmdesk.common.format import printable


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``connections`` command group."""
    p = sub.add_parser("connections", help="remote OpenAI-compatible servers to chat with")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="the saved connections (keys are never shown)")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(func=_list)
    add = actions.add_parser("add", help="save a server: NAME URL")
    add.add_argument("name", help="a short name, e.g. gpu-box")
    add.add_argument("url", help="the server's address, e.g. http://10.0.0.5:8080")
    add.add_argument("--api-key", default=None, help=f"its API key (or set {API_KEY_ENV})")
    add.add_argument("--replace", action="store_true", help="replace a connection of that name")
    add.add_argument("--test", action="store_true", help="list the server's models first")
    add.set_defaults(func=_add)
    rm = actions.add_parser("remove", help="forget a connection")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)
    models = actions.add_parser("models", help="the models a saved server lists")
    models.add_argument("name")
    models.add_argument("--json", action="store_true", help="print as JSON")
    models.set_defaults(func=_models)


def _list(args: argparse.Namespace) -> int:
    from slmdesk.chat.connections import ConnectionStore

    items = [c.public for c in ConnectionStore().all()]
    if args.json:
        print_json(items)
    elif not items:
        print("No connections yet: slmdesk connections add NAME URL")
    else:
        print_table(
            ["name", "address", "key"],
            [[printable(i["name"]), printable(i["base_url"]), "set" if i["has_key"] else "-"]
             for i in items],
        )  # fmt: skip
    return 0


def _add(args: argparse.Namespace) -> int:
    from slmdesk.chat.connections import Connection, ConnectionStore
    from slmdesk.chat.remote import list_models

    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV, "")
    connection = Connection(args.name, args.url, key)
    if args.test:
        found = list_models(connection.target(""))
        print(f"{printable(args.url)} lists {len(found)} model(s)")
    store = ConnectionStore()
    saved = store.save(connection, replace=args.name if args.replace else None)
    print(f"saved connection {printable(saved.name)}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from slmdesk.chat.connections import ConnectionStore

    gone = ConnectionStore().remove(args.name)
    print(f"removed connection {printable(gone.name)}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from slmdesk.chat.connections import ConnectionStore
    from slmdesk.chat.remote import list_models

    found = list_models(ConnectionStore().get(args.name).target(""))
    if args.json:
        print_json(found)
    else:
        for name in found:
            print(printable(name))
    return 0
