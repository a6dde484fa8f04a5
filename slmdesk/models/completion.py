"""Text completion: the user's text is the whole prompt and the model continues it as written.

What a base model was trained to do. No chat template, no hidden frame, no system prompt: only
the beginning-of-sequence token and the text, so what the user reads is exactly what the model
saw. The continuation ends at the model's end-of-text token or the reply length limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slmdesk.models.chat_format import ChatFormat, format_facts

DESCRIPTION = "text completion (your text is continued as written, with no hidden prompt)"


class CompletionFormat:
    """The prompt "format" of text completion; duck-types the parts of `ChatFormat` in use."""

    source = "completion"
    family = "completion"
    description = DESCRIPTION
    note: str | None = None

    def __init__(self, chat_format: ChatFormat) -> None:
        """Take the token texts of the model's chat format (its BOS, end-of-text markers)."""
        self.bos_token = chat_format.bos_token
        self.eos_token = chat_format.eos_token
        self.base_model = chat_format.base_model
        self._stops = tuple(
            t for t in (chat_format.eot_token, chat_format.eos_token) if t and not t.isspace()
        )

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Only the model's own end markers: the continuation may run over many lines."""
        return self._stops

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> str:
        """The last user message, as written, after the BOS token (nothing else is sent)."""
        last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        content = "" if last is None else last.get("content")
        return self.bos_token + (content if isinstance(content, str) else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts, the same keys as `ChatFormat.as_dict`."""
        return format_facts(self)
