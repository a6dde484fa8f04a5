"""Predicted file size of a plan, computed from the tensor table alone (no llama.cpp, no I/O).

Why a pure function: the "make it fit" search weighs many plans (type, embedding and output types,
blocks removed, vocabulary kept); each must cost microseconds, not a conversion. What llama.cpp
would give each tensor for a type (its K-quant mixes and fallbacks for rows that are not a multiple
of 256) comes from one dry run per type (`pipeline.tensor_type_tables`, in the worker child);
everything else is arithmetic on the source's tensor table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.row_types import EMBEDDING, OUTPUT, chosen_types

# Metadata that does not grow with the vocabulary (names, hyper-parameters, a chat template).
_FIXED_METADATA_BYTES = 8 * 1024


def tensor_bytes(n_elements: int, type_name: str) -> int:
    """Bytes of ``n_elements`` values stored as the ggml type ``type_name``."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name.upper()]]
    return n_elements // block * size


def vocabulary_size(info: GGUFInfo) -> int:
    """Rows of the token embedding: the number of tokens (0 when the model has none)."""
    for tensor in info.tensors:
        if tensor.name == EMBEDDING and len(tensor.shape) >= 2:
            return int(tensor.shape[1])
    return 0


def renumbered(name: str, removed: Sequence[int]) -> str:
    """The name a kept tensor gets once ``removed`` blocks are pruned (llama.cpp numbers the
    remaining blocks again from 0: with block 1 removed, ``blk.2.x`` becomes ``blk.1.x``)."""
    if not name.startswith("blk."):
        return name
    index, dot, rest = name[4:].partition(".")
    if not dot or not index.isdigit():
        return name
    block = int(index)
    return f"blk.{block - sum(1 for r in set(removed) if r < block)}.{rest}"


def _table_entry_bytes(name: str, n_dims: int) -> int:
    # GGUF tensor info: name (u64 length + bytes), n_dims (u32), dims (u64 each), type (u32),
    # offset (u64).
    return 8 + len(name.encode("utf-8")) + 4 + 8 * n_dims + 4 + 8


def _round_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def predicted_bytes(
    info: GGUFInfo,
    tensor_types: Mapping[str, str],
    embedding_type: str | None = None,
    output_type: str | None = None,
    removed: Sequence[int] = (),
    vocab_kept: int | None = None,
) -> int:
    """The size in bytes of the file a plan would write.

    Args:
        info: the source model's header.
        tensor_types: tensor name -> ggml type name llama.cpp chooses for the plan's type (a
            dry run's answer), named as written: after pruning, blocks are numbered again from
            0 (`renumbered`). A dry run with the same blocks removed gives the exact table; one
            without pruning is a close guess (llama.cpp gives some layers more bits by their
            position). A tensor missing from it keeps its source type.
        embedding_type, output_type: ggml type names chosen for the token embedding and the
            output tensor (tied embeddings: see `slmdesk.models.row_types`), or None for
            llama.cpp's own choice.
        removed: blocks pruned away.
        vocab_kept: tokens kept when the vocabulary is trimmed (None: all); the embedding, the
            output and the tokenizer's metadata shrink in proportion.
    """
    alignment = max(int(info.alignment or 32), 1)
    n_vocab = vocabulary_size(info)
    kept = n_vocab if vocab_kept is None or n_vocab == 0 else max(0, min(vocab_kept, n_vocab))
    overrides = chosen_types((t.name for t in info.tensors), embedding_type, output_type)
    drop = tuple(f"blk.{i}." for i in removed)

    header = int(info.data_offset)
    table = sum(_table_entry_bytes(t.name, len(t.shape)) for t in info.tensors)
    # The tokenizer's arrays (tokens, scores, types, merges) hold nearly all the rest.
    vocab_metadata = max(0, header - table - _FIXED_METADATA_BYTES)
    if n_vocab and kept != n_vocab:
        header -= vocab_metadata - vocab_metadata * kept // n_vocab

    data = 0
    for tensor in info.tensors:
        if drop and tensor.name.startswith(drop):
            header -= _table_entry_bytes(tensor.name, len(tensor.shape))
            continue
        written = renumbered(tensor.name, removed) if removed else tensor.name
        kind = overrides.get(tensor.name) or tensor_types.get(written) or tensor.type_name
        n_elements = tensor.n_elements
        if tensor.name in (EMBEDDING, OUTPUT) and n_vocab and kept != n_vocab:
            n_elements = n_elements // n_vocab * kept
        try:
            size = tensor_bytes(n_elements, kind)
        except KeyError:  # a type name gguf does not know: keep the source's
            size = tensor_bytes(n_elements, tensor.type_name)
        data += _round_up(size, alignment)
    return _round_up(header, alignment) + data
