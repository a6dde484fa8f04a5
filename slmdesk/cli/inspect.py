"""``slmdesk inspect MODEL``: the facts in a GGUF file's header, and whether it fits here."""

from __future__ import annotations

import argparse

from slmdesk.cli.output import human_count, human_size, print_json
from slmdesk.cli.validate import check_model_ref, context_length


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` command."""
    p = sub.add_parser("inspect", help="show a model's GGUF facts and memory estimate")
    p.add_argument("model", help="library name or path to a .gguf file")
    p.add_argument(
        "--ctx", type=context_length, default=None, help="context length for the memory estimate"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    from slmdesk.llama.devices import estimate_on_this_machine
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.library import Library

    library = Library()
    ref = check_model_ref(args.model)
    path = library.resolve(ref)
    info = read_gguf_info(path)
    saved = library.settings_of(str(ref))  # empty for a file outside the library
    estimate = estimate_on_this_machine(info, args.ctx, saved.gpu_layers)
    facts = info.summary()
    facts["memory"] = estimate.as_dict()
    if args.json:
        print_json(facts)
        return 0
    rows = [
        ("path", facts["path"]),
        ("name", facts["name"] or "-"),
        ("architecture", facts["architecture"]),
        ("parameters", f"{human_count(facts['parameters'])} ({facts['parameters']:,})"),
        ("blocks", facts["block_count"]),
        ("context length", f"{facts['context_length']:,}"),
        ("embedding", facts["embedding_length"]),
        ("heads / kv heads", f"{facts['head_count']} / {facts['head_count_kv']}"),
        ("quantization", facts["quantization"]),
        (
            "tensor types",
            ", ".join(f"{k} {human_size(v)}" for k, v in facts["tensor_types"].items()),
        ),
        ("size", human_size(facts["size_bytes"])),
        (
            "chat template",
            "yes" if facts["has_chat_template"] else "no (a fallback format is used)",
        ),
        ("tokenizer", f"{facts['tokenizer_model']} ({facts['vocab_size']:,} tokens)"),
        ("license", facts["license"] or "-"),
        (
            "memory",
            f"{human_size(estimate.total_bytes)} at {estimate.context_length:,} tokens of context"
            + (
                f" ({estimate.gpu_layers} layers, {human_size(estimate.device_bytes)}, on the GPU)"
                if estimate.gpu_layers
                else ""
            )
            + f" -> {estimate.verdict}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0
