"""Synthesize a tiny, real llama-architecture GGUF model.

The file is small (a few MB) but complete: llama.cpp loads it, tokenizes with it (an SPM vocab
with byte fallback, so any text round-trips) and generates from it (random weights, so the text is
nonsense). Tests use it as a fast real model, and ``slmdesk doctor`` uses it to prove an install
can load a model and generate without needing any download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Token types as llama.cpp defines them.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 1, 2, 3, 4, 6

_WORD_PIECES = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "hello",
    "world",
    "model",
    "small",
    "language",
    "chat",
    "reply",
    "question",
    "answer",
    "def",
    "return",
    "print",
    "import",
    "class",
    "self",
]


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of a synthesized model. Widths are multiples of 256 so K-quants apply."""

    n_layers: int = 4
    n_embd: int = 256
    n_ff: int = 512
    n_head: int = 4
    n_head_kv: int = 2
    context_length: int = 2048
    with_chat_template: bool = True
    chat_template: str | None = None  # None: the ChatML template
    seed: int = 1234
    name: str = "Tiny Llama Test"
    # More vocabulary (e.g. accented or non-Latin pieces for vocabulary trimming tests):
    # normal pieces scored by length like the others, and user-defined tokens (matched as text).
    extra_pieces: tuple[str, ...] = ()
    user_defined: tuple[str, ...] = ()


def _vocab(
    extra_pieces: tuple[str, ...] = (), user_defined: tuple[str, ...] = ()
) -> tuple[list[str], list[float], list[int]]:
    tokens: list[str] = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    pieces: list[str] = ["\u2581"]
    for ch in "abcdefghijklmnopqrstuvwxyz.,!?'":
        pieces += [ch, "\u2581" + ch]
    pieces += ["\u2581" + w for w in _WORD_PIECES]
    seen = set(tokens)
    for piece, kind in [(p, _NORMAL) for p in [*pieces, *extra_pieces]] + [
        (p, _USER_DEFINED) for p in user_defined
    ]:
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(kind)
    # Longer pieces score higher so SPM's merge picks whole words.
    scores = [
        0.0 if t != _NORMAL else float(len(tok)) for tok, t in zip(tokens, types, strict=True)
    ]
    return tokens, scores, types


def write_tiny_llama(path: Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a tiny llama GGUF to ``path`` (atomically) and return the path.

    Args:
        path: destination file; its folder is created.
        spec: model shape; the default is a 4-block, 256-wide model of about 5 MB.
    """
    import gguf  # imported here: heavy, and only needed when writing

    spec = spec or TinyModelSpec()
    rng = np.random.default_rng(spec.seed)
    tokens, scores, types = _vocab(spec.extra_pieces, spec.user_defined)
    n_vocab = len(tokens)
    head_dim = spec.n_embd // spec.n_head
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")

    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(spec.name)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    writer.add_license("mit")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if spec.with_chat_template:
        writer.add_chat_template(spec.chat_template or CHATML_TEMPLATE)
        writer.add_eot_token_id(4)

    def weight(rows: int, cols: int) -> np.ndarray:
        scale = 1.0 / np.sqrt(cols)
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(spec.n_embd)).astype(np.float32)

    kv_width = spec.n_head_kv * head_dim
    writer.add_tensor("token_embd.weight", weight(n_vocab, spec.n_embd))
    for i in range(spec.n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm())
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(spec.n_embd, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(kv_width, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(kv_width, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(spec.n_embd, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm())
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(spec.n_ff, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(spec.n_ff, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(spec.n_embd, spec.n_ff))
    writer.add_tensor("output_norm.weight", norm())
    writer.add_tensor("output.weight", weight(n_vocab, spec.n_embd))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, path)
    return path
