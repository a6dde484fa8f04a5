"""``slmdesk serve``: the local OpenAI-compatible server (`slmdesk.serve`).

Safe by default: it listens on 127.0.0.1 only. Another interface needs an API key (else exit 2
with a sentence) and prints a warning. The key may come from ``SLMDESK_API_KEY`` so that it
does not show in the process list; it is never printed or logged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from slmdesk.cli.output import one_line
from slmdesk.cli.validate import bounded_int, check_model_ref, has_control_characters
from slmdesk.common.errors import SlmdeskError

API_KEY_ENV = "SLMDESK_API_KEY"
MAX_KEY_CHARS = 256
port_number = bounded_int(0, 65535, "(0 picks a free port)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser(
        "serve",
        help="serve the library's models over the OpenAI API",
        description="Serve the library's models to other programs over the OpenAI API "
        "(chat completions, completions, responses, models, embeddings).",
    )
    p.add_argument("--model", help="library name of the model to load before serving")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs --api-key)",
    )
    p.add_argument("--port", type=port_number, default=8765, help="port (default 8765)")
    p.add_argument(
        "--api-key",
        default=None,
        help=f"key clients must send as 'Authorization: Bearer KEY' (or set {API_KEY_ENV})",
    )
    p.add_argument(
        "--json", action="store_true", help="print the address as one JSON line once listening"
    )
    p.set_defaults(func=_serve)


def _api_key(args: argparse.Namespace) -> str | None:
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_CHARS or has_control_characters(key):
        raise SlmdeskError(
            f"The API key must be 1 to {MAX_KEY_CHARS} printable characters without spaces "
            "around it."
        )
    return key


def _usage_error(message: str) -> int:
    print(f"slmdesk serve: error: {one_line(message)}", file=sys.stderr, flush=True)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from slmdesk.serve.runner import ExposureError, ServeConfig, Server

    config = ServeConfig(host=args.host.strip(), port=args.port, api_key=_api_key(args))
    if args.model is not None:
        config.model = check_model_ref(args.model)
    try:
        server = Server(config)
    except ExposureError as exc:
        return _usage_error(str(exc))
    try:
        model = server.preload()
    except BaseException:
        server.close()
        raise
    if config.exposed:
        print(
            f"WARNING: listening on {config.host}: other computers that can reach this one can "
            "use its models (they need the API key).",
            file=sys.stderr,
        )
    if args.json:
        facts = {
            "url": server.base_url,
            "host": config.host,
            "port": server.port,
            "model": model,
            "api_key_required": bool(config.api_key),
        }
        print(json.dumps(facts, ensure_ascii=False), flush=True)
    else:
        key_note = "; API key required" if config.api_key else ""
        loaded = f"model {model}" if model else "no model loaded yet"
        print(f"serving on {server.base_url} ({loaded}{key_note}); Ctrl+C stops", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled: the normal way out
        pass
    print("server stopped", file=sys.stderr, flush=True)
    return 0
