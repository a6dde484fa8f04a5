"""``slmdesk models settings NAME``: show or change a model's saved defaults.

The chat window, ``slmdesk chat`` and ``slmdesk serve`` start from these; a value given for one
conversation or one command still wins.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from slmdesk.cli.output import one_line, print_json
from slmdesk.cli.validate import (
    bounded_int,
    check_model_ref,
    context_length,
    reply_tokens,
    thread_count,
)


def _real(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}")
        return value

    return parse


def _gpu_layers(text: str) -> int:
    """``auto`` (slmdesk decides, stored as -1 until saved) or a number of layers."""
    if text.strip().lower() == "auto":
        return -1
    return bounded_int(0, 10_000, "layers")(text)


SAMPLING_OPTIONS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--temperature", "temperature", _real(0.0, 5.0), "0 = always the likeliest word"),
    ("--top-p", "top_p", _real(0.01, 1.0), "nucleus sampling share"),
    ("--top-k", "top_k", bounded_int(0, 100_000, "words"), "0 = off"),
    ("--min-p", "min_p", _real(0.0, 0.99), "drop words far less likely than the best"),
    ("--repeat-penalty", "repeat_penalty", _real(0.01, 5.0), "above 1 discourages repeats"),
    ("--max-tokens", "max_tokens", reply_tokens, "longest reply in tokens"),
    ("--seed", "seed", bounded_int(0, 2**31 - 1, ""), "fixed seed for repeatable replies"),
)


def register_settings(msub: argparse._SubParsersAction) -> None:
    """Add ``models settings`` to the ``models`` group."""
    p = msub.add_parser("settings", help="show or change a model's saved defaults")
    p.add_argument("name", help="library name")
    p.add_argument("--ctx", type=context_length, help="context length in tokens")
    p.add_argument("--threads", type=thread_count, help="CPU threads")
    p.add_argument("--gpu-layers", type=_gpu_layers, help="layers on the GPU, or 'auto'")
    p.add_argument("--system", help="system prompt ('' clears it)")
    p.add_argument("--preset", help="use this system prompt preset's text")
    for flag, _key, kind, text in SAMPLING_OPTIONS:
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("--clear", action="store_true", help="forget every saved value first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_settings)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The values given on the command line, as `ModelSettings` fields."""
    from slmdesk.chat.presets import PresetStore
    from slmdesk.common.errors import SlmdeskError

    if args.system is not None and args.preset is not None:
        raise SlmdeskError("Give either --system or --preset, not both.")
    changes: dict[str, Any] = {}
    if args.ctx is not None:
        changes["context_length"] = args.ctx
    if args.threads is not None:
        changes["threads"] = args.threads
    if args.gpu_layers is not None:
        changes["gpu_layers"] = None if args.gpu_layers < 0 else args.gpu_layers
    if args.system is not None:
        changes["system_prompt"] = args.system or None
    if args.preset is not None:
        changes["system_prompt"] = PresetStore().get(args.preset).text
    sampling = {key: getattr(args, key) for _f, key, _k, _t in SAMPLING_OPTIONS}
    changes["sampling"] = {k: v for k, v in sampling.items() if v is not None}
    return changes


def _settings(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from slmdesk.models.library import Library
    from slmdesk.models.model_settings import ModelSettings

    library = Library()
    entry = library.get(check_model_ref(args.name))
    current = ModelSettings() if args.clear else ModelSettings.from_dict(entry.settings)
    changes = _changes(args)
    sampling = {**current.sampling, **changes.pop("sampling")}
    updated = replace(current, sampling=sampling, **changes)
    if args.clear or updated != current:
        entry = library.save_settings(entry.name, updated)
    if args.json:
        print_json({"name": entry.name, "settings": entry.settings})
        return 0
    _print(entry.name, ModelSettings.from_dict(entry.settings))
    return 0


def _print(name: str, settings: Any) -> None:
    if settings.is_empty():
        print(f"{one_line(name)}: no saved settings (the app's defaults apply)")
        return
    print(f"{one_line(name)}:")
    rows = [
        ("context length", settings.context_length or None),
        ("threads", settings.threads or None),
        ("GPU layers", settings.gpu_layers),
    ]
    rows += [(key.replace("_", " "), value) for key, value in settings.sampling.items()]
    for label, value in rows:
        if value is not None:
            print(f"  {label}: {value}")
    if settings.system_prompt is not None:
        print(f"  system prompt: {one_line(settings.system_prompt, 200)}")
