"""``slmdesk chat --endpoint URL --model NAME`` (or ``--connection NAME``): the terminal chat
with a model on an OpenAI-compatible server instead of a local file.

Everything else — ``--prompt``, ``--json``, ``--system``, ``--complete``, Ctrl+C — works as for a
local model; options that only a local model has (``--ctx``, ``--threads``, ``--format``) are
refused. ``--json`` gains ``"remote": true`` and ``"endpoint"`` (the API base used). The key may
come from ``SLMDESK_REMOTE_API_KEY`` so that it does not show in the process list.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from slmdesk.cli.output import one_line
from slmdesk.common.errors import SlmdeskError

API_KEY_ENV = "SLMDESK_REMOTE_API_KEY"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The remote options of ``slmdesk chat``."""
    p.add_argument(
        "--endpoint",
        default=None,
        help="chat with a model on this OpenAI-compatible server (http://host:port[/v1])",
    )
    p.add_argument(
        "--connection", default=None, help="chat through a saved connection (slmdesk connections)"
    )
    p.add_argument(
        "--api-key",
        dest="api_key",
        default=None,
        help=f"the server's API key (or set {API_KEY_ENV}); with --endpoint",
    )
    p.add_argument(
        "--model",
        dest="remote_model",
        default=None,
        help="the server's model to chat with (with --endpoint or --connection)",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command asks for a remote server."""
    return bool(args.endpoint or args.connection or args.remote_model)


def usage_error(message: str) -> int:
    """Bad usage: one ``slmdesk chat: error: ...`` line, exit 2 (as argparse would)."""
    print(f"slmdesk chat: error: {one_line(message)}", file=sys.stderr, flush=True)
    return 2


def _target(args: argparse.Namespace) -> Any:
    from slmdesk.chat.connections import ConnectionStore
    from slmdesk.chat.remote import RemoteTarget

    if args.endpoint and args.connection:
        raise SlmdeskError("Give --endpoint or --connection, not both.")
    if not (args.endpoint or args.connection):
        raise SlmdeskError("--model names a server's model: give --endpoint URL or --connection.")
    for option, value in (("--ctx", args.ctx), ("--threads", args.threads)):
        if value is not None:
            raise SlmdeskError(f"{option} applies to local models only: the server chooses it.")
    if args.chat_format is not None:
        raise SlmdeskError("--format applies to local models only: the server writes prompts.")
    model = args.remote_model or args.model
    if not model:
        raise SlmdeskError("Name the server's model with --model (see GET /v1/models).")
    if args.connection:
        if args.api_key is not None:
            raise SlmdeskError("--api-key goes with --endpoint; a connection has its own key.")
        return ConnectionStore().get(args.connection).target(model)
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV, "")
    return RemoteTarget(args.endpoint, model, key)


def chat(
    args: argparse.Namespace,
    sampling: Any,
    system: str,
    one_reply: Callable[[Any, argparse.Namespace, Any], int],
    repl: Callable[[Any, Any], int],
) -> int:
    """Run the chat command against a server (``one_reply``/``repl``: chat.py's own loops)."""
    from slmdesk.chat.remote import RemoteEngine, list_models
    from slmdesk.chat.remote_errors import (
        RemoteAuthError,
        RemoteTimeoutError,
        RemoteUnreachableError,
    )
    from slmdesk.chat.session import CHAT, COMPLETE, ChatSession

    target = _target(args)
    engine = RemoteEngine(target)
    try:
        # Fail at once, before any typing, when nothing answers or the key is refused; a
        # server without a model list can still chat.
        list_models(target, engine.limits)
    except (RemoteUnreachableError, RemoteTimeoutError, RemoteAuthError):
        engine.unload()
        raise
    except SlmdeskError:
        pass
    if not args.json:
        print(f"server: {engine.base} (model {target.model})", file=sys.stderr)
    session = ChatSession(engine, system_prompt=system, mode=COMPLETE if args.complete else CHAT)
    try:
        if args.prompt is not None:
            return one_reply(session, args, sampling)
        return repl(session, sampling)
    finally:
        engine.unload()


def is_remote(session: Any) -> bool:
    """Whether ``session`` talks to a server."""
    from slmdesk.chat.remote import RemoteEngine

    return isinstance(session.engine, RemoteEngine)


def json_facts(session: Any) -> dict[str, Any]:
    """The extra ``--json`` fields of a remote reply (none for a local one)."""
    if not is_remote(session):
        return {}
    return {"remote": True, "endpoint": session.engine.base, "model": session.engine.target.model}


def format_facts(session: Any) -> dict[str, Any]:
    """The ``format`` object of a remote reply: the server writes the prompt."""
    from slmdesk.chat.session import COMPLETE

    return {
        "source": "server",
        "description": session.engine.format_description,
        "mode": "completion" if session.mode == COMPLETE else "chat",
    }
