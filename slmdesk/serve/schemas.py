"""Request bodies the server accepts, checked before any work (pydantic, via FastAPI).

Fields clients commonly send but that change nothing here (``user``, ``frequency_penalty``,
``presence_penalty``, ``logit_bias`` ...) are accepted and ignored; fields that would change
the answer in ways the server cannot honour (``n`` above 1, tools, logprobs) are refused by
`slmdesk.serve.app` with a 400 naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A reply never needs more tokens than the largest context slmdesk loads; the model's own
# context bounds it further once it is loaded.
MAX_TOKENS_CEILING = 131072
MAX_STOP_STRINGS = 4
MAX_STOP_LENGTH = 256


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Lenient):
    """One part of a message's content; only text parts are supported."""

    type: str
    text: str | None = None


class ChatMessage(_Lenient):
    """One message of a chat request."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class ResponseFormat(_Lenient):
    """``response_format``: text, any JSON object, or JSON matching a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(_Lenient):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    include_usage: bool = False


class _Sampling(_Lenient):
    model: str | None = Field(default=None, max_length=512)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_Sampling):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CEILING)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CEILING)
    stop: str | list[str] | None = None
    n: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    logprobs: bool | None = None


class CompletionRequest(_Sampling):
    """``POST /v1/completions``."""

    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1, le=MAX_TOKENS_CEILING)
    stop: str | list[str] | None = None
    n: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None


class ResponseInputMessage(_Lenient):
    """One message of a ``/v1/responses`` input list."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    type: str | None = None


class ResponsesRequest(_Sampling):
    """``POST /v1/responses`` (text in, text out)."""

    input: str | list[ResponseInputMessage]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CEILING)
    tools: list[Any] | None = None


class EmbeddingRequest(_Lenient):
    """``POST /v1/embeddings``."""

    model: str | None = Field(default=None, max_length=512)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
