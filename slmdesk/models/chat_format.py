"""Turn a conversation into the prompt text a model was trained on.

A GGUF file usually carries its own Jinja chat template (``tokenizer.chat_template``). Templates
are written for Hugging Face's renderer and are messy in practice: some refuse a system message,
some insist on strict user/assistant alternation, some expect extra variables (``tools``, a date,
a thinking switch). They are also hostile input. `ChatFormat` renders them in a bounded sandbox
(`template_sandbox`: no Python internals or files, and limits on time and memory, so a template
that loops for ever or builds gigabyte strings is refused) with the same helpers Hugging Face
provides, repairs the conversation when a template refuses it (fold the system prompt into the
first user turn, merge consecutive turns of one role) and, when the template is missing, broken
or refused, falls back to the family's known format chosen by architecture, else a plain
transcript. A model without a template that shows no sign of instruction tuning is a base model:
it gets a hidden question-and-answer frame instead (`base_qa`).

`ChatFormat.source` and `ChatFormat.description` tell the UI which of these is in use, and
`ChatFormat.stop_strings` lists the end-of-turn markers that end a reply.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jinja2

from slmdesk.models import base_qa
from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.template_sandbox import BoundedTemplate, Budget, Limits, TemplateLimitError

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
Source = Literal["template", "fallback", "plain"]

# End-of-turn markers of the common families; when one appears in a model's template it ends a
# reply. (The marker actually placed after an assistant turn is also detected by rendering.)
KNOWN_END_MARKERS = (
    "<|im_end|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
    "<|END_OF_TURN_TOKEN|>",
    "<|return|>",
)
# Wall-clock time one `ChatFormat.render` may spend in the model's template (all its attempts).
RENDER_SECONDS = 1.0
_PROBE_USER = "slmdesk-probe-question"
_PROBE_REPLY = "slmdesk-probe-reply"


class ChatTemplateError(Exception):
    """Raised inside a template by ``raise_exception`` (or when its output is unusable)."""


# -- template helpers ----------------------------------------------------------------------------


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(str(message))


def _input_bytes(messages: Sequence[Message], extra: Mapping[str, Any]) -> int:
    """Rough size of what a render is given: the limits grow with long conversations."""
    size = sum(len(_text(m)) * 4 for m in messages)
    try:
        size += len(json.dumps(dict(extra), default=str))
    except (TypeError, ValueError):
        pass
    return size


def _render_limits(messages: Sequence[Message], extra: Mapping[str, Any]) -> Limits:
    """A render may create 32 MB plus 8 bytes per byte of input, up to 64 MB, in 1 s."""
    return Limits(
        seconds=RENDER_SECONDS,
        max_bytes=min(64 << 20, (32 << 20) + 8 * _input_bytes(messages, extra)),
    )


# -- fallback formats -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """A known prompt format written in Python, used when a model has no usable template."""

    key: str
    label: str
    turn_start: dict[str, str]  # role -> text before the content
    turn_end: str
    generation_prompt: str
    stops: tuple[str, ...]
    uses_bos: bool = True
    system_role: bool = True  # False: fold the system prompt into the first user turn
    probe: tuple[str, ...] = ()  # markers that must be single tokens for this family to apply


_GEMMA = _Family(
    "gemma",
    "Gemma format",
    {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"},
    "<end_of_turn>\n",
    "<start_of_turn>model\n",
    ("<end_of_turn>", "<start_of_turn>"),
    system_role=False,
    probe=("<start_of_turn>", "<end_of_turn>"),
)
_LLAMA3 = _Family(
    "llama3",
    "Llama 3 format",
    {
        role: f"<|start_header_id|>{role}<|end_header_id|>\n\n"
        for role in ("system", "user", "assistant")
    },
    "<|eot_id|>",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ("<|eot_id|>", "<|start_header_id|>", "<|end_of_text|>"),
    probe=("<|start_header_id|>", "<|eot_id|>"),
)
_CHATML = _Family(
    "chatml",
    "ChatML format",
    {role: f"<|im_start|>{role}\n" for role in ("system", "user", "assistant")},
    "<|im_end|>\n",
    "<|im_start|>assistant\n",
    ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    uses_bos=False,
    probe=("<|im_start|>", "<|im_end|>"),
)
_PHI3 = _Family(
    "phi3",
    "Phi-3 format",
    {role: f"<|{role}|>\n" for role in ("system", "user", "assistant")},
    "<|end|>\n",
    "<|assistant|>\n",
    ("<|end|>", "<|user|>", "<|endoftext|>"),
    uses_bos=False,
    probe=("<|user|>", "<|end|>"),
)
_MISTRAL = _Family(
    "mistral",
    "Mistral/Llama 2 [INST] format",
    {"user": "[INST] ", "assistant": ""},
    "",  # handled specially: user turns end with " [/INST]", assistant turns with EOS
    "",
    ("[INST]",),
    system_role=False,
)
_PLAIN = _Family(
    "plain",
    "plain text format",
    {"system": "", "user": "User: ", "assistant": "Assistant: "},
    "\n",
    "Assistant:",
    ("\nUser:", "\nAssistant:"),
    uses_bos=True,
)
_QA = _Family(
    "qa",
    "question-and-answer format for base models",
    {"system": "", "user": f"{base_qa.QUESTION} ", "assistant": f"{base_qa.ANSWER} "},
    base_qa.TURN_GAP,
    base_qa.ANSWER,
    base_qa.STOPS,
)

_ARCH_FAMILY: dict[str, _Family] = {
    **{a: _GEMMA for a in ("gemma", "gemma2", "gemma3", "gemma3n", "gemma-embedding")},
    **{a: _CHATML for a in ("qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe")},
    **{a: _PHI3 for a in ("phi3", "phimoe")},
    "mistral3": _MISTRAL,
}
_PROBE_ORDER = (_GEMMA, _LLAMA3, _CHATML, _PHI3)
FAMILIES: dict[str, _Family] = {
    f.key: f for f in (_GEMMA, _LLAMA3, _CHATML, _PHI3, _MISTRAL, _PLAIN, _QA)
}


_INSTRUCT_RE = re.compile(r"(?<![a-z0-9])(it|instruct|chat|sft|dpo|rlhf|assistant)(?![a-z0-9])")


def looks_instruction_tuned(info: GGUFInfo) -> bool:
    """Whether the model's name or tags say it was tuned to chat (``-it``, ``Instruct``, ``chat``).

    A model without a chat template that is *not* tuned is a base model: it never saw turn
    markers such as ``<start_of_turn>`` (the Gemma turn format makes the Gemma 3 270M base model
    repeat the question), and a plain ``User:`` / ``Assistant:`` transcript makes it echo the
    system prompt and ramble; it answers best inside a short quiz (`base_qa`). This is a guess
    from the file alone, so the UI says "looks like a base model" and offers text completion.
    """
    keys = ("general.name", "general.finetune", "general.basename", "general.tags", "general.type")
    words = [str(info.metadata.get(k) or "") for k in keys] + [info.path.stem]
    return bool(_INSTRUCT_RE.search(" ".join(words).lower().replace("_", "-")))


def _family_for(
    architecture: str,
    tokenizer_model: str | None,
    is_special_token: Callable[[str], bool] | None,
    base_model: bool = False,
) -> _Family:
    """Pick a fallback format: Q&A for base models, else by architecture, then by vocab."""
    if base_model:
        return _QA
    if architecture in _ARCH_FAMILY:
        return _ARCH_FAMILY[architecture]
    if is_special_token is not None:
        for family in _PROBE_ORDER:
            try:
                if all(is_special_token(marker) for marker in family.probe):
                    return family
            except Exception:  # a probe must never break loading a model
                log.debug("special-token probe failed", exc_info=True)
    if architecture == "llama":
        return _LLAMA3 if tokenizer_model == "gpt2" else _MISTRAL
    return _PLAIN


def _text(message: Message) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style parts: keep the text ones
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return str(content)


def normalize_messages(messages: Sequence[Message], fold_system: bool) -> list[dict[str, str]]:
    """The conversation in a shape every template accepts.

    System messages go first (folded into the first user turn when ``fold_system``), turns of
    the same role in a row are merged with a blank line, and assistant turns before the first
    user turn are dropped, so the result alternates user/assistant starting with user.
    """
    system_parts = [_text(m) for m in messages if m.get("role") == "system" and _text(m).strip()]
    turns: list[dict[str, str]] = []
    for message in messages:
        role = str(message.get("role", "user"))
        if role == "system":
            continue
        role = "assistant" if role in ("assistant", "model") else "user"
        content = _text(message)
        if not turns and role == "assistant":
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = f"{turns[-1]['content']}\n\n{content}"
        else:
            turns.append({"role": role, "content": content})
    system = "\n\n".join(system_parts)
    if system:
        if fold_system:
            if turns and turns[0]["role"] == "user":
                turns[0]["content"] = f"{system}\n\n{turns[0]['content']}"
            else:
                turns.insert(0, {"role": "user", "content": system})
        else:
            turns.insert(0, {"role": "system", "content": system})
    return turns


# -- the format -----------------------------------------------------------------------------------


class ChatFormat:
    """How one model wants a conversation written, and what ends its replies.

    Build it with `ChatFormat.from_info` (or the constructor for a bare template). `render` never
    raises for a normal conversation: when the model's template refuses it even after repairs,
    the format switches for good to the fallback and `source`/`description` say so.

    Attributes:
        source: ``"template"`` (the model's own), ``"fallback"`` (a known family format) or
            ``"plain"`` (a plain ``User:``/``Assistant:`` transcript).
        family: ``"template"`` or the fallback's key (``gemma``, ``chatml``, ``llama3``,
            ``phi3``, ``mistral``, ``plain``, ``qa``: the hidden quiz frame for base models).
        description: one sentence for the UI, e.g. "Gemma format (fallback: the model has no
            chat template)".
        note: the last repair made while rendering ("system prompt folded into the first
            message"), or None.
        base_model: the model has no chat template and nothing says it was tuned to chat.
        bos_token / eos_token: the token texts given to the template.
    """

    def __init__(
        self,
        template: str | None,
        *,
        architecture: str = "unknown",
        bos_token: str = "",
        eos_token: str = "",
        eot_token: str = "",
        tokenizer_model: str | None = None,
        is_special_token: Callable[[str], bool] | None = None,
        base_model: bool = False,
        fallback: str | None = None,
    ) -> None:
        """Prepare a format.

        Args:
            template: the Jinja chat template, or None for a model without one.
            architecture: ``general.architecture``, picks the fallback family.
            bos_token: text of the model's beginning-of-sequence token (``<s>``, ``<bos>``).
            eos_token: text of its end-of-sequence token; also a stop string.
            eot_token: text of its end-of-turn token when it has one; also a stop string.
            tokenizer_model: ``tokenizer.ggml.model`` (``gpt2`` or ``llama``), a fallback hint.
            is_special_token: tells whether a marker such as ``<|im_start|>`` is one token of
                the model's vocabulary; lets a template-less model fall back to the format its
                vocabulary was built for.
            base_model: the model is not instruction-tuned; without a template it gets the
                question-and-answer format (see `looks_instruction_tuned`, `base_qa`).
            fallback: force a fallback family by key (``gemma``, ``chatml``, ``llama3``,
                ``phi3``, ``mistral``, ``plain``, ``qa``), e.g. from a user's choice; the
                model's own template is then not used.
        """
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.eot_token = eot_token
        self.architecture = architecture
        self.template_text = template
        self.note: str | None = None
        # A guess from the file (no template, no tuning hint): the UI says so and offers
        # text completion, whatever format ends up in use.
        self.base_model = bool(base_model and not (template and template.strip()))
        self._fallback_family = _family_for(
            architecture, tokenizer_model, is_special_token, base_model and not template
        )
        if fallback is not None:
            if fallback not in FAMILIES:
                raise ValueError(f"unknown chat format {fallback!r}; choose from {list(FAMILIES)}")
            self._fallback_family = FAMILIES[fallback]
        self._compiled: BoundedTemplate | None = None
        self._fold_system = False
        self._template_stops: tuple[str, ...] = ()
        self.source: Source
        self.family: str
        self.description: str
        if fallback is not None:
            self._use_fallback("chosen in the settings")
            return
        if template is None or not template.strip():
            self._use_fallback(
                "the model has no chat template"
                + (" and looks like a base model" if self.base_model else "")
            )
            return
        try:
            self._compiled = BoundedTemplate(template)
        except TemplateLimitError as exc:
            self._refuse(str(exc))
            return
        except jinja2.TemplateSyntaxError as exc:
            self._use_fallback(f"the model's chat template is broken ({exc.message})")
            return
        except Exception as exc:
            self._use_fallback(f"the model's chat template is broken ({exc})")
            return
        self.source = "template"
        self.family = "template"
        self.description = "the model's own chat template"
        refused = None
        try:
            self._template_stops = self._detect_template_stops()
        except TemplateLimitError as exc:  # hostile: refused before any conversation
            refused = str(exc)
        if refused is not None:  # out of the handler, so the failed render can be freed
            self._refuse(refused)

    @classmethod
    def from_info(
        cls,
        info: GGUFInfo,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        eot_token: str | None = None,
        is_special_token: Callable[[str], bool] | None = None,
        fallback: str | None = None,
    ) -> ChatFormat:
        """The format of the model described by ``info``.

        Token texts are not in `GGUFInfo` (it never materialises the vocabulary); the engine
        passes them from the loaded model. Without them, common defaults by family are used.
        """
        base = not looks_instruction_tuned(info)
        family = _family_for(info.architecture, info.tokenizer_model, is_special_token)
        default_bos = {"gemma": "<bos>", "llama3": "<|begin_of_text|>"}.get(family.key, "<s>")
        default_eos = {"gemma": "<eos>", "llama3": "<|end_of_text|>", "chatml": "<|endoftext|>"}
        return cls(
            info.chat_template,
            architecture=info.architecture,
            bos_token=default_bos if bos_token is None else bos_token,
            eos_token=default_eos.get(family.key, "</s>") if eos_token is None else eos_token,
            eot_token=eot_token or "",
            tokenizer_model=info.tokenizer_model,
            is_special_token=is_special_token,
            base_model=base,
            fallback=fallback,
        )

    # -- public -------------------------------------------------------------------------------

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Texts that end a reply when the model writes them; they are never shown."""
        if self.source == "template":
            stops = list(self._template_stops)
        else:
            stops = list(self._fallback_family.stops)
        for token in (self.eot_token, self.eos_token):
            if token and not token.isspace() and token not in stops:
                stops.append(token)
        return tuple(s for s in stops if s)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts (the CLI's ``format`` object)."""
        return format_facts(self)

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        **variables: Any,
    ) -> str:
        """The prompt text for ``messages`` (dicts with ``role`` and ``content``).

        Args:
            messages: the conversation; roles ``system``, ``user``, ``assistant``.
            add_generation_prompt: end with the header of an assistant turn, so the model
                answers next.
            **variables: extra template variables (``enable_thinking=False``, ``tools=[...]``).
        """
        self.note = None
        if self._compiled is not None:
            text = self._render_template(messages, add_generation_prompt, variables)
            if text is not None:
                return text
        return self._render_fallback(messages, add_generation_prompt)

    # -- template rendering -------------------------------------------------------------------

    def _context(
        self, messages: list[dict[str, str]], add_generation_prompt: bool, extra: dict[str, Any]
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "tools": None,
            "documents": None,
            "date_string": _dt.date.today().strftime("%d %b %Y"),
            "raise_exception": _raise_exception,
        }
        context.update(extra)
        return context

    def _try(
        self,
        messages: list[dict[str, str]],
        add_generation_prompt: bool,
        extra: dict[str, Any],
        budget: Budget,
    ) -> str:
        assert self._compiled is not None
        context = self._context(messages, add_generation_prompt, extra)
        text = self._compiled.render(context, budget)
        for message in messages:
            # A template that silently drops what the user wrote is as broken as one that raises.
            wanted = message["content"].strip()
            if message["role"] in ("user", "system") and wanted and wanted not in text:
                raise ChatTemplateError(f"the template dropped a {message['role']} message")
        if not text.strip():
            raise ChatTemplateError("the template rendered nothing")
        return text

    def _render_template(
        self, messages: Sequence[Message], add_generation_prompt: bool, extra: dict[str, Any]
    ) -> str | None:
        attempts: list[tuple[bool, str | None]] = [
            (False, None),
            (True, "system prompt folded into the first message"),
        ]
        if self._fold_system:  # learnt from an earlier render: go straight to what works
            attempts = attempts[1:]
        errors: list[str] = []
        refused = None
        limits = _render_limits(messages, extra)
        deadline = time.monotonic() + limits.seconds  # shared by the attempts
        for fold, note in attempts:
            prepared = normalize_messages(messages, fold_system=fold)
            if not prepared:
                prepared = [{"role": "user", "content": ""}]
            try:
                text = self._try(prepared, add_generation_prompt, extra, Budget(limits, deadline))
            except TemplateLimitError as exc:
                refused = str(exc)
                break
            except ChatTemplateError as exc:
                errors.append(str(exc))
                continue
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            has_system = any(m.get("role") == "system" and _text(m).strip() for m in messages)
            if fold:
                self._fold_system = True
            self.note = note if (fold and has_system) else None
            return text
        if refused is not None:  # out of the handler, so the failed render can be freed
            self._refuse(refused)
            return None
        reason = errors[-1] if errors else "unknown error"
        log.warning("chat template failed, using the fallback format: %s", "; ".join(errors))
        self._use_fallback(f"the model's chat template failed: {reason}")
        return None

    def _detect_template_stops(self) -> tuple[str, ...]:
        stops: list[str] = []
        probe = [
            {"role": "user", "content": _PROBE_USER},
            {"role": "assistant", "content": _PROBE_REPLY},
        ]
        try:
            text = self._try(probe, False, {}, Budget(_render_limits(probe, {})))
        except TemplateLimitError:
            raise
        except Exception:
            text = ""
        if _PROBE_REPLY in text:
            after = text.split(_PROBE_REPLY, 1)[1].strip()
            marker = after.split()[0] if after else ""
            if marker.startswith(("<", "[")) and len(marker) <= 40:
                stops.append(marker)
        source = self.template_text or ""
        stops += [m for m in KNOWN_END_MARKERS if m in source and m not in stops]
        if "<|im_end|>" in stops and "<|im_start|>" not in stops:
            stops.append("<|im_start|>")
        if "<end_of_turn>" in stops and "<start_of_turn>" not in stops:
            stops.append("<start_of_turn>")
        return tuple(stops)

    # -- fallback rendering -------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        """Give up on a template that hit its time or memory limit: it is never run again."""
        log.warning("chat template refused, using the fallback format: %s", reason)
        self._use_fallback(f"the model's chat template was refused: {reason}")
        # Jinja's rewritten tracebacks keep the failed render's frames (and the megabytes they
        # built) in reference cycles; free them now rather than at some later collection.
        gc.collect()

    def _use_fallback(self, reason: str) -> None:
        family = self._fallback_family
        self._compiled = None
        self.source = "plain" if family.key == "plain" else "fallback"
        self.family = family.key
        self.description = f"{family.label} (fallback: {reason})"

    def _render_fallback(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        family = self._fallback_family
        turns = normalize_messages(messages, fold_system=not family.system_role)
        if family is _QA:
            return base_qa.render(turns, self.bos_token, add_generation_prompt)
        parts: list[str] = [self.bos_token] if family.uses_bos and self.bos_token else []
        if family is _MISTRAL:
            for turn in turns:
                if turn["role"] == "user":
                    parts.append(f"[INST] {turn['content'].strip()} [/INST]")
                else:
                    parts.append(f"{turn['content'].strip()}{self.eos_token}")
            return "".join(parts)
        for turn in turns:
            end = "\n\n" if family is _PLAIN and turn["role"] == "system" else family.turn_end
            parts.append(family.turn_start[turn["role"]] + turn["content"] + end)
        if add_generation_prompt:
            parts.append(family.generation_prompt)
        return "".join(parts)


def format_facts(fmt: Any) -> dict[str, Any]:
    """The CLI's ``format`` object for any prompt format (a `ChatFormat` or text completion)."""
    return {
        "source": fmt.source,
        "family": fmt.family,
        "description": fmt.description,
        "stop_strings": list(fmt.stop_strings),
        "note": fmt.note,
        "base_model": fmt.base_model,
    }
