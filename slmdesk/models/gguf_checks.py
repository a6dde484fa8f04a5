"""Refuse GGUF files that llama.cpp would abort on, before it sees them.

llama.cpp validates a model file with assertions: a file that breaks one of them does not give
an error, it kills the whole process (SIGABRT, sometimes SIGSEGV or SIGFPE) — the window, the
chat, the unsaved reply. Each check below mirrors one such assertion or crash found by fuzzing
(``tests/models/test_gguf_fuzz.py``) and turns it into one sentence in an `InvalidModelError`.
The checks only read facts `gguf_info` has already parsed, so they cost next to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from slmdesk.models.gguf_text import invalid, printable, quoted


class _Tensor(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def type_name(self) -> str: ...


class GGUFFacts(Protocol):
    """What the checks read (a `gguf_info.GGUFInfo`; a protocol keeps the import one-way)."""

    path: Path
    metadata: dict[str, Any]
    alignment: int

    @property
    def architecture(self) -> str: ...

    @property
    def tensors(self) -> Sequence[_Tensor]: ...

    @property
    def vocabulary(self) -> Any: ...


MAX_LAYERS = 512  # llama.cpp's LLAMA_MAX_LAYERS
MAX_EXPERTS = 1024  # llama.cpp's LLAMA_MAX_EXPERTS
# llama.cpp sets aside about 4 bytes per trained-context position when it first decodes (measured:
# 2^31-1 positions cost 8.6 GB and a minute, whatever context the model is loaded with). The
# longest real training context is 10M tokens (Llama 4 Scout); a claim beyond this is damage.
MAX_TRAINED_CONTEXT = 1 << 24
# llama.cpp maps tensor data straight from the file; its CPU code needs it 32-byte aligned.
TENSOR_ALIGNMENT = 32
# Tokenizer families this llama.cpp build knows (an unknown one is refused).
KNOWN_TOKENIZERS = frozenset(
    {
        "no_vocab",
        "none",
        "llama",
        "bert",
        "gpt2",
        "hybriddna",
        "whitespace",
        "t5",
        "rwkv",
        "test",
        "plamo2",
        "gemma4",
    }
)
ROPE_SCALING_TYPES = frozenset({"none", "linear", "yarn", "longrope"})
# Tensor types that hold integers: llama.cpp's matrix and norm code only takes floats or
# quantized blocks and aborts on these.
INTEGER_TENSOR_TYPES = frozenset({"I8", "I16", "I32", "I64"})


def check_loadable(info: GGUFFacts) -> None:
    """Raise `InvalidModelError` if llama.cpp would crash on ``info``'s file.

    Args:
        info: facts read by `read_gguf_info` (which calls this on every file it accepts).

    Raises:
        InvalidModelError: one sentence naming the damaged value.
    """
    name = printable(info.path.name, 80)
    checks = (
        _blocks,
        _context,
        _norm_epsilon,
        _heads,
        _experts,
        _alignment,
        _tensor_types,
        _rope,
        _vocabulary,
    )
    for check in checks:
        problem = check(info)
        if problem:
            raise invalid(f"{name} cannot be loaded: {problem}")


def _arch(info: GGUFFacts, suffix: str) -> tuple[str, Any]:
    key = f"{info.architecture}.{suffix}"
    return key, info.metadata.get(key)


def _blocks(info: GGUFFacts) -> str | None:
    key, value = _arch(info, "block_count")
    if value is not None and not 1 <= value <= MAX_LAYERS:
        return f"{quoted(key)} is {value:,}; llama.cpp takes 1 to {MAX_LAYERS} blocks."
    return None


def _context(info: GGUFFacts) -> str | None:
    key, value = _arch(info, "context_length")
    if value is not None and value > MAX_TRAINED_CONTEXT:
        return (
            f"{quoted(key)} claims {value:,} tokens; llama.cpp would set aside about "
            f"{4 * value / 1e9:.1f} GB for that, and no model is trained on more than "
            f"{MAX_TRAINED_CONTEXT:,}."
        )
    return None


def _norm_epsilon(info: GGUFFacts) -> str | None:
    for suffix in ("attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"):
        key, value = _arch(info, suffix)
        if value is not None and not (math.isfinite(value) and 0 < value < 1):
            return f"{quoted(key)} is {printable(value, 30)}; it must be a small positive number."
    return None


def _heads(info: GGUFFacts) -> str | None:
    key, kv_heads = _arch(info, "attention.head_count_kv")
    _, heads = _arch(info, "attention.head_count")
    if not (isinstance(kv_heads, int) and isinstance(heads, int) and heads > 0):
        return None  # per-layer lists may hold 0 for layers without attention
    if kv_heads == 0 or heads % kv_heads:
        return f"{quoted(key)} is {kv_heads:,}, which does not divide {heads:,} heads."
    return None


def _experts(info: GGUFFacts) -> str | None:
    key, count = _arch(info, "expert_count")
    used_key, used = _arch(info, "expert_used_count")
    used_max = max(used) if isinstance(used, list) and used else used
    count = count or 0
    if not isinstance(used_max, int):
        used_max = 0
    if count == 0:
        if used_max:
            return f"{quoted(used_key)} is {used_max:,} but the model has no experts."
        return None
    if count > MAX_EXPERTS:
        return f"{quoted(key)} is {count:,}; llama.cpp takes at most {MAX_EXPERTS}."
    if not 1 <= used_max <= count:
        return f"{quoted(used_key)} is {used_max:,} for {count:,} experts."
    if not any("_exps" in t.name for t in info.tensors):
        return f"{quoted(key)} is {count:,} but the file has no expert tensors."
    return None


def _alignment(info: GGUFFacts) -> str | None:
    if info.alignment % TENSOR_ALIGNMENT:
        return (
            f"its tensor data is aligned to {info.alignment} bytes; llama.cpp needs a multiple "
            f"of {TENSOR_ALIGNMENT}."
        )
    return None


def _tensor_types(info: GGUFFacts) -> str | None:
    for tensor in info.tensors:
        if tensor.type_name in INTEGER_TENSOR_TYPES:
            return (
                f"tensor {quoted(tensor.name)} holds {tensor.type_name} integers where model "
                "weights must be floating-point or quantized."
            )
    return None


def _rope(info: GGUFFacts) -> str | None:
    key, value = _arch(info, "rope.scaling.type")
    if value is not None and value not in ROPE_SCALING_TYPES:
        return (
            f"{quoted(key)} is {quoted(value, 30)}; llama.cpp knows "
            f"{', '.join(sorted(ROPE_SCALING_TYPES))}."
        )
    return None


def _vocabulary(info: GGUFFacts) -> str | None:
    model = info.metadata.get("tokenizer.ggml.model")
    if model is not None and model not in KNOWN_TOKENIZERS:
        return f"its tokenizer {quoted(model, 30)} is not one llama.cpp knows."
    facts = info.vocabulary
    if facts.duplicate is not None:
        first, second = facts.duplicate
        return f"vocabulary tokens {first:,} and {second:,} are the same (a damaged file?)."
    if facts.not_utf8 is not None:
        return f"vocabulary token {facts.not_utf8:,} is not valid text (a damaged file?)."
    if model == "llama" and 0 < facts.byte_tokens < 256:
        return (
            f"its vocabulary has {facts.byte_tokens} of the 256 byte tokens <0x00>..<0xFF> "
            "(a damaged file?)."
        )
    return None


__all__ = ["check_loadable"]
