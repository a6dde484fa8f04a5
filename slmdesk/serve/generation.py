"""What each endpoint asks of the engine: one `TextRequest`, run on the inference thread.

The three text endpoints (chat completions, completions, responses) are normalized here into
messages or a raw prompt plus sampling values; `generation_work` renders the prompt with the
loaded model's own chat format, bounds ``max_tokens`` by its context, compiles a JSON grammar
for ``response_format`` and streams the reply through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slmdesk.llama.engine import (
    ContextOverflowError,
    EngineError,
    GenerationResult,
    SamplingSettings,
)
from slmdesk.llama.grammar import (
    GrammarError,
    check_grammar,
    json_object_grammar,
    json_schema_grammar,
)
from slmdesk.models.model_settings import ModelSettings
from slmdesk.serve.errors import bad_request
from slmdesk.serve.inference import Slot, Work
from slmdesk.serve.schemas import (
    MAX_STOP_LENGTH,
    MAX_STOP_STRINGS,
    ChatCompletionRequest,
    CompletionRequest,
    ContentPart,
    ResponseFormat,
    ResponsesRequest,
)

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass
class TextRequest:
    """A text generation request, whichever endpoint it came from."""

    messages: list[dict[str, str]] | None = None  # a chat, rendered with the model's format
    prompt: str | None = None  # or a raw prompt, continued as is
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stops: tuple[str, ...] = ()
    response_format: ResponseFormat | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text_of(content: str | list[ContentPart] | None, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type not in ("text", "input_text", "output_text") or part.text is None:
            raise bad_request(
                f"Only text content is supported, not {part.type!r} parts.", param=param
            )
        texts.append(part.text)
    return "".join(texts)


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    values = [stop] if isinstance(stop, str) else list(stop or [])
    if len(values) > MAX_STOP_STRINGS:
        raise bad_request(f"At most {MAX_STOP_STRINGS} stop strings are allowed.", param="stop")
    if any(len(s) > MAX_STOP_LENGTH for s in values):
        raise bad_request(
            f"A stop string may be at most {MAX_STOP_LENGTH} characters long.", param="stop"
        )
    return tuple(s for s in values if s)


def _only_one(n: int | None) -> None:
    if n is not None and n != 1:
        raise bad_request("Only n=1 is supported: one reply per request.", param="n")


def from_chat(body: ChatCompletionRequest) -> TextRequest:
    """A chat completion request, checked.

    Raises:
        ApiError: 400 for what the server cannot honour (n > 1, tools, logprobs, non-text).
    """
    _only_one(body.n)
    if body.tools:
        raise bad_request("Tools are not supported by this server.", param="tools")
    if body.logprobs:
        raise bad_request("logprobs are not supported by this server.", param="logprobs")
    messages = []
    for i, message in enumerate(body.messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise bad_request(
                f"Messages with the role {message.role!r} are not supported.",
                param=f"messages[{i}].role",
            )
        messages.append({"role": role, "content": _text_of(message.content, f"messages[{i}]")})
    fmt = body.response_format
    if fmt is not None and fmt.type == "json_schema" and not _schema_of(fmt):
        raise bad_request(
            "response_format json_schema needs {'json_schema': {'schema': {...}}}.",
            param="response_format",
        )
    return TextRequest(
        messages=messages,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stops=_stops(body.stop),
        response_format=fmt if fmt is not None and fmt.type != "text" else None,
    )


def from_completion(body: CompletionRequest) -> TextRequest:
    """A legacy completion request, checked."""
    _only_one(body.n)
    if body.echo:
        raise bad_request("echo is not supported by this server.", param="echo")
    if body.suffix:
        raise bad_request("suffix is not supported by this server.", param="suffix")
    if body.logprobs:
        raise bad_request("logprobs are not supported by this server.", param="logprobs")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise bad_request("Send exactly one prompt per request.", param="prompt")
    if not prompts[0]:
        raise bad_request("The prompt is empty.", param="prompt")
    return TextRequest(
        prompt=prompts[0],
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stops=_stops(body.stop),
    )


def from_responses(body: ResponsesRequest) -> TextRequest:
    """A ``/v1/responses`` request (text in, text out), checked."""
    if body.tools:
        raise bad_request("Tools are not supported by this server.", param="tools")
    messages: list[dict[str, str]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    if isinstance(body.input, str):
        messages.append({"role": "user", "content": body.input})
    else:
        for i, item in enumerate(body.input):
            if item.type not in (None, "message"):
                raise bad_request(
                    f"Only message input items are supported, not {item.type!r}.",
                    param=f"input[{i}]",
                )
            content = _text_of(item.content, f"input[{i}]")
            messages.append({"role": _ROLES[item.role], "content": content})
    if not messages or not any(m["content"].strip() for m in messages):
        raise bad_request("The input is empty.", param="input")
    return TextRequest(
        messages=messages,
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
    )


def _schema_of(fmt: ResponseFormat) -> dict[str, Any] | None:
    spec = fmt.json_schema or {}
    schema = spec.get("schema")
    return schema if isinstance(schema, dict) else None


def _grammar(fmt: ResponseFormat | None) -> Any:
    if fmt is None:
        return None
    if fmt.type == "json_object":
        return json_object_grammar()
    schema = _schema_of(fmt)
    return json_schema_grammar(schema) if schema is not None else None


def _sampling(request: TextRequest, max_tokens: int, defaults: ModelSettings) -> SamplingSettings:
    """The model's saved sampling defaults, overlaid with the request's own values."""
    saved = {k: v for k, v in defaults.sampling.items() if k != "max_tokens"}
    try:
        settings = SamplingSettings.from_dict({**saved, "max_tokens": max_tokens})
    except EngineError:
        settings = SamplingSettings(max_tokens=max_tokens)
    if request.temperature is not None:
        settings.temperature = request.temperature
    if request.top_p is not None:
        settings.top_p = request.top_p
    if request.seed is not None:
        settings.seed = request.seed & 0x7FFFFFFF  # llama.cpp takes a 32-bit seed
    return settings


def with_saved_system_prompt(
    messages: list[dict[str, str]], defaults: ModelSettings
) -> list[dict[str, str]]:
    """The request's messages, led by the model's saved system prompt when they bring none."""
    if not defaults.system_prompt or any(m.get("role") == "system" for m in messages):
        return messages
    return [{"role": "system", "content": defaults.system_prompt}, *messages]


def generation_work(request: TextRequest) -> Work:
    """The work that answers ``request`` on the inference thread; returns a GenerationResult."""

    def work(slot: Slot) -> GenerationResult:
        engine = slot.engine
        loaded = engine.loaded
        assert loaded is not None
        n_ctx = loaded.context_length
        if request.max_tokens is not None and request.max_tokens > n_ctx:
            raise bad_request(
                f"max_tokens is {request.max_tokens:,} but {slot.model} holds {n_ctx:,} tokens "
                "of context (prompt and reply together).",
                param="max_tokens",
            )
        try:
            grammar = _grammar(request.response_format)
            if grammar is not None:
                check_grammar(engine, grammar)
        except GrammarError as exc:
            raise bad_request(str(exc), param="response_format") from None
        if request.messages is not None:
            messages = with_saved_system_prompt(request.messages, slot.defaults)
            prompt = loaded.chat_format.render(messages, add_generation_prompt=True)
        else:
            prompt = request.prompt or ""
        try:
            return engine.complete(
                prompt,
                _sampling(request, request.max_tokens or n_ctx, slot.defaults),
                on_token=slot.push,
                stop_event=slot.cancel,
                grammar=grammar,
                stops=request.stops,
                keep_lead=request.messages is None,  # a raw prompt is continued as written
            )
        except ContextOverflowError as exc:
            raise bad_request(str(exc), param="messages", code="context_length_exceeded") from None
        except EngineError as exc:
            raise bad_request(str(exc)) from None

    return work
