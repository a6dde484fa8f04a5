"""``slmdesk chat MODEL``: chat in the terminal, or ``--prompt TEXT`` for one streamed reply.

``--complete`` switches to text completion: each message is continued as written, with no
prompt format around it (what a base model was trained to do).

The reply is generated on a named worker thread while the main thread waits, so Ctrl+C (which
Python delivers to the main thread) can stop it within one token: the first Ctrl+C stops the
reply, a second one (or Ctrl+C at the prompt) leaves.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from slmdesk.cli import remote_chat
from slmdesk.cli.output import ProgressBar, one_line, print_json
from slmdesk.cli.validate import (
    bounded_int,
    check_model_ref,
    context_length,
    reply_tokens,
    seed_value,
    thread_count,
)

REPL_HELP = (
    "Type a message and press Enter. /reset starts over, /exit leaves (Ctrl+C stops a reply)."
)
COMPLETE_HELP = (
    "Text completion: type the start of a text and press Enter; the model continues it. "
    "/exit leaves (Ctrl+C stops it)."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``chat`` command."""
    p = sub.add_parser("chat", help="chat with a model in the terminal")
    p.add_argument("model", nargs="?", default=None, help="library name or path to a .gguf file")
    p.add_argument("--prompt", help="send this one message, print the streamed reply and exit")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--preset", default=None, help="use the system prompt preset with this name")
    p.add_argument("--max-tokens", type=reply_tokens, default=None, help="longest reply in tokens")
    p.add_argument("--temperature", type=float, default=None, help="0 = always the likeliest")
    p.add_argument(
        "--seed", type=seed_value, default=None, help="fixed seed for repeatable replies"
    )
    p.add_argument("--ctx", type=context_length, default=None, help="context length in tokens")
    p.add_argument(
        "--threads", type=thread_count, default=None, help="CPU threads (default: cores)"
    )
    p.add_argument(
        "--gpu-layers",
        type=bounded_int(0, 10_000, "layers"),
        default=None,
        help="layers on the GPU (default: as many as fit; 0 = CPU only)",
    )
    p.add_argument(
        "--format",
        dest="chat_format",
        default=None,
        help="force a chat format: gemma, chatml, llama3, phi3, mistral, plain or qa",
    )
    p.add_argument(
        "--complete",
        action="store_true",
        help="text completion: continue the text as written, with no chat format around it",
    )
    p.add_argument("--json", action="store_true", help="with --prompt: print the reply as JSON")
    remote_chat.add_arguments(p)
    p.set_defaults(func=_chat)


