"""The official openai client against a real `slmdesk serve` on the tiny model."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from slmdesk.serve.runner import Server
from tests.serve.conftest import API_KEY, TINY, StartServer, copy_with_pooling, wait_until

openai = pytest.importorskip("openai")

HELLO = [{"role": "user", "content": "Say hello."}]
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "done": {"type": "boolean"},
    },
    "required": ["answer", "score", "done"],
    "additionalProperties": False,
}


def test_models_lists_the_library_and_marks_the_loaded_model(client: Any) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [TINY]
    assert models[0].owned_by == "slmdesk"
    assert models[0].model_extra["loaded"] is True
    assert client.models.retrieve(TINY).id == TINY


def test_plain_chat(client: Any) -> None:
    reply = client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=8, seed=3)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == TINY
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= reply.usage.completion_tokens <= 8
    assert reply.usage.prompt_tokens > 0
    total = reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.usage.total_tokens == total


def test_streamed_chat_with_usage(client: Any) -> None:
    chunks = list(
        client.chat.completions.create(
            model=TINY,
            messages=HELLO,
            max_tokens=12,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert "".join(texts)
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert not chunks[-1].choices and 1 <= chunks[-1].usage.completion_tokens <= 12


def test_completions_plain_and_streamed(client: Any) -> None:
    done = client.completions.create(model=TINY, prompt="the cat", max_tokens=6, seed=1)
    assert done.object == "text_completion" and done.usage.completion_tokens <= 6
    assert done.choices[0].finish_reason in ("stop", "length")
    stream = client.completions.create(model=TINY, prompt="the cat", max_tokens=6, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_responses_plain_and_streamed(client: Any) -> None:
    done = client.responses.create(
        model=TINY, input="Say hello.", instructions="Be brief.", max_output_tokens=8
    )
    assert done.output_text and done.usage.output_tokens <= 8
    assert done.status in ("completed", "incomplete")
    events = list(
        client.responses.create(model=TINY, input="Say hello.", max_output_tokens=8, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done_text = next(e.text for e in events if e.type == "response.output_text.done")
    assert deltas == done_text and deltas
    assert [e.sequence_number for e in events] == list(range(len(events)))


def _matches(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"answer", "score", "done"}
        and value["answer"] in ("yes", "no")
        and isinstance(value["score"], int)
        and 0 <= value["score"] <= 10
        and isinstance(value["done"], bool)
    )


def test_json_schema_reply_parses_and_matches(client: Any) -> None:
    reply = client.chat.completions.create(
        model=TINY,
        messages=HELLO,
        max_tokens=200,
        seed=5,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert _matches(json.loads(reply.choices[0].message.content))


def test_json_object_reply_parses(client: Any) -> None:
    reply = client.chat.completions.create(
        model=TINY,
        messages=HELLO,
        max_tokens=40,
        seed=2,
        response_format={"type": "json_object"},
    )
    text = reply.choices[0].message.content
    if reply.choices[0].finish_reason == "stop":  # random weights may ramble past 40 tokens
        assert isinstance(json.loads(text), dict)
    else:
        assert text.lstrip().startswith("{")


def test_unknown_model_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_found" and "gpt-4o" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_a_model_not_loaded_is_loaded(
    start_server: StartServer, library: Any, tiny_model_no_template: Any
) -> None:
    library.import_model(tiny_model_no_template, copy=False, name="base")
    server = start_server(model=TINY)
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        reply = client.chat.completions.create(model="base", messages=HELLO, max_tokens=4)
        assert reply.model == "base"
        loaded = {m.id: m.model_extra["loaded"] for m in client.models.list().data}
    assert loaded == {"base": True, TINY: False}


def test_without_a_model_loaded_the_request_must_name_one(start_server: StartServer) -> None:
    server = start_server()
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="", messages=HELLO)
        assert caught.value.param == "model"
        assert client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=2).choices


def test_bad_requests_are_400_with_the_field(client: Any, server: Server) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"n": 2}, "n"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=TINY, messages=HELLO, **extra)
        assert caught.value.param == param, (extra, caught.value.body)
        assert caught.value.message.endswith(".")
    raw = httpx.post(
        f"{server.base_url}/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["message"] == (
        "The request body is not valid JSON."
    )


def test_embeddings_of_a_generation_model_is_a_clear_400(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=TINY, input="hello")
    assert caught.value.code == "model_cannot_embed"


def test_embeddings_from_an_embedding_model(
    client: Any, library: Any, tiny_model_source: Path, tmp_path: Path
) -> None:
    library.import_model(copy_with_pooling(tiny_model_source, tmp_path / "e.gguf"), name="emb")
    result = client.embeddings.create(model="emb", input=["hello world", "the cat"])
    assert [d.index for d in result.data] == [0, 1] and result.model == "emb"
    for item in result.data:
        assert len(item.embedding) == 256
        assert math.isclose(sum(x * x for x in item.embedding), 1.0, rel_tol=1e-3)
    assert result.usage.prompt_tokens > 0
    as_floats = client.embeddings.create(model="emb", input="hi", encoding_format="float")
    assert len(as_floats.data[0].embedding) == 256
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="emb", input=[[1, 2, 3]])
    # Back to writing text: the chat model is loaded again in its place.
    assert client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=2).choices


def test_wrong_or_missing_api_key_is_401(start_server: StartServer) -> None:
    server = start_server(model=TINY, api_key=API_KEY)
    wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.code == "invalid_api_key" and API_KEY not in caught.value.message
    assert httpx.get(f"{server.base_url}/models").status_code == 401
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as right:
        assert right.chat.completions.create(model=TINY, messages=HELLO, max_tokens=2).choices


def test_oversize_body_is_413(server: Server, client: Any) -> None:
    huge = [{"role": "user", "content": "x" * (2 << 20)}]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=TINY, messages=huge)
    assert caught.value.status_code == 413

    def chunked() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(40):
            yield b" " * 65536

    raw = httpx.post(f"{server.base_url}/completions", content=chunked())
    assert raw.status_code == 413 and raw.json()["error"]["code"] == "request_too_large"


def test_closing_the_stream_stops_generation(client: Any, server: Server) -> None:
    # The grammar forces a long reply: random weights could otherwise end it at once.
    long_text = {"type": "object", "properties": {"text": {"type": "string", "minLength": 900}}}
    stream = client.chat.completions.create(
        model=TINY,
        messages=HELLO,
        stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": long_text}},
    )
    for received, _chunk in enumerate(stream, 1):
        if received == 4:
            break
    stream.close()
    wait_until(lambda: len(server.service.recent) == 1 and server.service.current is None)
    result = server.service.recent[-1]
    assert result.timings.finish_reason == "cancelled"
    assert result.timings.generated_tokens < 900
    # The server goes on answering.
    assert client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=2).choices


def test_closing_the_connection_before_a_whole_reply_stops_generation(server: Server) -> None:
    long_text = {"type": "object", "properties": {"text": {"type": "string", "minLength": 900}}}
    body = json.dumps(
        {
            "model": TINY,
            "messages": HELLO,
            "response_format": {"type": "json_schema", "json_schema": {"schema": long_text}},
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(head + body)
        wait_until(lambda: server.service.current is not None)
    wait_until(lambda: len(server.service.recent) == 1 and server.service.current is None)
    assert server.service.recent[-1].timings.finish_reason == "cancelled"
