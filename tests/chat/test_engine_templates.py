"""Loading models whose chat templates are valid or hostile, through real llama.cpp.

llama-cpp-python builds its own formatter for a model's template while loading; slmdesk defers
that compile (see ``_load_hooks`` in slmdesk/llama/engine.py). These tests check that its own
chat path still works for a valid template, that nothing claims a valid template is broken,
and that a hostile template neither slows the load nor hangs when that path is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from slmdesk.llama.engine import ChatEngine, EngineError
from slmdesk.models import synth

HELLO = [{"role": "user", "content": "hello world"}]


def _template_complaints(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines saying something is wrong with the chat template (e.g. "does not compile")."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and "chat template" in r.getMessage()
    ]


def test_a_valid_template_loads_without_errors_and_serves_llama_cpp_chat(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = ChatEngine()
    try:
        engine.load(tiny_model, context_length=512, n_threads=2)
        assert _template_complaints(caplog) == []
        assert engine.chat_format.source == "template"
        # llama-cpp-python's own template path (its chat API) renders the model's template.
        llm = engine._llm
        llm.chat_format = "chat_template.default"
        reply = llm.create_chat_completion(messages=HELLO, max_tokens=2, seed=1)
        assert reply["choices"][0]["message"]["role"] == "assistant"
    finally:
        engine.unload()


@pytest.mark.parametrize("name", ["constant_fold_multiply", "nested_loops"])
def test_a_hostile_template_loads_quickly_and_falls_back(
    name: str, tmp_path: Path, template: Callable[[str], str]
) -> None:
    path = synth.write_tiny_llama(
        tmp_path / f"{name}.gguf",
        synth.TinyModelSpec(chat_template=template(f"hostile/{name}"), name=f"Tiny {name} chat"),
    )
    engine = ChatEngine()
    try:
        started = time.monotonic()
        loaded = engine.load(path, context_length=512, n_threads=2)
        # A tiny model, loaded twice on first use (the crash probe's child, then here), each time
        # with the template stopped after ~1 s; without the bounds this load never ends.
        assert time.monotonic() - started < 20.0
        assert loaded.chat_format.source == "fallback"
        assert "the model's chat template was refused" in loaded.chat_format.description
        # llama-cpp-python's own chat path refuses it too, instead of hanging.
        llm = engine._llm
        llm.chat_format = "chat_template.default"
        started = time.monotonic()
        with pytest.raises(EngineError, match="chat template was refused"):
            llm.create_chat_completion(messages=HELLO, max_tokens=2)
        assert time.monotonic() - started < 5.0
    finally:
        engine.unload()
