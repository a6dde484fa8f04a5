"""A GGUF file whose header is mostly vocabulary, like Llama 3's or Qwen's (BPE, with merges).

The header is what matters (the remote header reader is tested and measured on it), so the
model is two tiny layers; the tokens are random byte-level pieces of varied length, longer ones
later as in a real BPE vocabulary, followed by their types and the merge list.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"


def write_big_vocab_gguf(path: Path, n_vocab: int = 200_000, seed: int = 7) -> Path:
    """Write the file (atomically) and return its path."""
    import gguf

    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz\u0120ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    tokens: list[str] = []
    seen: set[str] = set()
    while len(tokens) < n_vocab:
        grow = 4 + 10 * len(tokens) // n_vocab
        size = int(rng.integers(1, grow + 1))
        word = "".join(letters[i] for i in rng.integers(0, len(letters), size))
        if word not in seen:
            seen.add(word)
            tokens.append(word)
    merges = [f"{t[: len(t) // 2]} {t[len(t) // 2 :]}" for t in tokens if len(t) > 1]
    n_embd, n_layer = 32, 2
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name("Big Vocabulary Test")
    writer.add_context_length(8192)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * n_vocab)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float16)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    for i in range(n_layer):
        for name, shape in (
            ("attn_q", (n_embd, n_embd)),
            ("attn_k", (n_embd // 2, n_embd)),
            ("attn_v", (n_embd // 2, n_embd)),
            ("attn_output", (n_embd, n_embd)),
            ("ffn_gate", (64, n_embd)),
            ("ffn_up", (64, n_embd)),
            ("ffn_down", (n_embd, 64)),
        ):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, np.float32))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return path
