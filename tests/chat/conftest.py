"""Fixtures for the chat tests: template fixtures on disk and a loaded tiny-model engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).parent / "templates"


def _load(name: str) -> str:
    text = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text  # as a GGUF file carries it


@pytest.fixture
def template() -> Callable[[str], str]:
    """Read a template fixture from tests/chat/templates by its stem."""
    return _load


@pytest.fixture
def engine(tiny_model: Path) -> Iterator[object]:
    """A ChatEngine with the tiny ChatML model loaded (512 tokens of context, 2 threads)."""
    from slmdesk.llama.engine import ChatEngine

    chat = ChatEngine()
    chat.load(tiny_model, context_length=512, n_threads=2)
    yield chat
    chat.unload()
