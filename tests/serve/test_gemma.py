"""The openai client against `slmdesk serve` on the real Gemma 3 270M model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.models.library import Library
from slmdesk.serve.runner import ServeConfig, Server

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.integration

GEMMA = "gemma"
ASK = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture
def gemma_client(gemma_model: Path) -> Iterator[Any]:
    library = Library()
    library.import_model(gemma_model, copy=False, name=GEMMA)
    server = Server(ServeConfig(port=0, model=GEMMA), library)
    try:
        server.preload()
        server.start()
        with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
            yield client
    finally:
        server.stop()


def test_gemma_chat_stream_completion_and_response(gemma_client: Any) -> None:
    # A small base model: its words are not reliably on topic, so only their presence counts.
    completion = gemma_client.completions.create(
        model=GEMMA, prompt="1, 2, 3, 4,", max_tokens=4, temperature=0
    )
    assert completion.choices[0].text.startswith(" 5")  # a continuation keeps its space
    assert completion.usage.completion_tokens <= 4
    reply = gemma_client.chat.completions.create(
        model=GEMMA, messages=ASK, max_tokens=8, temperature=0
    )
    assert reply.choices[0].message.content.strip()
    assert reply.usage.completion_tokens <= 8
    stream = gemma_client.chat.completions.create(
        model=GEMMA, messages=ASK, max_tokens=8, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip()
    response = gemma_client.responses.create(
        model=GEMMA, input=ASK[0]["content"], max_output_tokens=8, temperature=0
    )
    assert response.output_text.strip()


def test_gemma_json_schema_reply_validates(gemma_client: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "maxLength": 40},
        },
        "required": ["city", "country"],
    }
    reply = gemma_client.chat.completions.create(
        model=GEMMA,
        messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
        max_tokens=80,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"city", "country"}
    assert all(isinstance(v, str) and len(v) <= 40 for v in value.values())
