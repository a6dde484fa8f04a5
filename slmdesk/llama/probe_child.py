"""The child side of `slmdesk.llama.probe`: load a model exactly as the chat does, render its
prompt format, convert every vocabulary token to text and generate a few tokens, then print one
JSON line. A native crash here kills only this process."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from pathlib import Path
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.lifeline import watch_parent
from slmdesk.llama.engine import MIN_CONTEXT, ChatEngine, SamplingSettings
from slmdesk.llama.probe import FROZEN_FLAG

PROBE_TOKENS = 2


def probe(model: Path) -> dict[str, Any]:
    """Child side: load ``model`` as the chat does and exercise its vocabulary and generation."""
    engine = ChatEngine()
    try:
        loaded = engine.load(model, context_length=MIN_CONTEXT, n_threads=1, prove=False)
        n_vocab = engine.vocabulary_size()
        for token in range(n_vocab):
            engine.token_bytes(token)
        result = engine.generate(
            [{"role": "user", "content": "Hello"}],
            SamplingSettings(temperature=0.0, max_tokens=PROBE_TOKENS),
        )
    finally:
        engine.unload()
    return {
        "ok": True,
        "vocabulary": n_vocab,
        "format": loaded.chat_format.description,
        "generated_chars": len(result.text),
    }


def main(argv: list[str] | None = None) -> int:
    """Child entry: print one JSON line (``ok`` or a clean ``error``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        return 2
    faulthandler.enable()  # a native crash leaves its trace on stderr for the parent's log
    watch_parent()  # a killed app does not leave its check running
    try:
        answer = probe(Path(args[0]))
    except SlmdeskError as exc:
        answer = {"ok": False, "error": str(exc)}
    except Exception as exc:  # llama-cpp-python raises plain exceptions for bad files
        answer = {"ok": False, "error": f"llama.cpp could not load it: {exc}"[:300]}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip native destructors: a damaged model may crash them


def frozen_dispatch(argv: list[str] | None = None) -> None:
    """In a frozen app: if started as the probe child, run it and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [FROZEN_FLAG]:
        sys.exit(main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