def _sampling(args: argparse.Namespace, saved: Any) -> Any:
    """The model's saved sampling defaults, overlaid with the values given on the command line."""
    from slmdesk.llama.engine import EngineError, SamplingSettings

    values: dict[str, Any] = {}
    if args.max_tokens is not None:
        values["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        values["temperature"] = args.temperature
    if args.seed is not None:
        values["seed"] = args.seed
    given = SamplingSettings.from_dict(values)  # the command line's own values are checked first
    try:
        return SamplingSettings.from_dict(saved.merged_sampling(values))
    except EngineError as exc:
        print(f"note: the model's saved sampling settings are not used: {exc}", file=sys.stderr)
        return given


def _system_prompt(args: argparse.Namespace, saved: Any) -> str:
    """--system, else the --preset's text, else the model's saved system prompt."""
    from slmdesk.chat.presets import PresetStore
    from slmdesk.llama.engine import EngineError

    if args.system is not None and args.preset is not None:
        raise EngineError("Give either --system or --preset, not both.")
    if args.system is not None:
        return str(args.system)
    if args.preset is not None:
        return PresetStore().get(args.preset).text
    if args.complete:
        return ""
    return saved.system_prompt or ""


def _chat(args: argparse.Namespace) -> int:
    from slmdesk.chat.session import CHAT, COMPLETE, ChatSession
    from slmdesk.llama.engine import ChatEngine, EngineError
    from slmdesk.models.library import Library

    if args.model is None and not remote_chat.wanted(args):
        return remote_chat.usage_error("the following arguments are required: model")
    if args.json and args.prompt is None:
        raise EngineError("--json needs --prompt (the interactive chat prints text).")
    if args.prompt is not None and not args.prompt.strip():
        raise EngineError("The message is empty: give --prompt some text.")
    if args.complete and (args.system or args.preset):
        raise EngineError("--system cannot be used with --complete: only your text is continued.")
    if remote_chat.wanted(args):
        from slmdesk.models.model_settings import ModelSettings

        nothing_saved = ModelSettings()  # a server's model has no saved settings here
        return remote_chat.chat(
            args,
            _sampling(args, nothing_saved),
            _system_prompt(args, nothing_saved),
            _one_reply,
            _repl,
        )
    library = Library()
    ref = check_model_ref(args.model)
    path = library.resolve(ref)
    saved = library.settings_of(str(ref))
    sampling = _sampling(args, saved)
    system = _system_prompt(args, saved)
    engine = ChatEngine()
    bar = None if args.json else ProgressBar(f"loading {path.name}")
    loaded = engine.load(
        path,
        context_length=args.ctx or saved.context_length or None,
        n_threads=args.threads or saved.threads or None,
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else saved.gpu_layers,
        progress=(lambda f: bar.update(int(f * 100), 100)) if bar else None,
        chat_format=args.chat_format,
    )
    if bar:
        bar.finish(f"{loaded.context_length:,} tokens of context, {loaded.n_threads} threads")
        _print_format(loaded.chat_format, path.name, args.complete)
    session = ChatSession(engine, system_prompt=system, mode=COMPLETE if args.complete else CHAT)
    try:
        if args.prompt is not None:
            return _one_reply(session, args, sampling)
        return _repl(session, sampling)
    finally:
        engine.unload()


def _print_format(chat_format: Any, name: str, complete: bool) -> None:
    """Say how prompts are written, and plainly when the model looks like a base model."""
    from slmdesk.models.completion import CompletionFormat

    if complete:
        print(f"mode: {CompletionFormat(chat_format).description}", file=sys.stderr)
        return
    print(f"format: {chat_format.description}", file=sys.stderr)
    if chat_format.base_model:
        print(
            f"note: {name} looks like a base model (no chat template, nothing says it was tuned "
            "to chat): questions go through a hidden question-and-answer frame and answers may "
            "be wrong; --complete continues text instead.",
            file=sys.stderr,
        )


class _Printer:
    """Session listener that writes the reply's text to the terminal as it comes."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def messages_removed(self, ids: list[int]) -> None:
        pass

    def user_saved(self, message: Any) -> None:
        pass

    def reply_started(self, message: Any) -> None:
        pass

    def text(self, message_id: int, piece: str) -> None:
        if self.stream:
            sys.stdout.write(piece)
            sys.stdout.flush()


def _run_reply(session: Any, text: str, sampling: Any, stream: bool) -> tuple[Any, bool]:
    """One turn of ``session`` on a worker thread; returns (reply, interrupted twice)."""
    stop = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["reply"] = session.reply(text, sampling, _Printer(stream), stop)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="slmdesk-chat-cli", daemon=True)
    worker.start()
    interrupts = 0
    while worker.is_alive():
        try:
            worker.join(0.1)
        except KeyboardInterrupt:
            interrupts += 1
            stop.set()
    if "error" in box:
        raise box["error"]
    return box["reply"], interrupts >= 2


def _one_reply(session: Any, args: argparse.Namespace, sampling: Any) -> int:
    reply, _ = _run_reply(session, args.prompt, sampling, stream=not args.json)
    if args.json:
        print_json(
            {
                "reply": reply.text,
                "timings": reply.timings,
                "format": _format_facts(session),
                "mode": session.mode,
                "system_prompt": session.system_prompt,
                "load": _load_facts(session),
                **remote_chat.json_facts(session),
            }
        )
    else:
        sys.stdout.write("\n")
        _print_timings(reply)
    return 130 if reply.timings["finish_reason"] == "cancelled" else 0


def _load_facts(session: Any) -> dict[str, Any]:
    """The JSON ``load`` object: how the model was loaded (the server's business when remote)."""
    if remote_chat.is_remote(session):
        return {"context_length": None, "n_threads": None}
    loaded = session.engine.loaded
    return {"context_length": loaded.context_length, "n_threads": loaded.n_threads}


def _format_facts(session: Any) -> dict[str, Any]:
    """The JSON ``format`` object: the chat format, or text completion's."""
    from slmdesk.chat.session import COMPLETE
    from slmdesk.models.completion import CompletionFormat

    if remote_chat.is_remote(session):
        return remote_chat.format_facts(session)
    chat_format = session.engine.chat_format
    if session.mode == COMPLETE:
        return CompletionFormat(chat_format).as_dict()
    return dict(chat_format.as_dict())


def _print_timings(reply: Any) -> None:
    t = reply.timings
    note = {
        "cancelled": ", stopped",
        "length": ", reply length limit reached",
        "context": ", context full",
    }.get(t["finish_reason"], "")
    print(
        f"[{t['generated_tokens']} tokens, {t['tokens_per_second']:.1f} tokens/s, first token "
        f"after {t['time_to_first_token']:.2f} s{note}]",
        file=sys.stderr,
    )
    if reply.dropped:
        print(
            f"[{reply.dropped} older message(s) no longer fit in the context and were left out]",
            file=sys.stderr,
        )


def _repl(session: Any, sampling: Any) -> int:
    from slmdesk.chat.session import COMPLETE
    from slmdesk.common.errors import SlmdeskError

    print(COMPLETE_HELP if session.mode == COMPLETE else REPL_HELP, file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            session.reset()
            print("[conversation cleared]", file=sys.stderr)
            continue
        try:
            reply, leave = _run_reply(session, line, sampling, stream=True)
        except SlmdeskError as exc:  # the session forgot the unanswered message
            print(f"error: {one_line(str(exc))}", file=sys.stderr)
            continue
        sys.stdout.write("\n")
        _print_timings(reply)
        if leave:
            return 130
