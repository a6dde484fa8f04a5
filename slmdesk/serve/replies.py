"""Response bodies and stream chunks in the shapes OpenAI clients parse."""

from __future__ import annotations

import secrets
import time
from typing import Any

from slmdesk.llama.engine import GenerationResult

# The engine's reasons, as OpenAI names them ("context": the context window filled up).
_FINISH = {"stop": "stop", "length": "length", "context": "length", "cancelled": "stop"}


def new_id(prefix: str) -> str:
    """A unique id such as ``chatcmpl-…``."""
    return f"{prefix}{secrets.token_hex(12)}"


def finish_reason(result: GenerationResult) -> str:
    """OpenAI's finish reason for an engine result."""
    return _FINISH.get(result.timings.finish_reason, "stop")


def usage(result: GenerationResult) -> dict[str, int]:
    """Token counts of a chat or completion."""
    prompt = result.timings.prompt_tokens
    completion = result.timings.generated_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_completion(rid: str, model: str, result: GenerationResult) -> dict[str, Any]:
    """A whole chat completion."""
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(result),
    }


def chat_chunk(
    rid: str,
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    use: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One streamed chat chunk; ``delta`` None makes the usage-only last chunk."""
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if use is not None:
        chunk["usage"] = use
    return chunk


def completion(
    rid: str, model: str, text: str, finish: str | None, use: dict[str, int] | None
) -> dict[str, Any]:
    """A whole legacy completion, or one streamed chunk of it."""
    body: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }
    if use is not None:
        body["usage"] = use
    return body


def response(
    rid: str,
    message_id: str,
    model: str,
    text: str,
    status: str,
    result: GenerationResult | None,
    created: int,
) -> dict[str, Any]:
    """A ``/v1/responses`` response object (one assistant message of output text)."""
    output: list[dict[str, Any]] = []
    if status == "completed":
        output.append(message_item(message_id, text, "completed"))
    body: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "usage": None,
    }
    if result is not None:
        if finish_reason(result) == "length":
            body["status"] = "incomplete"
            body["incomplete_details"] = {"reason": "max_output_tokens"}
        prompt, generated = result.timings.prompt_tokens, result.timings.generated_tokens
        body["usage"] = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": result.timings.reused_tokens},
            "output_tokens": generated,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + generated,
        }
    return body


def message_item(message_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant message item of a response."""
    return {
        "type": "message",
        "id": message_id,
        "status": status,
        "role": "assistant",
        "content": [] if status != "completed" else [output_text(text)],
    }


def output_text(text: str) -> dict[str, Any]:
    """One output text content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
