"""Rewrite a GGUF file with a subset of its vocabulary.

Every key is copied; the token arrays (tokens, scores, types, merges) keep only the kept tokens;
ids named by keys (bos, eos, eot, pad, unk, ... and id lists) are renumbered; the rows of the
token embedding and the output matrix are selected by their raw bytes, so any quantized type is
copied exactly. The file is written under a hidden temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize.leftovers import staging_path

TOKENS = "tokenizer.ggml.tokens"
SCORES = "tokenizer.ggml.scores"
TYPES = "tokenizer.ggml.token_type"
MERGES = "tokenizer.ggml.merges"
# Tensors with one row per token (the output matrix is absent when tied to the embedding).
VOCAB_TENSORS = ("token_embd.weight", "output.weight")

TensorProgress = Callable[[int, int, str], None]


def _is_id_key(name: str) -> bool:
    return name.startswith("tokenizer.ggml.") and name.endswith(("_token_id", "_token_ids"))


def special_ids(reader: Any) -> list[int]:
    """Every token id the file names in a key (bos, eos, eot, pad, unk, fim, id lists)."""
    found: list[int] = []
    for field in reader.fields.values():
        if _is_id_key(field.name):
            value = field.contents()
            found.extend(int(v) for v in (value if isinstance(value, list) else [value]))
    return found


def _new_value(field: Any, kept: Sequence[int], new_id: dict[int, int], kept_text: set[str]) -> Any:
    """The field's value in the trimmed file (``None``: copy unchanged)."""
    name = field.name
    if name in (TOKENS, SCORES, TYPES):
        values = field.contents()
        return [values[i] for i in kept]
    if name == MERGES:
        return [m for m in field.contents() if _merge_kept(m, kept_text)]
    if _is_id_key(name):
        value = field.contents()
        if isinstance(value, list):
            return [new_id[int(v)] for v in value]
        return new_id[int(value)]
    if name.endswith(".vocab_size"):
        return len(kept)
    return None


def _merge_kept(merge: str, kept_text: set[str]) -> bool:
    left, _, right = merge.partition(" ")
    return left in kept_text and right in kept_text and left + right in kept_text


def write_trimmed(
    reader: Any,
    dest: Path,
    kept: Sequence[int],
    progress: TensorProgress | None = None,
) -> Path:
    """Write ``reader``'s model with only the ``kept`` token ids (ascending) to ``dest``."""
    import gguf

    new_id = {old: new for new, old in enumerate(kept)}
    rows = np.asarray(kept, dtype=np.int64)
    tokens = reader.fields[TOKENS].contents()
    kept_text = {tokens[i] for i in kept}
    arch = str(reader.fields["general.architecture"].contents())
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = staging_path(dest, "partial")
    writer = gguf.GGUFWriter(str(partial), arch, endianess=reader.endianess)
    try:
        for field in reader.fields.values():
            name = field.name
            if name.startswith("GGUF.") or name == "general.architecture":
                continue
            if name == "general.alignment":
                writer.add_custom_alignment(int(field.contents()))
                continue
            kind = field.types[0]
            sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            value = _new_value(field, kept, new_id, kept_text)
            writer.add_key_value(name, field.contents() if value is None else value, kind, sub)
        selected: dict[str, np.ndarray] = {}
        for tensor in reader.tensors:
            data = tensor.data
            if tensor.name in VOCAB_TENSORS:
                data = np.ascontiguousarray(data[rows])
                selected[tensor.name] = data
            writer.add_tensor_info(
                tensor.name, data.shape, data.dtype, data.nbytes, tensor.tensor_type
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = len(reader.tensors)
        for i, tensor in enumerate(reader.tensors):
            if progress is not None:
                progress(i, total, tensor.name)
            data = selected.get(tensor.name, tensor.data)
            writer.write_tensor_data(data, tensor_endianess=reader.endianess)
        writer.close()
        os.replace(partial, dest)
    except BaseException as exc:
        writer.close()
        with contextlib.suppress(OSError):
            partial.unlink()
        if isinstance(exc, OSError):
            raise SlmdeskError(f"Cannot write {dest.name}: {exc.strerror or exc}.") from None
        raise
    if progress is not None:
        progress(total, total, "done")
    return dest
